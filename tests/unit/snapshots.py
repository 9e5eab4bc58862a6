"""Hand-built snapshots for unit and UI tests."""

from __future__ import annotations

import dataclasses

from ebpftop import snapshots
from ebpftop.model import Bucket, Histogram, Latency, ProcessLatency, Snapshot
from ebpftop.sets.file_opens import FileOpenRow
from ebpftop.sets.page_faults import PageFaultRow
from ebpftop.sets.syscalls import SyscallRow
from ebpftop.sets.tcp import TcpConnection
from ebpftop.sets.tcp_traffic import TcpSession
from ebpftop.sets.udp import UdpFlow

T0 = 1_764_000_000.0


def replace(obj, **changes):
    """dataclasses.replace, and Snapshot.replace for a snapshot."""
    if isinstance(obj, Snapshot):
        return obj.replace(**changes)
    return dataclasses.replace(obj, **changes)


def sample_snapshot(t: float = T0, scale: int = 1) -> Snapshot:
    return snapshots.new(
        time=t,
        interval_s=5.0,
        tcp=(
            TcpConnection(t - 1, 4242, "curl", "ipv4", "10.0.0.2", 51000, "93.184.216.34", 443, "connect"),
            TcpConnection(t - 2, 880, "nginx", "ipv6", "::1", 8080, "::1", 40222, "accept"),
            TcpConnection(t - 3, 0, "", "ipv4", "127.0.0.1", 22, "127.0.0.1", 50001, "accept"),
        ),
        tcp_connections=(
            TcpSession(880, "nginx", "ipv6", "::1", 8080, "::1", 40222, "accept", "ESTABLISHED", t - 30, None,
                       5_000_000 * scale, 20_000, 50_000_000, 400_000, retransmits=2),
            TcpSession(4242, "curl", "ipv4", "10.0.0.2", 51000, "93.184.216.34", 443, "connect", "ESTABLISHED",
                       t - 1, None, 800, 1_500_000, 800, 1_500_000),
        ),
        tcp_closed=(
            TcpSession(4242, "curl", "ipv4", "10.0.0.2", 50990, "93.184.216.34", 443, "connect", "CLOSE",
                       t - 4, t - 2, 100, 2_000, 700, 9_000, resets_received=1),
        ),
        tcp_resets_unowned=3,
        udp=(
            UdpFlow(53, "systemd-resolve", "ipv4", "127.0.0.53", 53, "127.0.0.1", 41000, 12, 1400, 12, 480),
            UdpFlow(4242, "curl", "ipv4", "127.0.0.1", 41000, "127.0.0.53", 53, 12 * scale, 480 * scale, 12, 1400),
            UdpFlow(0, "", "ipv6", "::1", 5353, "fe80::1", 5353, 0, 0, 3, 300),
        ),
        syscalls=(
            SyscallRow("postgres", 9000 * scale, ((100, 6000 * scale), (101, 3000 * scale))),
            SyscallRow("nginx", 4000 * scale, ((880, 4000 * scale),)),
            SyscallRow("curl", 120 * scale, ((4242, 120 * scale),)),
        ),
        read_latency=Latency(
            (
                ProcessLatency("postgres", 100, Histogram((Bucket(1024, 2048, 50 * scale), Bucket(2048, 4096, 20)))),
                ProcessLatency("nginx", 880, Histogram((Bucket(4096, 8192, 10), Bucket(1 << 20, 1 << 21, 2)))),
            )
        ),
        write_latency=Latency(
            (ProcessLatency("postgres", 100, Histogram((Bucket(1 << 14, 1 << 15, 8),), sum_ns=8 * 20000)),)
        ),
        file_opens=(
            FileOpenRow("nginx", 880, "/var/www/index.html", 30 * scale, 0),
            FileOpenRow("curl", 4242, "/etc/ssl/certs/ca.pem", 2, 1),
        ),
        page_faults=(PageFaultRow("postgres", 100, 700 * scale), PageFaultRow("curl", 4242, 90)),
        status={"tcp": "ok", "tcp_traffic": "ok", "udp": "ok", "syscalls": "ok", "read_latency": "ok", "file_opens": "ok", "page_faults": "ok"},
        lost={"tcp": 0, "tcp_traffic": 0, "udp": 0, "syscalls": 0, "read_latency": 0, "file_opens": 0, "page_faults": 0},
    )


WEB, DB, POD = 1001, 1002, 1003  # cgroup ids of containers in container_snapshot()
HOST_CGROUP = 1


def container_snapshot(t: float = T0) -> Snapshot:
    """Two Docker containers (web: nginx, two of them; db: postgres), a
    Kubernetes pod's container (api) and the host (curl, sshd)."""
    from ebpftop.model import Container
    from ebpftop.sets.processes import ProcessEvent

    containers = {
        WEB: Container("docker", "a" * 64, "web"),
        DB: Container("docker", "b" * 64, "db"),
        POD: Container("kubernetes", "c" * 64, "api", pod="shop-7d9f", namespace="prod"),
    }
    return snapshots.new(
        time=t,
        interval_s=5.0,
        syscalls=(
            SyscallRow("postgres", 9000, ((100, 9000),), cgroup=DB),
            SyscallRow("nginx", 4000, ((880, 3000), (881, 1000)), cgroup=WEB),
            SyscallRow("python3", 2500, ((700, 2500),), cgroup=POD),
            SyscallRow("sh", 300, ((882, 300),), cgroup=WEB),
            SyscallRow("curl", 120, ((4242, 120),), cgroup=HOST_CGROUP),
            SyscallRow("sshd", 80, ((22, 80),), cgroup=HOST_CGROUP),
        ),
        read_latency=Latency((
            ProcessLatency("postgres", 100, Histogram((Bucket(1024, 2048, 50), Bucket(2048, 4096, 20))), cgroup=DB),
            ProcessLatency("nginx", 880, Histogram((Bucket(4096, 8192, 10),)), cgroup=WEB),
            ProcessLatency("nginx", 881, Histogram((Bucket(4096, 8192, 5),)), cgroup=WEB),
        )),
        file_opens=(
            FileOpenRow("nginx", 880, "/var/www/index.html", 30, 0, cgroup=WEB),
            FileOpenRow("nginx", 881, "/var/www/index.html", 12, 0, cgroup=WEB),
            FileOpenRow("python3", 700, "/app/config.yaml", 4, 1, cgroup=POD),
            FileOpenRow("curl", 4242, "/etc/ssl/certs/ca.pem", 2, 1, cgroup=HOST_CGROUP),
        ),
        page_faults=(PageFaultRow("postgres", 100, 700, cgroup=DB), PageFaultRow("nginx", 880, 40, cgroup=WEB),
                     PageFaultRow("nginx", 881, 20, cgroup=WEB), PageFaultRow("curl", 4242, 90, cgroup=HOST_CGROUP)),
        tcp_connections=(
            TcpSession(880, "nginx", "ipv4", "172.17.0.2", 80, "172.17.0.1", 40222, "accept", "ESTABLISHED", t - 30,
                       None, 5_000_000, 20_000, 50_000_000, 400_000, cgroup=WEB),
            TcpSession(700, "python3", "ipv4", "10.1.0.5", 41000, "172.17.0.3", 5432, "connect", "ESTABLISHED",
                       t - 9, None, 9_000, 700_000, 90_000, 7_000_000, cgroup=POD),
        ),
        processes=(
            ProcessEvent(t - 1, "exec", 882, 880, "sh", filename="/bin/sh", args=("sh", "-c", "date"), cgroup=WEB),
            ProcessEvent(t - 2, "exit", 4300, 4242, "curl", exit_code=0, lifetime_s=0.2, cgroup=HOST_CGROUP),
        ),
        containers=containers,
        status={"tcp": "ok", "tcp_traffic": "ok", "udp": "ok", "syscalls": "ok", "read_latency": "ok",
                "file_opens": "ok", "page_faults": "ok", "processes": "ok"},
        lost={"syscalls": 0},
    )


def degraded_snapshot(t: float = T0 + 5) -> Snapshot:
    """An interval under --max-cpu 3 during a read()/write() flood by dd:
    the latency probes sampled 1 in 16 (every count and sum an estimate),
    and the sets of the raw sys_enter but latency detached."""
    from ebpftop import aggregate
    from ebpftop.budget import shed_status
    from ebpftop.model import Budget

    budget = Budget(3.0, 31.9, 31.4, 0.5, latency_sampled_1_in=16,
                    detached=("file_opens", "processes", "syscalls", "tcp"))
    base = sample_snapshot(t)
    timed = [("dd", 5120, 8, 61_000, 61_000 * 180, 0), ("dd", 5120, 9, 9_400, 9_400 * 330, 0),
             ("dd", 5120, 10, 700, 700 * 700, 0), ("dd", 5120, 14, 3, 3 * 9_000, 0),
             ("postgres", 100, 11, 4, 4 * 1_500, 0), ("postgres", 100, 12, 1, 2_600, 0)]
    # each timed call counted by the kernel as the 16 it stands for
    lat = aggregate.latency([(c, p, slot, n * 16, ns * 16, g) for c, p, slot, n, ns, g in timed], sampled_1_in=16)
    status = {**base.status, **{name: shed_status(budget) for name in ("file_opens", "syscalls", "tcp")}}
    return replace(base, read_latency=lat, write_latency=replace(lat, by_process=lat.by_process[:1]),
                   syscalls=(), file_opens=(), tcp=(), budget=budget, status=status)


def every_part_snapshot(t: float = T0) -> Snapshot:
    """sample_snapshot() with a row in every part a probe set declares: the
    generic tests of tests/unit/test_sets.py need one of each (a new set's
    parts get their example rows here)."""
    from ebpftop import aggregate
    from ebpftop.model import Histogram
    from ebpftop.sets.cpu import CpuBusy, CpuThread
    from ebpftop.sets.disk import DeviceIO, DiskIO, SlowIO
    from ebpftop.sets.drops import Drop, DropReason
    from ebpftop.sets.file_opens import Alert
    from ebpftop.sets.oom import OomKill
    from ebpftop.sets.processes import ProcessEvent
    from ebpftop.sets.profile import ProfileStack

    user = ("__libc_start_call_main", "main", "PostgresMain", "exec_simple_query")
    return sample_snapshot(t).replace(
        cpu_threads=(CpuThread(100, 100, "postgres", 3_100_000_000, 200_000_000, 900_000_000, 800_000_000, 4_000, 300),
                     CpuThread(101, 100, "postgres", 1_000_000_000, 10_000_000, 0, 3_990_000_000, 900, 3),
                     CpuThread(4242, 4242, "curl", 20_000_000, 1_000_000, 0, 4_979_000_000, 40, 0)),
        runq_latency=aggregate.latency([("postgres", 100, 12, 250, 250 * 3_000, 0), ("postgres", 100, 22, 50, 50 * 3_000_000, 0),
                                        ("curl", 4242, 10, 40, 40 * 700, 0)]),
        cpus=(CpuBusy(0, 4_200_000_000, 800_000_000), CpuBusy(1, 900_000_000, 4_100_000_000, 2_000_000)),
        cpu_estimated=3,
        profile_stacks=(
            ProfileStack(100, "postgres", (*user, "ExecScan", "heap_getnextslot"), (), 120),
            ProfileStack(100, "postgres", (*user, "ExecScan", "ExecQual"), (), 60),
            ProfileStack(100, "postgres", (*user, "pq_getbyte", "__libc_recv"),
                         ("entry_SYSCALL_64_after_hwframe", "do_syscall_64", "__sys_recvfrom", "tcp_recvmsg"), 25),
            ProfileStack(101, "postgres", ("[user stack unavailable]",), (), 4),
            ProfileStack(4242, "curl", ("_start", "main", "[unknown in libcurl.so.4]"), (), 9),
            ProfileStack(77, "kworker/1:2", (), ("[stack lost: its stack map bucket was taken]",), 2),
        ),
        profile_idle=270,
        status={**sample_snapshot(t).status, "cpu": "ok", "profile": "ok", "processes": "ok", "disk": "ok", "oom": "ok",
                "drops": "ok"},
        processes=(ProcessEvent(t - 1, "exec", 882, 880, "sh", filename="/bin/sh", args=("sh", "-c", "date")),
                   ProcessEvent(t - 2, "exit", 4300, 4242, "curl", exit_code=0, lifetime_s=0.2)),
        alerts=(Alert(t - 3, 66, 1, 1000, "cat", "/etc/shadow", -13),),
        disk_io=(DiskIO(100, "postgres", "vda", "write", 120, 120 * 8192, 120 * 900_000, 0),
                 DiskIO(100, "postgres", "vda", "read", 40, 40 * 8192, 40 * 250_000, 0),
                 DiskIO(91, "kworker/u8:2", "vda", "write", 64, 64 * 131072, 64 * 4_000_000, 0, work="wb_workfn"),
                 DiskIO(4242, "curl", "loop3", "read", 2, 8192, 2 * 100_000, 1)),
        disk_devices=(DeviceIO("vda", "write", 184, 120 * 8192 + 64 * 131072,
                               Histogram.from_log2_slots({19: 100, 20: 20, 22: 64}, 120 * 900_000 + 64 * 4_000_000),
                               Histogram.from_log2_slots({10: 120, 21: 64}, 0),
                               Histogram.from_log2_slots({19: 120, 21: 64}, 0)),
                      DeviceIO("vda", "read", 40, 40 * 8192, Histogram.from_log2_slots({17: 40}, 40 * 250_000),
                               Histogram.from_log2_slots({10: 40}, 0), Histogram.from_log2_slots({17: 40}, 0)),
                      DeviceIO("loop3", "read", 2, 8192, Histogram.from_log2_slots({16: 2}, 200_000),
                               Histogram(()), Histogram(()))),
        disk_slow=(SlowIO(t - 0.5, 91, 93, "kworker/u8:2", "vda", "write", 2048, 131072, 14_000_000, 3_000_000, 0,
                          work="wb_workfn"),
                   SlowIO(t - 1.5, 100, 100, "postgres", "vda", "write", 99_328, 8192, 11_000_000, 0, 0)),
        disk_slow_ns=10_000_000,
        oom_kills=(OomKill(t - 2.5, 5150, "java", 1000, 8_388_608, 4_194_304, 2048, 0, 8192, 0, 5150, "java"),),
        drops=(Drop(100, "postgres", "SOCKET_FILTER", "ipv4", "10.0.0.5", 5432, "10.0.0.9", 51234, 12),
               Drop(0, "", "TCP_OLD_DATA", "ipv4", "", 0, "", 0, 2)),
        drop_reasons=(DropReason("NETFILTER_DROP", 40), DropReason("SOCKET_FILTER", 12), DropReason("TCP_OLD_DATA", 2)),
    )

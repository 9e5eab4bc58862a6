"""Running ebpftop as a service (deploy/, docs/deploy.md), on the real kernel.

The systemd unit cannot run under its own manager here (no systemd as PID 1),
so its sandbox is rebuilt from the unit file, directive by directive, with
the kernel features systemd itself uses: a mount namespace (ProtectSystem,
ProtectHome, PrivateTmp, PrivateDevices, ProtectKernelTunables,
ProtectControlGroups), a UTS namespace (ProtectHostname), the capability
bounding set and no_new_privs (setpriv), and a seccomp filter built with
libseccomp (SystemCallFilter, RestrictAddressFamilies, RestrictNamespaces,
MemoryDenyWriteExecute, LockPersonality).  A directive the unit gains that
this file does not know fails the test, so the unit cannot claim a sandbox
nobody ran ebpftop in.

The Dockerfile is built on the Debian 13 userspace (imported as the base
image, no registry is reachable) with ebpftop's dependencies from a
wheelhouse the host's pip fills, and run with the flags docs/deploy.md gives.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tomllib

from tests.conftest import require_kernel_support
from tests.kernel import test_containers
from tests.kernel.test_containers import _need, docker
from tests.kernel.test_lifecycle import prog_ids, wait_detached
from tests.kernel.test_prometheus import free_port, wait_http

# test_containers' session fixtures: dockerd, and the Debian 13 userspace as an image
docker_daemon = test_containers.docker_daemon
ebpftop_image = test_containers.ebpftop_image

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "ebpftop.service"
DEPLOY_DOC = REPO / "docs" / "deploy.md"


def service_settings(text: str) -> dict[str, list[str]]:
    """The [Service] section of a unit file: each key's values, in order."""
    section, out = None, {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _one(settings: dict[str, list[str]], key: str, default: str = "") -> str:
    return settings.get(key, [default])[-1]


def _yes(settings: dict[str, list[str]], key: str) -> bool:
    return _one(settings, key).lower() in ("yes", "true", "on", "1")


# What each directive of the unit becomes here (the rest of the file does it).
EMULATED = {
    "CapabilityBoundingSet", "AmbientCapabilities", "NoNewPrivileges", "UMask",
    "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectControlGroups",
    "ProtectHostname",
    "SystemCallFilter", "SystemCallErrorNumber", "SystemCallArchitectures", "RestrictAddressFamilies",
    "RestrictNamespaces", "MemoryDenyWriteExecute", "LockPersonality",
}
# How systemd starts and restarts it: nothing to emulate.  ExecStartPre (with
# '+', outside the sandbox) is run as it is; ExecStart is what runs inside.
NOT_SANDBOXING = {"Type", "ExecStartPre", "ExecStart", "Restart", "RestartSec"}

# CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET,TIME}: what RestrictNamespaces=yes
# refuses to clone(2) and unshare(2)
NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype != "nsfs":  # a namespace's handle (docker's netns): no files under it
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return list(dict.fromkeys(points))


def _under(path: str, *tops: str) -> bool:
    return any(path == t or path.startswith(t + "/") for t in tops)


def namespace_script(settings: dict[str, list[str]], scratch: Path) -> str:
    """The shell commands that give a new mount namespace the unit's view of
    the file system, as systemd's namespace.c builds it."""
    q = shlex.quote
    lines = ["set -e"]
    if _one(settings, "UMask"):
        lines.append(f"umask {_one(settings, 'UMask')}")
    if _yes(settings, "PrivateDevices"):
        # a /dev of its own with only the pseudo devices
        dev = scratch / "dev"
        dev.mkdir()
        lines.append(f"mount -t tmpfs -o mode=0755,nosuid,noexec tmpfs {q(str(dev))}")
        for name in ("null", "zero", "full", "random", "urandom", "tty"):
            lines += [f"touch {q(str(dev / name))}", f"mount --bind /dev/{name} {q(str(dev / name))}"]
        lines += [f"mkdir {q(str(dev / 'pts'))} {q(str(dev / 'shm'))}",
                  f"mount --bind /dev/pts {q(str(dev / 'pts'))}",
                  f"mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs {q(str(dev / 'shm'))}",
                  f"mount --move {q(str(dev))} /dev"]
    if _yes(settings, "PrivateTmp"):
        moves = []
        for tmp in ("/var/tmp", "/tmp"):  # both made first: /tmp's move hides the scratch directory
            # a new tmpfs, made beside and moved over before the read-only
            # remounts (the move fails on a read-only parent): the checkout under test
            # (a CI clone lives under /tmp) is bound into it at its own path,
            # read-only as the rest; the unit itself runs ebpftop from /opt
            staged = scratch / f"private{tmp.replace('/', '-')}"
            staged.mkdir()
            lines.append(f"mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs {q(str(staged))}")
            if _under(str(REPO), tmp):
                inner = staged / REPO.relative_to(tmp)
                lines += [f"mkdir -p {q(str(inner))}", f"mount --bind {q(str(REPO))} {q(str(inner))}",
                          f"mount -o remount,bind,ro {q(str(inner))}"]
            moves.append(f"mount --move {q(str(staged))} {tmp}")
        lines += moves
    read_only = []
    system = _one(settings, "ProtectSystem")
    if system == "strict":  # everything but the API file systems
        read_only += [p for p in _mount_points() if not _under(p, "/proc", "/sys", "/dev")]
    elif system:
        pytest.fail(f"ProtectSystem={system}: only strict is emulated")
    if _one(settings, "ProtectHome") not in ("", "read-only") and system != "strict":
        pytest.fail("ProtectHome: only read-only is emulated")
    if _yes(settings, "ProtectKernelTunables"):
        read_only += [p for p in _mount_points() if _under(p, "/sys") and not _under(p, "/sys/fs/cgroup")]
        read_only += ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/fs"]
    if _yes(settings, "ProtectControlGroups"):
        read_only += [p for p in _mount_points() if _under(p, "/sys/fs/cgroup")]
    if _yes(settings, "PrivateTmp"):  # its own /tmp and /var/tmp stay writable
        read_only = [p for p in read_only if not _under(p, "/tmp", "/var/tmp")]
    for path in dict.fromkeys(read_only):
        if path.startswith("/proc/"):  # not a mount point of its own yet
            lines.append(f"[ -e {q(path)} ] && mount --bind {q(path)} {q(path)}")
        lines.append(f"[ ! -e {q(path)} ] || mount -o remount,bind,ro {q(path)}")
    return "\n".join(lines)


def _cap_list(value: str) -> str:
    return ",".join(f"+{c.lower().removeprefix('cap_')}" for c in value.split())


def confined_argv(settings: dict[str, list[str]], argv: list[str], scratch: Path) -> list[str]:
    """argv run as the unit would run it."""
    unknown = set(settings) - EMULATED - NOT_SANDBOXING
    assert not unknown, f"the unit sets {sorted(unknown)}, which this test does not emulate"
    unshare = ["unshare", "--mount", "--propagation", "private"] + (["--uts"] if _yes(settings, "ProtectHostname") else [])
    caps = _cap_list(_one(settings, "CapabilityBoundingSet"))
    ambient = _cap_list(_one(settings, "AmbientCapabilities"))
    # uid 0 (the unit names no User=): its capabilities after exec are the
    # bounding set; ambient ones matter only to another user
    setpriv = ["setpriv", f"--bounding-set=-all,{caps}" if caps else "--bounding-set=-all",
               f"--inh-caps=-all,{ambient}" if ambient else "--inh-caps=-all",
               f"--ambient-caps=-all,{ambient}" if ambient else "--ambient-caps=-all"]
    if _yes(settings, "NoNewPrivileges"):
        setpriv.append("--no-new-privs")
    spec = seccomp_spec(settings)
    shim = [sys.executable, "-c", "import sys; from tests.kernel.test_deploy import exec_confined; exec_confined()",
            json.dumps(spec)]
    return [*unshare, "sh", "-c", namespace_script(settings, scratch) + '\nexec "$@"', "sh", *setpriv, "--", *shim,
            *argv]


@functools.cache
def syscall_group(name: str) -> frozenset[str]:
    """The system calls of a systemd group (@system-service), its nested
    groups expanded, as this systemd defines them."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name], check=True,
                         capture_output=True, text=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        calls |= syscall_group(line) if line.startswith("@") else {line}
    return frozenset(calls)


def seccomp_spec(settings: dict[str, list[str]]) -> dict:
    allowed = set()
    for item in _one(settings, "SystemCallFilter").split():
        assert not item.startswith("~"), "a deny list is not emulated"
        allowed |= syscall_group(item) if item.startswith("@") else {item}
    # the filter below is an allow list: the other seccomp directives refine it
    assert allowed, "the unit's seccomp directives are emulated on top of a SystemCallFilter allow list"
    assert _one(settings, "SystemCallErrorNumber", "EPERM") == "EPERM"
    assert _one(settings, "SystemCallArchitectures", "native") == "native"  # libseccomp's default
    return {
        "allowed": sorted(allowed),
        "families": [getattr(__import__("socket"), f) for f in _one(settings, "RestrictAddressFamilies").split()],
        "restrict_namespaces": _yes(settings, "RestrictNamespaces"),
        "deny_write_execute": _yes(settings, "MemoryDenyWriteExecute"),
        "lock_personality": _yes(settings, "LockPersonality"),
    }


def exec_confined() -> None:
    """Load the seccomp filter sys.argv[1] describes, then exec sys.argv[2:]
    (run after setpriv set no_new_privs, which loading a filter needs)."""
    import ctypes
    import errno

    spec, argv = json.loads(sys.argv[1]), sys.argv[2:]
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]

    class Cmp(ctypes.Structure):  # struct scmp_arg_cmp
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]

    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(Cmp)]
    allow = 0x7FFF0000  # SCMP_ACT_ALLOW

    def errno_action(e: int) -> int:  # SCMP_ACT_ERRNO(e)
        return 0x00050000 | e

    eq, masked_eq = 4, 7
    ctx = lib.seccomp_init(errno_action(errno.EPERM))  # SystemCallErrorNumber=EPERM
    assert ctx

    def rule(action: int, name: str, *cmps: tuple[int, int, int, int]) -> None:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:
            return  # not a system call of this architecture
        arr = (Cmp * max(1, len(cmps)))(*[Cmp(*c) for c in cmps])
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), arr)
        assert rc == 0, (name, cmps, rc)

    allowed = set(spec["allowed"])
    if spec["families"]:  # socket(2) of those families only; systemd's error for the others
        allowed.discard("socket")
        for family in range(46):  # AF_MAX
            ok = family in spec["families"] and "socket" in spec["allowed"]
            rule(allow if ok else errno_action(errno.EAFNOSUPPORT), "socket", (0, eq, family, 0))
    if spec["restrict_namespaces"]:  # no CLONE_NEW* flag; setns(2) not at all
        allowed -= {"clone", "unshare", "setns", "clone3"}
        rule(errno_action(errno.ENOSYS), "clone3")  # as systemd: the C library falls back to clone()
        for name in ("clone", "unshare"):
            if name in spec["allowed"]:
                rule(allow, name, (0, masked_eq, NAMESPACE_FLAGS, 0))
    if spec["deny_write_execute"]:  # never writable and executable, never made executable later
        prot_write, prot_exec, shm_exec = 2, 4, 0o100000
        allowed -= {"mmap", "mprotect", "pkey_mprotect", "shmat"}
        for value in (0, prot_write, prot_exec):
            rule(allow, "mmap", (2, masked_eq, prot_write | prot_exec, value))
        rule(allow, "mprotect", (2, masked_eq, prot_exec, 0))
        rule(allow, "pkey_mprotect", (2, masked_eq, prot_exec, 0))
        rule(allow, "shmat", (2, masked_eq, shm_exec, 0))
    if spec["lock_personality"]:
        allowed.discard("personality")
        rule(allow, "personality", (0, eq, 0, 0))  # PER_LINUX, the one in use
        rule(allow, "personality", (0, eq, 0xFFFFFFFF, 0))  # the query
    for name in sorted(allowed):
        rule(allow, name)
    assert lib.seccomp_load(ctx) == 0, "seccomp_load failed"
    os.execv(argv[0], argv)


def exporter_argv(settings: dict[str, list[str]], port: int) -> list[str]:
    """The unit's ExecStart, on this checkout's venv, on a free port, every
    second (the unit's 15 s would make the test wait minutes)."""
    argv = shlex.split(_one(settings, "ExecStart"))
    assert argv[0] == "/opt/ebpftop/.venv/bin/ebpftop"  # where docs/deploy.md installs it
    argv[0] = str(Path(sys.executable).parent / "ebpftop")
    i = argv.index("--prometheus")
    assert argv[i + 1].startswith("127.0.0.1:")  # loopback unless the admin chooses otherwise
    argv[i + 1] = f"127.0.0.1:{port}"
    argv[argv.index("--interval") + 1] = "1"
    return argv


def metric(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    series = f"{name}{{{want}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(series):
            return float(line.rsplit(" ", 1)[1])
    return None


def run_unit_exporter(settings, tmp_path, wait_for, workload=None):
    """Start the exporter as the unit would, wait until wait_for(metrics text)
    holds (running the workload once the probes are up); returns the last
    text scraped and ebpftop's stderr."""
    port = free_port()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root", "PYTHONDONTWRITEBYTECODE": "1"}
    scratch = tmp_path / "sandbox"
    scratch.mkdir()
    proc = subprocess.Popen(confined_argv(settings, exporter_argv(settings, port), scratch), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    text = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                text = wait_http(f"http://127.0.0.1:{port}/metrics", timeout=2)
            except OSError:
                continue
            if (metric(text, "ebpftop_polls") or 0) >= 1:  # attached (or failed to) by the first poll
                break
            time.sleep(0.2)
        if workload is not None and proc.poll() is None:
            workload()
        while time.monotonic() < deadline and proc.poll() is None and not wait_for(text):
            time.sleep(0.5)
            text = wait_http(f"http://127.0.0.1:{port}/metrics")
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # never left running with its probes attached
            _, err = proc.communicate()
    return text, err


def test_the_systemd_unit_s_sandbox_exports_a_known_workload(workload, tmp_path):
    """ebpftop in the unit's sandbox, with exactly its capabilities, serves a
    workload's exact counts on /metrics; nothing stays attached."""
    require_kernel_support()
    for tool in ("unshare", "setpriv", "systemd-analyze"):
        if not shutil.which(tool):
            _need(tool, "the unit's sandbox is rebuilt with it")
    settings = service_settings(UNIT.read_text())
    assert _one(settings, "CapabilityBoundingSet").split() == ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_SYSLOG"]
    for pre in settings.get("ExecStartPre", []):
        assert pre.startswith("+")  # it mounts: outside the sandbox, with every capability
        subprocess.run(shlex.split(pre[1:]), check=True)
    before = prog_ids()
    absent = tmp_path / "absent"

    def work():
        workload.run("opens", 23, absent)
        workload.run("udp4", 55, 100)
        workload.run("syscalls", 20_000)

    def done(text):
        return (metric(text, "ebpftop_udp_datagrams_total", comm=f"{workload.comm}r", direction="received") == 55
                and (metric(text, "ebpftop_syscalls_total", comm=workload.comm) or 0) >= 20_000)

    text, err = run_unit_exporter(settings, tmp_path, done, work)
    assert done(text), err
    up = {m.group(1): float(m.group(2)) for m in re.finditer(r'ebpftop_probe_up\{pane="(\w+)"\} (\S+)', text)}
    assert len(up) > 10 and set(up.values()) == {1.0}, up
    assert metric(text, "ebpftop_file_open_errors_total", comm=workload.comm) == 23
    # the UDP set's cgroup programs, which need CAP_NET_ADMIN
    assert metric(text, "ebpftop_udp_bytes_total", comm=workload.comm, direction="sent") == 55 * 100
    assert 20_000 <= metric(text, "ebpftop_syscalls_total", comm=workload.comm) < 20_000 + 500
    assert "Traceback" not in err, err
    assert wait_detached(prog_ids() - before) == set()


@pytest.mark.parametrize("weakened, lost", [
    ({"CapabilityBoundingSet": ["CAP_BPF CAP_PERFMON CAP_SYSLOG"]}, "udp"),  # no CAP_NET_ADMIN
    ({"SystemCallFilter": ["@system-service perf_event_open"]}, "all"),  # no bpf(2)
], ids=["without CAP_NET_ADMIN", "without bpf(2)"])
def test_the_emulated_sandbox_bites(tmp_path, weakened, lost):
    """The same sandbox with one grant taken away: ebpftop loses what that
    grant is for (so the emulation above is in force, and the grant needed)."""
    require_kernel_support()
    settings = service_settings(UNIT.read_text()) | weakened
    before = prog_ids()
    text, err = run_unit_exporter(settings, tmp_path, lambda text: (metric(text, "ebpftop_polls") or 0) >= 1)
    up = {m.group(1): float(m.group(2)) for m in re.finditer(r'ebpftop_probe_up\{pane="(\w+)"\} (\S+)', text)}
    assert len(up) > 10, text
    assert {p for p, v in up.items() if v == 0} == (set(up) if lost == "all" else {lost}), err
    assert "Operation not permitted" in err, err
    assert wait_detached(prog_ids() - before) == set()


# ---- the Dockerfile ----


def documented_docker_run() -> list[str]:
    """The flags of docs/deploy.md's `docker run` line (the Docker section's
    first sh block), between `run` and the image."""
    text = DEPLOY_DOC.read_text()
    block = re.search(r"```sh\n(docker run .*?)```", text, re.S)
    assert block, "no docker run block in docs/deploy.md"
    argv = shlex.split(block.group(1).replace("\\\n", " "), comments=True)
    image = argv.index("ebpftop:0.1.0")
    return argv[2:image]


@pytest.fixture
def wheelhouse(ebpftop_image, tmp_path):
    """ebpftop's dependencies (and its build backend) as wheels for the
    image's Python, fetched by the host's pip (its index and certificates,
    which a build does not see), served on loopback for the build."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = project["project"]["dependencies"] + project["build-system"]["requires"]
    version = docker("run", "--rm", "--entrypoint", "python3", ebpftop_image, "-c",
                     "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()
    wheels = tmp_path / "wheels"
    machine = platform.machine()
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d", str(wheels),
                    "--only-binary=:all:", "--python-version", version, "--implementation", "cp",
                    "--platform", f"manylinux_2_28_{machine}", *wanted], check=True, capture_output=True, timeout=300)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(wheels)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_the_dockerfile_s_image_counts_a_host_workload(ebpftop_image, wheelhouse, workload, tmp_path):
    """docker build on the Debian 13 userspace (everything apt would install
    already there), then the image run with docs/deploy.md's flags while a
    host process makes known opens and syscalls."""
    tag = f"ebpftop-test-build-{secrets.token_hex(3)}:latest"
    started = time.monotonic()
    build = subprocess.run(
        ["docker", "build", "-q", "--network=host", "--build-arg", f"BASE={ebpftop_image}",
         "--build-arg", "PIP_NO_INDEX=1", "--build-arg", f"PIP_FIND_LINKS={wheelhouse}", "-t", tag, str(REPO)],
        capture_output=True, text=True, timeout=600)
    built_in = time.monotonic() - started
    try:
        assert build.returncode == 0, build.stderr
        print(f"image built in {built_in:.1f} s")
        before = prog_ids()
        name = f"ebt-image-{secrets.token_hex(3)}"
        path = tmp_path / "opened"
        path.write_text("x")
        ebpftop = subprocess.Popen(
            ["docker", "run", "--name", name, *documented_docker_run(), tag, "--json", "--interval", "1",
             "--count", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # its first interval is printed once every set is attached: the workload after it
            first = ebpftop.stdout.readline()
            assert first, ebpftop.stderr.read()
            workload.run("work", 19, path, 20_000)
            out, err = ebpftop.communicate(timeout=90)
        finally:
            docker("rm", "-f", name, check=False)
        assert ebpftop.returncode == 0, err
        snaps = [json.loads(line) for line in [first, *out.splitlines()]]
        assert all(s == "ok" for s in snaps[-1]["status"].values()), snaps[-1]["status"]
        opens = [r for s in snaps for r in s["file_opens"] if r["path"] == str(path)]
        assert sum(r["count"] for r in opens) == 19
        assert {r["container"] for r in opens} == {None}  # a host process: no container
        calls = sum(r["count"] for s in snaps for r in s["syscalls"] if r["comm"] == workload.comm)
        assert 20_000 <= calls < 20_000 + 500
        assert wait_detached(prog_ids() - before) == set()
    finally:
        docker("rmi", "-f", tag, check=False)

"""Containers, end to end: real Docker containers doing known work, and
hand-made cgroups named like a Kubernetes pod's container, a Podman
container and a systemd service, with the runtimes' files as fixtures.

Docker comes from Debian's docker.io (make test installs it); the tests
start dockerd when it is not running and stop it again.  The image holds
only the workload, statically linked (no registry is reachable)."""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from ebpftop import filters, snapshots
from ebpftop.model import Container
from tests.conftest import require_kernel_support
from tests.kernel.conftest import HERE, poll_after


def _need(what: str, why: str):
    reason = f"container tests need {what}: {why}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run every kernel test)")
    pytest.skip(reason)


def docker(*args, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="session")
def docker_daemon():
    require_kernel_support()
    if not shutil.which("docker") or not shutil.which("dockerd"):
        _need("Docker", "no docker/dockerd here (Debian: apt-get install docker.io)")
    if docker("info", check=False).returncode == 0:
        yield
        return
    log = open("/tmp/ebpftop-tests-dockerd.log", "wb")  # noqa: SIM115 - the daemon's, for as long as it runs
    daemon = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(120):
        if docker("info", check=False).returncode == 0:
            break
        if daemon.poll() is not None:
            _need("a Docker daemon", "dockerd exited (see /tmp/ebpftop-tests-dockerd.log)")
        time.sleep(0.25)
    else:
        daemon.kill()
        _need("a Docker daemon", "dockerd did not answer in 30 s")
    yield
    daemon.terminate()
    try:
        daemon.wait(timeout=30)
    except subprocess.TimeoutExpired:
        daemon.kill()
    log.close()


@pytest.fixture(scope="session")
def image(docker_daemon, tmp_path_factory):
    """An image of one file: the workload, statically linked, under a
    name unique to this run (its comm in every container)."""
    comm = "ebc" + secrets.token_hex(5)
    binary = tmp_path_factory.mktemp("image") / comm
    subprocess.run(["gcc", "-O2", "-static", "-pthread", "-o", str(binary), str(HERE / "workload.c")], check=True)
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.add(binary, arcname=comm)
    tag = f"ebpftop-test-{comm}:latest"
    subprocess.run(["docker", "import", "-", tag], input=data.getvalue(), check=True, capture_output=True, timeout=120)
    yield tag, comm
    docker("rmi", "-f", tag, check=False)


def container_ip(name: str) -> str:
    return docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()


def test_docker_containers_get_exactly_their_own_counts(fresh, image, tmp_path):
    """Container a listens and does N opens and M getppid(); container b
    connects K times to it, and b's sibling does its own opens and getppid().
    All are gone (--rm) before the poll, some a fraction of a second after
    they started: their names come from when their cgroups were made."""
    tag, comm = image
    run = secrets.token_hex(3)
    a, b = f"ebt-a-{run}", f"ebt-b-{run}"
    n_a, m_a, n_b, m_b, k = 17, 30_000, 11, 20_000, 9
    path_a, path_b = f"/ebt-open-a-{run}", f"/ebt-open-b-{run}"
    server = subprocess.Popen(["docker", "run", "--rm", "--name", a, tag, f"/{comm}", "listen", "7000", str(k)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(server.stdout.readline())["ready"]
        docker("exec", a, f"/{comm}", "work", str(n_a), path_a, str(m_a))
        docker("run", "--rm", "--name", b, tag, f"/{comm}", "connect", container_ip(a), "7000", str(k))
        docker("run", "--rm", "--name", b + "w", tag, f"/{comm}", "work", str(n_b), path_b, str(m_b))
        assert server.wait(timeout=30) == 0, server.stderr.read()
    finally:
        docker("rm", "-f", a, check=False)
    snap = poll_after(fresh, 1.0)

    def name_of(row) -> str | None:
        c = snap.container_of(row.cgroup)
        return c.name if c else None

    opens = {(r.path, name_of(r)): r.count for r in snap.file_opens if r.path in (path_a, path_b)}
    assert opens == {(path_a, a): n_a, (path_b, b + "w"): n_b}
    assert all(snap.container_of(r.cgroup).kind == "docker" for r in snap.file_opens if r.path in (path_a, path_b))

    calls = {name_of(r): r.count for r in snap.syscalls if r.comm == comm}
    assert m_a <= calls[a] < m_a + k * 20 + 500  # the server's accepts and closes, exec and exit
    assert m_b <= calls[b + "w"] < m_b + 500
    assert calls[b] < 500  # the client: its connects, no getppid()

    new = [c for c in snap.tcp if c.comm == comm]
    assert sorted((c.direction, name_of(c)) for c in new) == sorted([("connect", b)] * k + [("accept", a)] * k)
    traffic = [s for s in snap.tcp_closed if s.comm == comm and s.dport == 7000]
    assert {name_of(s) for s in traffic} == {b} and len(traffic) == k

    # --container, as the CLI and the TUI apply it
    only_a = snapshots.filtered(snap, filters.Filter(container=a))
    assert {r.path for r in only_a.file_opens if r.comm == comm} == {path_a}  # (and runc's, as it starts it)
    assert {snap.container_of(r.cgroup).name for r in only_a.syscalls} == {a}
    assert {c.direction for c in only_a.tcp if c.comm == comm} == {"accept"}

    # grouped by container: one row per container, the sums of its processes
    grouped = snapshots.by_container(snap)
    g_calls = {r.comm: r.count for r in grouped.syscalls}
    assert g_calls[a] >= calls[a] and g_calls[b + "w"] >= calls[b + "w"]
    assert {(r.comm, r.path): r.count for r in grouped.file_opens if r.path in (path_a, path_b)} == {
        (a, path_a): n_a, (b + "w", path_b): n_b}

    # JSON: every row carries its cgroup and its container
    d = json.loads(json.dumps(snapshots.to_dict(snap)))
    row = next(r for r in d["file_opens"] if r["path"] == path_a)
    assert row["container"]["name"] == a and row["container"]["kind"] == "docker"
    assert len(row["container"]["id"]) == 64 and row["cgroup"] > 1


async def test_the_tui_shows_and_groups_docker_containers(fresh, image):
    """The same, through the app: the CONTAINER column, then g."""
    from textual.widgets import DataTable

    from ebpftop.app import EbpftopApp
    from tests.ui.harness import KEY, SIZE, ListSource, feed

    tag, comm = image
    name = f"ebt-t-{secrets.token_hex(3)}"
    docker("run", "--rm", "--name", name, tag, f"/{comm}", "work", "5", "/ebt-tui", "40000")
    snap = poll_after(fresh, 1.0)
    snap = snapshots.filtered(snap, filters.Filter(comm=comm))  # this test's rows only: the table shows them all
    app = EbpftopApp(ListSource([snap]), auto_poll=False, clock=lambda: 0.0)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot)
        await pilot.press(KEY["syscalls"])
        table = app.query_one("#view-syscalls").table
        keys = [c.key for c in table.cols]
        cells = [[table.get_cell_at((r, i)).plain.strip() for i in range(len(keys))] for r in range(table.row_count)]
        assert [r[keys.index("container")] for r in cells if r[0] == comm] == [name]
        await pilot.press("g")
        rows = {table.get_cell_at((r, 0)).plain.strip(): table.get_cell_at((r, 1)).plain.strip()
                for r in range(table.row_count)}
        assert name in rows and int(rows[name].replace(",", "")) >= 40_000
        assert isinstance(table, DataTable)


def _cgroup2_root() -> Path:
    from ebpftop.sources import bpf_syscall

    root = bpf_syscall.cgroup2_root(Path("/proc/self/mounts").read_text())
    if root is None:
        _need("the cgroup v2 hierarchy", "not mounted")
    return Path(root)


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_hand_made_cgroups_resolve_to_pod_podman_and_service_names(fresh, workload, tmp_path):
    """Cgroups named as the kubelet (systemd driver), Podman and systemd name
    them, made under a test directory of the real cgroup v2 mount, with the
    runtimes' files in a fixture tree; the workload runs in each."""
    run = secrets.token_hex(3)
    k8s_id, podman_id = secrets.token_hex(32), secrets.token_hex(32)
    pod_uid = "0a1b2c3d_1111_2222_3333_" + secrets.token_hex(6)
    top = _cgroup2_root() / f"ebpftop-test-{run}"
    leaves = {
        "kubernetes": top / "kubepods.slice" / "kubepods-burstable.slice" / f"kubepods-burstable-pod{pod_uid}.slice"
        / f"cri-containerd-{k8s_id}.scope",
        "podman": top / "machine.slice" / f"libpod-{podman_id}.scope",
        "service": top / "system.slice" / f"ebt-{run}.service",
    }
    state = tmp_path / "state"
    _write_json(state / "run/containerd/io.containerd.runtime.v2.task/k8s.io" / k8s_id / "config.json",
                {"annotations": {"io.kubernetes.cri.container-name": "api", "io.kubernetes.cri.sandbox-name": f"shop-{run}",
                                 "io.kubernetes.cri.sandbox-namespace": "prod"}})
    _write_json(state / "var/lib/containers/storage/overlay-containers/containers.json",
                [{"id": podman_id, "names": [f"builder-{run}"]}])
    resolver_state = fresh.cgroups.state.root
    fresh.cgroups.state.root = str(state)  # the runtimes' files of this test
    paths = {}
    try:
        for kind, leaf in leaves.items():
            leaf.mkdir(parents=True)
            paths[kind] = f"/ebt-cg-{kind}-{run}"
            # the workload joins the cgroup, then execs: all its opens happen there
            subprocess.run(["sh", "-c", f'echo $$ > "{leaf}/cgroup.procs" && exec "$0" opens 7 "$1"',
                            str(workload.path), paths[kind]], check=True, capture_output=True)
        snap = poll_after(fresh, 0.5)
    finally:
        fresh.cgroups.state.root = resolver_state
        for leaf in leaves.values():
            for d in [leaf, *leaf.parents]:
                if d == top.parent:
                    break
                try:
                    d.rmdir()
                except OSError:
                    pass
    got = {r.path: (r.count, snap.container_of(r.cgroup)) for r in snap.file_opens if r.path in paths.values()}
    assert got[paths["kubernetes"]] == (7, Container("kubernetes", k8s_id, "api", pod=f"shop-{run}", namespace="prod"))
    assert got[paths["podman"]] == (7, Container("podman", podman_id, f"builder-{run}"))
    assert got[paths["service"]] == (7, Container("service", f"ebt-{run}.service", f"ebt-{run}.service"))


def test_a_thread_that_moves_cgroup_keeps_what_it_did_before_in_the_old_one(fresh, workload):
    """A thread moved to another cgroup mid-interval (as a runtime moves its
    init) is two rows: its syscalls before the move in the old cgroup, after
    it in the new one (lifecycle.c folds it on cgroup:cgroup_attach_task)."""
    top = _cgroup2_root() / f"ebpftop-test-{secrets.token_hex(3)}"
    leaf = top / "system.slice" / "ebt-move.service"
    leaf.mkdir(parents=True)
    try:
        proc = subprocess.Popen([str(workload.path), "twophase", "20000", "30000"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        pid = json.loads(proc.stdout.readline())["pid"]
        (leaf / "cgroup.procs").write_text(str(pid))
        proc.communicate("go\n", timeout=30)
        assert proc.returncode == 0
        snap = poll_after(fresh, 0.5)
    finally:
        leaf.rmdir()
        leaf.parent.rmdir()
        top.rmdir()
    rows = {}
    for r in snap.syscalls:
        if r.comm == workload.comm:
            c = snap.container_of(r.cgroup)
            rows[c.name if c else "host"] = r.count
    assert 20_000 <= rows["host"] < 20_500
    assert 30_000 <= rows["ebt-move.service"] < 30_050


# What the README's `docker run` line gives ebpftop: the host's pid and cgroup
# namespaces, /sys (tracefs, BTF, the cgroup mount), the kernel headers BCC
# compiles against, Docker's container files (names), and the capabilities
# BPF needs.  Not --privileged: this VM's bounding set lacks CAP_SYS_RESOURCE,
# which --privileged asks for; these are all ebpftop uses.
DOCKER_RUN_FLAGS = [
    "--pid=host", "--cgroupns=host",
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "SYS_PTRACE", "--cap-add", "DAC_READ_SEARCH",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "-v", "/sys:/sys:ro", "-v", "/lib/modules:/lib/modules:ro", "-v", "/usr/src:/usr/src:ro",
    "-v", "/var/lib/docker/containers:/var/lib/docker/containers:ro",
]


@pytest.fixture(scope="session")
def ebpftop_image(docker_daemon):
    """An image of a Debian userspace with BCC (the compatibility matrix's
    trixie, make userspaces), ebpftop's source mounted at run time."""
    from tests.kernel.test_compat import USERSPACE_CACHE

    tree = USERSPACE_CACHE / "trixie"
    if not (tree / ".ebpftop-userspace-ready").exists():
        _need("the trixie userspace", f"not built at {tree} (make userspaces)")
    tag = "ebpftop-test-userspace-trixie:latest"
    tar = subprocess.Popen(["tar", "-C", str(tree), "--exclude=./proc", "--exclude=./sys", "--exclude=./dev", "-c", "."],
                           stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", "-", tag], stdin=tar.stdout, check=True, capture_output=True, timeout=600)
    assert tar.wait() == 0
    yield tag
    docker("rmi", "-f", tag, check=False)


def test_ebpftop_in_a_docker_container_sees_and_names_the_hosts_containers(image, ebpftop_image):
    from tests.kernel.test_lifecycle import prog_ids, wait_detached

    tag, comm = image
    before = prog_ids()
    run = secrets.token_hex(3)
    me, other = f"ebt-self-{run}", f"ebt-seen-{run}"
    path = f"/ebt-seen-{run}"
    repo = Path(__file__).resolve().parents[2]
    ebpftop = subprocess.Popen(
        ["docker", "run", "--rm", "--name", me, *DOCKER_RUN_FLAGS, "-v", f"{repo}:/opt/ebpftop:ro",
         "-e", "PYTHONPATH=/opt/ebpftop", "-e", "PYTHONDONTWRITEBYTECODE=1", ebpftop_image,
         "/opt/ebpftop-venv/bin/python", "-m", "ebpftop", "--json", "--interval", "2", "--count", "4",
         "--container", other],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)  # compiled and attached in the container by then (the first interval may be empty)
        docker("run", "--rm", "--name", other, tag, f"/{comm}", "work", "13", path, "1000")
        out, err = ebpftop.communicate(timeout=60)
    finally:
        docker("rm", "-f", me, check=False)
    assert ebpftop.returncode == 0, err
    snaps = [json.loads(line) for line in out.splitlines()]
    assert all(s == "ok" for s in snaps[-1]["status"].values()), snaps[-1]["status"]
    rows = [r for s in snaps for r in s["file_opens"] if r["path"] == path]
    assert sum(r["count"] for r in rows) == 13
    assert {r["container"]["name"] for r in rows} == {other}
    # --container kept only that container's rows
    assert {r["container"]["name"] for s in snaps for r in s["syscalls"]} == {other}
    assert wait_detached(prog_ids() - before) == set()  # nothing of the contained ebpftop left attached

"""cgroup paths and the runtimes' files -> what a row's container is."""

from __future__ import annotations

import json
import os

import pytest

from ebpftop import containers, filters, snapshots
from ebpftop.model import Container
from tests.unit.snapshots import DB, HOST_CGROUP, POD, WEB, container_snapshot

D = "d" * 64
K = "e" * 64


@pytest.mark.parametrize(("path", "kind", "cid"), [
    (f"/docker/{D}", "docker", D),
    (f"/system.slice/docker-{D}.scope", "docker", D),
    (f"/docker/{D}/init.scope", "docker", D),  # a cgroup of the container's own, below its own
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_1111_2222_3333_444455556666.slice/"
     f"cri-containerd-{K}.scope", "kubernetes", K),
    (f"/kubepods/besteffort/pod0a1b2c3d-1111-2222-3333-444455556666/{K}", "kubernetes", K),
    (f"/machine.slice/libpod-{D}.scope", "podman", D),
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{D}.scope", "podman", D),
    (f"/system.slice/crio-{K}.scope", "cri-o", K),
    ("/lxc.payload.builder", "lxc", "builder"),
    ("/system.slice/nginx.service", "service", "nginx.service"),
    ("/user.slice/user-1000.slice/session-3.scope", "session", "session-3.scope"),
])
def test_cgroup_paths_name_their_kind_and_id(path, kind, cid):
    c = containers.classify(path)
    assert (c.kind, c.id) == (kind, cid)


@pytest.mark.parametrize("path", ["/", "", "/init.scope", "/system.slice", "/ebpftop-tests/x",
                                  "/user.slice/user-1000.slice/user@1000.service"])
def test_the_host_is_none(path):
    assert containers.classify(path) is None


def _write(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)


def test_names_come_from_the_runtimes_files(tmp_path):
    root = str(tmp_path)
    _write(root, f"var/lib/docker/containers/{D}/config.v2.json", {"Name": "/web", "Config": {"Labels": {}}})
    _write(root, f"run/containerd/io.containerd.runtime.v2.task/k8s.io/{K}/config.json", {"annotations": {
        "io.kubernetes.cri.container-name": "api", "io.kubernetes.cri.sandbox-name": "shop-7d9f",
        "io.kubernetes.cri.sandbox-namespace": "prod"}})
    _write(root, "var/lib/containers/storage/overlay-containers/containers.json",
           [{"id": "f" * 64, "names": ["other"]}, {"id": D, "names": ["builder"]}])
    r = containers.Resolver(None, root)
    r.learn(10, f"/docker/{D}")
    r.learn(11, f"/kubepods.slice/kubepods-podx.slice/cri-containerd-{K}.scope")
    r.learn(12, f"/machine.slice/libpod-{D}.scope")
    r.learn(13, "/system.slice/cron.service")
    r.learn(14, f"/system.slice/docker-{'9' * 64}.scope")  # no files: a short id
    r.learn(15, "/")
    got = r.resolve([10, 11, 12, 13, 14, 15, 0])
    assert got[10] == Container("docker", D, "web")
    assert got[11] == Container("kubernetes", K, "api", pod="shop-7d9f", namespace="prod")
    assert got[11].label == "shop-7d9f/api"
    assert got[12].name == "builder" and got[12].kind == "podman"
    assert got[13] == Container("service", "cron.service", "cron.service")
    assert got[14].name == "9" * 12
    assert 15 not in got and 0 not in got  # the host's, and unknown


def test_cri_o_names_from_its_annotations(tmp_path):
    root = str(tmp_path)
    _write(root, f"run/containers/storage/overlay-containers/{K}/userdata/config.json", {"annotations": {
        "io.kubernetes.container.name": "worker", "io.kubernetes.pod.name": "jobs-1", "io.kubernetes.pod.namespace": "batch"}})
    r = containers.Resolver(None, root)
    r.learn(5, f"/kubepods.slice/kubepods-pod1.slice/crio-{K}.scope")
    assert r.resolve([5])[5] == Container("kubernetes", K, "worker", pod="jobs-1", namespace="batch")


def test_ids_are_found_by_walking_the_cgroup_mount_once_and_kept_after_the_cgroup_goes(tmp_path):
    # a hand-made tree stands for the cgroup v2 mount: a directory's inode number is its cgroup id
    cg = tmp_path / "cgroup"
    (cg / "docker" / D).mkdir(parents=True)
    (cg / "system.slice" / "cron.service").mkdir(parents=True)
    state = tmp_path / "state"
    _write(str(state), f"var/lib/docker/containers/{D}/config.v2.json", {"Name": "/db"})
    ids = {p: os.stat(cg / p).st_ino for p in (f"docker/{D}", "system.slice/cron.service", ".")}
    r = containers.Resolver(str(cg), str(state))
    got = r.resolve([ids[f"docker/{D}"], ids["system.slice/cron.service"], ids["."], 999_999_999])
    assert got[ids[f"docker/{D}"]].name == "db" and got[ids["system.slice/cron.service"]].kind == "service"
    assert r.walks == 1
    r.resolve([ids[f"docker/{D}"], 999_999_999])  # known, and known missing: no second walk
    assert r.walks == 1
    os.rmdir(cg / "docker" / D)  # the container exits: what it was resolved to stays
    assert r.resolve([ids[f"docker/{D}"]])[ids[f"docker/{D}"]].name == "db"


def test_the_cache_is_bounded():
    r = containers.Resolver(None, "/nonexistent", max_known=3)
    for i in range(1, 6):
        r.learn(i, f"/docker/{str(i) * 64}")
    assert sorted(r.resolve(range(1, 6))) == [3, 4, 5]


def test_filters_match_a_container_by_name_label_pod_id_or_host():
    snap = container_snapshot()

    def comms(flt):
        return sorted({r.comm for r in snapshots.filtered(snap, flt).syscalls})

    assert comms(filters.Filter(container="web")) == ["nginx", "sh"]
    assert comms(filters.Filter(container="shop-7d9f/api")) == ["python3"]
    assert comms(filters.Filter(container="shop-7d9f")) == ["python3"]
    assert comms(filters.Filter(container="bbbb")) == ["postgres"]  # an id prefix
    assert comms(filters.Filter(container="bbb")) == []  # too short to be an id
    assert comms(filters.Filter(container="host")) == ["curl", "sshd"]
    # the name filter matches a container's name as well as a process's
    assert comms(filters.Filter(comm="WE")) == ["nginx", "sh"]
    assert comms(filters.Filter(comm="nginx", container="db")) == []
    assert [r.pid for r in snapshots.filtered(snap, filters.Filter(container="web")).file_opens] == [880, 881]


def test_grouped_by_container_every_pane_sums_its_processes():
    g = snapshots.by_container(container_snapshot())
    assert [(r.comm, r.count, r.pids) for r in g.syscalls] == [
        ("db", 9000, 1), ("web", 4300, 3), ("shop-7d9f/api", 2500, 1), ("host", 200, 2)]
    assert {(r.comm, r.count) for r in g.page_faults} == {("db", 700), ("web", 60), ("host", 90)}
    assert {(r.comm, r.path, r.count) for r in g.file_opens} >= {("web", "/var/www/index.html", 42)}
    assert {p.comm: p.histogram.count for p in g.read_latency.by_process} == {"db": 70, "web": 15}
    assert {s.comm for s in g.tcp_connections} == {"web", "shop-7d9f/api"}
    # each grouped row still names its container
    assert {g.container_of(r.cgroup).name for r in g.syscalls if r.comm != "host"} == {"db", "web", "api"}


def test_json_rows_carry_cgroup_and_container_and_read_back():
    snap = container_snapshot()
    d = json.loads(json.dumps(snapshots.to_dict(snap)))
    nginx = next(r for r in d["syscalls"] if r["comm"] == "nginx")
    assert nginx["cgroup"] == WEB
    assert nginx["container"] == {"kind": "docker", "id": "a" * 64, "name": "web", "pod": "", "namespace": ""}
    assert next(r for r in d["syscalls"] if r["comm"] == "curl")["container"] is None
    assert d["read_latency"]["by_process"][0]["container"]["name"] == "db"
    back = snapshots.from_dict(d)
    assert back.containers == {WEB: snap.containers[WEB], DB: snap.containers[DB], POD: snap.containers[POD]}
    assert back.syscalls == snap.syscalls and HOST_CGROUP not in back.containers


def _docker_file(root, content: bytes | None = None):
    d = os.path.join(root, "var/lib/docker/containers", D)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "config.v2.json")
    if content is not None:
        with open(path, "wb") as f:
            f.write(content)
    return path


@pytest.mark.parametrize("content, name", [
    (b"[" * 500_000, D[:12]),  # a RecursionError traceback, twice (the ring buffer's callback, then the poll)
    (b'{"Config": [1, 2, 3]}', D[:12]),  # an AttributeError traceback
    (b'{"Name": "/web", "Config": {"Labels": [1]}}', "web"),  # what is of the right shape is used
    (b'{"Name": "/' + b"x" * (5 << 20) + b'"}', D[:12]),  # past the size cap
    (b"\xff\xfe not json", D[:12]),
], ids=["deep", "config-a-list", "labels-a-list", "too-large", "not-json"])
def test_a_corrupt_docker_file_leaves_the_container_named_by_its_id(tmp_path, content, name):
    """Issue 23, finding 5: any runtime file that is wrong makes the
    container unknown by name (its short id), never a traceback."""
    _docker_file(str(tmp_path), content)
    r = containers.Resolver(None, str(tmp_path))
    r.learn(10, f"/docker/{D}")
    assert r.resolve([10])[10] == Container("docker", D, name)


@pytest.mark.parametrize("entry", [
    {"annotations": ["io.kubernetes.pod.name"]},
    {"annotations": {"io.kubernetes.pod.name": ["x"]}},
], ids=["annotations-a-list", "a-name-a-list"])
def test_annotations_of_the_wrong_shape_name_nothing(tmp_path, entry):
    _write(str(tmp_path), f"run/containers/storage/overlay-containers/{K}/userdata/config.json", entry)
    _write(str(tmp_path), "var/lib/containers/storage/overlay-containers/containers.json",
           [{"id": K, "names": "not-a-list"}, ["not", "a", "dict"]])
    r = containers.Resolver(None, str(tmp_path))
    r.learn(10, f"/machine.slice/libpod-{K}.scope")
    assert r.resolve([10])[10].name == K[:12]


def test_a_fifo_or_a_link_in_place_of_a_runtime_file_never_blocks(tmp_path):
    """A FIFO with no writer blocked open() in the cgroup callback: the
    output froze.  Now it is not a regular file, and read in no time."""
    import threading
    import time

    path = _docker_file(str(tmp_path))
    os.mkfifo(path)
    r = containers.Resolver(None, str(tmp_path))
    t = time.monotonic()
    learning = threading.Thread(target=r.learn, args=(10, f"/docker/{D}"), daemon=True)
    learning.start()
    learning.join(timeout=5)
    assert not learning.is_alive(), "blocked opening a FIFO"
    assert r.resolve([10])[10].name == D[:12] and time.monotonic() - t < 1
    os.unlink(path)
    secret = tmp_path / "secret.json"
    secret.write_text('{"Name": "/from-a-link"}')
    os.symlink(secret, path)
    r = containers.Resolver(None, str(tmp_path))
    r.learn(11, f"/docker/{D}")
    assert r.resolve([11])[11].name == D[:12]

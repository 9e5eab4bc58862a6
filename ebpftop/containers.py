"""From a cgroup v2 id to what it is: a Docker, Kubernetes, CRI-O, Podman or
LXC container, a systemd service, a user session, or the host.

Rows carry the cgroup v2 id their task had (bpf_get_current_cgroup_id()),
which is the inode number of the cgroup's directory.  The id becomes a path
by walking the cgroup v2 mount (or, for a cgroup made while ebpftop runs,
from bpf/cgroups.c's cgroup_mkdir events, which outlive the directory), the
path a kind and an id by its naming conventions, and the id a name from the
files the runtime keeps on the host.  What a cgroup was resolved to is kept
(bounded), so a container that exits before a poll keeps its name.

No BCC and no kernel here: every function takes the roots it reads, so the
tests run it on hand-made trees.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

from ebpftop import cdefs
from ebpftop.model import Container


class CgroupEventStruct(ctypes.Structure):
    """struct cgroup_event of bpf/cgroups.c: a cgroup made, its id and path."""

    _fields_ = [("id", ctypes.c_uint64), ("path", ctypes.c_char * cdefs.PATH_LEN)]


def decode_path(raw: bytes) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


# How many cgroups' answers are kept (a host makes a few per container; a
# busy Kubernetes node some thousands).  The oldest go first.
MAX_KNOWN = 16384
# A runtime's file about one container is a few KiB (Podman's list of every
# container, some hundreds): larger is not one to read.
MAX_STATE_FILE_BYTES = 4 << 20

_HEX64 = r"[0-9a-f]{64}"
# The leaf names runtimes give a container's cgroup, under systemd's cgroup
# driver (NAME-ID.scope) and under cgroupfs (a bare id under the runtime's directory).
_SCOPES = (
    (re.compile(rf"^docker-({_HEX64})\.scope$"), "docker"),
    (re.compile(rf"^cri-containerd-({_HEX64})\.scope$"), "containerd"),
    (re.compile(rf"^crio-({_HEX64})\.scope$"), "cri-o"),
    (re.compile(rf"^libpod-({_HEX64})\.scope$"), "podman"),
)
_BARE_ID = re.compile(rf"^({_HEX64})$")
_BARE_PARENTS = {"docker": "docker", "libpod_parent": "podman"}
_POD = re.compile(r"^(?:kubepods-(?:besteffort-|burstable-)?)?pod([0-9a-f_-]{36})(?:\.slice)?$")
_LXC = re.compile(r"^lxc\.payload\.(.+)$")
_SESSION = re.compile(r"^session-(\w+)\.scope$")
_USER_SLICE = re.compile(r"^user-(\d+)\.slice$")


def classify(path: str) -> Container | None:
    """What the cgroup at this path (relative to the cgroup v2 root) is, by
    its name alone: kind and id, with a short id for its name.  None: the host."""
    parts = [p for p in path.split("/") if p]
    in_kubepods = any(p == "kubepods" or p.startswith("kubepods") for p in parts)
    pod_uid = next((m.group(1).replace("_", "-") for p in parts if (m := _POD.match(p))), "")
    # the deepest part that names a container: a container may make cgroups of its own below
    for i in range(len(parts) - 1, -1, -1):
        part = parts[i]
        for pattern, kind in _SCOPES:
            m = pattern.match(part)
            if m:
                return _container(kind, m.group(1), in_kubepods, pod_uid)
        m = _BARE_ID.match(part)
        if m and i > 0 and (parts[i - 1] in _BARE_PARENTS or in_kubepods):
            kind = _BARE_PARENTS.get(parts[i - 1], "containerd")
            return _container(kind, m.group(1), in_kubepods, pod_uid)
        m = _LXC.match(part)
        if m or (i > 0 and parts[i - 1] == "lxc"):
            name = m.group(1) if m else part
            return Container("lxc", name, name)
    for i in range(len(parts) - 1, -1, -1):
        part = parts[i]
        if part.endswith(".service") and not part.startswith("user@"):
            return Container("service", part, part)
        m = _SESSION.match(part)
        if m:
            uid = next((u.group(1) for p in parts if (u := _USER_SLICE.match(p))), "")
            name = f"session-{m.group(1)}" + (f" (uid {uid})" if uid else "")
            return Container("session", part, name)
    return None


def _container(kind: str, cid: str, in_kubepods: bool, pod_uid: str) -> Container:
    # a pod's container has no name until its bundle is read; its pod's uid is a start
    return Container("kubernetes" if in_kubepods else kind, cid, cid[:12], pod=pod_uid[:8] if in_kubepods else "")


def _dict(value) -> dict:
    """value if it is a JSON object, else an empty one: a runtime file of the
    wrong shape names nothing, and raises nothing."""
    return value if isinstance(value, dict) else {}


def read_state_file(path: str) -> dict | list | None:
    """A runtime's JSON file, or None.  These files are written by whoever
    controls the runtime's directories (or a container's own metadata), and
    read here as root in the middle of collecting: only a regular file is
    read (a FIFO would block the read forever), never through a symbolic
    link, at most MAX_STATE_FILE_BYTES, and a parse that nests too deep (500,000
    '[') is None like any other bad file."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_STATE_FILE_BYTES:
            return None
        data = os.read(fd, MAX_STATE_FILE_BYTES + 1)
        if len(data) > MAX_STATE_FILE_BYTES:
            return None
        return json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(fd)


class RuntimeState:
    """Names from the files container runtimes keep on the host, under a root
    ("/" normally; the tests' fixture trees).  Any file missing, unreadable
    or of the wrong shape leaves the container named by its id."""

    def __init__(self, root: str = "/"):
        self.root = root

    def _json(self, *parts: str) -> dict | list | None:
        return read_state_file(os.path.join(self.root, *parts))

    def name(self, c: Container, runtime: str) -> Container:
        """c with the runtime's names, where the runtime keeps them; else c."""
        if runtime == "docker":
            return self._docker(c)
        if runtime == "containerd":
            named = self._containerd(c)
            # a bare id under kubepods (cgroupfs driver) may be CRI-O's as well
            return named if named != c or c.kind != "kubernetes" else self._containers_storage(c, "cri-o")
        if runtime in ("cri-o", "podman"):
            return self._containers_storage(c, runtime)
        return c

    def _docker(self, c: Container) -> Container:
        cfg = self._json("var/lib/docker/containers", c.id, "config.v2.json")
        if not isinstance(cfg, dict):
            return c
        labels = _dict(_dict(cfg.get("Config")).get("Labels"))
        name = str(cfg.get("Name") or "").lstrip("/") or c.name
        if "io.kubernetes.pod.name" in labels:  # dockershim: Kubernetes on Docker
            return c._replace(name=str(labels.get("io.kubernetes.container.name", name)),
                              pod=str(labels["io.kubernetes.pod.name"]),
                              namespace=str(labels.get("io.kubernetes.pod.namespace", "")))
        return c._replace(name=name)

    def _containerd(self, c: Container) -> Container:
        # the OCI bundle of each task, per containerd namespace (k8s.io for the CRI)
        base = "run/containerd/io.containerd.runtime.v2.task"
        try:
            namespaces = sorted(os.listdir(os.path.join(self.root, base)), key=lambda n: n != "k8s.io")
        except OSError:
            return c
        for ns in namespaces:
            cfg = self._json(base, ns, c.id, "config.json")
            if isinstance(cfg, dict):
                return _from_annotations(c, _dict(cfg.get("annotations")),
                                         "io.kubernetes.cri.container-name", "io.kubernetes.cri.sandbox-name",
                                         "io.kubernetes.cri.sandbox-namespace")
        return c

    def _containers_storage(self, c: Container, runtime: str) -> Container:
        # CRI-O and Podman share containers/storage: a container's config.json
        # (with the CRI's annotations) and one list of every container's names
        for store in ("run/containers/storage", "var/lib/containers/storage"):
            cfg = self._json(store, "overlay-containers", c.id, "userdata", "config.json")
            annotations = _dict(cfg.get("annotations")) if isinstance(cfg, dict) else {}
            if "io.kubernetes.pod.name" in annotations:
                return _from_annotations(c, annotations, "io.kubernetes.container.name",
                                         "io.kubernetes.pod.name", "io.kubernetes.pod.namespace")
        listing = self._json("var/lib/containers/storage/overlay-containers", "containers.json")
        if isinstance(listing, list):
            for entry in listing:
                names = entry.get("names") if isinstance(entry, dict) and entry.get("id") == c.id else None
                if isinstance(names, list) and names:
                    return c._replace(name=str(names[0]))
        return c


def _from_annotations(c: Container, ann: dict, container_key: str, pod_key: str, ns_key: str) -> Container:
    if pod_key not in ann:
        return c
    return c._replace(name=str(ann.get(container_key) or c.name), pod=str(ann[pod_key]),
                      namespace=str(ann.get(ns_key, "")))


def runtime_of(path: str) -> str:
    """Which runtime's files name the container at this path."""
    leaf = next((p for p in reversed(path.split("/")) if p), "")
    for pattern, kind in _SCOPES:
        if pattern.match(leaf):
            return kind
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[-2] in _BARE_PARENTS:
        return _BARE_PARENTS[parts[-2]]
    return "containerd" if any(p.startswith("kubepods") for p in parts) else ""


def walk(cgroup_root: str) -> dict[int, str]:
    """Every cgroup under the cgroup v2 mount: inode number (= cgroup id) -> path."""
    out: dict[int, str] = {}
    stack = [("", cgroup_root)]
    try:
        out[os.stat(cgroup_root).st_ino] = "/"
    except OSError:
        return out
    while stack:
        rel, path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue  # removed meanwhile
        for e in entries:
            try:
                if not e.is_dir(follow_symlinks=False):
                    continue
                ino = e.inode()
            except OSError:
                continue
            sub = f"{rel}/{e.name}"
            out[ino] = sub
            stack.append((sub, e.path))
    return out


class Resolver:
    """cgroup id -> Container or None (the host), cached and bounded.  One
    walk of the cgroup mount at most per resolve() call, and only for ids not
    seen before.  learn() may run in another thread than resolve()."""

    def __init__(self, cgroup_root: str | None, state_root: str = "/", max_known: int = MAX_KNOWN):
        self.cgroup_root = cgroup_root
        self.state = RuntimeState(state_root)
        self.max_known = max_known
        self._known: OrderedDict[int, Container | None] = OrderedDict()
        self._paths: dict[int, str] = {}  # from the last walk
        self._missing: set[int] = set()  # not found by the walk that looked for them
        self.walks = 0
        self._lock = threading.Lock()

    def learn(self, cgroup_id: int, path: str) -> None:
        """A cgroup made while we run (bpf/cgroups.c): resolved now, while the
        runtime's files for it exist."""
        c = self._resolve_path(path)
        with self._lock:
            self._remember(cgroup_id, c)

    def resolve(self, ids: Iterable[int]) -> dict[int, Container]:
        """The containers of these ids (the host's and unknown ones left out)."""
        with self._lock:
            return self._resolve({i for i in ids if i})

    def _resolve(self, wanted: set[int]) -> dict[int, Container]:
        unknown = [i for i in wanted if i not in self._known and i not in self._missing]
        if unknown and self.cgroup_root:
            self._paths = walk(self.cgroup_root)
            self.walks += 1
            for i in unknown:
                if i in self._paths:
                    self._remember(i, self._resolve_path(self._paths[i]))
                else:
                    self._missing.add(i)  # gone before we looked, and made before we started
            if len(self._missing) > self.max_known:
                self._missing.clear()
        out = {}
        for i in wanted:
            c = self._known.get(i)
            if c is not None:
                self._known.move_to_end(i)
                out[i] = c
        return out

    def _resolve_path(self, path: str) -> Container | None:
        c = classify(path)
        if c is None or c.kind in ("service", "session", "lxc"):
            return c
        return self.state.name(c, runtime_of(path))

    def _remember(self, cgroup_id: int, c: Container | None) -> None:
        self._known[cgroup_id] = c
        self._known.move_to_end(cgroup_id)
        self._missing.discard(cgroup_id)
        while len(self._known) > self.max_known:
            self._known.popitem(last=False)

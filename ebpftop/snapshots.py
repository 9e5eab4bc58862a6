"""What is done to a whole snapshot, part by part, as the probe sets declare
their parts (ebpftop/sets/): making one, its JSON form (what --json prints
and --record writes), the one filter, the grouping by container, and its
size.  No part is named here."""

from __future__ import annotations

from collections.abc import Mapping

from ebpftop import aggregate, filters
from ebpftop.model import Budget, Container, ProbeCost, Snapshot, iso_time, parse_iso_time
from ebpftop.sets import PARTS


def new(time: float, interval_s: float, **fields) -> Snapshot:
    """A snapshot with every declared part: those given, the others empty.
    Fields that are not parts (status, lost, notices, ...) go through."""
    parts = {name: part.empty() for name, part in PARTS.items()}
    own = {}
    for k, v in fields.items():
        if k in PARTS:
            parts[k] = v
        elif k in Snapshot.OWN:
            own[k] = v
        else:
            raise TypeError(f"no probe set declares a part {k!r}")
    return Snapshot(time, interval_s, parts, **own)


def to_dict(snap: Snapshot) -> dict:
    """The JSON form.  Every row gains "container": {kind, id, name, pod,
    namespace}, or None on the host."""
    out: dict = {"time": iso_time(snap.time), "interval_s": snap.interval_s}
    for name, part in PARTS.items():
        out[name] = part.to_json(getattr(snap, name), snap.containers)
    out.update({
        "probes": [p.to_dict(snap.interval_s) for p in snap.probes],
        "probe_stats": snap.probe_stats,
        "status": dict(snap.status),
        "lost": dict(snap.lost),
        "skipped": dict(snap.skipped),
        "capabilities": snap.capabilities,
        "notices": list(snap.notices),
        "budget": None if snap.budget is None else snap.budget.to_dict(),
    })
    return out


def from_dict(d: dict) -> Snapshot:
    """Back from the JSON form; a part a recording lacks (made before its
    probe set existed) is empty."""
    parts = {name: part.from_json(d[name]) if name in d else part.empty() for name, part in PARTS.items()}
    return Snapshot(
        parse_iso_time(d["time"]),
        float(d["interval_s"]),
        parts,
        probes=tuple(ProbeCost.from_dict(x) for x in d.get("probes", [])),
        probe_stats=str(d.get("probe_stats", "off")),
        status={str(k): str(v) for k, v in d["status"].items()},
        lost={str(k): int(v) for k, v in d["lost"].items()},
        skipped={str(k): int(v) for k, v in (d.get("skipped") or {}).items()},  # absent before 2026-12
        capabilities=dict(d.get("capabilities") or {}),  # absent in older recordings
        containers=_containers_in(d),
        notices=tuple(str(n) for n in d.get("notices", [])),
        budget=Budget.from_dict(d["budget"]) if d.get("budget") else None,
    )


def _containers_in(d: dict) -> dict:
    """The rows' containers, back from their JSON form (None or absent: the host)."""
    out = {}
    for name, part in PARTS.items():
        for row in part.json_rows(d.get(name)):
            c = row.get("container") if isinstance(row, dict) else None
            if c is not None:
                if not isinstance(c, dict):
                    raise ValueError(f"a row's container is not an object: {c!r}")
                out[int(row.get("cgroup", 0))] = Container.from_dict(c)
    return out


def filtered(snap: Snapshot, f: filters.Filter) -> Snapshot:
    """The snapshot with only the rows f matches, each part by its rule
    (alerts are never filtered: an open of a watched file is shown whoever
    made it)."""
    if not f.active:
        return snap
    cs = snap.containers
    return snap.replace(**{name: part.filtered(getattr(snap, name), f, cs) for name, part in PARTS.items()})


def rows_filtered(part: str, rows, f: filters.Filter, containers: Mapping[int, Container]):
    """A part's value (rows kept over time by the TUI's history, say) through its rule."""
    return PARTS[part].filtered(rows, f, containers)


def by_container(snap: Snapshot) -> Snapshot:
    """Every part's rows summed per container instead of per process: the
    process name becomes the container's label and the pid 0; each grouped
    row keeps the cgroup of one of its rows, so it still names its container.
    Logs of events (process events, alerts) are left as they are."""
    cs = snap.containers

    def label(row) -> str:
        return aggregate.container_label(row.cgroup, cs)

    return snap.replace(**{name: part.grouped(getattr(snap, name), label) for name, part in PARTS.items()})


def rows_by_container(part: str, rows, containers: Mapping[int, Container]) -> tuple:
    """Rows of a part kept over time, grouped as by_container() groups a snapshot's."""
    return PARTS[part].grouped(rows, lambda r: aggregate.container_label(r.cgroup, containers))


def size(snap: Snapshot) -> int:
    """How many rows a snapshot holds (what its memory grows with)."""
    return sum(part.size(getattr(snap, name)) for name, part in PARTS.items())


def processes(parts: Mapping[str, object]) -> dict[int, tuple[str, int]]:
    """pid -> (comm, cgroup) of every process a row of the parts names (the
    last row's, where rows differ: a process renamed in the interval)."""
    out: dict[int, tuple[str, int]] = {}
    for name, value in parts.items():
        for pid, comm, cgroup in PARTS[name].processes(value):
            out[pid] = (comm, cgroup)
    return out


def cgroups(parts: Mapping[str, object]) -> set[int]:
    """The cgroup ids of every row in a snapshot's parts."""
    ids: set[int] = set()
    for name, value in parts.items():
        ids.update(PARTS[name].cgroups(value))
    return ids

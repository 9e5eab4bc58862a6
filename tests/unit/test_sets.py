"""What every part of every probe set must do, checked generically over
the declarations (sets.PARTS): a new set's parts are tested here the moment
they are declared, with the example rows of tests/unit/snapshots.py."""

from __future__ import annotations

import json

import pytest

from ebpftop import aggregate, sets, snapshots
from ebpftop.filters import Filter
from ebpftop.sets.base import Count, Histograms, HostRows, Rows
from tests.unit.snapshots import container_snapshot, every_part_snapshot

PARTS = list(sets.PARTS.items())


def rows_of(part, value) -> list:
    return list(value.by_process) if isinstance(part, Histograms) else list(value)


@pytest.mark.parametrize("name,part", PARTS, ids=[n for n, _ in PARTS])
def test_the_example_has_rows_of_every_part(name, part):
    value = getattr(every_part_snapshot(), name)
    assert value != part.empty(), f"tests/unit/snapshots.py: every_part_snapshot() has no {name}"


@pytest.mark.parametrize("name,part", PARTS, ids=[n for n, _ in PARTS])
def test_a_part_round_trips_through_json(name, part):
    snap = every_part_snapshot()
    value = getattr(snap, name)
    back = part.from_json(json.loads(json.dumps(part.to_json(value, snap.containers))))
    assert back == value
    # and through a whole snapshot, with the other parts
    assert getattr(snapshots.from_dict(json.loads(json.dumps(snapshots.to_dict(snap)))), name) == value


@pytest.mark.parametrize("name,part", [(n, p) for n, p in PARTS if not isinstance(p, Count)],
                         ids=[n for n, p in PARTS if not isinstance(p, Count)])
def test_the_filter_keeps_a_rows_process_and_drops_the_others(name, part):
    snap = every_part_snapshot()
    first = rows_of(part, getattr(snap, name))[0]
    nobody = snapshots.filtered(snap, Filter(comm="no-such-process"))
    if (isinstance(part, Rows) and part.filter is None) or isinstance(part, HostRows):  # never filtered (alerts, CPUs)
        assert getattr(nobody, name) == getattr(snap, name)
        return
    assert rows_of(part, getattr(nobody, name)) == []
    if first.comm:
        kept = rows_of(part, getattr(snapshots.filtered(snap, Filter(exact_comm=first.comm)), name))
        assert kept and all(r.comm == first.comm for r in kept)


@pytest.mark.parametrize("name,part", [(n, p) for n, p in PARTS if not isinstance(p, Count)],
                         ids=[n for n, p in PARTS if not isinstance(p, Count)])
def test_grouped_by_container_rows_are_named_by_their_container(name, part):
    snap = container_snapshot().replace(**{name: getattr(every_part_snapshot(), name)})
    grouped = rows_of(part, getattr(snapshots.by_container(snap), name))
    assert len(grouped) <= len(rows_of(part, getattr(snap, name)))
    if (isinstance(part, Rows) and part.group is None) or isinstance(part, HostRows):  # events, the host: as they are
        assert grouped == rows_of(part, getattr(snap, name))
        return
    labels = {aggregate.container_label(r.cgroup, snap.containers) for r in rows_of(part, getattr(snap, name))}
    assert grouped and {r.comm for r in grouped} <= labels and all(getattr(r, "pid", 0) == 0 for r in grouped)


def test_every_part_counts_its_rows_and_cgroups():
    snap = every_part_snapshot()
    assert snapshots.size(snap) >= sum(len(rows_of(p, getattr(snap, n))) for n, p in PARTS if not isinstance(p, Count))
    assert snapshots.cgroups(snap.parts) >= {0}

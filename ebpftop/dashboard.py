"""The Grafana dashboard of a fleet of ebpftop exporters, generated from
the metric families the probe sets declare (and the exporter's own), so
that it cannot drift from what is exported.  `python -m ebpftop.dashboard`
prints it; deploy/grafana-dashboard.json is its output, checked by
tests/unit/test_fleet.py.

Variables: `instance` (every exporter Prometheus scrapes) and `container`
(the label of the per-container families; "host" is what runs in none).
A panel per family: a counter's rate, by its labels, the ten largest; a
histogram's p50, p90 and p99 from its buckets."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from ebpftop import sets


@dataclass(frozen=True)
class Family:
    name: str  # as exported (a counter without its _total)
    doc: str
    labels: tuple[str, ...]
    kind: str  # "counter", "histogram" or "gauge"
    group: str  # the dashboard row it is drawn in


# What the exporter itself exports besides the sets' families (exporter.py).
OWN_FAMILIES = (
    Family("ebpftop_lost_events", "Events the probes could not record (a map full, a ring buffer overrun).",
           ("pane",), "counter", "ebpftop itself"),
    Family("ebpftop_skipped_runs", "Probe runs the kernel skipped (another BPF program was running on that CPU).",
           ("pane",), "counter", "ebpftop itself"),
    Family("ebpftop_probe_up", "1 when the pane's probe runs.", ("pane",), "gauge", "ebpftop itself"),
    Family("ebpftop_label_values_evicted", "Label values dropped to bound cardinality.", ("metric",), "counter",
           "ebpftop itself"),
    Family("ebpftop_polls", "Polls of the kernel maps so far.", (), "gauge", "ebpftop itself"),
    Family("ebpftop_degraded", "1 while ebpftop sheds load to keep its --max-cpu budget.", (), "gauge",
           "ebpftop itself"),
    Family("ebpftop_load_cpu_percent", "What ebpftop cost, in percent of one CPU (with --max-cpu).", (), "gauge",
           "ebpftop itself"),
    Family("ebpftop_max_cpu_percent", "The --max-cpu budget, in percent of one CPU.", (), "gauge", "ebpftop itself"),
    Family("ebpftop_latency_sampled_1_in", "The latency probes time 1 call in N (with --max-cpu).", (), "gauge",
           "ebpftop itself"),
    Family("ebpftop_probe_set_detached", "1 while a probe set is detached to keep the --max-cpu budget.",
           ("pane",), "gauge", "ebpftop itself"),
)
GAUGES_THAT_COUNT = {"ebpftop_polls"}  # exported as a gauge, drawn as a rate


def families() -> list[Family]:
    out = []
    for p in sets.PROBE_SETS:
        out += [Family(c.name, c.doc, tuple(c.labels), "counter", p.name) for c in p.counters]
        out += [Family(h.name, h.doc, tuple(h.labels), "histogram", p.name) for h in p.histograms]
    return out + list(OWN_FAMILIES)


def _selector(f: Family) -> str:
    matchers = ['instance=~"$instance"']
    if "container" in f.labels:
        matchers.append('container=~"$container"')
    return "{" + ", ".join(matchers) + "}"


def queries(f: Family) -> list[tuple[str, str]]:
    """(PromQL, legend) of a family's panel, with the variables unsubstituted."""
    sel = _selector(f)
    by = ", ".join(("instance",) + f.labels)
    if f.kind == "histogram":
        inner = f"sum by (instance, le) (rate({f.name}_bucket{sel}[$__rate_interval]))"
        return [(f"histogram_quantile({q}, {inner})", f"p{round(q * 100)} {{{{instance}}}}") for q in (0.5, 0.9, 0.99)]
    legend = " ".join("{{" + label + "}}" for label in ("instance",) + f.labels)
    if f.kind == "gauge" and f.name not in GAUGES_THAT_COUNT:
        return [(f"max by ({by}) ({f.name}{sel})", legend)]
    series = f"{f.name}{sel}" if f.name in GAUGES_THAT_COUNT else f"{f.name}_total{sel}"
    rate = f"sum by ({by}) (rate({series}[$__rate_interval]))"
    return [(f"topk(10, {rate})" if f.labels else rate, legend)]


UNITS = {"seconds": "s", "bytes": "bytes", "percent": "percent"}


def _unit(f: Family) -> str:
    if f.kind == "histogram":
        return "s"
    for word, unit in UNITS.items():
        if word in f.name:
            return unit + ("" if f.kind == "gauge" or unit == "percent" else "/s" if unit == "s" else "ps")
    return "short" if f.kind == "gauge" else "ops"


def dashboard() -> dict:
    panels: list[dict] = []
    y = 0
    groups: dict[str, list[Family]] = {}
    for f in families():
        groups.setdefault(f.group, []).append(f)
    pid = 1
    for group, fams in groups.items():
        panels.append({"type": "row", "title": group, "id": pid, "collapsed": False,
                       "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
        pid += 1
        y += 1
        for i, f in enumerate(fams):
            panels.append({
                "type": "timeseries", "id": pid, "title": f.name.removeprefix("ebpftop_"), "description": f.doc,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"x": 12 * (i % 2), "y": y + 8 * (i // 2), "w": 12, "h": 8},
                "fieldConfig": {"defaults": {"unit": _unit(f)}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [{"expr": expr, "legendFormat": legend, "refId": chr(ord("A") + k),
                             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                            for k, (expr, legend) in enumerate(queries(f))],
            })
            pid += 1
        y += 8 * ((len(fams) + 1) // 2)
    variables = [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        {"name": "instance", "type": "query", "label": "instance", "multi": True, "includeAll": True,
         "allValue": ".+", "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(ebpftop_polls, instance)", "refId": "instance"},
         "definition": "label_values(ebpftop_polls, instance)", "refresh": 2},
        {"name": "container", "type": "query", "label": "container", "multi": True, "includeAll": True,
         "allValue": ".*", "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": 'label_values(ebpftop_container_syscalls_total{instance=~"$instance"}, container)',
                   "refId": "container"},
         "definition": 'label_values(ebpftop_container_syscalls_total{instance=~"$instance"}, container)',
         "refresh": 2},
    ]
    return {
        "title": "ebpftop", "uid": "ebpftop-fleet", "schemaVersion": 39, "version": 1, "editable": True,
        "tags": ["ebpftop", "ebpf"], "time": {"from": "now-1h", "to": "now"}, "refresh": "30s",
        "description": "Generated by python -m ebpftop.dashboard from the metric families ebpftop exports.",
        "templating": {"list": variables}, "panels": panels,
    }


def main() -> int:
    json.dump(dashboard(), sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

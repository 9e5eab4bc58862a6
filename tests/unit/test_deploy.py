"""The service files in deploy/ and the Dockerfile, checked without a kernel:
the systemd unit by systemd's own verifier, the DaemonSet against
Kubernetes' schemas and ebpftop's own argument parser, and the names they
share (image, capabilities, install path) against each other and
docs/deploy.md.  tests/kernel/test_deploy.py runs them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

from ebpftop import cli

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "ebpftop.service"
MANIFEST = REPO / "deploy" / "kubernetes" / "ebpftop.yaml"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
# the schemas the manifest is held to: a release still in wide use
KUBERNETES_VERSION = "1.31.0"


def _need(what: str, why: str):
    reason = f"deploy tests need {what}: {why}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run every test)")
    pytest.skip(reason)


def _service(text: str) -> dict[str, str]:
    """The [Service] section's keys (the last value of each)."""
    section, out = None, {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _analyze(*args: str) -> subprocess.CompletedProcess:
    if not shutil.which("systemd-analyze"):
        _need("systemd-analyze", "Debian: apt-get install systemd")
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


def unit_problems(path: Path) -> str:
    """What `systemd-analyze verify` says of a unit file: "" when it is sound.
    A value it cannot parse is only a warning ("…, ignoring") with exit
    status 0, so its output counts as much as its status."""
    r = _analyze("verify", "--man=no", "--generators=no", "--recursive-errors=no", str(path))
    return (r.stdout + r.stderr).strip() or ("" if r.returncode == 0 else f"exit status {r.returncode}")


def _unit_on_this_checkout(tmp_path: Path, text: str) -> Path:
    """The unit with ExecStart on this checkout's venv (verify needs the binary
    to exist; /opt/ebpftop is where a machine has it)."""
    here = Path(sys.executable).parent / "ebpftop"
    path = tmp_path / "ebpftop.service"
    path.write_text(text.replace("/opt/ebpftop/.venv/bin/ebpftop", str(here)))
    return path


def test_systemd_analyze_verify_passes_the_unit_and_fails_broken_ones(tmp_path):
    text = UNIT.read_text()
    assert unit_problems(_unit_on_this_checkout(tmp_path, text)) == ""
    broken = {
        "a value systemd cannot parse": text.replace("ProtectSystem=strict", "ProtectSystem=strictly"),
        "a misspelt directive": text.replace("ProtectHome=", "ProtectHomes="),
        "a binary that is not there": text.replace("/opt/ebpftop/.venv/bin/ebpftop", "/opt/ebpftop/.venv/bin/ebptop"),
    }
    for why, variant in broken.items():
        assert variant != text, why
        (tmp_path / why).mkdir()
        assert unit_problems(_unit_on_this_checkout(tmp_path / why, variant)) != "", why


def test_the_unit_s_capabilities_are_ones_systemd_knows():
    """verify accepts an unknown capability name in silence (CAP_BPFF passes):
    check each against systemd's own list."""
    known = {line.split()[0].upper() for line in _analyze("capability").stdout.splitlines()[1:] if line.strip()}
    assert {"CAP_BPF", "CAP_SYS_ADMIN"} <= known and "CAP_BPFF" not in known
    caps = _service(UNIT.read_text())["CapabilityBoundingSet"].split()
    assert caps and set(caps) <= known


def _manifest() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def _validate(docs: list[dict]) -> None:
    import kubernetes_validate  # the test extras (make setup): missing is a failure, not a skip

    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_manifest_is_valid_kubernetes_and_a_misspelt_one_is_not():
    import kubernetes_validate

    docs = _manifest()
    assert [d["kind"] for d in docs] == ["Namespace", "DaemonSet", "NetworkPolicy"]
    _validate(docs)
    pod = docs[1]["spec"]["template"]["spec"]
    for field, value in [("hostPid", True), ("hostPIDs", True)]:
        spec = dict(pod, **{field: value})
        bad = dict(docs[1], spec=dict(docs[1]["spec"], template=dict(docs[1]["spec"]["template"], spec=spec)))
        with pytest.raises(kubernetes_validate.ValidationError):
            _validate([bad])
    container = dict(pod["containers"][0], ports=[{"containerPort": "9435"}])  # a string where a port number goes
    bad = dict(docs[1], spec=dict(docs[1]["spec"], template=dict(docs[1]["spec"]["template"],
                                                               spec=dict(pod, containers=[container]))))
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate([bad])


def _daemonset() -> dict:
    return next(d for d in _manifest() if d["kind"] == "DaemonSet")


def test_the_daemonset_s_arguments_are_ebpftop_s_and_its_port_is_the_one_scraped():
    template = _daemonset()["spec"]["template"]
    container = template["spec"]["containers"][0]
    options = cli.build_parser().parse_args(container["args"])
    assert options.interval == 15
    port = int(container["args"][container["args"].index("--prometheus") + 1].rsplit(":", 1)[1])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert container["livenessProbe"]["httpGet"]["path"] == "/metrics"
    with pytest.raises(SystemExit):  # the parser is the real one: it refuses what ebpftop would
        cli.build_parser().parse_args([*container["args"], "--interval", "-1"])


def test_the_names_the_deploy_files_share_agree():
    """The image the DaemonSet pulls is what docs/deploy.md builds, at the
    project's version; the capabilities are the unit's; the Dockerfile
    installs where the unit runs from."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    container = _daemonset()["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ebpftop:{version}"
    doc = DEPLOY_DOC.read_text()
    assert f"docker build -t {container['image']} ." in doc
    assert f"\n  {container['image']}\n```" in doc  # the documented docker run's image

    unit = _service(UNIT.read_text())
    caps = container["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    assert ["CAP_" + c for c in caps["add"]] == unit["CapabilityBoundingSet"].split()
    assert not container["securityContext"]["privileged"]

    dockerfile = (REPO / "Dockerfile").read_text()
    entrypoint = re.search(r"^ENTRYPOINT \[\"([^\"]+)\"\]$", dockerfile, re.M).group(1)
    assert entrypoint == shlex.split(unit["ExecStart"])[0] == "/opt/ebpftop/.venv/bin/ebpftop"
    base = re.search(r"^ARG BASE=(\S+)$", dockerfile, re.M).group(1)
    assert f"`{base}`" in doc


# The runtimes' API sockets: whoever can connect() to one runs containers as
# root on the node, and a read-only mount does not stop a connect().
RUNTIME_SOCKETS = ("/run/containerd/containerd.sock", "/var/run/docker.sock", "/run/docker.sock",
                   "/run/crio/crio.sock", "/run/podman/podman.sock", "/run/containerd/s/x")


def _exposes_a_socket(host_path: str) -> list[str]:
    host_path = host_path.rstrip("/") or "/"
    return [s for s in RUNTIME_SOCKETS if s == host_path or s.startswith(host_path.rstrip("/") + "/")]


def test_no_mount_hands_the_pod_or_the_container_a_runtimes_socket():
    volumes = _daemonset()["spec"]["template"]["spec"]["volumes"]
    host_paths = [v["hostPath"]["path"] for v in volumes if "hostPath" in v]
    assert "/run/containerd/io.containerd.runtime.v2.task" in host_paths  # what names pods' containers
    assert {p: _exposes_a_socket(p) for p in host_paths if _exposes_a_socket(p)} == {}
    documented = re.findall(r"-v (\S+?):", DEPLOY_DOC.read_text())
    assert documented and {p: _exposes_a_socket(p) for p in documented if _exposes_a_socket(p)} == {}
    assert _exposes_a_socket("/run/containerd") and _exposes_a_socket("/run")  # the check itself bites


def test_only_prometheus_may_reach_the_metrics_port():
    policy = next(d for d in _manifest() if d["kind"] == "NetworkPolicy")
    ds = _daemonset()
    assert policy["metadata"]["namespace"] == ds["metadata"]["namespace"]
    assert policy["spec"]["podSelector"]["matchLabels"] == ds["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    port = int(ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]
    assert all("podSelector" in peer for peer in rule["from"])  # some pods, never everyone
    assert not ds["spec"]["template"]["spec"].get("hostNetwork")  # a policy does not apply to the host's network

"""deploy/ is checked by the tools its consumers use: promtool, kubernetes-validate, hadolint, systemd, and
every aiops_* metric that a rule or dashboard names must be one the daemon really exports."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, generate_latest

from aiops.cluster.metrics import ClusterCollector, LeaseMetrics
from aiops.feedback_metrics import FeedbackCollector
from aiops.store.store import Store
from aiops.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    assert found, f"{name} is required (bash scripts/install-test-deps.sh installs it)"
    return found


def _exported_metric_names() -> set[str]:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry, incident_counts=lambda: {"firing": 1})
    telemetry.check_run("c", "ok", 0.1)
    telemetry.check_ticks_skipped("c", 1)
    telemetry.finding("c", "anomaly")
    telemetry.action("command", "succeeded", 1.0)
    telemetry.notification("n", "sent")
    # Store-backed families (verdicts, effectiveness) have samples only with data; their TYPE line names them.
    registry.register(FeedbackCollector(Store("sqlite://")))
    registry.register(ClusterCollector(Store("sqlite://")))
    LeaseMetrics(registry, lambda: 2).taken_over(1)
    text = generate_latest(registry).decode()
    names = set()
    for line in text.splitlines():
        if line.startswith(("# TYPE aiops_incident_verdicts", "# TYPE aiops_remediation_", "# TYPE aiops_cluster_")):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_prometheus_rules_are_valid_and_use_exported_metrics() -> None:
    rules = DEPLOY / "prometheus" / "aiops-rules.yaml"
    out = subprocess.run([_tool("promtool"), "check", "rules", str(rules)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    used = set(re.findall(r"\baiops_[a-z_]+", rules.read_text()))
    assert used <= _exported_metric_names(), used - _exported_metric_names()


def test_grafana_dashboard_uses_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "aiops-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]  # a row has no targets
    used = {m.removesuffix("_bucket") + ("_bucket" if m.endswith("_bucket") else "")
            for e in exprs for m in re.findall(r"\baiops_[a-z_]+", e)}
    assert used <= _exported_metric_names(), used - _exported_metric_names()


def test_kubernetes_manifests_validate() -> None:
    base = DEPLOY / "kubernetes" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    files = [base / name for name in kustomization["resources"]]
    assert all(f.exists() for f in files)
    core = [str(f) for f in files if yaml.safe_load(f.read_text())["apiVersion"] in ("v1", "apps/v1", "policy/v1")]
    out = subprocess.run([_tool("kubernetes-validate"), "--strict", *core], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    deployment = yaml.safe_load((base / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pdb = yaml.safe_load((base / "pdb.yaml").read_text())
    assert deployment["spec"]["replicas"] == 3 and pdb["spec"]["minAvailable"] == 2
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_dockerfile_lints_clean_and_runs_as_non_root() -> None:
    dockerfile = DEPLOY / "docker" / "Dockerfile"
    out = subprocess.run([_tool("hadolint"), str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    text = dockerfile.read_text()
    assert "USER 10001" in text and "HEALTHCHECK" in text and 'ENTRYPOINT ["aiops"]' in text
    # the kernels are compiled into the image (ahead of time: the compiler leaves in the same layer)
    build = next(step for step in text.split("\nRUN ") if "&& aiops warm-cache" in step)
    assert "apt-get install" in build and "apt-get purge" in build


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (DEPLOY / "systemd" / "aiops.service").read_text()
    assert "Type=notify" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "ExecStartPre=/opt/aiops/bin/aiops warm-cache" in unit  # kernels compiled before the daemon starts
    local = tmp_path / "aiops.service"
    local.write_text(unit.replace("/opt/aiops/bin/aiops", _tool("aiops")))
    out = subprocess.run([_tool("systemd-analyze"), "verify", str(local)], capture_output=True, text=True,
                         timeout=60)
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "aiops.service" in line]
    assert not problems, problems


def test_sd_notify_reaches_a_listening_socket(tmp_path: Path) -> None:
    from aiops.sdnotify import notify

    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        assert notify("READY=1", path)
        assert sock.recv(100) == b"READY=1"


def test_systemd_unit_is_hardened(tmp_path: Path) -> None:
    """systemd's own exposure score (0 = locked down, 10 = none): the unit must stay at 2.0 or below (it was
    4.8 before the syscall filter, address families, namespaces, clock/hostname/kernel-log protection)."""
    local = tmp_path / "aiops.service"
    local.write_text((DEPLOY / "systemd" / "aiops.service").read_text().replace("/opt/aiops/bin/aiops", _tool("aiops")))
    out = subprocess.run([_tool("systemd-analyze"), "security", "--offline=true", "--threshold=20", str(local)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr

"""``aiops demo`` end to end, as a user runs it: every scenario detected, remediated and verified (or escalated
where intended) within the time budget; the JSON summary has the figures; the HTML report opens in headless
Chromium without console errors and its plots render; the printed config passes ``aiops check-config``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUDGET_SECONDS = 180.0  # the bound for `aiops demo --speed 20`


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], float, str]:
    work = tmp_path_factory.mktemp("demo")
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "aiops", "demo", "--speed", "20", "--json-summary", str(work / "s.json"),
         "--dir", str(work / "run"), "--report", str(work / "report.html"), "--plain"],
        cwd=work, capture_output=True, text=True, timeout=BUDGET_SECONDS + 60,
    )
    seconds = time.monotonic() - started
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return work, json.loads((work / "s.json").read_text()), seconds, out.stdout


@pytest.mark.slow
def test_demo_heals_every_scenario_within_budget(demo_run: tuple[Path, dict[str, Any], float, str]) -> None:
    _work, summary, seconds, stdout = demo_run
    assert seconds < BUDGET_SECONDS, f"demo took {seconds:.0f}s"
    assert summary["all_ok"] is True, json.dumps(summary, indent=2)
    scenarios = summary["scenarios"]
    assert list(scenarios) == ["drift", "bad-deploy", "pipeline-kill", "flapping"]
    for name, expected_action in (("drift", "retrain"), ("bad-deploy", "rollback"), ("pipeline-kill", "restart")):
        s = scenarios[name]
        assert s["detected"] is True and s["verified"] is True and s["outcome"] == "healed", (name, s)
        assert s["action"] == expected_action, (name, s)
        assert 0 < s["time_to_detect"] < s["time_to_heal"], (name, s)
    assert scenarios["drift"]["promoted"] is True and "challenger won" in scenarios["drift"]["action_outcome"]
    assert "-> 1" in scenarios["bad-deploy"]["action_outcome"] or "-> 2" in scenarios["bad-deploy"]["action_outcome"]
    flap = scenarios["flapping"]
    assert flap["detected"] is True and flap["outcome"] == "escalated" and flap["escalations"] == 1, flap
    assert flap["actions_executed"] == 1 and flap["actions_held"] and flap["flapping_notified"], flap
    assert flap["openings"] >= 3 and flap["time_to_escalate"] > flap["time_to_detect"] > 0
    assert summary["notifications"] >= 8 and summary["notifications_signed"] is True
    assert "drift" in stdout and "report:" in stdout


@pytest.mark.slow
def test_demo_report_renders_in_headless_chromium(demo_run: tuple[Path, dict[str, Any], float, str]) -> None:
    work, summary, _, _ = demo_run
    report = work / "report.html"
    text = report.read_text()
    assert "<script" not in text and not re.search(r"""(src|href)=["']https?://""", text), "must be self-contained"
    assert text.count("<svg") >= 8 and "Every scenario ended as intended." in text
    for svg in re.findall(r"<svg.*?</svg>", text, flags=re.S):
        ElementTree.fromstring(svg)  # every plot is well-formed SVG
    for name in summary["scenarios"]:
        assert f"id='{name}'" in text
    assert "[FLAPPING]" in text and "[ESCALATED]" in text and "[RESOLVED]" in text  # the webhook's messages
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian package chromium is required: bash scripts/install-test-deps.sh"
    shot = work / "report.png"
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        out = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1100,3000",
             f"--screenshot={shot}", report.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-3000:]
    console = [line for line in out.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, "console messages: " + "\n".join(console)
    import numpy as np
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1100, 3000)
    pixels = np.asarray(image, dtype=int)
    # the plots' series (#1a73e8), fault markers (#b3261e) and healed markers (#137333) are drawn
    for rgb in ((0x1A, 0x73, 0xE8), (0xB3, 0x26, 0x1E), (0x13, 0x73, 0x33)):
        near = int((np.abs(pixels - np.array(rgb)).max(axis=2) < 40).sum())
        assert near > 200, f"colour {rgb} barely present ({near} px): plots did not render"


def test_print_config_is_a_valid_config(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "aiops", "demo", "--print-config", "--dir", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    config = tmp_path / "demo.yaml"
    config.write_text(out.stdout)
    for name in ("feature-drift", "serving-latency", "prediction-log-freshness", "model-errors", "type: retrain",
                 "type: rollback", "type: restart", "type: webhook"):
        assert name in out.stdout
    check = subprocess.run([sys.executable, "-m", "aiops", "check-config", str(config)], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "ok (4 checks, 1 notifiers)" in check.stdout
    assert not (tmp_path / "d").exists(), "--print-config must not start or write anything"

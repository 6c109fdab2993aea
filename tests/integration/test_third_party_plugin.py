"""A third-party plugin, pip-installed from a throwaway package, is found by entry point exactly like the
built-ins: it is listed by ``aiops plugins``, validated by ``aiops check-config`` and runs in a check."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "aiops-plugin-example"
version = "0.0.1"

[project.entry-points."aiops.detectors"]
always_high = "aiops_plugin_example:AlwaysHigh"

[tool.hatch.build.targets.wheel]
include = ["aiops_plugin_example.py"]
"""

MODULE = '''
"""A third-party detector for the test: every point above ``limit`` is a finding."""
from typing import Any, ClassVar
from pydantic import BaseModel, ConfigDict
from aiops.types import Finding, Frame


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: float = 10.0


class AlwaysHigh:
    """Flags every value above a limit (third-party test plugin)."""

    Params: ClassVar[type[BaseModel]] = Params
    name = "always_high"

    def __init__(self, *, limit: float = 10.0) -> None:
        self.limit = limit

    def evaluate(self, frame: Frame) -> list[Finding]:
        return [Finding(kind="anomaly", detector=self.name, summary=f"{s.name} high", labels={"series": s.name})
                for s in frame.series if any(v > self.limit for v in s.values)]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Any) -> None:
        pass
'''

RUN_ONCE = """
import sys
from aiops.config.loader import load_config
from aiops.engine.runtime import build_runtime
from aiops.engine.checks import CheckRunner
from aiops.store.store import Store
cfg = load_config(sys.argv[1])
rt = build_runtime(cfg)
store = Store(cfg.settings.store.url); store.migrate()
result = CheckRunner(rt.checks["from-plugin"], store).tick(2e9)
print([f.detector for f in result.findings])
"""


def test_third_party_detector_is_installed_listed_validated_and_run(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "aiops_plugin_example.py").write_text(MODULE)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(pkg),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}

    listed = subprocess.run(
        [sys.executable, "-m", "aiops", "plugins"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "always_high" in listed.stdout and "third-party test plugin" in listed.stdout

    metrics = tmp_path / "m.csv"
    metrics.write_text("timestamp,value\n1000,5\n1001,50\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        textwrap.dedent(f"""
        store: {{url: "sqlite:///{tmp_path}/a.db"}}
        checks:
          - name: from-plugin
            every: 1m
            source: {{type: file, path: "{metrics}"}}
            detectors: [{{type: always_high, limit: 20}}]
    """)
    )
    ok = subprocess.run(
        [sys.executable, "-m", "aiops", "check-config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    bad = config.read_text().replace("limit: 20", "limit: twenty")
    (tmp_path / "bad.yaml").write_text(bad)
    rejected = subprocess.run(
        [sys.executable, "-m", "aiops", "check-config", str(tmp_path / "bad.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert rejected.returncode == 1 and "detectors[0].limit" in rejected.stderr

    ran = subprocess.run(
        [sys.executable, "-c", RUN_ONCE, str(config)], capture_output=True, text=True, env=env, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert "always_high" in ran.stdout

    without = subprocess.run(
        [sys.executable, "-m", "aiops", "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert without.returncode == 1 and "unknown detector 'always_high'" in without.stderr

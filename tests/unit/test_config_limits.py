"""The config loader against hostile files: alias bombs, recursive aliases, deep nesting, huge integers,
bytes that are not UTF-8, control characters, oversize files. Each one is refused with a clean
``FILE:LINE[:COL]: field: message`` within 1 s and 100 MB; nothing escapes as an internal error."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from aiops.config import yamlsource
from aiops.config.loader import load_config, parse_config
from aiops.errors import ConfigError
from tests.hostile_configs import HOSTILE

SECOND = 1.0
MEGABYTES = 100


@pytest.fixture(scope="module")
def warm() -> None:
    """Import every plugin once, so that the limits below measure the loader, not first-time imports."""
    for example in sorted((Path(__file__).resolve().parents[2] / "deploy" / "examples").glob("*.yaml")):
        with contextlib.suppress(ConfigError):
            load_config(example, env={"AIOPS_WEBHOOK_URL": "http://127.0.0.1:1/x"})


def problems_of(path: Path) -> tuple[list[str], float, float]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    try:
        load_config(path, env={})
        found: list[str] = []
    except ConfigError as exc:
        found = exc.problems
    finally:
        seconds = time.perf_counter() - started
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return found, seconds, peak_mb


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_is_refused_with_a_line_quickly(name: str, tmp_path: Path, warm: None) -> None:
    content, expected = HOSTILE[name]
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    found, seconds, peak_mb = problems_of(path)
    assert seconds < SECOND and peak_mb < MEGABYTES, (seconds, peak_mb)
    if name == "quadratic env expansion":
        assert not found  # a valid (odd) value: it only has to be quick
        return
    assert found, "accepted"
    assert all(re.match(rf"{re.escape(str(path))}:\d+(:\d+)?: \S+: \S", line) for line in found), found
    assert found[0].startswith(f"{path}:{expected}"), found


def test_aliases_within_the_budget_still_work() -> None:
    cfg = parse_config(
        "checks:\n"
        "  - {name: a, every: 1m, source: {type: host, metrics: [host_cpu_percent]},\n"
        "     detectors: [&detect {type: threshold, above: 5}]}\n"
        "  - {name: b, every: 1m, source: {type: host, metrics: [host_cpu_percent]}, detectors: [*detect]}\n",
        env={},
    )
    assert [c.name for c in cfg.settings.checks] == ["a", "b"]


def test_the_budget_counts_expanded_values_not_text() -> None:
    small = yamlsource.YamlLimits(max_nodes=40)
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a]\n"  # 12 nodes written, 42 once expanded
    with pytest.raises(yamlsource.InputRejected, match="more than 40 values"):
        yamlsource.load_yaml(text, env={}, limits=small)
    assert yamlsource.load_yaml(text, env={}).data["b"][2][8] == 9


@pytest.mark.parametrize("name", ["recursive alias in a list", "alias bomb", "deep nesting", "control character"])
def test_pure_python_parser_applies_the_same_limits(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml, PyYAML's own parser feeds the same bounded composer."""
    monkeypatch.setattr(yamlsource, "_CLoader", None)
    path = tmp_path / "hostile.yaml"
    path.write_bytes(HOSTILE[name][0])
    found, seconds, _ = problems_of(path)
    assert seconds < SECOND
    assert found and re.match(rf"{re.escape(str(path))}:\d+(:\d+)?: \(yaml\): ", found[0]), found


def test_check_config_exits_1_within_a_second_on_each_must_show_file(tmp_path: Path) -> None:
    """`aiops check-config` on ``a: &a [*a]``, an alias bomb, a Latin-1 byte and a 5 000-digit integer:
    exit 1 with a FILE:LINE message, and no slower than refusing a plain syntax error (the interpreter's
    own start-up, measured in the same run, is not the loader's cost)."""

    def check(path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "aiops", "check-config", str(path)], capture_output=True, text=True, timeout=60
        )
        return out, time.perf_counter() - started

    baseline_file = tmp_path / "syntax.yaml"
    baseline_file.write_text("a: [\n")
    baseline = min(check(baseline_file)[1] for _ in range(3))  # best of 3: the machine is shared
    for name in ("recursive alias in a list", "alias bomb", "Latin-1 byte", "5000-digit integer"):
        path = tmp_path / f"{name.replace(' ', '-')}.yaml"
        path.write_bytes(HOSTILE[name][0])
        out, seconds = check(path)
        if seconds - baseline >= SECOND:
            seconds = min(seconds, *(check(path)[1] for _ in range(2)))
        assert out.returncode == 1, (name, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr
        assert re.match(rf"{re.escape(str(path))}:\d+(:\d+)?: \S+: \S", out.stderr), out.stderr
        assert seconds - baseline < SECOND, (name, seconds, baseline)


def test_reload_with_a_hostile_file_keeps_the_old_config_and_says_why(tmp_path: Path) -> None:
    """SIGHUP and ``POST /-/reload`` call ``Daemon.reload``: an alias bomb pushed over a good config is
    refused within a second, the running configuration stays, the log and the metric say why."""
    from prometheus_client import CollectorRegistry
    from structlog.testing import capture_logs

    from aiops.daemon import Daemon

    path = tmp_path / "aiops.yaml"
    path.write_text(
        f"store: {{url: 'sqlite:///{tmp_path}/aiops.db'}}\nstate_dir: {tmp_path}/state\n"
        "checks:\n  - {name: host, every: 1m, source: {type: host, metrics: [host_cpu_percent]},\n"
        "     detectors: [{type: threshold, above: 1000}]}\n"
    )
    registry = CollectorRegistry()
    daemon = Daemon(load_config(path, env={}), registry=registry)
    try:
        before = daemon.config
        for hostile in ("alias bomb", "recursive alias in a list", "Latin-1 byte"):
            path.write_bytes(HOSTILE[hostile][0])
            started = time.perf_counter()
            with capture_logs() as logs:
                ok, message = daemon.reload()
            assert time.perf_counter() - started < SECOND
            assert not ok and re.match(rf"{re.escape(str(path))}:\d+:\d+: ", message), message
            assert daemon.config is before and list(daemon.runtime().checks) == ["host"]
            assert registry.get_sample_value("aiops_config_last_reload_successful") == 0
            assert any(e["event"].startswith("reload rejected") and str(path) in e["error"] for e in logs), logs
    finally:
        daemon.store.close()

"""The shipped examples as a new user meets them: they pass check-config with nothing set, the README names
every variable they read, and a missing variable is one error, not two."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from aiops.config.loader import parse_config
from aiops.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def test_check_config_passes_every_example_with_no_environment() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aiops", "check-config", *map(str, EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},  # nothing of the caller's environment
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": ok") == len(EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_variable_has_a_default_and_is_in_the_readme(example: Path) -> None:
    text = example.read_text(encoding="utf-8")
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    row = next((line for line in readme.splitlines() if line.startswith(f"| `{example.name}` |")), None)
    assert row is not None, f"README's table of example variables has no row for {example.name}"
    for name, default in _VARIABLE.findall(text):
        assert default, f"{example.name}: ${{{name}}} has no default"
        assert f"`{name}`" in row, f"README does not list {name} for {example.name}"


def test_an_unset_variable_is_one_error() -> None:
    text = "notifiers:\n  oncall:\n    type: webhook\n    url: ${HOOK}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "hook.yaml", env={})
    assert info.value.problems == [
        "hook.yaml:4: notifiers.oncall.url: environment variable HOOK is not set (use ${HOOK:-default})"
    ]

"""What every subcommand shares: finding the config (or the demo's), and the width a table must fit.

Why here and not in :mod:`aiops.cli`: the subcommands in this package are imported by the CLI, so what
they share lives below it; importing it back from the CLI would make the two packages a cycle.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_NAMES = ("aiops.yaml", "aiops.yml")
DEMO_RUN_DIR = "aiops-data/demo-run"  # where `aiops run` / `aiops demo` with no config write theirs


def table_width(output: str | None) -> int | None:
    """The width a table must fit: the terminal's ($COLUMNS honoured) for ``-o table``, which is the default
    on a terminal; None (every cell whole) for ``-o wide`` and, by default, for a pipe or a file, where
    nothing wraps and a script wants the whole text."""
    if output == "wide" or (output is None and not sys.stdout.isatty()):
        return None
    return shutil.get_terminal_size().columns


def resolve_config(config_path: str | None) -> str | None:
    """The config named on the command line, else ``aiops.yaml``/``aiops.yml`` here, else None."""
    if config_path:
        return config_path
    for name in DEFAULT_CONFIG_NAMES:
        if Path(name).exists():
            return name
    return None


def demo_dir() -> Path:
    """Where the small latency demo lives: ``AIOPS_DEMO_DIR``, else the demo's default directory."""
    from aiops.demo import DEMO_DIR

    return Path(os.environ.get("AIOPS_DEMO_DIR") or DEMO_DIR)


def load_config_or_demo(config_path: str | None) -> Any:
    """The config a command reads state through; with none here, the last demo run's (or the demo's own)."""
    from aiops.config.loader import load_config

    path = resolve_config(config_path)
    if path is None:
        demo_run = Path(DEMO_RUN_DIR) / "aiops.yaml"  # what `aiops run` / `aiops demo` with no config wrote
        if demo_run.exists():
            path = str(demo_run)
        else:
            from aiops.demo import demo_config_path

            path = str(demo_config_path(demo_dir()))
    return load_config(path)

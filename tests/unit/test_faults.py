"""Crash points: armed only by name (or name:N); an unknown name arms nothing."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from aiops import faults
faults.arm("no.such.point")  # a typo arms nothing
faults.point("action.finished")
faults.arm("promote:replaced")  # a registry point: armed, but only that name kills
faults.point("action.finished")
faults.arm("action.finished:2")
faults.point("incident.firing")
faults.point("action.finished")
print("alive after the first pass", flush=True)
faults.point("action.finished")
print("not reached", flush=True)
"""


def test_an_armed_point_kills_the_process_the_nth_time_it_is_reached() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    printed = [line for line in done.stdout.splitlines() if "[warning" not in line]  # logs go to stdout here
    assert printed == ["alive after the first pass"]

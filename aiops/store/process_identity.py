"""A process told apart by what a wall-clock step cannot move: the kernel's boot id and the process's start
time in clock ticks since that boot (field 22 of ``/proc/<pid>/stat``).

Why not psutil's ``create_time``: psutil adds the ticks to the boot time read from ``/proc/stat``, which is the
wall clock minus the uptime, so it moves whenever the wall clock is stepped (ntpd, a VM resumed, an operator's
``date -s``). A replica that compared create times could only allow a few seconds of slack: a larger step made
a live owner look dead (its leases, outbox claims and running actions taken over while it works), a smaller
slack made every step a risk. The ticks since boot never move for a living process, a pid the kernel hands out
again belongs to a process that started later (other ticks), and a reboot changes the boot id, after which no
process of the previous boot exists.

Only Linux has these files; elsewhere :func:`current_boot` is None and callers fall back to psutil.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PROC: Final = Path("/proc")
#: Fields of ``/proc/<pid>/stat`` after the command name: ``state`` is field 3, ``starttime`` field 22.
_STARTTIME_AFTER_COMM: Final = 22 - 3


@dataclass(frozen=True)
class BootIdentity:
    """Which boot, and when in it (clock ticks since boot), a process started."""

    boot: str
    ticks: int

    def __str__(self) -> str:
        return f"{self.boot}/{self.ticks}"

    @classmethod
    def parse(cls, text: str) -> BootIdentity | None:
        """The identity written by :meth:`__str__`; None for anything else."""
        boot, sep, ticks = text.rpartition("/")
        if not sep or not boot or not ticks.isdigit():
            return None
        return cls(boot, int(ticks))


def start_ticks_of_stat(stat: str) -> int:
    """``starttime`` out of the text of ``/proc/<pid>/stat``. The command name (field 2, in parentheses) may
    hold spaces and parentheses itself, so the fields are counted from the last ``)``.

    >>> start_ticks_of_stat("42 (a (b) c) S 1 42 42 0 -1 4194560 " + "0 " * 8 + "20 0 1 0 12345 0 0")
    12345
    """
    _, sep, rest = stat.rpartition(")")
    fields = rest.split()
    if not sep or len(fields) <= _STARTTIME_AFTER_COMM:
        raise ValueError("not the text of /proc/<pid>/stat")
    return int(fields[_STARTTIME_AFTER_COMM])


@functools.cache
def current_boot(proc: Path = PROC) -> str | None:
    """This kernel's boot id, or None where there is none to read (not Linux). Read once: it changes only with
    a reboot, which this process does not outlive."""
    try:
        return (proc / "sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def start_ticks(pid: int, proc: Path = PROC) -> int | None:
    """When process ``pid`` started, in clock ticks since boot; None when no such process exists."""
    try:
        return start_ticks_of_stat((proc / str(pid) / "stat").read_text(errors="replace"))
    except (FileNotFoundError, ProcessLookupError):
        return None


def identity_of(pid: int, proc: Path = PROC) -> BootIdentity | None:
    """The boot identity of a living process; None when it is gone or the system has no ``/proc`` to say."""
    boot = current_boot(proc)
    if boot is None:
        return None
    try:
        ticks = start_ticks(pid, proc)
    except (OSError, ValueError):
        return None
    return None if ticks is None else BootIdentity(boot, ticks)

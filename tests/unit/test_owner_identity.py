"""Whether the process named by a replica id is gone: judged by boot id and start ticks since boot, which a
stepped wall clock does not move; ids written by an earlier release (host:pid:start) still read as before."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from aiops.store import store as store_module
from aiops.store.process_identity import BootIdentity, current_boot, identity_of, start_ticks, start_ticks_of_stat
from aiops.store.store import default_owner, owner_is_dead

HOST = socket.gethostname()
HOUR = 3600.0


def _step_wall_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """What a step of the wall clock does to psutil: the boot time it adds to every start time moves."""
    from psutil import _pslinux

    real = _pslinux.boot_time
    monkeypatch.setattr(_pslinux, "boot_time", lambda: real() + seconds)


def _old_format(owner: str) -> str:
    """The same id as an earlier release wrote it: host:pid:start, no boot identity."""
    return owner.partition("@")[0]


def test_the_id_carries_the_boot_identity_and_its_ticks_are_the_kernels() -> None:
    owner = default_owner()
    mine = identity_of(os.getpid())
    assert mine is not None
    host, pid, started = owner.rsplit(":", 2)
    assert (host, int(pid), started.partition("@")[2]) == (HOST, os.getpid(), str(mine))
    assert mine.boot == current_boot()
    ticks = (psutil.Process().create_time() - psutil.boot_time()) * os.sysconf("SC_CLK_TCK")
    assert mine.ticks == pytest.approx(ticks, abs=1)
    assert BootIdentity.parse(str(mine)) == mine


def test_the_command_name_may_hold_spaces_and_parentheses() -> None:
    stat = "77 (x) (y z)) S 1 77 77 0 -1 4194560 " + "0 " * 8 + "20 0 1 0 98765 1000 10"
    assert start_ticks_of_stat(stat) == 98765
    with pytest.raises(ValueError):
        start_ticks_of_stat("77 (short) S 1")


@pytest.mark.parametrize("step", [HOUR, -HOUR])
def test_a_live_owner_stays_alive_when_the_wall_clock_is_stepped_by_an_hour(
    monkeypatch: pytest.MonkeyPatch, step: float
) -> None:
    owner = default_owner()
    _step_wall_clock(monkeypatch, step)
    assert psutil.Process().create_time() - float(_old_format(owner).rsplit(":", 1)[1]) == pytest.approx(step, abs=1)
    assert not owner_is_dead(owner)
    # the comparison by start time, all an earlier release's id allows, cannot tell an hour's step from a reuse
    assert owner_is_dead(_old_format(owner))


def test_a_dead_process_is_dead() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = identity_of(proc.pid)
        assert identity is not None
        owner = f"{HOST}:{proc.pid}:{psutil.Process(proc.pid).create_time():.3f}@{identity}"
        assert not owner_is_dead(owner)
    finally:
        proc.kill()
        proc.wait()
    assert start_ticks(proc.pid) is None
    assert owner_is_dead(owner)


def test_a_reused_pid_or_another_boot_is_another_process() -> None:
    owner = default_owner()
    stamp, mine = owner.rsplit("@", 1)
    identity = BootIdentity.parse(mine)
    assert identity is not None
    assert owner_is_dead(f"{stamp}@{BootIdentity(identity.boot, identity.ticks - 1)}")  # same pid, earlier start
    assert owner_is_dead(f"{stamp}@{BootIdentity('00000000-0000-0000-0000-000000000000', identity.ticks)}")
    assert not owner_is_dead(f"elsewhere:{os.getpid()}:1.000@{BootIdentity('other', 1)}")  # another host: its lease


def test_an_earlier_releases_id_is_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    old = _old_format(default_owner())
    assert not owner_is_dead(old)
    host, pid, started = old.rsplit(":", 2)
    assert owner_is_dead(f"{host}:{pid}:{float(started) - 300:.3f}")  # a reused pid, started minutes apart
    assert owner_is_dead(f"{HOST}:999999999:1.000")  # no such process
    _step_wall_clock(monkeypatch, 1.0)
    assert not owner_is_dead(old)  # within the slack it always had


def test_a_system_without_proc_has_no_boot_identity(tmp_path: Path) -> None:
    assert current_boot(tmp_path) is None
    assert identity_of(os.getpid(), tmp_path) is None


def test_without_proc_the_start_time_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    """Elsewhere than Linux: ids have no boot identity, and one that has (written on Linux) is read as before."""
    owner = default_owner()
    monkeypatch.setattr(store_module, "identity_of", lambda pid: None)
    monkeypatch.setattr(store_module, "current_boot", lambda: None)
    assert "@" not in default_owner()
    assert not owner_is_dead(owner)
    _step_wall_clock(monkeypatch, HOUR)
    assert owner_is_dead(owner)

"""The contract suite, run over every installed entry point of every kind (third-party ones included).

Each plugin is checked with every parameter set it declares next to its code (``test_params()``), so a new
plugin is covered without editing this file, and one that needs parameters but declares none fails here
instead of being skipped.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from aiops import plugins
from aiops.errors import PluginNotFound
from aiops.testing import check_plugin

ALL = [(group, name) for group in plugins.GROUPS for name in sorted(plugins.available(group))]
CHECKED: Counter[str] = Counter()  # plugins checked per kind, filled by the parametrised test below

# The built-ins alone: a third-party package adds to these, never removes.
AT_LEAST = {plugins.SOURCES: 7, plugins.DETECTORS: 37, plugins.REMEDIATIONS: 6, plugins.NOTIFIERS: 8}


@pytest.mark.parametrize(("group", "name"), ALL, ids=[f"{g.split('.')[-1]}:{n}" for g, n in ALL])
def test_plugin_honours_its_contract(group: str, name: str, tmp_path: Path) -> None:
    cls = plugins.load(group, name)
    assert check_plugin(group, cls, tmp_path) >= 1
    CHECKED[group] += 1


def test_every_registered_plugin_was_checked() -> None:
    """Runs after the parametrised checks (same module, file order): none skipped, the count printed."""
    if not CHECKED:
        pytest.skip("run together with test_plugin_honours_its_contract (e.g. -k selected only this one)")
    for group in plugins.GROUPS:
        registered = sum(1 for g, _ in ALL if g == group)  # as collected (tests may add fakes later)
        print(f"{group}: {CHECKED[group]} of {registered} plugins checked")
        assert registered >= AT_LEAST[group]
        assert CHECKED[group] == registered, f"{group}: {registered - CHECKED[group]} plugin(s) not checked"


def test_unknown_plugin_lists_known_names() -> None:
    with pytest.raises(PluginNotFound) as info:
        plugins.load(plugins.SOURCES, "nope")
    assert "host" in str(info.value) and "file" in str(info.value)

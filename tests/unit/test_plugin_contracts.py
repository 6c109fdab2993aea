"""The contract suite, run over every installed entry point of every kind (third-party ones included)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aiops import plugins
from aiops.errors import PluginNotFound
from aiops.testing import check_detector, check_plugin_class

ALL = [(group, name) for group in plugins.GROUPS for name in sorted(plugins.available(group))]


@pytest.mark.parametrize(("group", "name"), ALL, ids=[f"{g.split('.')[-1]}:{n}" for g, n in ALL])
def test_plugin_honours_its_contract(group: str, name: str) -> None:
    cls = plugins.load(group, name)
    check_plugin_class(group, cls)
    if group == plugins.DETECTORS:
        try:
            plugins.params_model(cls).model_validate({})
        except ValidationError:
            return  # needs parameters (e.g. a threshold); the class-level contract is what can be checked
        check_detector(cls)


def test_unknown_plugin_lists_known_names() -> None:
    with pytest.raises(PluginNotFound) as info:
        plugins.load(plugins.SOURCES, "nope")
    assert "host" in str(info.value) and "file" in str(info.value)

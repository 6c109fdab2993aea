"""``Series.key``: the series' identity string, built once per series without a lock."""

from __future__ import annotations

from dataclasses import asdict, fields

from aiops.types import Series, series_key


def test_key_is_the_name_and_the_sorted_labels() -> None:
    assert series_key("up", {}) == "up"
    assert series_key("up", {"job": "node", "instance": "h:9100"}) == 'up{instance="h:9100",job="node"}'
    assert Series("up", (1.0,), (1.0,), {"b": "2", "a": "1"}).key == 'up{a="1",b="2"}'


def test_key_is_built_once_and_is_no_field() -> None:
    labels = {"id": "1"}
    series = Series("m", (1.0,), (2.0,), labels)
    assert series.key == 'm{id="1"}'
    labels["id"] = "2"  # the labels are not copied: only a cached key can still say 1
    assert series.key == 'm{id="1"}'
    assert [f.name for f in fields(Series)] == ["name", "timestamps", "values", "labels"]
    assert "key" not in asdict(series)
    read = Series("m", (), (), {"id": "1"})
    assert read.key and read == Series("m", (), (), {"id": "1"})  # equality ignores the cached key
    assert not isinstance(Series.key, str)  # on the class: the descriptor itself

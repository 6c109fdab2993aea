"""Docs that are generated from code must match it."""

from __future__ import annotations

from pathlib import Path

from aiops.config.reference import render

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_up_to_date() -> None:
    current = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert current == render(), "regenerate: python -m aiops.config.reference > docs/configuration.md"

"""Every copy-paste config block of docs/sources.md validates against the plugins it names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from aiops import plugins

DOC = Path(__file__).resolve().parents[2] / "docs" / "sources.md"


def _checks() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and "checks" in data:
            data = data["checks"]
        if isinstance(data, dict) and "detectors" in data:
            found.append({"detectors": data["detectors"]})
        if isinstance(data, list):
            found.extend(item for item in data if isinstance(item, dict))
    return found


def _validate(group: str, block: dict[str, Any]) -> None:
    params = {k: v for k, v in block.items() if k not in ("type", "name")}
    plugins.build(group, block["type"], params)


def test_every_documented_block_is_valid() -> None:
    checks = _checks()
    sources = [c["source"] for c in checks if "source" in c]
    assert {s["type"] for s in sources} >= {"prometheus", "table", "http", "host", "push", "alertmanager"}
    for check in checks:
        if "source" in check:
            _validate(plugins.SOURCES, check["source"])
        for detector in check.get("detectors", []):
            _validate(plugins.DETECTORS, detector)

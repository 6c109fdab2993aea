"""The demo's remediation: tells the simulated service to recover (a real process, run by the ledger)."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m aiops.demo.heal DEMO_DIR", file=sys.stderr)
        return 2
    (Path(argv[0]) / "healed").write_text("healed\n", encoding="utf-8")
    print("demo service restarted")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

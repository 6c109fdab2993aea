"""Hostile config files shared by the loader's unit tests and the daemon's reload test: each one a thing a
careless operator or an attacker with write access to the file could leave in it."""

from __future__ import annotations


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": each level lists the previous one ``width`` times (9**9 values from ~300 bytes)."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


HOSTILE: dict[str, tuple[bytes, str]] = {
    # name: (file content, expected start of the one problem after "FILE:")
    "recursive alias in a list": (b"a: &a [*a]\n", "1:8: (yaml): recursive alias *a"),
    "recursive alias in a mapping": (b"checks: []\nx: &x {y: {z: *x}}\n", "2:15: (yaml): recursive alias *x"),
    "alias bomb": (alias_bomb().encode(), "5:"),
    "deep nesting": (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "1:"),
    "deep block nesting": ("".join("  " * i + f"k{i}:\n" for i in range(200)).encode(), "64:"),
    "5000-digit integer": (
        b"checks: []\nsafety:\n  max_actions: " + b"9" * 5000 + b"\n",
        "3: safety.max_actions: integer",
    ),
    "Latin-1 byte": (b"checks: []\nstate_dir: /srv/caf\xe9\n", "2:20: (file): not UTF-8: byte 0xe9"),
    "control character": (b"checks: []\n\nstate_dir: ab\x07c\n", "3:14: (yaml): control characters are not allowed"),
    "NUL byte": (b"checks: []\nstate_dir: \x00\n", "2:12: (yaml):"),
    "syntax error after line 1": (b"checks: []\nstate_dir: x\nsafety: {max_actions: [1}\n", "3:"),
    "invalid date": (b"checks: []\nstate_dir: 2001-13-45\n", "2: state_dir: invalid timestamp '2001-13-45'"),
    "odd timestamp tag": (b"checks: []\nstate_dir: !!timestamp x\n", "2: state_dir: invalid timestamp 'x'"),
    "unknown tag": (b"checks: []\nstate_dir: !shell ls\n", "2: state_dir: could not determine a constructor"),
    "python tag on a mapping": (b"safety: !!python/object:os.system {}\n", "1: safety: YAML tag"),
    "list as a mapping key": (b"? [a, b]\n: 1\n", "1: ?: a mapping key must be a plain value"),
    "oversize file": (b"# " + b"x" * (300 * 1024) + b"\n", "1:1: (file): larger than 262144 bytes"),
    "quadratic env expansion": (b"state_dir: '" + b"${a:-" * 50_000 + b"'\n", ""),
}

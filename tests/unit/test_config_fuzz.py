"""Fuzzing the config loader: 2 000 mutated copies of the shipped examples (bytes flipped or inserted, lines
deleted, doubled or re-indented, keys and values replaced by hostile ones). Every copy either loads or is
refused with clean ``FILE:LINE[:COL]: field: message`` lines, each within 1 s and 100 MB of Python memory."""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiops.config.loader import load_config
from aiops.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [p.read_bytes() for p in sorted((ROOT / "deploy" / "examples").glob("*.yaml"))]
ENV = {"AIOPS_WEBHOOK_URL": "http://127.0.0.1:1/hook", "AIOPS_WEBHOOK_SECRET": "x"}

# What a careless operator or an attacker with write access to the file might leave in it.
HOSTILE_VALUES = [
    b"9" * 5000, b"&a [*a]", b"*nope", b"[*x, &x 1]", b"{a: *a}", b"-1", b"0", b"1e999", b"-.inf", b".nan",
    b"2001-13-45", b"2001-01-01 00:00:00 +99:00", b"!!timestamp x", b"!!binary x", b"!!int 0b" + b"1" * 500,
    b"!!float x", b"!!python/object:os.system x", b"!!set {a}", b"!!map []", b"!!seq {}", b"'", b'"\\ud800"',
    b'"\\x00"', b'"a\\nb"', b"~", b"null", b"[]", b"{}", b"[{}]", b"true", b"- x", b"? x", b"|\n  x",
    b"10000000000000000000000s", b"-5m", b"0.0000000001s", b"P1D", b"${X}", b"$${}", b"${a:-" * 200,
    b"a" * 3000, b"0x" + b"f" * 200, b"1:2:3", b"1_000", b"0o777", b"\xc3\xa9t\xc3\xa9", b"*/0 * * * *",
    b"99 99 99 99 99", b"http://[::1", b"http://x:99999", b"'^(a+)+$'", b"'['", b"{type: threshold}", b"-1e9",
]  # fmt: skip
HOSTILE_BYTES = [
    b"\xe9", b"\x00", b"\x07", b"\t", b"\r", b"\n", b"\xff\xfe", b"\xef\xbb\xbf", b"&a ", b"*a", b"[", b"{",
    b": ", b"- ", b"!!", b"<<: *a", b"---\n", b"%YAML 1.1\n", b"...\n", b"#", b'"', b"'", b"\\",
]  # fmt: skip

position = st.integers(min_value=0, max_value=1 << 20)
mutation = st.one_of(
    st.tuples(st.just("flip"), position, st.binary(min_size=1, max_size=1)),
    st.tuples(st.just("insert"), position, st.sampled_from(HOSTILE_BYTES) | st.binary(min_size=1, max_size=6)),
    st.tuples(st.just("delete line"), position, st.just(b"")),
    st.tuples(st.just("double line"), position, st.just(b"")),
    st.tuples(st.just("indent"), position, st.sampled_from([b"  ", b""])),
    st.tuples(st.just("value"), position, st.sampled_from(HOSTILE_VALUES)),
    st.tuples(st.just("key"), position, st.sampled_from([*HOSTILE_VALUES[:12], b'"a\\nb"', b"[1]", b"1", b"? a"])),
)


def mutate(data: bytes, steps: list[tuple[str, int, bytes]]) -> bytes:
    for op, at, payload in steps:
        lines = data.split(b"\n")
        line = at % len(lines)
        keyed = [i for i, text in enumerate(lines) if b": " in text]
        if op == "flip" and data:
            i = at % len(data)
            data = data[:i] + payload + data[i + 1 :]
        elif op == "insert":
            i = at % (len(data) + 1)
            data = data[:i] + payload + data[i:]
        elif op == "delete line":
            data = b"\n".join(lines[:line] + lines[line + 1 :])
        elif op == "double line":
            data = b"\n".join(lines[: line + 1] + lines[line:])
        elif op == "indent":
            lines[line] = payload + lines[line] if payload else lines[line][2:]
            data = b"\n".join(lines)
        elif op in ("value", "key") and keyed:
            i = keyed[at % len(keyed)]
            colon = lines[i].index(b": ")
            if op == "value":
                lines[i] = lines[i][: colon + 2] + payload
            else:
                indent = len(lines[i]) - len(lines[i].lstrip(b" -"))
                lines[i] = lines[i][:indent] + payload + lines[i][colon:]
            data = b"\n".join(lines)
    return data


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aiops-fuzz-") as name:
        for i, example in enumerate(EXAMPLES):  # first loads import every plugin: not the loader's cost
            (Path(name) / f"warm{i}.yaml").write_bytes(example)
            with contextlib.suppress(ConfigError):
                load_config(Path(name) / f"warm{i}.yaml", env=ENV)
        yield Path(name)


@pytest.mark.slow
@settings(
    max_examples=2000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(example=st.sampled_from(range(len(EXAMPLES))), steps=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_configs_load_or_fail_with_clean_lines(
    workdir: Path, example: int, steps: list[tuple[str, int, bytes]]
) -> None:
    path = workdir / "mutated.yaml"
    path.write_bytes(mutate(EXAMPLES[example], steps))
    clean = re.compile(rf"{re.escape(str(path))}:\d+(:\d+)?: [^\n]+: [^\n]+")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        load_config(path, env=ENV)
    except ConfigError as exc:
        assert exc.problems
        bad = [line for line in exc.problems if "\n" in line or not clean.fullmatch(line)]
        assert not bad, bad
    finally:
        seconds = time.perf_counter() - started
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    assert seconds < 1.0, seconds
    assert peak_mb < 100, peak_mb

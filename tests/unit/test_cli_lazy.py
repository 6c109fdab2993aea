"""Sub-commands in their own modules are imported only when they run: a fresh ``aiops drift`` process pays
for its own imports, not for ``detect``'s kernels or scipy (a CLI call is timed from process start)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from aiops.cli import cli


def test_help_lists_every_lazily_registered_command() -> None:
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in ("detect", "drift", "demo", "db", "verdict", "effectiveness", "backtest", "tune", "warm-cache"):
        assert f"\n  {name} " in out, name


def test_a_drift_call_imports_neither_other_commands_nor_scipy(tmp_path: Path) -> None:
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    rng = random.Random(0)  # continuous values, enough rows: the paths that need scipy (ties, small samples) stay off
    for path in (ref, cur):
        path.write_text("a,b\n" + "".join(f"{rng.gauss(0, 1)!r},{rng.random()!r}\n" for _ in range(2000)))
    probe = textwrap.dedent(
        f"""
        import json, sys
        from aiops.cli import main
        try:
            main(["drift", "--reference", {str(ref)!r}, "--current", {str(cur)!r}, "--json"])
        except SystemExit:
            pass
        heavy = ("aiops.commands.", "scipy", "structlog", "requests", "aiops.registry", "pyarrow", "threadpoolctl")
        loaded = sorted(m for m in sys.modules if m.startswith(heavy))
        import os
        from threadpoolctl import threadpool_info
        blas = [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]
        print(json.dumps([loaded, "OPENBLAS_NUM_THREADS" in os.environ, blas]))
        """
    )
    blas_variables = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")  # as a user's shell has none
    env = {k: v for k, v in os.environ.items() if k not in blas_variables}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    loaded, variable_left, blas_threads = json.loads(proc.stdout.strip().splitlines()[-1])
    # aiops.commands.common holds the helpers every sub-command shares; it imports no command. The plugin
    # context makes its logger, HTTP session and registry on first use, so a drift call imports none of them.
    # pyarrow (installed with the test extras) is kept out of pandas' import when the inputs are CSV.
    assert [m for m in loaded if m != "aiops.commands.common"] == ["aiops.commands.drift"], proc.stderr[-500:]
    # NumPy's OpenBLAS started with a pool of one thread (no idle worker spinning; threadpoolctl not needed to
    # limit it), and the variable that did it was set for that import only
    assert blas_threads in ([], [1]) and not variable_left

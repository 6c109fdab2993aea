"""The wheel, not just the source tree, works: it holds the three import packages, registers every
built-in plugin by entry point and migrates a store with the revisions it ships (what a user gets from
`pip install aiops`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_installs_and_finds_its_plugins(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    wheels = list((tmp_path / "dist").glob("aiops-*.whl"))
    assert len(wheels) == 1
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(target),
         str(wheels[0])],
        check=True, capture_output=True, timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import aiops, aiops_detectors, aiops_remediations; "
        "print(aiops.__file__); print(aiops_detectors.__file__); print(aiops_remediations.__file__)"
    )
    where = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=60)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(target)) for line in where.stdout.split()), where.stdout
    listed = subprocess.run([sys.executable, "-m", "aiops", "plugins"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=60)
    assert listed.returncode == 0, listed.stderr
    for name in ("host", "file", "threshold", "robust_zscore", "command", "webhook"):
        assert f"  {name} " in listed.stdout, listed.stdout
    assert "failed to import" not in listed.stdout
    # The schema migrations (Alembic scripts that are data files to the wheel) come along and run.
    store = f"sqlite:///{tmp_path / 'store.db'}"
    migrated = subprocess.run([sys.executable, "-m", "aiops", "db", "upgrade", "--store", store], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=60)
    assert migrated.returncode == 0 and "(head)" in migrated.stdout, migrated.stderr
    # The web console's templates and static files (data files to the wheel) come along and load.
    console = (
        "from importlib.resources import files; from aiops.console import views; "
        "print(views._templates().get_template('incident.html').filename); "
        "print(files('aiops.console').joinpath('static', 'console.css').read_text()[:2])"
    )
    loaded = subprocess.run([sys.executable, "-c", console], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    template, css = loaded.stdout.split()
    assert template.startswith(str(target)) and css == "/*", loaded.stdout

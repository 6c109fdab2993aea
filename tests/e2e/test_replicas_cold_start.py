"""Three real daemons started at once on one empty PostgreSQL store all come up: one migrates the schema, the
others wait for its lock and find nothing left to do (the process-level rounds are in
tests/integration/test_migration_cold_start.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.daemon import DaemonProcess
from tests.servers import create_database

CONFIG = """
store: {{url: "{url}"}}
state_dir: {work}/state
checks:
  - name: host
    every: 1s
    source: {{type: host, metrics: [host_cpu_percent]}}
    detectors: [{{type: threshold, above: 1000}}]
"""


@pytest.mark.slow
@pytest.mark.postgres
def test_three_daemons_started_together_on_an_empty_postgres_store_all_come_up(
    postgres_url: str, tmp_path: Path
) -> None:
    url = create_database(postgres_url)
    daemons = []
    for i in range(3):
        work = tmp_path / f"replica-{i}"
        work.mkdir()
        config = work / "aiops.yaml"
        config.write_text(CONFIG.format(url=url, work=work))
        daemons.append(DaemonProcess(config, work))
    try:
        for daemon in daemons:
            daemon.start(wait_ready=False)
        for daemon in daemons:
            daemon.wait_ready(timeout=60)
        migrated = [d for d in daemons if '"store_schema_upgraded"' in d.logs()]
        assert len(migrated) == 1, [d.logs() for d in daemons]
        for daemon in daemons:
            assert daemon.terminate() == 0, daemon.logs()
    finally:
        for daemon in daemons:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()

"""Reference management of the drift detectors: a SQL query, the champion's training window, a rolling window."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aiops_detectors.drift.tabular import TabularDrift

from aiops.errors import DetectorError
from aiops.registry import FilesystemRegistry
from aiops.types import Frame


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    base = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": base + shift,
            "b": 0.8 * base + 0.6 * rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2]),
        }
    )


def _frame(df: pd.DataFrame, t: float = 1.0) -> Frame:
    return Frame(source="t", collected_at=t, rows=tuple(df.to_dict("records")), columns=tuple(df.columns))


def _sqlite(path: Path, df: pd.DataFrame, table: str = "ref") -> str:
    with sqlite3.connect(path) as conn:
        df.to_sql(table, conn, index=False)
    return f"sqlite:///{path}"


# ---- 1. reference from a SQL query ---------------------------------------------------------------------------


def test_reference_sql_on_sqlite_is_read_once_and_decides_like_the_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ref = _table(rng, 2000)
    url = _sqlite(tmp_path / "ref.db", ref)
    det = TabularDrift(reference_sql={"url": url, "query": "SELECT a, b, colour FROM ref"})
    first = _table(rng, 500)
    assert det.evaluate(_frame(first)) == []
    assert det.n_reference_ == 2000 and det.columns_ == ["a", "b", "colour"]
    # the same decisions as fitting the frame directly (and seeing the same windows: evidence accumulates)
    twin = TabularDrift().fit(ref)
    twin.test(first)
    cur = _table(np.random.default_rng(9), 500, shift=0.2)
    assert det.test(cur).to_dict() == twin.test(cur).to_dict()
    (tmp_path / "ref.db").unlink()  # read once: the statistics are kept, the table is not re-read
    (finding,) = det.evaluate(_frame(_table(rng, 500, shift=1.0), 2.0))
    assert finding.evidence["columns"]["a"]["drift"]


def test_reference_sql_samples_down_to_max_reference_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    url = _sqlite(tmp_path / "big.db", _table(rng, 3000))
    det = TabularDrift(reference_sql={"url": url, "query": "SELECT * FROM ref"}, max_reference_rows=1000)
    det.evaluate(_frame(_table(rng, 300)))
    assert det.n_reference_ == 1000


def test_reference_sql_expands_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    monkeypatch.setenv("AIOPS_TEST_REF_URL", _sqlite(tmp_path / "env.db", _table(rng, 500)))
    det = TabularDrift(reference_sql={"url": "${AIOPS_TEST_REF_URL}", "query": "SELECT * FROM ref"})
    assert det.evaluate(_frame(_table(rng, 200))) == []
    assert det.n_reference_ == 500


@pytest.mark.parametrize(
    ("url", "query", "message"),
    [
        ("sqlite:///{db}", "SELECT * FROM nope", "reference SQL on sqlite"),
        ("nosuchdialect://u:secret@h/db", "SELECT 1", "cannot open"),
        ("${AIOPS_TEST_UNSET_VARIABLE}", "SELECT 1", "AIOPS_TEST_UNSET_VARIABLE"),
        ("sqlite:///{db}", "SELECT * FROM ref WHERE a > 1e9", "no rows"),
    ],
)
def test_reference_sql_failures_are_detector_errors(tmp_path: Path, url: str, query: str, message: str) -> None:
    _sqlite(tmp_path / "e.db", _table(np.random.default_rng(4), 50))
    det = TabularDrift(reference_sql={"url": url.replace("{db}", str(tmp_path / "e.db")), "query": query})
    with pytest.raises(DetectorError, match=message) as info:
        det.evaluate(_frame(_table(np.random.default_rng(5), 50)))
    assert "secret" not in str(info.value)


def test_only_one_reference_source() -> None:
    with pytest.raises(DetectorError, match="at most one"):
        TabularDrift(reference="r.csv", reference_sql={"url": "sqlite://", "query": "SELECT 1"})
    with pytest.raises(DetectorError, match="rolling"):
        TabularDrift(reference_mode="rolling", warmup_rows=100)
    with pytest.raises(DetectorError, match="query"):
        TabularDrift(reference_sql={"url": "sqlite://"})


def test_reference_sql_on_postgresql(postgres_url: str) -> None:
    import sqlalchemy as sa

    rng = np.random.default_rng(6)
    table = f"ref_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            _table(rng, 1500).to_sql(table, conn, index=False)
        det = TabularDrift(reference_sql={"url": postgres_url, "query": f"SELECT * FROM {table}"})
        assert det.evaluate(_frame(_table(rng, 500))) == []
        assert det.n_reference_ == 1500
        assert det.evaluate(_frame(_table(rng, 500, shift=1.0))) != []
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


# ---- 2. the champion's training window from the filesystem registry ------------------------------------------


def _labelled(rng: np.random.Generator, n: int, start: float, shift: float = 0.0) -> pd.DataFrame:
    df = _table(rng, n, shift)
    df["label"] = (df["a"] > shift).astype(int)
    df["ts"] = start + np.arange(n, dtype=float) * 60.0
    return df


def _register(reg: FilesystemRegistry, data: pd.DataFrame, source: str, n_train: int, key: str) -> str:
    """Metadata shaped as the retrain remediation writes it (training_window, features)."""
    times = data["ts"]
    meta = {
        "training_window": {
            "rows": n_train,
            "holdout_rows": len(data) - n_train,
            "from": str(times.iloc[0]),
            "to": str(times.iloc[-1]),
            "source": source,
        },
        "features": ["a", "b", "colour"],
    }
    return reg.register("churn", {"model": key}, meta, key=key)


def test_registry_reference_follows_the_champion(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    reg = FilesystemRegistry(tmp_path / "registry")
    # one labelled table holding both training windows; outside them, rows of another regime
    old = _labelled(rng, 1200, start=0.0)
    new = _labelled(rng, 1200, start=1e6, shift=1.0)
    noise = _labelled(rng, 300, start=5e5, shift=-3.0)
    path = tmp_path / "labelled.csv"
    pd.concat([old, noise, new]).sample(frac=1.0, random_state=0).to_csv(path, index=False)
    v1 = _register(reg, old, str(path), 1000, "train-1")
    reg.promote("churn", v1, key="promote-1")

    spec = {"path": str(tmp_path / "registry"), "model": "churn", "time_column": "ts"}
    det = TabularDrift(reference_registry=spec)
    assert det.evaluate(_frame(_table(rng, 500))) == []  # like v1's data
    assert det.reference_version_ == "1" and det.n_reference_ == 1000  # the training part, not the holdout
    assert det.columns_ == ["a", "b", "colour"]  # the model's features: no label, no time
    assert det.evaluate(_frame(_table(rng, 500, shift=1.0))) != []  # like v2's data: drift against v1

    v2 = _register(reg, new, str(path), 900, "train-2")
    reg.promote("churn", v2, key="promote-2")  # a retrain won
    assert det.evaluate(_frame(_table(rng, 500, shift=1.0))) == []  # refitted on v2's training data
    assert det.reference_version_ == "2" and det.n_reference_ == 900
    assert det.scan_ is not None and det.scan_.windows == 1  # the evidence against v1 was dropped
    assert det.evaluate(_frame(_table(rng, 500))) != []

    reg.rollback("churn", key="rollback-1")  # and back
    assert det.evaluate(_frame(_table(rng, 500))) == []
    assert det.reference_version_ == "1"
    assert det.scan_ is not None and det.scan_.windows == 1


def test_registry_reference_from_a_sql_table_and_from_training_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    reg = FilesystemRegistry(tmp_path / "registry")
    data = _labelled(rng, 800, start=1_700_000_000.0)
    url = _sqlite(tmp_path / "train.db", data, table="labelled")
    v1 = _register(reg, data, "labelled", 600, "train-1")
    reg.promote("churn", v1, key="p1")
    det = TabularDrift(
        reference_registry={"path": str(tmp_path / "registry"), "model": "churn", "url": url, "time_column": "ts"}
    )
    assert det.evaluate(_frame(_table(rng, 300))) == []
    assert det.n_reference_ == 600

    exact = tmp_path / "exact.parquet"
    data.iloc[:250].to_parquet(exact)
    v2 = reg.register("churn", {}, {"training_data": str(exact)}, key="train-2")
    reg.promote("churn", v2, key="p2")
    det2 = TabularDrift(reference_registry={"path": str(tmp_path / "registry"), "model": "churn"}, columns=["a", "b"])
    assert det2.evaluate(_frame(_table(rng, 300))) == []
    assert det2.reference_version_ == "2" and det2.n_reference_ == 250 and det2.columns_ == ["a", "b"]


def test_registry_reference_errors(tmp_path: Path) -> None:
    reg = FilesystemRegistry(tmp_path / "registry")
    spec = {"path": str(tmp_path / "registry"), "model": "churn"}
    rows = _frame(_table(np.random.default_rng(0), 50))
    with pytest.raises(DetectorError, match="not a directory"):
        TabularDrift(reference_registry={**spec, "path": str(tmp_path / "nope")}).evaluate(rows)
    (tmp_path / "registry").mkdir()
    with pytest.raises(DetectorError, match="no 'champion' alias"):
        TabularDrift(reference_registry=spec).evaluate(rows)
    reg.promote("churn", reg.register("churn", {}, {}, key="k1"), key="p1")
    with pytest.raises(DetectorError, match="names no training data"):
        TabularDrift(reference_registry=spec).evaluate(rows)
    reg.promote("churn", reg.register("churn", {}, {"training_window": {"source": "labelled"}}, key="k2"), key="p2")
    with pytest.raises(DetectorError, match="set 'url'"):
        TabularDrift(reference_registry=spec).evaluate(rows)


def test_registry_reference_is_read_through_the_registry_the_context_opens(tmp_path: Path) -> None:
    """The detector asks the registry service (the plugin context's opener) for the alias and the training
    data; the filesystem registry hands back the version's metadata and refuses MLflow's run options."""
    from aiops.errors import RegistryError
    from aiops.plugins.context import PluginContext
    from aiops.registry import ModelRegistry, open_registry

    rng = np.random.default_rng(9)
    reg = FilesystemRegistry(tmp_path / "registry")
    _table(rng, 300).to_csv(tmp_path / "train.csv", index=False)
    reg.promote("churn", reg.register("churn", {}, {"training_data": str(tmp_path / "train.csv")}, key="k"), key="p")
    with reg.training_data("churn", "1") as found:
        assert found.path is None and found.metadata["training_data"] == str(tmp_path / "train.csv")
    with pytest.raises(RegistryError, match="keeps no runs"), reg.training_data("churn", "1", dataset="train"):
        pass

    opened: list[str] = []

    def opener(uri: str) -> ModelRegistry:
        opened.append(uri)
        return open_registry(uri)

    det = TabularDrift(reference_registry={"path": str(tmp_path / "registry"), "model": "churn"})
    det.start(PluginContext(state_dir=tmp_path, model_registry=opener))
    assert det.evaluate(_frame(_table(rng, 200))) == []
    assert det.reference_version_ == "1" and det.n_reference_ == 300
    assert opened == [str(tmp_path / "registry")] * 2  # the alias, then the version's training data


# ---- 3. rolling reference -------------------------------------------------------------------------------------


def _seasonal(rng: np.random.Generator, n: int, t0: int, jump: float = 0.0) -> pd.DataFrame:
    t = t0 + np.arange(n)
    level = 2.0 * np.sin(2 * np.pi * t / 200_000)  # slow: a fraction of a sd per window
    return pd.DataFrame({"a": level + jump + rng.normal(size=n), "colour": rng.choice(["x", "y"], size=n)})


def _run(det: TabularDrift, windows: list[pd.DataFrame]) -> list[bool]:
    return [bool(det.evaluate(_frame(w, float(i)))) for i, w in enumerate(windows)]


def test_rolling_reference_tolerates_slow_change_and_flags_a_jump() -> None:
    rng = np.random.default_rng(10)
    windows = [_seasonal(rng, 500, 500 * i) for i in range(40)]
    slow = _run(TabularDrift(reference_mode="rolling", reference_rows=1500), windows)
    assert slow[:3] == [False, False, False]  # filling the reference
    assert not any(slow)  # the level moves ~1.2 sd over the run, never abruptly
    # a fixed reference learned at the start does alarm on the same slow change
    fixed = TabularDrift(warmup_rows=1500)
    assert any(_run(fixed, windows))

    jumped = [*windows[:10], *(w.assign(a=w["a"] + 1.0) for w in windows[10:])]
    alarms = _run(TabularDrift(reference_mode="rolling", reference_rows=1500), jumped)
    assert alarms[10] and not any(alarms[:10])


def test_rolling_reference_is_deterministic_bounded_and_survives_a_restart() -> None:
    rng = np.random.default_rng(11)
    windows = [_seasonal(rng, 400, 400 * i, jump=1.0 if i >= 8 else 0.0) for i in range(12)]
    first = TabularDrift(reference_mode="rolling", reference_rows=1000)
    results = [first.evaluate(_frame(w, float(i))) for i, w in enumerate(windows)]
    again = TabularDrift(reference_mode="rolling", reference_rows=1000)
    assert [[f.evidence for f in r] for r in results] == [
        [f.evidence for f in again.evaluate(_frame(w, float(i)))] for i, w in enumerate(windows)
    ]

    one = TabularDrift(reference_mode="rolling", reference_rows=1000)
    for i, w in enumerate(windows[:6]):
        one.evaluate(_frame(w, float(i)))
    state = one.state_dict()
    assert len(state["rolling_rows"]) == 1000  # bounded
    state = json.loads(json.dumps(state, allow_nan=False))  # JSON-safe
    two = TabularDrift(reference_mode="rolling", reference_rows=1000)
    two.load_state_dict(state)
    for i, w in enumerate(windows[6:], start=6):
        a, b = one.evaluate(_frame(w, float(i))), two.evaluate(_frame(w, float(i)))
        assert [f.evidence for f in a] == [f.evidence for f in b]
        assert bool(a) == (i == 8 or i == 9)  # the jump, until the reference has absorbed it


def test_registry_reference_after_a_real_promoted_retrain(tmp_path: Path) -> None:
    """The retrain remediation writes the metadata; the detector reads v2's training rows from the SQL table."""
    import time

    import sqlalchemy as sa
    from aiops_remediations.retrain import RetrainRemediation

    from tests.unit.test_registry import FEATURES, ctx, fitted, incident, labelled

    reg = FilesystemRegistry(tmp_path / "registry")
    v1_data = labelled(0, n=1000, seed=99)
    v1_data[FEATURES].to_csv(tmp_path / "v1.csv", index=False)
    reg.promote("m", reg.register("m", fitted(0), {"training_data": str(tmp_path / "v1.csv")}, key="seed"), key="s")

    fresh = labelled(1, n=1000, seed=3)
    fresh["x0"] += 1.0  # the world moved (and the concept changed: the champion fails)
    fresh["ts"] = time.time() - 3600 + fresh.index
    url = f"sqlite:///{tmp_path}/labels.db"
    engine = sa.create_engine(url)
    fresh.to_sql("labels", engine, index=False)
    engine.dispose()

    spec = {"path": str(tmp_path / "registry"), "model": "m", "url": url, "time_column": "ts"}
    det = TabularDrift(reference_registry=spec)
    current = labelled(1, n=500, seed=4)[FEATURES].assign(x0=lambda d: d["x0"] + 1.0)
    assert det.evaluate(_frame(current)) != [] and det.reference_version_ == "1"

    retrain = RetrainRemediation(
        registry=str(reg.root),
        model="m",
        data={"sql_url": url, "table": "labels", "target": "y", "time_column": "ts", "features": FEATURES},
    )
    out = retrain.execute(retrain.plan(incident()), ctx("retrain-1"))
    assert out.ok and reg.alias("m", "champion") == "2", out.summary
    window = reg.metadata("m", "2")["training_window"]
    assert det.evaluate(_frame(current, 2.0)) == []  # verified against the new model's training data
    assert det.reference_version_ == "2" and det.n_reference_ == window["rows"] == 700
    assert det.columns_ == FEATURES


# ---- 4. the registry's time window is filtered in SQL, not in memory -----------------------------------------


def _window_table(rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, object]]:
    """A labelled table whose training window (800 rows, 600 of them training) sits among 1500 other rows."""
    inside = _labelled(rng, 800, start=1_700_000_000.0)
    before = _labelled(rng, 700, start=1_600_000_000.0, shift=-3.0)
    after = _labelled(rng, 800, start=1_800_000_000.0, shift=3.0)
    table = pd.concat([after, inside, before]).sample(frac=1.0, random_state=1).reset_index(drop=True)
    table.loc[::97, "ts"] = np.nan  # rows without a time are never in a bounded window
    times = inside["ts"]
    window = {"source": "train labels", "from": str(times.iloc[0]), "to": str(times.iloc[-1]), "rows": 600}
    return table.rename(columns={"ts": "event time"}), window


def _read_both_ways(
    tmp_path: Path, url: str, window: dict[str, object], monkeypatch: pytest.MonkeyPatch, max_rows: int = 50_000
) -> tuple[pd.DataFrame, pd.DataFrame, list[int], list[int], str]:
    """The registry reference read with the window in SQL and (``_window_select`` off) in memory."""
    from aiops_detectors.drift import _reference
    from aiops_detectors.drift._reference import ReferenceRegistry, read_registry_reference

    reg = FilesystemRegistry(tmp_path / f"registry-{uuid.uuid4().hex[:6]}")
    reg.promote("churn", reg.register("churn", {}, {"training_window": window}, key="k"), key="p")
    spec = ReferenceRegistry(path=str(reg.root), model="churn", url=url, time_column="event time")
    fetched: list[int] = []
    real = pd.read_sql_query

    def counting(*args: object, **kwargs: object) -> object:
        out = real(*args, **kwargs)  # type: ignore[call-overload]
        fetched.extend([len(out)] if isinstance(out, pd.DataFrame) else [])
        return out

    monkeypatch.setattr(pd, "read_sql_query", counting)
    pushed = read_registry_reference(spec, max_rows=max_rows, seed=3)
    in_sql = list(fetched)
    fetched.clear()
    monkeypatch.setattr(_reference, "_window_select", lambda *a, **k: None)
    in_memory = read_registry_reference(spec, max_rows=max_rows, seed=3)
    monkeypatch.undo()
    return pushed.frame, in_memory.frame, in_sql, list(fetched), pushed.description


@pytest.mark.parametrize(
    "bounds",
    [
        {},  # from, to and rows
        {"rows": None},  # the whole window
        {"from": None, "to": None},  # only the first rows (NULL times last, as in memory)
        {"to": None},  # from a time on
    ],
)
def test_registry_window_in_sql_reads_the_rows_filtering_in_memory_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bounds: dict[str, object]
) -> None:
    table, window = _window_table(np.random.default_rng(20))
    url = _sqlite(tmp_path / "labels.db", table, table="train labels")
    window = {**window, **bounds}
    pushed, in_memory, in_sql, everything, description = _read_both_ways(tmp_path, url, window, monkeypatch)
    pd.testing.assert_frame_equal(pushed, in_memory)
    assert description.endswith("(filtered in SQL)")
    assert everything == [len(table)] and in_sql == [len(pushed)]
    if window["rows"]:
        assert len(pushed) == 600
    if window["from"] is not None:  # only the window's rows were fetched: 800 of 2300, 600 with its rows
        assert len(pushed) <= 800 and pushed["event time"].min() >= 1_700_000_000.0
        assert pushed["a"].abs().max() < 6  # no row of the shifted regimes around it


def test_registry_window_in_sql_binds_values_and_quotes_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    table, window = _window_table(np.random.default_rng(21))
    url = _sqlite(tmp_path / "labels.db", table, table="train labels")
    seen: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: object, *rest: object) -> None:
        seen.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", capture)
    try:
        pushed, in_memory, in_sql, _, _ = _read_both_ways(tmp_path, url, window, monkeypatch, max_rows=250)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", capture)
    pd.testing.assert_frame_equal(pushed, in_memory)  # sampled down to max_reference_rows: the same sample
    assert len(pushed) == 250 and in_sql == [600]
    (statement, parameters) = next((s, p) for s, p in seen if "WHERE" in s)
    assert '"train labels"' in statement and '"event time" >= ?' in statement and '"event time" <= ?' in statement
    assert "ORDER BY" in statement and "LIMIT" in statement
    assert str(window["from"])[:6] not in statement  # values are bound, never written into the SQL
    lo, hi, limit = list(parameters)[:3]  # type: ignore[call-overload]  # (SQLite adds OFFSET 0)
    assert lo == float(str(window["from"])) - 1e-6 and hi == float(str(window["to"])) + 1e-6 and limit == 600


def test_registry_window_on_sqlite_timestamps_is_filtered_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite keeps timestamps as text of any format: comparing them in SQL could drop rows, so it is not done."""
    table, window = _window_table(np.random.default_rng(22))
    table["event time"] = pd.to_datetime(table["event time"], unit="s", utc=True)
    window = {**window, "from": str(pd.Timestamp(float(str(window["from"])), unit="s", tz="UTC")), "to": None}
    url = _sqlite(tmp_path / "labels.db", table, table="train labels")
    pushed, in_memory, in_sql, _, description = _read_both_ways(tmp_path, url, window, monkeypatch)
    assert "filtered in SQL" not in description and in_sql == [len(table)]
    pd.testing.assert_frame_equal(pushed, in_memory)
    assert len(pushed) == 600 and pushed["a"].abs().max() < 6


@pytest.mark.parametrize("zone", ["TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITHOUT TIME ZONE"])
def test_registry_window_in_sql_on_postgresql_timestamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, zone: str
) -> None:
    import sqlalchemy as sa

    table, window = _window_table(np.random.default_rng(23))
    stamps = pd.to_datetime(table["event time"], unit="s", utc=True)
    table["event time"] = stamps if "WITH TIME" in zone else stamps.dt.tz_localize(None)
    lo, hi = (pd.Timestamp(float(str(window[k])), unit="s", tz="UTC") for k in ("from", "to"))
    window = {**window, "from": str(lo), "to": str(hi)}
    name = f"train labels {uuid.uuid4().hex[:6]}"
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            table.to_sql(name, conn, index=False, dtype={"event time": sa.DateTime(timezone="WITH TIME" in zone)})
        pushed, in_memory, in_sql, everything, description = _read_both_ways(
            tmp_path, postgres_url, {**window, "source": name}, monkeypatch
        )
        assert description.endswith("(filtered in SQL)")
        assert in_sql == [600] and everything == [len(table)]
        pd.testing.assert_frame_equal(pushed, in_memory)
        assert pushed["a"].abs().max() < 6
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()


# ---- 5. MLflow as the registry: configuration (the store itself: tests/integration/test_mlflow_reference.py) ----


def test_registry_backend_parameters_are_checked() -> None:
    with pytest.raises(DetectorError, match="backend fs needs 'path'"):
        TabularDrift(reference_registry={"model": "churn"})
    with pytest.raises(DetectorError, match="tracking_uri, artifact_path: only with backend mlflow"):
        TabularDrift(reference_registry={"path": "/r", "model": "m", "tracking_uri": "x", "artifact_path": "a"})
    with pytest.raises(DetectorError, match="backend mlflow needs 'tracking_uri'"):
        TabularDrift(reference_registry={"backend": "mlflow", "model": "churn"})
    with pytest.raises(DetectorError, match="give 'tracking_uri'"):
        TabularDrift(reference_registry={"backend": "mlflow", "model": "m", "tracking_uri": "x", "path": "/r"})
    with pytest.raises(DetectorError, match="backend"):
        TabularDrift(reference_registry={"backend": "sagemaker", "model": "m"})


def test_mlflow_reference_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if mlflow-skinny were not installed
    det = TabularDrift(reference_registry={"backend": "mlflow", "tracking_uri": "file:///nowhere", "model": "m"})
    with pytest.raises(DetectorError, match=r"mlflow extra: pip install 'aiops\[mlflow\]'"):
        det.evaluate(_frame(_table(np.random.default_rng(0), 20)))

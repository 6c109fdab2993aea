"""MLflow adapter: the same registry calls, on MLflow registered models and their *aliases*.

MLflow stages are deprecated; aliases (``champion``, ``previous``) are what serving code resolves with
``models:/NAME@champion``. MLflow has no multi-alias transaction, so each operation is made safe by order
and by an op record kept as a registered-model tag:

- promote: ``previous`` is set to the old champion *before* ``champion`` moves, so a crash in between
  leaves champion untouched (both aliases on the old version); repeating the op finishes it.
- rollback: an intent tag naming the target is written first; a repeat after a crash continues to the same
  target instead of rolling back one version further.
- register: the idempotency key is a model-version tag; a repeat finds the version instead of adding one.

Needs the ``mlflow`` extra (``pip install 'aiops[mlflow]'``, which installs ``mlflow-skinny``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from aiops import faults
from aiops.errors import RegistryError
from aiops.registry.base import AliasMove, ModelRegistry, TrainingData, local_path, names_training_data
from aiops.registry.fs import sha256_file

_KEY_TAG = "aiops.idempotency_key"
_META_TAG = "aiops.meta"
_SHA_TAG = "aiops.sha256"
_BAD_TAG = "aiops.bad"
_USERINFO = re.compile(r"://([^:/@\s]*):[^@/\s]*@")
#: MLflow's error codes for "no such model" and "no such alias" (every other failure is an error)
_ALIAS_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def shown_uri(uri: str) -> str:
    """The URI with its password hidden, for messages.

    >>> shown_uri("http://admin:s3cret@mlflow:5000")
    'http://admin:***@mlflow:5000'
    """
    parts = urlsplit(uri)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def aiops_metadata(tags: Mapping[str, str]) -> dict[str, Any]:
    """The metadata aiops wrote on a model version (its ``aiops.meta`` tag); ``{}`` when there is none.

    >>> aiops_metadata({"aiops.meta": '{"features": ["a"]}'})
    {'features': ['a']}
    """
    try:
        meta = json.loads(tags.get(_META_TAG) or "{}")
    except ValueError:
        return {}
    return dict(meta) if isinstance(meta, dict) else {}


def _flat_meta(*sources: Mapping[str, str]) -> dict[str, Any]:
    """``training_data``, ``training_window.{source,from,to,rows}`` and ``features`` from tags or params
    (the first source that has a key wins), for versions whose training code wrote them one by one."""
    meta: dict[str, Any] = {}
    window: dict[str, Any] = {}
    for found in sources:
        for key, value in found.items():
            if key == "training_data" and "training_data" not in meta:
                meta["training_data"] = value
            elif key.startswith("training_window.") and key[len("training_window.") :] not in window:
                window[key[len("training_window.") :]] = value
            elif key == "features" and "features" not in meta:
                try:
                    names = json.loads(value)
                except ValueError:
                    names = [n.strip() for n in str(value).split(",") if n.strip()]
                if isinstance(names, list):
                    meta["features"] = names
    if window:
        meta["training_window"] = window
    return meta


def _context(dataset_input: Any) -> str | None:
    for tag in dataset_input.tags or []:
        if tag.key == "mlflow.data.context":
            return str(tag.value)
    return None


def _choose_dataset(name: str | None, inputs: list[Any], where: str) -> Any:
    """The logged dataset ``name``, else the one logged for training, else the only one."""
    names = [f"{d.dataset.name} ({_context(d) or 'no context'})" for d in inputs]
    if name:
        picked = [d for d in inputs if d.dataset.name == name]
        if not picked:
            raise RegistryError(f"the run of {where} logged no dataset {name!r}: {names}")
    else:
        picked = [d for d in inputs if _context(d) == "training"] or inputs
    if len({d.dataset.digest for d in picked}) > 1:
        raise RegistryError(f"the run of {where} logged several datasets {names}: set 'dataset' to one's name")
    return picked[0]


def _op_tag(key: str) -> str:
    return "aiops.op." + hashlib.sha256(key.encode()).hexdigest()[:20]


class MlflowRegistry(ModelRegistry):
    """Registry calls on an MLflow tracking/registry store (file, SQLite or server URI)."""

    def __init__(self, tracking_uri: str, *, experiment: str = "aiops-retrain") -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self._client: Any = None

    @property
    def where(self) -> str:
        return f"MLflow at {shown_uri(self.tracking_uri)}"

    def _error(self, what: str, exc: BaseException) -> RegistryError:
        """A failed MLflow call as a RegistryError naming the store and what was asked, password hidden."""
        message = getattr(exc, "message", None) or str(exc)
        first = str(message).strip().splitlines()[0] if str(message).strip() else ""
        first = _USERINFO.sub(r"://\1:***@", first)  # MLflow's messages repeat the URL, password included
        return RegistryError(f"{self.where}: {what}: {type(exc).__name__}: {first}")

    def _call(self, what: str, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except Exception as exc:  # MlflowException, a connection error, a bad URI scheme...
            raise self._error(what, exc) from exc

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from mlflow import MlflowClient
            except ImportError as exc:
                raise RegistryError(
                    "the MLflow registry needs the mlflow extra: pip install 'aiops[mlflow]' (installs mlflow-skinny)",
                    recoverable=False,
                    reason="dependency",
                ) from exc
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    # -- reading ---------------------------------------------------------------------------------------

    def _versions(self, name: str) -> list[Any]:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name='{name}'")
        except MlflowException:
            return []
        return sorted(found, key=lambda v: int(v.version))

    def versions(self, name: str) -> list[str]:
        return [str(v.version) for v in self._versions(name)]

    def _model(self, name: str) -> Any | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException:
            return None

    def alias(self, name: str, alias: str) -> str | None:
        """One call; no such model or alias is None, an unreachable store a RegistryError (not "no alias")."""
        client = self.client
        try:
            mv = client.get_model_version_by_alias(name, alias)
        except Exception as exc:
            if getattr(exc, "error_code", None) in _ALIAS_MISSING:
                return None
            raise self._error(f"resolving {name}@{alias}", exc) from exc
        return str(mv.version)

    def metadata(self, name: str, version: str) -> dict[str, Any]:
        mv = self.client.get_model_version(name, version)
        meta = aiops_metadata(mv.tags)
        meta.update({"sha256": mv.tags.get(_SHA_TAG), "idempotency_key": mv.tags.get(_KEY_TAG), "source": mv.source})
        return dict(meta)

    def load(self, name: str, version: str | None = None, *, alias: str = "champion") -> Any:
        import mlflow.sklearn

        if version is None:
            version = self.alias(name, alias)
            if version is None:
                raise RegistryError(f"model {name} has no {alias!r} alias", recoverable=False)
        mv = self.client.get_model_version(name, version)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(self.client.download_artifacts(mv.run_id, "model", tmp))
            if sha256_file(local / "model.pkl") != mv.tags.get(_SHA_TAG):
                raise RegistryError(f"model {name} version {version}: artefact hash mismatch")
            return mlflow.sklearn.load_model(str(local))

    @contextlib.contextmanager
    def training_data(
        self, name: str, version: str, *, artifact: str | None = None, dataset: str | None = None
    ) -> Iterator[TrainingData]:
        """The training rows of a version, from the first of these that it has:

        1. ``artifact``, when given: that artefact of the version's run (downloaded to a temporary directory,
           deleted when the block ends);
        2. ``training_data`` / ``training_window`` metadata (no path: the caller reads it): the ``aiops.meta``
           version tag the retrain remediation writes, else version tags, run tags or run params
           ``training_data``, ``training_window.source``/``.from``/``.to``/``.rows`` (and ``features``);
        3. the dataset the run logged as an input (``mlflow.log_input``): ``dataset`` by name, else the one
           logged with context ``training``, else the only one; its source (a local path, or a URI MLflow can
           download: s3, gs, http...) is the path.
        """
        where = f"{name} version {version}"
        mv = self._call(f"model {where}", self.client.get_model_version, name, version)
        run_id = self._run_id(mv)
        run = self._call(f"run {run_id} of {where}", self.client.get_run, run_id) if run_id else None
        meta: dict[str, Any] = aiops_metadata(mv.tags or {})
        if not names_training_data(meta):
            flat = _flat_meta(mv.tags or {}, *((run.data.tags, run.data.params) if run is not None else ()))
            meta = {**flat, **{k: v for k, v in meta.items() if k not in flat}}
        if artifact:
            if run is None:
                raise RegistryError(f"{where} has no run to read artefact {artifact!r} from")
            with tempfile.TemporaryDirectory(prefix="aiops-ref-") as tmp:
                what = f"artefact {artifact!r} of run {run_id} ({where})"
                local = self._call(what, self.client.download_artifacts, run_id, artifact, tmp)
                yield TrainingData(meta, local, f"artefact {artifact} of run {run_id}")
            return
        if names_training_data(meta):
            yield TrainingData(meta)
            return
        inputs = list(run.inputs.dataset_inputs or []) if run is not None and run.inputs is not None else []
        if not inputs:
            raise RegistryError(
                f"{where} names no training data: its run {run_id or '(none)'} logged no dataset input, and it "
                "has no 'training_data' / 'training_window' metadata (or set 'artifact_path' to the run's "
                "artefact holding the training rows)"
            )
        with self._dataset_file(_choose_dataset(dataset, inputs, where), where) as (local, label):
            yield TrainingData(meta, local, label)

    def _run_id(self, mv: Any) -> str | None:
        if getattr(mv, "run_id", None):
            return str(mv.run_id)
        model_id = getattr(mv, "model_id", None)  # MLflow 3: a version of a logged model
        if model_id:
            logged = self._call(f"logged model {model_id}", self.client.get_logged_model, model_id)
            run_id = getattr(logged, "source_run_id", None)
            return str(run_id) if run_id else None
        return None

    @contextlib.contextmanager
    def _dataset_file(self, dataset_input: Any, where: str) -> Iterator[tuple[str, str]]:
        """A local file of a logged dataset (downloaded when remote) and its description."""
        ds = dataset_input.dataset
        label = f"dataset {ds.name!r} ({ds.source_type})"
        try:
            info = json.loads(ds.source) if ds.source else {}
        except ValueError:
            info = {}
        # a file (local, or at a URI MLflow downloads: s3, gs, azure, hdfs... sources have a "uri", http a
        # "url"); not a table or a Hugging Face dataset
        uri = (info.get("uri") or info.get("url")) if isinstance(info, dict) else None
        if ds.source_type == "local" and isinstance(uri, str):
            yield local_path(uri), f"{label} {uri}"
            return
        if not isinstance(uri, str):
            raise RegistryError(
                f"{label} of {where} has no file source (source {ds.source!r}): log it with "
                "mlflow.data.from_pandas(df, source='s3://.../train.parquet'), or set 'artifact_path'"
            )
        from mlflow.data import get_source

        with tempfile.TemporaryDirectory(prefix="aiops-ref-") as tmp:
            source = self._call(f"{label} of {where}", get_source, dataset_input)
            local = self._call(f"downloading {label} {uri} of {where}", source.load, tmp)
            yield str(local), f"{label} {uri}"

    def find_by_key(self, name: str, key: str) -> str | None:
        for mv in reversed(self._versions(name)):
            if mv.tags.get(_KEY_TAG) == key:
                return str(mv.version)
        return None

    def op_result(self, name: str, key: str) -> AliasMove | None:
        model = self._model(name)
        raw = (model.tags or {}).get(_op_tag(key)) if model is not None else None
        if not raw:
            return None
        data = json.loads(raw)
        return AliasMove.from_json(data) if isinstance(data, dict) and data.get("state") == "done" else None

    # -- writing ---------------------------------------------------------------------------------------

    def register(self, name: str, model: Any, metadata: Mapping[str, Any], *, key: str) -> str:
        """Log the model in MLflow's sklearn flavour (so ``mlflow.pyfunc.load_model("models:/NAME@champion")``
        works on the serving side) and register it as a new version; idempotent under ``key``."""
        import mlflow.sklearn
        from mlflow.exceptions import MlflowException

        existing = self.find_by_key(name, key)
        if existing is not None:
            return existing
        if self._model(name) is None:
            with contextlib.suppress(MlflowException):  # created concurrently
                self.client.create_registered_model(name)
        exp = self.client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(self.experiment)
        run = self.client.create_run(exp_id, tags={_KEY_TAG: key})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model"
            # pip_requirements given: no slow dependency inference; cloudpickle: what the flavour loads back
            mlflow.sklearn.save_model(
                model, str(path), serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
            )
            digest = sha256_file(path / "model.pkl")
            self.client.log_artifacts(run.info.run_id, str(path), "model")
        self.client.set_terminated(run.info.run_id)
        faults.point("register:artefact-written")
        tags = {_KEY_TAG: key, _SHA_TAG: digest, _META_TAG: json.dumps(dict(metadata), default=str)[:4900]}
        mv = self.client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags
        )
        faults.point("register:committed")
        return str(mv.version)

    def _record(self, name: str, key: str, data: dict[str, Any]) -> None:
        self.client.set_registered_model_tag(name, _op_tag(key), json.dumps(data, default=str))

    def _intent(self, name: str, key: str) -> dict[str, Any] | None:
        model = self._model(name)
        raw = (model.tags or {}).get(_op_tag(key)) if model is not None else None
        return dict(json.loads(raw)) if raw else None

    def promote(self, name: str, version: str, *, key: str, reason: str = "") -> AliasMove:
        faults.point("promote:start")
        done = self.op_result(name, key)
        if done is not None:
            return done
        if version not in self.versions(name):
            raise RegistryError(f"model {name}: version {version} does not exist")
        before = {a: self.alias(name, a) for a in ("champion", "previous")}
        old = before["champion"]
        if old is not None and old != version:
            self.client.set_registered_model_alias(name, "previous", old)
        faults.point("promote:tmp-written")
        self.client.set_registered_model_alias(name, "champion", version)
        faults.point("promote:replaced")
        return self._done(name, key, "promote", before, reason)

    def rollback(self, name: str, *, key: str, reason: str = "") -> AliasMove:
        faults.point("rollback:start")
        intent = self._intent(name, key)
        if intent is not None and intent.get("state") == "done":
            return AliasMove.from_json(intent)
        if intent is not None:
            target, before = str(intent["target"]), dict(intent["before"])
        else:
            before = {a: self.alias(name, a) for a in ("champion", "previous")}
            if before["previous"] is None:
                raise RegistryError(f"model {name}: no 'previous' version to roll back to")
            target = str(before["previous"])
            self._record(name, key, {"state": "started", "target": target, "before": before})
        self.client.set_registered_model_alias(name, "champion", target)  # first, so champion is never bad
        faults.point("rollback:tmp-written")
        old = before["champion"]
        if old is not None and old != target:
            self.client.set_model_version_tag(name, old, _BAD_TAG, "true")
        older = [
            str(v.version)
            for v in self._versions(name)
            if int(v.version) < int(target) and v.tags.get(_BAD_TAG) != "true"
        ]
        if older:
            self.client.set_registered_model_alias(name, "previous", older[-1])
        elif self.alias(name, "previous") is not None:
            self.client.delete_registered_model_alias(name, "previous")
        faults.point("rollback:replaced")
        return self._done(name, key, "rollback", before, reason)

    def _done(
        self, name: str, key: str, op: Literal["promote", "rollback"], before: dict[str, Any], reason: str
    ) -> AliasMove:
        """Record the finished move under its key (so a repeat returns it) and return it as recorded."""
        after = {a: self.alias(name, a) for a in ("champion", "previous")}
        record = AliasMove(op, before, after, time.time(), reason).to_json()
        self._record(name, key, {**record, "state": "done"})
        return AliasMove.from_json(record)

    def fsck(self, name: str) -> list[str]:
        problems = []
        versions = {str(v.version): v for v in self._versions(name)}
        model = self._model(name)
        for alias, version in ((model.aliases or {}) if model is not None else {}).items():
            if str(version) not in versions:
                problems.append(f"alias {alias} -> {version}: no such version")
            elif versions[str(version)].tags.get(_SHA_TAG) is None:
                problems.append(f"alias {alias} -> {version}: version has no artefact hash")
        champion = (model.aliases or {}).get("champion") if model is not None else None
        if (
            champion is not None
            and versions.get(str(champion)) is not None
            and (versions[str(champion)].tags.get(_BAD_TAG) == "true")
        ):
            problems.append(f"champion {champion} is marked bad")
        return problems

"""A model registry on a plain filesystem: versioned artefacts, metadata, and aliases moved atomically.

Layout under ``root/<model>/``::

    versions/000001/model.joblib   the artefact (joblib; the hash in meta.json is checked before loading)
    versions/000001/meta.json      sha256, training window, metrics, parent version, idempotency key
    registry.json                  aliases (champion, previous, ...), versions marked bad, the op log

Why this shape survives SIGKILL anywhere:

- A version is written into ``versions/.tmp-<random>/`` and becomes visible by one ``rename`` of the
  directory; a crash before it leaves an invisible temporary directory (``fsck`` reports it as garbage,
  ``gc`` removes it), never a half-written version.
- Every alias change rewrites ``registry.json`` through a temporary file, ``fsync`` and ``os.replace``: a
  reader sees the old file or the new one. Champion and previous move in the *same* replace, so there is
  no moment where one moved and the other did not.
- The op log inside ``registry.json`` records each promote/rollback under its idempotency key in that same
  replace, and a registered version carries its key in its metadata: repeating an operation after a crash
  returns the recorded result instead of doing it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from aiops import faults
from aiops.errors import RegistryError
from aiops.registry.base import AliasMove, ModelRegistry

ARTEFACT = "model.joblib"
META = "meta.json"
STATE = "registry.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_HISTORY = 100


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: Mapping[str, Any], fault_prefix: str = "") -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new content."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        if fault_prefix:
            faults.point(f"{fault_prefix}:tmp-written")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    if fault_prefix:
        faults.point(f"{fault_prefix}:replaced")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FilesystemRegistry(ModelRegistry):
    """Versioned scikit-learn (or any joblib-picklable) models with atomic aliases, in a directory.

    >>> import tempfile
    >>> reg = FilesystemRegistry(tempfile.mkdtemp())
    >>> v1 = reg.register("churn", {"w": 1}, {"metrics": {"accuracy": 0.9}}, key="train-1")
    >>> reg.register("churn", {"w": 1}, {}, key="train-1") == v1   # same key: no second version
    True
    >>> reg.promote("churn", v1, key="promote-1").champion
    '1'
    >>> reg.fsck("churn")
    []
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def where(self) -> str:
        return repr(str(self.root))

    # -- paths -----------------------------------------------------------------------------------------

    def _model_dir(self, name: str) -> Path:
        if not _NAME.match(name):
            raise RegistryError(f"invalid model name {name!r}", recoverable=False, reason="config")
        return self.root / name

    def _versions_dir(self, name: str) -> Path:
        return self._model_dir(name) / "versions"

    def _version_dir(self, name: str, version: str) -> Path:
        return self._versions_dir(name) / f"{int(version):06d}"

    # -- reading ---------------------------------------------------------------------------------------

    def versions(self, name: str) -> list[str]:
        """Committed versions, oldest first (temporary directories of interrupted writes are not versions)."""
        vdir = self._versions_dir(name)
        if not vdir.is_dir():
            return []
        return [str(int(p.name)) for p in sorted(vdir.iterdir()) if p.name.isdigit() and (p / META).is_file()]

    def metadata(self, name: str, version: str) -> dict[str, Any]:
        path = self._version_dir(name, version) / META
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"model {name} version {version}: no readable metadata ({exc})") from exc
        if not isinstance(data, dict):
            raise RegistryError(f"model {name} version {version}: metadata is not an object")
        return data

    def state(self, name: str) -> dict[str, Any]:
        """The aliases, the versions marked bad, the op log and the alias history."""
        path = self._model_dir(name) / STATE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"aliases": {}, "bad": [], "ops": {}, "history": []}
        except (OSError, ValueError) as exc:
            raise RegistryError(f"model {name}: unreadable {STATE}: {exc}") from exc
        data.setdefault("aliases", {})
        data.setdefault("bad", [])
        data.setdefault("ops", {})
        data.setdefault("history", [])
        return dict(data)

    def alias(self, name: str, alias: str) -> str | None:
        value = self.state(name)["aliases"].get(alias)
        return str(value) if value is not None else None

    def load(self, name: str, version: str | None = None, *, alias: str = "champion") -> Any:
        """The model object of a version (default: the one ``alias`` points at), after checking its hash."""
        import joblib

        if version is None:
            version = self.alias(name, alias)
            if version is None:
                raise RegistryError(f"model {name} has no {alias!r} alias", recoverable=False)
        meta = self.metadata(name, version)
        path = self._version_dir(name, version) / ARTEFACT
        if sha256_file(path) != meta.get("sha256"):
            raise RegistryError(f"model {name} version {version}: artefact hash mismatch")
        return joblib.load(path)

    def find_by_key(self, name: str, key: str) -> str | None:
        """The version registered under an idempotency key, if that registration committed."""
        for version in reversed(self.versions(name)):
            if self.metadata(name, version).get("idempotency_key") == key:
                return version
        return None

    def op_result(self, name: str, key: str) -> AliasMove | None:
        result = self.state(name)["ops"].get(key)
        return AliasMove.from_json(result) if isinstance(result, dict) else None

    # -- writing ---------------------------------------------------------------------------------------

    def register(self, name: str, model: Any, metadata: Mapping[str, Any], *, key: str) -> str:
        """Store a new version; idempotent under ``key`` (a committed registration is returned as is)."""
        import joblib

        faults.point("register:start")
        existing = self.find_by_key(name, key)
        if existing is not None:
            return existing
        vdir = self._versions_dir(name)
        vdir.mkdir(parents=True, exist_ok=True)
        tmp = vdir / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            artefact = tmp / ARTEFACT
            with artefact.open("wb") as out:
                joblib.dump(model, out)
                out.flush()
                os.fsync(out.fileno())
            faults.point("register:artefact-written")
            meta = {
                **dict(metadata),
                "name": name,
                "sha256": sha256_file(artefact),
                "format": "joblib",
                "idempotency_key": key,
                "created_at": time.time(),
            }
            with (tmp / META).open("w", encoding="utf-8") as out:
                json.dump(meta, out, indent=1, sort_keys=True, default=str)
                out.flush()
                os.fsync(out.fileno())
            _fsync_dir(tmp)
            faults.point("register:meta-written")
            while True:
                existing_numbers = [int(v) for v in self.versions(name)] + [
                    int(p.name) for p in vdir.iterdir() if p.name.isdigit()
                ]
                version = str(max(existing_numbers, default=0) + 1)
                try:
                    os.rename(tmp, self._version_dir(name, version))  # the commit point
                    break
                except OSError:  # a concurrent writer took that number (rename onto a non-empty dir fails)
                    continue
            _fsync_dir(vdir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        faults.point("register:committed")
        return version

    def promote(self, name: str, version: str, *, key: str, reason: str = "") -> AliasMove:
        """Make ``version`` the champion and the old champion ``previous``, in one atomic replace."""

        def change(aliases: dict[str, Any], bad: list[str]) -> None:
            old = aliases.get("champion")
            if old is not None and str(old) != version:
                aliases["previous"] = str(old)
            aliases["champion"] = version

        return self._move(name, key, "promote", change, check=version, reason=reason)

    def rollback(self, name: str, *, key: str, reason: str = "") -> AliasMove:
        """Champion back to ``previous``; the abandoned version is marked bad so it is never rolled back to.

        The new ``previous`` is the newest good version older than the new champion, so a second rollback
        has somewhere sensible to go.
        """
        state = self.state(name)
        target = state["aliases"].get("previous")
        if target is None:
            done = state["ops"].get(key)
            if isinstance(done, dict):
                return AliasMove.from_json(done)
            raise RegistryError(f"model {name}: no 'previous' version to roll back to")
        target = str(target)

        def change(aliases: dict[str, Any], bad: list[str]) -> None:
            old = aliases.get("champion")
            if old is not None and str(old) != target and str(old) not in bad:
                bad.append(str(old))
            aliases["champion"] = target
            older = [v for v in self.versions(name) if int(v) < int(target) and v not in bad]
            if older:
                aliases["previous"] = older[-1]
            else:
                aliases.pop("previous", None)

        return self._move(name, key, "rollback", change, check=target, reason=reason)

    def _move(
        self, name: str, key: str, op: Literal["promote", "rollback"], change: Any, *, check: str, reason: str
    ) -> AliasMove:
        faults.point(f"{op}:start")
        state = self.state(name)
        done = state["ops"].get(key)
        if isinstance(done, dict):
            return AliasMove.from_json(done)  # already happened under this key: never twice
        if check not in self.versions(name):
            raise RegistryError(f"model {name}: version {check} does not exist")
        meta = self.metadata(name, check)
        if sha256_file(self._version_dir(name, check) / ARTEFACT) != meta.get("sha256"):
            raise RegistryError(f"model {name} version {check}: artefact hash mismatch")
        aliases = dict(state["aliases"])
        before = dict(aliases)
        bad = list(state["bad"])
        change(aliases, bad)
        result = AliasMove(op, before, dict(aliases), time.time(), reason).to_json()
        ops = dict(state["ops"])
        ops[key] = result
        history = [*state["history"], {"key": key, **result}][-_HISTORY:]
        if len(ops) > _HISTORY * 10:  # bounded; the oldest keys are long settled
            ops = dict(list(ops.items())[-_HISTORY * 10 :])
        new_state = {"aliases": aliases, "bad": bad, "ops": ops, "history": history}
        self._model_dir(name).mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self._model_dir(name) / STATE, new_state, fault_prefix=op)
        return AliasMove.from_json(result)  # as a repeat will read it back

    # -- maintenance -----------------------------------------------------------------------------------

    def fsck(self, name: str) -> list[str]:
        """Problems that would make the registry inconsistent (empty list: consistent).

        Temporary directories of interrupted registrations are not problems: they are invisible; ``gc``
        removes them.
        """
        problems: list[str] = []
        try:
            state = self.state(name)
        except RegistryError as exc:
            return [str(exc)]
        versions = set(self.versions(name))
        vdir = self._versions_dir(name)
        if vdir.is_dir():
            for p in vdir.iterdir():
                if p.name.isdigit() and not (p / META).is_file():
                    problems.append(f"version dir {p.name} without metadata")
        for version in versions:
            meta = self.metadata(name, version)
            artefact = self._version_dir(name, version) / ARTEFACT
            if not artefact.is_file() or sha256_file(artefact) != meta.get("sha256"):
                problems.append(f"version {version}: artefact missing or hash mismatch")
        for alias, version in state["aliases"].items():
            if str(version) not in versions:
                problems.append(f"alias {alias} -> {version}: no such version")
        if state["aliases"].get("champion") is not None and str(state["aliases"]["champion"]) in state["bad"]:
            problems.append(f"champion {state['aliases']['champion']} is marked bad")
        for stray in self._model_dir(name).glob(f".{STATE}.*.tmp"):
            _ = stray  # an interrupted alias write: harmless, the real file is intact
        return problems

    def gc(self, name: str) -> int:
        """Remove leftovers of interrupted writes; returns how many were removed."""
        removed = 0
        vdir = self._versions_dir(name)
        for p in [*vdir.glob(".tmp-*"), *self._model_dir(name).glob(f".{STATE}.*.tmp")]:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed += 1
        return removed

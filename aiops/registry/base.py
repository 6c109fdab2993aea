"""The model registry's interface: what detectors, remediations and the demo may ask of any backend.

Why an abstract base class and not a Protocol: a backend states that it is one (``class X(ModelRegistry)``),
so a missing call is an error when the backend is instantiated, not when a remediation first reaches it
in production. Every write is idempotent under a caller-chosen ``key``, so a caller that crashed half-way
repeats the same call and gets the recorded result instead of a second version or a second alias move.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from aiops.errors import RegistryError

#: The alias serving resolves, and the one a rollback returns to.
CHAMPION = "champion"
PREVIOUS = "previous"


@dataclass(frozen=True)
class AliasMove:
    """What one promote or rollback did: the aliases before and after it, when, and why.

    Stored in the registry under the operation's key (as :meth:`to_json`), so a repeat of the operation
    returns the recorded move instead of moving again.

    >>> move = AliasMove("promote", {"champion": "1"}, {"champion": "2", "previous": "1"}, at=0.0)
    >>> move.champion, AliasMove.from_json(move.to_json()) == move
    ('2', True)
    """

    op: Literal["promote", "rollback"]
    before: Mapping[str, str | None] = field(default_factory=dict)
    after: Mapping[str, str | None] = field(default_factory=dict)
    at: float = 0.0
    reason: str = ""

    @property
    def champion(self) -> str | None:
        """The champion after the move."""
        return self.after.get(CHAMPION)

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "before": dict(self.before),
            "after": dict(self.after),
            "champion": self.champion,
            "at": self.at,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AliasMove:
        """The move as recorded (extra keys a backend keeps next to it, e.g. MLflow's ``state``, ignored)."""

        def aliases(value: Any) -> dict[str, str | None]:
            return {str(k): None if v is None else str(v) for k, v in dict(value or {}).items()}

        op: Literal["promote", "rollback"] = "rollback" if data.get("op") == "rollback" else "promote"
        return cls(
            op,
            aliases(data.get("before")),
            aliases(data.get("after")),
            float(data.get("at") or 0.0),
            str(data.get("reason") or ""),
        )


def local_path(name: str) -> str:
    """``file:///x`` -> ``/x`` (MLflow and metadata written by others name files by URI); anything else as is.

    >>> local_path("file:///data/train%20set.csv"), local_path("/data/train.csv")
    ('/data/train set.csv', '/data/train.csv')
    """
    if name.startswith("file:"):
        return unquote(urlsplit(name).path)
    return name


def names_training_data(meta: Mapping[str, Any]) -> bool:
    """Does the metadata say where the training rows are (``training_data``, or ``training_window.source``)?"""
    data, window = meta.get("training_data"), meta.get("training_window")
    return bool(isinstance(data, str) and data) or bool(isinstance(window, Mapping) and window.get("source"))


@dataclass(frozen=True)
class TrainingData:
    """Where the training rows of one model version are, as far as the registry knows.

    Either ``path``, a local file of the rows (CSV, JSONL or Parquet) that the backend found or fetched for
    the version (a run artefact, a logged dataset), described by ``description``; or no path, and the rows
    are named by ``metadata`` (``training_data``, ``training_window``), which the caller reads itself since
    only it knows the database a window's table lives in. ``metadata`` also carries ``features`` when the
    version names its model's inputs.
    """

    metadata: Mapping[str, Any]
    path: str | None = None
    description: str = ""


class ModelRegistry(ABC):
    """Versioned models with moveable aliases (``champion``, ``previous``); errors are ``RegistryError``."""

    # -- reading -------------------------------------------------------------------------------------------

    @abstractmethod
    def versions(self, name: str) -> list[str]:
        """Committed versions of a model, oldest first ([] when the model does not exist)."""

    @abstractmethod
    def alias(self, name: str, alias: str) -> str | None:
        """The version an alias points at, or None."""

    @abstractmethod
    def metadata(self, name: str, version: str) -> dict[str, Any]:
        """What the version was registered with (training window, scores, ...), plus ``sha256`` and
        ``idempotency_key``."""

    @property
    def where(self) -> str:
        """Where the registry is, as shown in messages (never a password)."""
        return type(self).__name__

    @contextmanager
    def training_data(
        self, name: str, version: str, *, artifact: str | None = None, dataset: str | None = None
    ) -> Iterator[TrainingData]:
        """Where the training rows of ``version`` are (a drift detector's reference), valid inside the block.

        Default: the version's metadata, for a backend that keeps nothing but what it was registered with
        (the filesystem registry). A backend that also records training runs (MLflow) overrides it to find
        the rows where that run put them: ``artifact``, a file the run logged; ``dataset``, the name of a
        dataset the run logged as an input. A backend without runs refuses both.
        """
        if artifact or dataset:
            raise RegistryError(
                f"{self.where}: 'artifact_path' and 'dataset' name a training run's files; this registry keeps no runs",
                recoverable=False,
            )
        yield TrainingData(self.metadata(name, version))

    @abstractmethod
    def load(self, name: str, version: str | None = None, *, alias: str = CHAMPION) -> Any:
        """The model object of ``version`` (default: the one ``alias`` points at), after checking its hash."""

    @abstractmethod
    def find_by_key(self, name: str, key: str) -> str | None:
        """The version registered under an idempotency key, if that registration committed."""

    @abstractmethod
    def op_result(self, name: str, key: str) -> AliasMove | None:
        """The recorded move of a finished promote/rollback under ``key``, or None."""

    @abstractmethod
    def fsck(self, name: str) -> list[str]:
        """Problems that make the model's registry state inconsistent ([]: consistent)."""

    # -- writing -------------------------------------------------------------------------------------------

    @abstractmethod
    def register(self, name: str, model: Any, metadata: Mapping[str, Any], *, key: str) -> str:
        """Store a new version and return it; a repeat under ``key`` returns the committed one."""

    @abstractmethod
    def promote(self, name: str, version: str, *, key: str, reason: str = "") -> AliasMove:
        """Make ``version`` the champion and the old champion ``previous``; once per ``key``."""

    @abstractmethod
    def rollback(self, name: str, *, key: str, reason: str = "") -> AliasMove:
        """Champion back to ``previous``, the abandoned version marked bad; once per ``key``."""

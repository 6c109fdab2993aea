"""Model registries the ML remediations move aliases in: a built-in filesystem one and an MLflow adapter.

Both answer the same small set of calls (``register``, ``promote``, ``rollback``, ``alias``, ``load``,
``metadata``, ``find_by_key``, ``op_result``, ``fsck``), every write idempotent under a key, so ``retrain``
and ``rollback`` do not care which one a config names.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiops_remediations.registry.fs import FilesystemRegistry


class ModelRegistry(Protocol):
    """What ``retrain`` and ``rollback`` need from a registry."""

    def register(self, name: str, model: Any, metadata: dict[str, Any], *, key: str) -> str: ...

    def promote(self, name: str, version: str, *, key: str, reason: str = "") -> dict[str, Any]: ...

    def rollback(self, name: str, *, key: str, reason: str = "") -> dict[str, Any]: ...

    def alias(self, name: str, alias: str) -> str | None: ...

    def load(self, name: str, version: str | None = None, *, alias: str = "champion") -> Any: ...

    def metadata(self, name: str, version: str) -> dict[str, Any]: ...

    def find_by_key(self, name: str, key: str) -> str | None: ...

    def op_result(self, name: str, key: str) -> dict[str, Any] | None: ...

    def fsck(self, name: str) -> list[str]: ...


def open_registry(uri: str) -> ModelRegistry:
    """``/path`` or ``file:///path`` -> filesystem registry; ``mlflow:<tracking-uri>`` -> MLflow adapter.

    >>> type(open_registry("/tmp/models")).__name__
    'FilesystemRegistry'
    """
    if uri.startswith("mlflow:"):
        from aiops_remediations.registry.mlflow import MlflowRegistry

        return MlflowRegistry(uri[len("mlflow:") :])
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return FilesystemRegistry(uri)


__all__ = ["FilesystemRegistry", "ModelRegistry", "open_registry"]

"""The model registry service: versioned models and their aliases, on a filesystem or in MLflow.

A core service, not a plugin: drift detectors read the champion's training data from it (their reference),
the retrain and rollback remediations move its aliases, and the demo serves whatever ``champion`` points at.
Each of them names a registry in its configuration with one URI and opens it with :func:`open_registry`;
all of them see the same :class:`ModelRegistry` interface, whichever backend the URI names.
"""

from __future__ import annotations

from collections.abc import Callable

from aiops.registry.base import CHAMPION, PREVIOUS, ModelRegistry, TrainingData, local_path
from aiops.registry.fs import FilesystemRegistry

#: How a plugin gets a registry from a configured URI (the plugin context carries one).
RegistryOpener = Callable[[str], ModelRegistry]

MLFLOW_PREFIX = "mlflow:"


def open_registry(uri: str) -> ModelRegistry:
    """``/path`` or ``file:///path`` -> filesystem registry; ``mlflow:<tracking-uri>`` -> MLflow adapter.

    The URI is the ``registry:`` value of the retrain and rollback remediations, unchanged since those
    kept the registry themselves, so existing configurations keep working.

    >>> type(open_registry("/tmp/models")).__name__
    'FilesystemRegistry'
    >>> type(open_registry("mlflow:http://mlflow:5000")).__name__
    'MlflowRegistry'
    """
    if uri.startswith(MLFLOW_PREFIX):
        from aiops.registry.mlflow import MlflowRegistry  # mlflow itself is imported only on first use

        return MlflowRegistry(uri[len(MLFLOW_PREFIX) :])
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return FilesystemRegistry(uri)


__all__ = [
    "CHAMPION",
    "MLFLOW_PREFIX",
    "PREVIOUS",
    "FilesystemRegistry",
    "ModelRegistry",
    "RegistryOpener",
    "TrainingData",
    "local_path",
    "open_registry",
]

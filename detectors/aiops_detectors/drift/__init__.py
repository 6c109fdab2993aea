"""Drift detectors: data drift of tables (per column and multivariate) and the alibi-detect backend.

Entry points (``aiops.detectors``): ``drift`` (:class:`TabularDrift`, aiops's default), ``ks``, ``psi``,
``mmd``, ``classifier``, ``alibi_*``, the performance detectors and the error-rate stream detectors
``page_hinkley`` and ``adwin``. Import the submodules, not this package, for the heavy ones.
"""

from __future__ import annotations

from .base import DriftDetector, DriftParams
from .tabular import TabularDrift, TabularDriftParams

__all__ = ["DriftDetector", "DriftParams", "TabularDrift", "TabularDriftParams"]

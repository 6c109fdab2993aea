"""Plugins: one base class per kind, the context they are started with, and the loader that finds them.

``from aiops.plugins import Detector`` (or ``Source``, ``Remediation``, ``Notifier``) is what a plugin
author subclasses; docs/plugins.md walks through each.
"""

from aiops.plugins.base import NoParams, Plugin
from aiops.plugins.context import (
    ClosablePushedEvents,
    PluginContext,
    PushedEvents,
)
from aiops.plugins.detector import Detector
from aiops.plugins.loader import (
    DETECTORS,
    GROUPS,
    NOTIFIERS,
    REMEDIATIONS,
    SOURCES,
    available,
    build,
    describe,
    load,
    params_model,
    validation_problems,
)
from aiops.plugins.notifier import Notifier
from aiops.plugins.remediation import Remediation
from aiops.plugins.source import Source

__all__ = [
    "DETECTORS",
    "GROUPS",
    "NOTIFIERS",
    "REMEDIATIONS",
    "SOURCES",
    "ClosablePushedEvents",
    "Detector",
    "NoParams",
    "Notifier",
    "Plugin",
    "PluginContext",
    "PushedEvents",
    "Remediation",
    "Source",
    "available",
    "build",
    "describe",
    "load",
    "params_model",
    "validation_problems",
]

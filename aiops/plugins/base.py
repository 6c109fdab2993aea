"""What every plugin kind shares: a ``Params`` model, test parameters, and the ``start``/``stop`` lifecycle.

A plugin is built from its config block alone (scikit-learn style: the constructor stores validated
parameters, the methods work), then started with a :class:`~aiops.plugins.context.PluginContext` that hands it
the daemon's services, and stopped when the daemon shuts down or a reload replaces it (APScheduler 3's
executors and job stores have the same ``start``/``shutdown`` pair). Both are idempotent.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from aiops.plugins.context import PluginContext


class NoParams(BaseModel):
    """Parameters of a plugin that takes none; unknown keys are still an error."""

    model_config = ConfigDict(extra="forbid")


# Parameters the registry has validated for the constructor now running (see ``Plugin.validate_params``).
_VALIDATED: ContextVar[BaseModel | None] = ContextVar("aiops_plugin_validated_params", default=None)


@contextmanager
def validated(params: BaseModel) -> Iterator[None]:
    """While a plugin is constructed by the registry, hand its constructor the parameters already validated."""
    token = _VALIDATED.set(params)
    try:
        yield
    finally:
        _VALIDATED.reset(token)


class Plugin(ABC):
    """Base of the four plugin kinds (:class:`Source`, :class:`Detector`, :class:`Remediation`,
    :class:`Notifier`)."""

    Params: ClassVar[type[BaseModel]] = NoParams
    """The plugin's configuration, a pydantic model: the config loader validates a block against it (with
    line numbers), ``aiops plugins`` and docs/configuration.md describe it."""

    params: Any
    """The validated parameters, an instance of ``Params``; a plugin declares ``params: MyParams`` to type it."""

    _context: PluginContext | None = None

    def __init__(self, **params: Any) -> None:
        """Store the validated parameters and nothing else (scikit-learn's rule: the constructor stores, the
        methods work). A plugin that derives more from them extends this, calling ``super().__init__``."""
        self.params = self.validate_params(params)

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        """Parameter sets the contract suite builds this plugin with (river's ``_unit_test_params``).

        The default, no parameters, suits a plugin whose every parameter has a default; a plugin with a
        required parameter must declare at least one set, or the contract suite fails for it.
        """
        return [{}]

    @classmethod
    def validate_params(cls, params: Mapping[str, Any]) -> Any:
        """The plugin's parameters as its ``Params`` model, for its constructor.

        Built by the registry (:func:`aiops.plugins.build`), the parameters were validated there once, with
        config line numbers, and are returned as they are; constructed directly (a test, a notebook) they
        are validated here.
        """
        given = _VALIDATED.get()
        if given is not None and type(given) is cls.Params:
            _VALIDATED.set(None)  # for this constructor only, not a plugin it might build in turn
            return given
        return cls.Params.model_validate(dict(params))

    def start(self, ctx: PluginContext) -> None:
        """Take the daemon's services; called once after building, before the first use. Subclasses that
        open resources extend it (calling ``super().start(ctx)``). Starting again replaces the context."""
        self._context = ctx

    def stop(self) -> None:  # noqa: B027 - a no-op by default on purpose: most plugins hold nothing
        """Release what :meth:`start` acquired; called at shutdown and when a reload replaces the plugin.
        Must be safe to call twice, and on a plugin that was never started."""

    @property
    def context(self) -> PluginContext | None:
        """The context the plugin was started with; None when used without the daemon (a test, a notebook)."""
        return self._context

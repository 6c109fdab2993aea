"""The process environment, as configuration: the one module outside the command line that reads it.

Why one place: the conventions let a config name values that live in the environment (``${VAR}`` in any
string, a secret by variable name in ``*_env`` parameters, variables a child process inherits). Reading them
through here keeps every other module free of ``os.environ``, so what a component sees is what its
configuration says, and ``tests/unit/test_architecture.py`` can hold the line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from aiops.config.yamlsource import expand_env


def variable(name: str) -> str | None:
    """The value of one variable a config names (a secret's ``*_env``), or None when it is not set."""
    return os.environ.get(name)


def inherited(names: Iterable[str]) -> dict[str, str]:
    """The variables of ``names`` that are set, for a child process that must see only those.

    >>> inherited(["AIOPS_TEST_SURELY_UNSET_VARIABLE"])
    {}
    """
    return {name: os.environ[name] for name in names if name in os.environ}


def expand(text: str) -> tuple[str, list[str]]:
    """``${VAR}``/``${VAR:-default}`` in a value that did not come through the YAML loader (which expands its
    own); returns the text and the names that are not set.

    >>> expand("${AIOPS_TEST_SURELY_UNSET_VARIABLE:-fallback}")
    ('fallback', [])
    """
    return expand_env(text, os.environ)

"""Keep the cyclic garbage collector's full passes short in the long-running daemon.

Why: CPython's full collection walks every object the collector tracks, with the interpreter lock held. In
the daemon nearly all of them (modules, classes, functions, the configuration, each check's detectors and
sources: ~125 000 objects with one push check of 1 000 series) are made at start and live until exit, yet
each full pass walked them all again: 50-75 ms on this project's 2-core test machine, every ~8 s at 1 000
pushed points a second. Every request and tick that arrived meanwhile waited for it, and the p99 of an
ingest POST was one such pass (77 ms of a 95 ms p99). Moved to the permanent generation (``gc.freeze``),
they are skipped: a full pass then walks the ~1 000 objects made since, well under a millisecond.

What it costs: cyclic garbage among frozen objects is not collected until they are unfrozen. Objects freed
by reference counting (nearly all) are freed as before; a reload, which replaces the runtime the start-up
made, unfreezes, collects and freezes again, so the replaced runtime's cycles do not stay.
"""

from __future__ import annotations

import gc


def freeze_start_up_objects() -> None:
    """Collect the start-up's own garbage, then exempt everything alive from later full passes."""
    gc.collect()
    gc.freeze()


def refreeze_after_reload() -> None:
    """Give the objects a reload replaced back to the collector, collect them, and freeze what is left."""
    gc.unfreeze()
    freeze_start_up_objects()


def thaw() -> None:
    """At shutdown: an embedding process (a test, a notebook) gets its collector back as it was."""
    gc.unfreeze()

"""Fitting text into a width on word boundaries: CLI tables, the demo's event lines, report headings,
notification titles.

Why one module: a cut in the middle of a word (``promote if accuracy impro``, ``recycle-worker``) reads as
a different word, or as the whole name; every place that shortens text marks the cut with ``…`` after a
whole word, and the full text stays available elsewhere (``--json``, ``-o wide``, the message body).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

ELLIPSIS = "…"


def abbreviate(text: str, width: int, *, one_line: bool = True) -> str:
    """``text`` in at most ``width`` characters, cut after a whole word and marked with ``…``; on one line
    unless ``one_line=False`` (a message body keeps its line breaks).

    A word longer than half the width is the one case cut inside a word (still marked).

    >>> abbreviate("promote if accuracy improves by 0.01", 24)
    'promote if accuracy…'
    >>> abbreviate("recycle-workers", 30), abbreviate("recycle-workers", 10)
    ('recycle-workers', 'recycle-w…')
    >>> abbreviate("line one\\nline two", 14, one_line=False)
    'line one\\nline…'
    """
    flat = " ".join(text.split()) if one_line else text
    if len(flat) <= width:
        return flat
    if width <= 1:
        return ELLIPSIS[:width]
    head = flat[: width - 1]
    if not flat[width - 1].isspace():
        # the cut falls inside a word: drop that word, unless it is the only one or most of the text (a
        # huge token is cut inside rather than leaving the line nearly empty)
        space = max(head.rfind(c) for c in " \n\t")
        head = head[:space] if space >= len(head) // 2 else head
    return head.rstrip(" \n\t,(:-") + ELLIPSIS


def wrap(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken between words (never inside a name such as
    ``prediction-log-freshness``, unless one word alone is wider than the line).

    >>> wrap("restart done; recycle-workers done", 16)
    ['restart done;', 'recycle-workers', 'done']
    """
    return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False) or [""]


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    flexible: Sequence[int] = (),
    width: int | None = None,
    right: Sequence[int] = (),
    gap: str = "  ",
) -> list[str]:
    """Lines of a plain-text table. Every column is as wide as its longest cell, so names are never cut;
    when ``width`` is given and the table is wider, the ``flexible`` columns (free text: summaries, plans)
    share what is left and are abbreviated on word boundaries. ``width=None`` prints every cell whole.

    >>> print("\\n".join(table(["ID", "CHECK", "SUMMARY"],
    ...     [["1", "prediction-log-freshness", "newest ts is 8s old (limit 4s)"]], flexible=[2], width=48)))
    ID  CHECK                     SUMMARY
    1   prediction-log-freshness  newest ts is 8s old…
    """
    cells = [[" ".join(str(c).split()) for c in row] for row in rows]
    natural = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    widths = list(natural)
    if width is not None and flexible:
        fixed = sum(w for i, w in enumerate(natural) if i not in flexible) + len(gap) * (len(headers) - 1)
        widths = _share(natural, list(flexible), max(0, width - fixed))
    lines = []
    for row in [list(headers), *cells]:
        parts = []
        for i, cell in enumerate(row):
            text = abbreviate(cell, widths[i]) if len(cell) > widths[i] else cell
            last = i == len(row) - 1
            parts.append(text.rjust(widths[i]) if i in right else (text if last else text.ljust(widths[i])))
        lines.append(gap.join(parts).rstrip())
    return lines


def _share(natural: list[int], flexible: list[int], room: int, minimum: int = 20) -> list[int]:
    """Widths for the flexible columns: narrow ones keep their natural width, the rest split the room, but
    none gets less than ``minimum`` (a line a little too long wraps; two words and an ellipsis say nothing)."""
    widths = list(natural)
    pending = sorted(flexible, key=lambda i: natural[i])
    while pending:
        share = max(minimum, room // len(pending))
        i = pending.pop(0)
        widths[i] = min(natural[i], share)
        room = max(0, room - widths[i])
    return widths

"""Inline SVG charts: a line chart with event markers, overlaid histograms and a bar chart.

Why hand-written SVG and no plotting library: the demo report and the web console must render anywhere (a CI
artefact, an air-gapped browser), identically, without a script and without fetching anything. Both draw
with these functions, so a plot in the console looks like the same plot in the report.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from aiops.text import abbreviate

Series = tuple[str, Sequence[float], Sequence[float], str]
Marker = tuple[float, str, str]


def esc(value: Any) -> str:
    """Text or attribute value, HTML-escaped."""
    return html.escape(str(value), quote=True)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round axis ticks between lo and hi."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def line_chart(
    series: Sequence[Series],
    markers: Sequence[Marker] = (),
    *,
    hline: tuple[float, str] | None = None,
    xlabel: str = "demo seconds",
    ylabel: str = "",
    width: int = 900,
    height: int = 230,
    dots: bool = False,
) -> str:
    """An SVG line chart: series as (name, xs, ys, colour), vertical markers as (x, label, colour); ``dots``
    also draws each point (for sparse series, where a line alone hides how few points there are)."""
    left, right, top, bottom = 60, 20, 18, 38
    xs_all = [x for _, xs, _, _ in series for x in xs] + [m[0] for m in markers]
    ys_all = [y for _, _, ys, _ in series for y in ys if math.isfinite(y)] + ([hline[0]] if hline else [])
    if not xs_all or not ys_all:
        return "<p class='muted'>(no data to plot)</p>"
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = min(0.0, min(ys_all)), max(ys_all) * 1.1 or 1.0
    x1 = x1 if x1 > x0 else x0 + 1
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(ylabel)}">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fbfcfd" stroke="#dde3ea"/>',
    ]
    for t in _ticks(y0, y1):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eef1f4"/>'
            f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" font-size="11" text-anchor="end" fill="#5f6b7a">'
            f"{_fmt(t)}</text>"
        )
    for t in _ticks(x0, x1, 8):
        out.append(
            f'<text x="{sx(t):.1f}" y="{top + ph + 15}" font-size="11" text-anchor="middle" '
            f'fill="#5f6b7a">{_fmt(t)}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 4}" font-size="11" text-anchor="middle" fill="#5f6b7a">'
        f"{esc(xlabel)}</text>"
    )
    out.append(
        f'<text x="12" y="{top + ph / 2}" font-size="11" text-anchor="middle" fill="#5f6b7a" '
        f'transform="rotate(-90 12 {top + ph / 2})">{esc(ylabel)}</text>'
    )
    if hline is not None:
        y = sy(hline[0])
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#b3261e" '
            f'stroke-dasharray="5 4"/><text x="{left + pw - 4}" y="{y - 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#b3261e">{esc(hline[1])}</text>'
        )
    for _name, xs, ys, color in series:
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=False) if math.isfinite(y))
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{points}"/>')
    placed = place_labels([(sx(x), label) for x, label, _ in markers], left, left + pw)
    for (x, label, color), (tx, lane, anchor) in zip(markers, placed, strict=True):
        px = sx(x)
        out.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{top}" y2="{top + ph}" stroke="{color}" stroke-width="1.5"/>'
            f'<text class="marker-label" x="{tx:.1f}" y="{top + 12 + LANE_HEIGHT * lane}" font-size="{LABEL_FONT}" '
            f'font-family="monospace" text-anchor="{anchor}" fill="{color}">{esc(label)}</text>'
        )
    if dots:
        for _name, xs, ys, color in series:
            out.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"/>'
                for x, y in zip(xs, ys, strict=False)
                if math.isfinite(y)
            )
    out.append("</svg>")
    legend = "".join(f'<span><i class="swatch" style="background:{c}"></i>{esc(n)}</span>' for n, _, _, c in series)
    return "".join(out) + f'<div class="legend muted">{legend}</div>'


LABEL_FONT = 11  # px; marker labels are monospace, so their width is known before a browser draws them
LABEL_CHAR = 0.62 * LABEL_FONT  # a monospace glyph's advance is about 0.6 em; rounded up to stay clear
LANE_HEIGHT = 13


def place_labels(marks: Sequence[tuple[float, str]], lo: float, hi: float) -> list[tuple[float, int, str]]:
    """Where each marker's label goes so that no two overlap: (x, lane, text-anchor) per marker.

    A label sits right of its line, or left of it when it would run past ``hi``; it takes the first lane
    (row, from the top) where it overlaps no label already placed. Markers seconds apart ("restart done",
    "recycle-workers done") therefore stack instead of printing over each other.

    >>> place_labels([(100, "restart done"), (110, "recycle-workers done"), (400, "healed")], 60, 880)
    [(103, 0, 'start'), (113, 1, 'start'), (403, 0, 'start')]
    """
    lanes: list[list[tuple[float, float]]] = []
    out: list[tuple[float, int, str]] = []
    for px, label in marks:
        width = len(label) * LABEL_CHAR
        if px + 3 + width <= hi or px - 3 - width < lo:
            span, placed = (px + 3, px + 3 + width), (px + 3, "start")
        else:
            span, placed = (px - 3 - width, px - 3), (px - 3, "end")
        lane = next(
            (i for i, used in enumerate(lanes) if all(span[1] + 4 <= a or span[0] >= b + 4 for a, b in used)),
            len(lanes),
        )
        if lane == len(lanes):
            lanes.append([])
        lanes[lane].append(span)
        out.append((placed[0], lane, placed[1]))
    return out


def histogram(
    reference: Sequence[float], current: Sequence[float], title: str, width: int = 440, height: int = 200
) -> str:
    """Two overlaid histograms (share of rows per bin): the reference and the drifted window."""
    values = [v for v in [*reference, *current] if math.isfinite(v)]
    if not reference or not current or not values:
        return "<p class='muted'>(no data)</p>"
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1
    bins = 24
    left, top, bottom = 40, 6, 30
    pw, ph = width - left - 10, height - top - bottom

    def shares(data: Sequence[float]) -> list[float]:
        counts = [0] * bins
        for v in data:
            counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
        return [c / len(data) for c in counts]

    ref, cur = shares(reference), shares(current)
    top_share = max(max(ref), max(cur)) * 1.1
    bw = pw / bins
    # the title is HTML, not SVG text: a browser wraps it between words, where SVG text is clipped mid-word
    # at the plot's edge ("mean_area (dis")
    out = [
        f'<figure style="margin:0;width:{width}px"><figcaption style="font-weight:600;font-size:12px;'
        f'padding-left:{left}px">{esc(title)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(title)}">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fbfcfd" stroke="#dde3ea"/>',
    ]
    for shares_, color in ((ref, "#1a73e8"), (cur, "#e37400")):
        for i, s in enumerate(shares_):
            h = s / top_share * ph
            out.append(
                f'<rect x="{left + i * bw:.1f}" y="{top + ph - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                f'fill="{color}" fill-opacity="0.45"/>'
            )
    for t in _ticks(lo, hi, 4):
        x = left + (t - lo) / (hi - lo) * pw
        out.append(
            f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle" fill="#5f6b7a">{_fmt(t)}</text>'
        )
    out.append("</svg></figure>")
    return "".join(out)


def bar_chart(bars: Sequence[tuple[str, float, str]], title: str, width: int = 440, height: int = 200) -> str:
    """Horizontal bars as (label, value, colour): e.g. each column's drift statistic, the drifted ones red."""
    shown = [(label, value, color) for label, value, color in bars if math.isfinite(value)][:12]
    if not shown:
        return "<p class='muted'>(no data)</p>"
    left, top, row = 140, 22, max(12, min(24, (height - 30) // len(shown)))
    top_value = max(max(v for _, v, _ in shown), 1e-12)
    pw = width - left - 50
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + row * len(shown) + 8}" '
        f'role="img" aria-label="{esc(title)}"><text x="4" y="14" font-size="12" font-weight="600">{esc(title)}</text>'
    ]
    for i, (label, value, color) in enumerate(shown):
        y = top + i * row
        w = max(1.0, value / top_value * pw)
        out.append(
            f'<text x="{left - 6}" y="{y + row * 0.7:.1f}" font-size="11" text-anchor="end">'
            f"<title>{esc(label)}</title>{esc(abbreviate(label, 22))}</text>"
            f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 4}" fill="{color}" fill-opacity="0.7"/>'
            f'<text x="{left + w + 4:.1f}" y="{y + row * 0.7:.1f}" font-size="10" fill="#5f6b7a">{_fmt(value)}</text>'
        )
    out.append("</svg>")
    return "".join(out)

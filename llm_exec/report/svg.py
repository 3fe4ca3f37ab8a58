"""Inline SVG charts for the report, written by hand: the page must open offline, with no script
and no library. Every label that may come from the ledger goes through `esc` (agent names,
models and error types are user data), and long labels are shortened with the full text kept
in a <title> tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# Tableau 10: distinguishable for most colour-blind readers and on paper.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
OTHER_COLOUR = "#bab0ac"
AXIS_COLOUR = "#6b6b6b"
GRID_COLOUR = "#e4e4e4"


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `maximum` (steps of 1, 2 or 5 times a power of ten)."""
    if maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < maximum * (1 - 1e-9):
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def tick_labels(ticks: Sequence[float], prefix: str = "", suffix: str = "", min_decimals: int = 0) -> list[str]:
    """Tick values with just the decimals their step needs ($0.05, not $0.0500)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(min_decimals, -math.floor(math.log10(step) + 1e-9))
    return [f"{prefix}{tick:,.{decimals}f}{suffix}" for tick in ticks]


def _num(value: float) -> str:
    """Coordinates with two decimals: enough on screen, and the markup stays small."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet"><title>{esc(title)}</title>']


def empty_chart(message: str, width: int = 960, height: int = 60) -> str:
    parts = _open(width, height, message)
    parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="muted">{esc(message)}</text>')
    return "".join([*parts, "</svg>"])


@dataclass
class Series:
    name: str
    colour: str
    values: list[float]  # one per category


def stacked_bars(categories: Sequence[str], series: Sequence[Series], *, title: str,
                 value_format: Callable[[float], str], notes: dict[int, str] | None = None, tick_prefix: str = "",
                 width: int = 960, height: int = 300) -> str:
    """Vertical bars, one per category, the series stacked. `notes` puts a "?" above a bar with a
    tooltip (the report uses it for calls whose cost is unknown, which cannot be drawn as a height)."""
    notes = notes or {}
    left, right, top, bottom = 78, 12, 16, 58
    legend_rows = math.ceil(len(series) / 4) if series else 0
    plot_h = height - top - bottom
    height += legend_rows * 20
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0.0))
    scale = plot_h / ticks[-1]
    plot_w = width - left - right
    band = plot_w / max(len(categories), 1)
    bar_w = max(1.0, min(48.0, band * 0.72))
    parts = _open(width, height, title)
    for tick, text in zip(ticks, tick_labels(ticks, prefix=tick_prefix), strict=True):
        y = top + plot_h - tick * scale
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" stroke="{GRID_COLOUR}"/>'
                     f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" class="tick">{esc(text)}</text>')
    # Thin the category labels so they never overlap (about 70 px per label).
    every = max(1, math.ceil(70 / band))
    for i, category in enumerate(categories):
        x = left + band * i + (band - bar_w) / 2
        y = top + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = value * scale
            y -= h
            parts.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar_w)}" height="{_num(max(h, 0.5))}" '
                         f'fill="{s.colour}"><title>{esc(category)} · {esc(s.name)}: '
                         f'{esc(value_format(value))}</title></rect>')
        if i in notes:
            parts.append(f'<text x="{_num(x + bar_w / 2)}" y="{_num(y - 4)}" text-anchor="middle" class="note">?'
                         f'<title>{esc(category)}: {esc(notes[i])}</title></text>')
        if i % every == 0:
            parts.append(f'<text x="{_num(x + bar_w / 2)}" y="{top + plot_h + 16}" text-anchor="middle" '
                         f'class="tick">{esc(shorten(category, 12))}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
                 f'stroke="{AXIS_COLOUR}"/>')
    legend_y = top + plot_h + 40
    for i, s in enumerate(series):
        x = left + (i % 4) * 215
        y = legend_y + (i // 4) * 20
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{s.colour}"/>'
                     f'<text x="{x + 18}" y="{y}" class="legend">{esc(shorten(s.name, 28))}'
                     f'<title>{esc(s.name)}</title></text>')
    return "".join([*parts, "</svg>"])


@dataclass
class Spread:
    """One row of the latency chart: a model's observed range and percentiles."""

    label: str
    low: float
    p50: float
    p95: float
    p99: float
    high: float


def spread_rows(rows: Sequence[Spread], *, title: str, value_format: Callable[[float], str],
                tick_suffix: str = "", width: int = 960) -> str:
    """Per row: a thin line from min to max, a box from p50 to p95, a dot at p50, a tick at p99,
    on one shared axis so models compare at a glance."""
    left, right, top, row_h = 230, 24, 14, 30
    height = top + row_h * len(rows) + 44
    ticks = nice_ticks(max((r.high for r in rows), default=0.0))
    plot_w = width - left - right
    scale = plot_w / ticks[-1]
    bottom = top + row_h * len(rows)

    def x(value: float) -> str:
        return _num(left + value * scale)

    parts = _open(width, height, title)
    for tick, text in zip(ticks, tick_labels(ticks, suffix=tick_suffix), strict=True):
        parts.append(f'<line x1="{x(tick)}" x2="{x(tick)}" y1="{top}" y2="{bottom}" stroke="{GRID_COLOUR}"/>'
                     f'<text x="{x(tick)}" y="{bottom + 16}" text-anchor="middle" class="tick">{esc(text)}</text>')
    for i, r in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        colour = PALETTE[i % len(PALETTE)]
        tip = (f"{r.label}: min {value_format(r.low)}, p50 {value_format(r.p50)}, p95 {value_format(r.p95)}, "
               f"p99 {value_format(r.p99)}, max {value_format(r.high)}")
        parts.append(f'<g><title>{esc(tip)}</title>'
                     f'<text x="{left - 10}" y="{_num(cy + 4)}" text-anchor="end" class="label">'
                     f'{esc(shorten(r.label, 34))}</text>'
                     f'<line x1="{x(r.low)}" x2="{x(r.high)}" y1="{_num(cy)}" y2="{_num(cy)}" stroke="{colour}" '
                     f'stroke-width="2"/>'
                     f'<rect x="{x(r.p50)}" y="{_num(cy - 8)}" width="{_num(max((r.p95 - r.p50) * scale, 2))}" '
                     f'height="16" fill="{colour}" fill-opacity="0.45" stroke="{colour}"/>'
                     f'<line x1="{x(r.p99)}" x2="{x(r.p99)}" y1="{_num(cy - 10)}" y2="{_num(cy + 10)}" '
                     f'stroke="#222" stroke-width="2"/>'
                     f'<circle cx="{x(r.p50)}" cy="{_num(cy)}" r="4" fill="#222"/></g>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{bottom}" y2="{bottom}" stroke="{AXIS_COLOUR}"/>')
    key_y = bottom + 36
    parts.append(f'<circle cx="{left + 6}" cy="{key_y - 4}" r="4" fill="#222"/>'
                 f'<text x="{left + 16}" y="{key_y}" class="legend">p50</text>'
                 f'<rect x="{left + 60}" y="{key_y - 11}" width="22" height="12" fill="{PALETTE[0]}" '
                 f'fill-opacity="0.45" stroke="{PALETTE[0]}"/>'
                 f'<text x="{left + 88}" y="{key_y}" class="legend">p50–p95</text>'
                 f'<line x1="{left + 170}" x2="{left + 170}" y1="{key_y - 12}" y2="{key_y + 2}" stroke="#222" '
                 f'stroke-width="2"/><text x="{left + 178}" y="{key_y}" class="legend">p99</text>'
                 f'<line x1="{left + 220}" x2="{left + 250}" y1="{key_y - 4}" y2="{key_y - 4}" stroke="{PALETTE[0]}" '
                 f'stroke-width="2"/><text x="{left + 256}" y="{key_y}" class="legend">min–max</text>')
    return "".join([*parts, "</svg>"])


def horizontal_bars(items: Sequence[tuple[str, float]], *, title: str, value_format: Callable[[float], str],
                    colour: str = "#e15759", width: int = 960) -> str:
    left, right, top, row_h = 230, 70, 10, 26
    height = top * 2 + row_h * len(items)
    maximum = max((v for _, v in items), default=0.0) or 1.0
    scale = (width - left - right) / maximum
    parts = _open(width, height, title)
    for i, (label, value) in enumerate(items):
        y = top + row_h * i
        w = max(value * scale, 1.0)
        parts.append(f'<g><title>{esc(label)}: {esc(value_format(value))}</title>'
                     f'<text x="{left - 10}" y="{y + 17}" text-anchor="end" class="label">'
                     f'{esc(shorten(label, 34))}</text>'
                     f'<rect x="{left}" y="{y + 4}" width="{_num(w)}" height="{row_h - 8}" fill="{colour}"/>'
                     f'<text x="{_num(left + w + 6)}" y="{y + 17}" class="tick">{esc(value_format(value))}</text></g>')
    return "".join([*parts, "</svg>"])

"""Line charts as standalone SVG, drawn by hand: no plotting dependency in the
load-test path, and the files render on any Git host or browser."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
W, H = 820, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 250, 40, 50


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        lo_e, hi_e = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        return [10.0 ** e for e in range(lo_e, hi_e + 1)]
    span = hi - lo or 1.0
    step = 10 ** math.floor(math.log10(span / 5))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= 6:
            step *= m
            break
    first = math.ceil(lo / step) * step
    out, v = [], first
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float | None]]], *,
               x_label: str, y_label: str, log_x: bool = False, y_min: float | None = None,
               y_max: float | None = None, hlines: dict[str, float] | None = None) -> str:
    # A step without a figure (None) is left out of the plot, not drawn as 0.
    pts = [(x, y) for s in series.values() for x, y in s if y is not None and (not log_x or x > 0)]
    if not pts:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="80">'
                f'<text x="10" y="40">{escape(title)}: no data</text></svg>')
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts] + list((hlines or {}).values())
    x0, x1 = min(xs), max(xs)
    if x0 == x1:
        x1 = x0 * 2 if log_x else x0 + 1
    y0 = min(ys) if y_min is None else y_min
    y1 = max(ys) if y_max is None else y_max
    if y0 == y1:
        y1 = y0 + 1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(x: float) -> float:
        if log_x:
            return LEFT + pw * (math.log10(x) - math.log10(x0)) / (math.log10(x1) - math.log10(x0))
        return LEFT + pw * (x - x0) / (x1 - x0)

    def sy(y: float) -> float:
        return TOP + ph * (1 - (min(max(y, y0), y1) - y0) / (y1 - y0))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for t in _ticks(x0, x1, log_x):
        if x0 <= t <= x1:
            x = sx(t)
            out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" '
                       'stroke="#eee"/>')
            out.append(f'<text x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">'
                       f'{_fmt(t)}</text>')
    for t in _ticks(y0, y1, False):
        y = sy(t)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 10}" text-anchor="middle">'
               f'{escape(x_label)}</text>')
    out.append(f'<text x="16" y="{TOP + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {TOP + ph / 2})">{escape(y_label)}</text>')
    for name, yv in (hlines or {}).items():
        y = sy(yv)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" '
                   f'stroke="#999" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{LEFT + pw - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#666">'
                   f'{escape(name)}</text>')
    for i, (name, s) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        # past the palette, repeat colours dashed so no two series look alike
        dash = ' stroke-dasharray="6 3"' if i >= len(COLOURS) else ""
        good = [(x, y) for x, y in s if y is not None and (not log_x or x > 0)]
        if good:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                       f'stroke-width="2"{dash}/>')
            if len(good) < 12:
                out.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>'
                           for x, y in good)
        ly = TOP + 16 + 18 * i
        out.append(f'<line x1="{W - RIGHT + 12}" y1="{ly - 4}" x2="{W - RIGHT + 32}" y2="{ly - 4}" '
                   f'stroke="{colour}" stroke-width="3"{dash}/>')
        out.append(f'<text x="{W - RIGHT + 38}" y="{ly}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)

"""Inline SVG charts built from numbers (no JavaScript library, no external file).

Every text that reaches the SVG is escaped here; callers pass the returned markup as safe.
"""

from __future__ import annotations

from html import escape

import numpy as np

_W, _H, _PAD = 520, 240, 40


def histogram(groups: dict[str, np.ndarray], colors: dict[str, str], *, bins: int = 20, title: str) -> str:
    """Overlaid histograms of values in [0, 1] (one per group), counts on the y axis."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = {k: np.histogram(np.clip(v[~np.isnan(v)], 0, 1), bins=edges)[0] for k, v in groups.items()}
    top = max([int(c.max()) for c in counts.values() if c.size] + [1])
    bw = (_W - 2 * _PAD) / bins
    parts = [_frame(title, "energy_in_box", "samples", top)]
    for gi, (name, c) in enumerate(counts.items()):
        for i, v in enumerate(c):
            if v == 0:
                continue
            h = (_H - 2 * _PAD) * v / top
            x = _PAD + i * bw + gi * bw / len(counts)
            parts.append(
                f'<rect x="{x:.1f}" y="{_H - _PAD - h:.1f}" width="{bw / len(counts) - 1:.1f}" height="{h:.1f}" '
                f'fill="{colors[name]}"><title>{escape(name)}: {v} in [{edges[i]:.2f}, {edges[i + 1]:.2f})</title></rect>'
            )
    parts.append(_legend(colors))
    return _svg(parts, title)


def scatter(x: np.ndarray, y: np.ndarray, color: np.ndarray, colors: dict[str, str], *, title: str, max_points: int = 2000) -> str:
    """Scatter of energy_in_box (y) against box_area_fraction (x), both in [0, 1], with y = x (a uniform map)."""
    keep = ~(np.isnan(x) | np.isnan(y))
    idx = np.flatnonzero(keep)
    if idx.size > max_points:  # a fixed, even thinning keeps the file small and the picture stable
        idx = idx[np.linspace(0, idx.size - 1, max_points).astype(int)]
    sx = lambda v: _PAD + (_W - 2 * _PAD) * float(v)  # noqa: E731
    sy = lambda v: _H - _PAD - (_H - 2 * _PAD) * float(v)  # noqa: E731
    parts = [_frame(title, "box_area_fraction", "energy_in_box", None)]
    parts.append(
        f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="#888" stroke-dasharray="4 3">'
        "<title>chance: a uniform map puts energy = box area in the box</title></line>"
    )
    parts.append(f'<text x="{sx(0.62):.0f}" y="{sy(0.56):.0f}" class="note">chance (uniform map)</text>')
    for i in idx:
        parts.append(f'<circle cx="{sx(x[i]):.1f}" cy="{sy(min(max(y[i], 0), 1)):.1f}" r="2.5" fill="{colors[color[i]]}" fill-opacity="0.7"/>')
    parts.append(_legend(colors))
    return _svg(parts, title)


def _frame(title: str, xlabel: str, ylabel: str, ymax: int | None) -> str:
    ticks = []
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = _PAD + (_W - 2 * _PAD) * t
        ticks.append(f'<text x="{x:.0f}" y="{_H - _PAD + 14}" text-anchor="middle" class="tick">{t:g}</text>')
        label = f"{t:g}" if ymax is None else f"{round(ymax * t)}"
        y = _H - _PAD - (_H - 2 * _PAD) * t
        ticks.append(f'<text x="{_PAD - 4}" y="{y + 4:.0f}" text-anchor="end" class="tick">{label}</text>')
    return (
        f'<rect x="{_PAD}" y="{_PAD}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD}" fill="none" stroke="#ccc"/>'
        + "".join(ticks)
        + f'<text x="{_W / 2:.0f}" y="{_H - 6}" text-anchor="middle" class="axis">{escape(xlabel)}</text>'
        + f'<text x="12" y="{_H / 2:.0f}" text-anchor="middle" class="axis" transform="rotate(-90 12 {_H / 2:.0f})">{escape(ylabel)}</text>'
    )


def _legend(colors: dict[str, str]) -> str:
    items = []
    for i, (name, color) in enumerate(colors.items()):
        x = _PAD + 8 + i * 110
        items.append(f'<rect x="{x}" y="10" width="10" height="10" fill="{color}"/><text x="{x + 14}" y="19" class="tick">{escape(name)}</text>')
    return "".join(items)


def _svg(parts: list[str], title: str) -> str:
    return (
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}" class="chart">'
        + "".join(parts)
        + "</svg>"
    )

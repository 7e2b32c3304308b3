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


Guide = tuple[tuple[float, float, float, float], str, str]
"""A dashed reference line: ((x0, y0, x1, y1) in data units, tooltip, label drawn at its end)."""


def scatter(
    x: np.ndarray, y: np.ndarray, color: np.ndarray, colors: dict[str, str], *, title: str,
    xlabel: str = "box_area_fraction", ylabel: str = "energy_in_box",
    xlim: tuple[float, float] = (0.0, 1.0), ylim: tuple[float, float] = (0.0, 1.0),
    guides: tuple[Guide, ...] = (((0.0, 0.0, 1.0, 1.0), "chance: a uniform map puts energy = box area in the box", "chance (uniform map)"),),
    max_points: int = 2000,
) -> str:
    """Scatter of y against x within the given limits (values clamped to them), with dashed guides."""
    keep = ~(np.isnan(x) | np.isnan(y))
    idx = np.flatnonzero(keep)
    if idx.size > max_points:  # a fixed, even thinning keeps the file small and the picture stable
        idx = idx[np.linspace(0, idx.size - 1, max_points).astype(int)]
    sx = lambda v: _PAD + (_W - 2 * _PAD) * (min(max(float(v), xlim[0]), xlim[1]) - xlim[0]) / (xlim[1] - xlim[0])  # noqa: E731
    sy = lambda v: _H - _PAD - (_H - 2 * _PAD) * (min(max(float(v), ylim[0]), ylim[1]) - ylim[0]) / (ylim[1] - ylim[0])  # noqa: E731
    parts = [_frame(title, xlabel, ylabel, None, xlim, ylim)]
    for (x0, y0, x1, y1), tip, label in guides:
        parts.append(f'<line x1="{sx(x0):.1f}" y1="{sy(y0):.1f}" x2="{sx(x1):.1f}" y2="{sy(y1):.1f}" stroke="#888" stroke-dasharray="4 3">'
                     f"<title>{escape(tip)}</title></line>")
        parts.append(f'<text x="{sx(x1) - 4:.0f}" y="{sy(y1) + 12:.0f}" text-anchor="end" class="note">{escape(label)}</text>')
    for i in idx:
        parts.append(f'<circle cx="{sx(x[i]):.1f}" cy="{sy(y[i]):.1f}" r="2.5" fill="{colors[color[i]]}" fill-opacity="0.7"/>')
    parts.append(_legend(colors))
    return _svg(parts, title)


def _frame(title: str, xlabel: str, ylabel: str, ymax: int | None,
           xlim: tuple[float, float] = (0.0, 1.0), ylim: tuple[float, float] = (0.0, 1.0)) -> str:
    ticks = []
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = _PAD + (_W - 2 * _PAD) * t
        ticks.append(f'<text x="{x:.0f}" y="{_H - _PAD + 14}" text-anchor="middle" class="tick">{xlim[0] + t * (xlim[1] - xlim[0]):g}</text>')
        label = f"{ylim[0] + t * (ylim[1] - ylim[0]):g}" if ymax is None else f"{round(ymax * t)}"
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

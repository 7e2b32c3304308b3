"""Places in words: a relative rectangle's zone of a 3x3 grid, stable id tokens, overlaps."""

from __future__ import annotations

from typing import Sequence

from pipeline.findings.words import and_join


def zone(rect: Sequence[float]) -> str:
    """The rectangle's zone of a 3×3 grid by its centre: "top-left", "top", ..., "centre"."""
    cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else ""
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else ""
    return f"{row}-{col}" if row and col else row or col or "centre"


CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def place_token(rects: Sequence[Sequence[float]]) -> str:
    """A stable id part for a set of places: one zone's name, "corners" for several corners, else zones joined by "+"."""
    zones = sorted({zone(r) for r in rects})
    if not zones:
        return "*"
    if len(zones) > 1 and all(z in CORNERS for z in zones):
        return "corners"
    return "+".join(zones)


def rects_words(rects: Sequence[Sequence[float]]) -> str:
    """"the top-left corner", "the corners", "the bottom edge and the centre"."""
    zones = sorted({zone(r) for r in rects}, key=lambda z: (z not in CORNERS, z))
    if len(zones) > 1 and all(z in CORNERS for z in zones):
        return "the four corners" if len(zones) == 4 else "the " + and_join([z + " corner" for z in zones]).replace(" corner and ", " and ")
    return and_join([zone_words(z) for z in zones])


def zone_words(z: str) -> str:
    return f"the {z} corner" if z in CORNERS else "the centre" if z == "centre" else f"the {z} edge"


def overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    """Two relative rectangles share some area."""
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


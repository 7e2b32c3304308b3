"""COCO segmentation (polygons, RLE) -> boolean masks at the model's input resolution (pure NumPy).

Pixel-centre rule (DESIGN §4): input pixel (i, j) is inside when its centre (j + 0.5, i + 0.5),
in input coordinates, lies inside the region. Polygons are scaled to the input and filled by
scanline (even-odd rule, half-open like boxes, so a rectangle polygon covers exactly the pixels
of the equal box); an RLE mask is decoded at the original size (column-major, as COCO writes it)
and each input pixel takes the original pixel its centre falls in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pipeline.data.geometry import Window


class MaskProblem(ValueError):
    """A segmentation that cannot be read (the sample is skipped with this reason)."""


def rle_counts(counts: str) -> list[int]:
    """Decode COCO's compressed RLE string (LEB128-like, 5 bits per char, deltas after the 3rd run)."""
    out: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            if p >= len(counts):
                raise MaskProblem("compressed RLE string ends inside a number")
            c = ord(counts[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def rle_decode(rle: dict, height: int, width: int) -> np.ndarray:
    """(height, width) bool from ``{"size": [h, w], "counts": str | [int]}`` (runs alternate 0s and 1s, column-major)."""
    size = rle.get("size")
    if not (isinstance(size, list) and len(size) == 2 and [int(v) for v in size] == [height, width]):
        raise MaskProblem(f"RLE size {size!r} does not match the {width}x{height} image (expected [{height}, {width}])")
    counts = rle.get("counts")
    runs = rle_counts(counts) if isinstance(counts, str) else counts
    if not (isinstance(runs, list) and all(isinstance(v, int) and v >= 0 for v in runs)):
        raise MaskProblem(f"RLE counts: expected a string or a list of non-negative integers, found {type(counts).__name__}")
    if sum(runs) != height * width:
        raise MaskProblem(f"RLE counts sum to {sum(runs)}, expected {height * width} (= {height} x {width})")
    values = np.zeros(len(runs), bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    return flat.reshape(width, height).T


def polygon_mask(polygon: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixel centres inside one polygon (``(n, 2)`` x, y vertices in the grid's coordinates)."""
    big_h, big_w = size
    x, y = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cy = np.arange(big_h) + 0.5  # (H,)
    # an edge crosses the row centre when its endpoints straddle it (half-open: y_lo <= cy < y_hi)
    lo, hi = np.minimum(y, y1), np.maximum(y, y1)
    crosses = (lo[None, :] <= cy[:, None]) & (cy[:, None] < hi[None, :])  # (H, E)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (cy[:, None] - y[None, :]) / (y1 - y)[None, :]
    xs = np.where(crosses, x[None, :] + t * (x1 - x)[None, :], np.inf)
    xs.sort(axis=1)
    mask = np.zeros(size, bool)
    cols = np.arange(big_w) + 0.5
    n_cross = crosses.sum(axis=1)
    for i in np.flatnonzero(n_cross):
        pts = xs[i, : n_cross[i]]
        for a, b in zip(pts[0::2], pts[1::2]):
            mask[i] |= (a <= cols) & (cols < b)
    return mask


def segmentation_mask(segmentation: Any, image_size: tuple[int, int], input_size: tuple[int, int],
                      win: "Window | None" = None) -> np.ndarray:
    """One annotation's COCO ``segmentation`` -> (H, W) bool at ``input_size`` (H, W).

    ``image_size`` is the original (width, height): polygons are in its pixels, RLE has its shape.
    ``win`` is the window the model sees (:mod:`pipeline.data.geometry`; default the whole image).
    """
    from pipeline.data.geometry import source_pixels, to_input

    width, height = image_size
    win = win or (0, 0, width, height)
    if isinstance(segmentation, list):
        mask = np.zeros(input_size, bool)
        for k, poly in enumerate(segmentation):
            if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
                    and all(isinstance(v, (int, float)) and np.isfinite(v) for v in poly)):
                raise MaskProblem(f"polygon {k}: expected [x1, y1, x2, y2, ...] with at least 3 points, found {str(poly)[:60]}")
            pts = to_input(np.asarray(poly, np.float64), win, input_size).reshape(-1, 2)
            mask |= polygon_mask(pts, input_size)  # the parts of one object (pycocotools merges them by union)
        return mask
    if isinstance(segmentation, dict):
        full = rle_decode(segmentation, height, width)
        rows, cols = source_pixels(win, input_size, image_size)
        return full[np.ix_(np.maximum(rows, 0), np.maximum(cols, 0))] & (rows >= 0)[:, None] & (cols >= 0)[None, :]
    raise MaskProblem(f"segmentation: expected a list of polygons or an RLE object, found {type(segmentation).__name__}")

"""Localisation metrics of native-resolution CAMs against boxes (pure NumPy, no TensorFlow).

Conventions (DESIGN.md §4):

* A box is ``(x0, y0, x1, y1)``, half-open, x = column. At the model's input resolution
  ``(H, W)`` pixel ``(i, j)`` is inside when its centre ``(j + 0.5, i + 0.5)`` is inside, so a box
  covers the pixel interval ``[ceil(x0 - 0.5), ceil(x1 - 0.5))`` of columns (rows likewise).
  :func:`pipeline.data.geometry.pixel_boxes` turns boxes into these integer intervals once, at load time.
* The upsampled map is the native ``(h, w)`` CAM resized bilinearly to ``(H, W)`` with
  half-pixel centres and clamped edges (``tf.image.resize(method="bilinear")``), clipped at 0.
  The CAM is ReLU'd, and a bilinear resize of non-negative values is non-negative, so the clip
  never changes anything here.

Bilinear upsampling is linear: ``up = U_h @ cam @ U_w.T``. So every energy sum over a box union
is computed on the native grid, with the union's mask folded into per-sample weights
(``U_h.T @ mask @ U_w``), and the full-resolution map is never built. The union of a sample's
boxes is split into the cells of the grid formed by all box edges, so each cell is a rectangle
fully in or out of the union. The pointing game needs the map's maximum: within one cell of the
native grid the upsampled map is bilinear, so its maximum over the output pixels lies on the
first or last output row and column of that cell; only those rows and columns are evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel-centre bilinear taps of each output index: (lower, upper, lerp), edges clamped."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    floor = np.floor(src)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(src), n_in - 1).astype(np.int64)
    return lower, upper, src - floor


@lru_cache(maxsize=64)
def bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) float64 matrix ``U`` with ``U @ v`` = 1-D bilinear resize of ``v`` (half-pixel centres)."""
    lower, upper, lerp = _taps(n_out, n_in)
    rows = np.arange(n_out)
    mat = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(mat, (rows, lower), 1.0 - lerp)
    np.add.at(mat, (rows, upper), lerp)
    mat.flags.writeable = False
    return mat


@lru_cache(maxsize=64)
def _prefix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out + 1, n_in): row ``k`` = sum of the first ``k`` rows of ``bilinear_matrix``."""
    out = np.zeros((n_out + 1, n_in), dtype=np.float64)
    np.cumsum(bilinear_matrix(n_out, n_in), axis=0, out=out[1:])
    out.flags.writeable = False
    return out


@lru_cache(maxsize=64)
def _candidates(n_out: int, n_in: int) -> np.ndarray:
    """Output indices that can hold the maximum of a bilinear upsample: first and last of each tap run."""
    lower, upper, _ = _taps(n_out, n_in)
    change = np.flatnonzero((lower[1:] != lower[:-1]) | (upper[1:] != upper[:-1]))
    idx = np.unique(np.concatenate([[0, n_out - 1], change, change + 1]))
    idx.flags.writeable = False
    return idx


def upsample(cams: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsample (B, h, w) -> (B, H, W), float64. For display and reference only."""
    h, w = cams.shape[-2:]
    # two matrix products (U_H @ cam @ U_W^T): a three-operand einsum sums naively, O(H h w W) per map
    return bilinear_matrix(size[0], h) @ np.asarray(cams, np.float64) @ bilinear_matrix(size[1], w).T


@dataclass(frozen=True)
class Scores:
    """Per-sample localisation metrics, each an array of shape (B,).

    ``energy_in_box`` is NaN when the map sums to zero; ``focus_score`` is NaN then and when the
    boxes cover the whole input; ``pointing_hit`` is 1.0 / 0.0, NaN when the map is all zero.
    ``judged`` is False exactly when localisation cannot be judged (flag ``no_signal``).
    """

    energy_in_box: np.ndarray
    box_area_fraction: np.ndarray
    energy_lift: np.ndarray
    focus_score: np.ndarray
    pointing_hit: np.ndarray
    judged: np.ndarray


def score(cams: np.ndarray, boxes: np.ndarray, valid: np.ndarray, size: tuple[int, int]) -> Scores:
    """Score native CAMs against box unions.

    Parameters
    ----------
    cams : (B, h, w) non-negative native-resolution CAMs (after ReLU, never normalised).
    boxes : (B, K, 4) int pixel intervals ``(c0, r0, c1, r1)`` at the input size (:func:`pipeline.data.geometry.pixel_boxes`).
    valid : (B, K) bool, False for padding boxes.
    size : (H, W) the model's input size.
    """
    cams = np.asarray(cams, dtype=np.float64)
    big_h, big_w = size
    n, h, w = cams.shape
    boxes = np.where(valid[..., None], boxes, 0)

    def cells(start: np.ndarray, stop: np.ndarray, n_out: int, n_in: int):
        # Breakpoints: the input's edges plus every box edge, sorted -> 2K + 1 segments.
        edges = np.concatenate([np.zeros((n, 1), np.int64), np.full((n, 1), n_out), start, stop], axis=1)
        edges.sort(axis=1)
        lo, hi = edges[:, :-1], edges[:, 1:]
        inside = (start[:, None, :] <= lo[:, :, None]) & (hi[:, :, None] <= stop[:, None, :]) & valid[:, None, :]
        prefix = _prefix(n_out, n_in)
        weights = prefix[hi] - prefix[lo]  # (B, S, n_in): native weight of each segment
        return inside, weights, (hi - lo).astype(np.float64)

    in_r, wr, len_r = cells(boxes[..., 1], boxes[..., 3], big_h, h)
    in_c, wc, len_c = cells(boxes[..., 0], boxes[..., 2], big_w, w)
    # (B, S, S): cell (i, j) is in the union when some box holds both row segment i and column segment j
    union = (in_r.astype(np.float64) @ in_c.astype(np.float64).transpose(0, 2, 1)) > 0
    unionf = union.astype(np.float64)

    # Batched matmuls rather than multi-operand einsums, which NumPy evaluates without BLAS.
    energy_in = ((wr @ cams) * (unionf @ wc)).sum(axis=(1, 2))  # sum_ij union_ij * wr_i^T cam wc_j
    total = _total(cams, size)
    area = ((unionf * len_r[:, :, None]) * len_c[:, None, :]).sum(axis=(1, 2))
    fraction = area / float(big_h * big_w)

    r, c = _map_argmax(cams, size)
    hit = (
        (boxes[..., 0] <= c[:, None]) & (c[:, None] < boxes[..., 2])
        & (boxes[..., 1] <= r[:, None]) & (r[:, None] < boxes[..., 3]) & valid
    ).any(axis=1)
    return _scores(energy_in, total, fraction, hit)


def _map_argmax(cams: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each upsampled map's first maximum, found on the candidate rows x columns only."""
    n, h, w = cams.shape
    cr, cc = _candidates(size[0], h), _candidates(size[1], w)
    sub = bilinear_matrix(size[0], h)[cr] @ cams @ bilinear_matrix(size[1], w)[cc].T  # (B, |cr|, |cc|)
    flat = sub.reshape(n, -1).argmax(axis=1)
    return cr[flat // len(cc)], cc[flat % len(cc)]


def _total(cams: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(B,) sum of each upsampled map, on the native grid."""
    h, w = cams.shape[-2:]
    return (cams @ bilinear_matrix(size[1], w).sum(0)) @ bilinear_matrix(size[0], h).sum(0)


def _scores(energy_in: np.ndarray, total: np.ndarray, fraction: np.ndarray, hit: np.ndarray) -> Scores:
    """Energy in the region, the map's total and the region's area fraction -> every metric."""
    signal = total > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        energy = np.where(signal, np.clip(energy_in / np.where(signal, total, 1.0), 0.0, 1.0), np.nan)
        lift = np.where(fraction > 0, energy / fraction, np.nan)
        focus = np.where(fraction < 1, (energy - fraction) / (1.0 - fraction), np.nan)
    return Scores(
        energy_in_box=energy,
        box_area_fraction=fraction,
        energy_lift=lift,
        focus_score=focus,
        pointing_hit=np.where(signal, hit.astype(np.float64), np.nan),
        judged=signal & (fraction < 1),
    )


def score_region(cams: np.ndarray, region: np.ndarray) -> Scores:
    """Score native CAMs against arbitrary regions (``region: mask``), with the box rule's numbers.

    ``cams`` (B, h, w) non-negative native CAMs; ``region`` (B, H, W) bool at the input size. The
    region folds into native weights ``U_h.T @ M @ U_w`` (the upsampled map is never built).
    """
    cams = np.asarray(cams, dtype=np.float64)
    h, w = cams.shape[-2:]
    size = region.shape[-2:]
    m = region.astype(np.float64)
    weights = bilinear_matrix(size[0], h).T @ m @ bilinear_matrix(size[1], w)  # (B, h, w)
    energy_in = (weights * cams).sum(axis=(1, 2))
    r, c = _map_argmax(cams, size)
    hit = region[np.arange(len(cams)), r, c]
    return _scores(energy_in, _total(cams, size), m.mean(axis=(1, 2)), hit)

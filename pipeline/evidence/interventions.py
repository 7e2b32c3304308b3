"""Interventions (DESIGN §6): the object removed, the object alone, the fill rule, the removal region. Pure NumPy.

The compiled step (``pipeline.explain.cams.step``) applies the interventions in TensorFlow; the NumPy
functions here are the same rule for the report's thumbnails and for tests. Images are
(H, W, 3) float in 0-255 at the model's input size, before preprocessing; a region is an
(H, W) bool mask of the pixel centres inside the sample's boxes (or mask).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

GRAY = 127.5


def region_from_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool union of int pixel intervals ``(c0, r0, c1, r1)`` (half-open), as scoring counts them."""
    mask = np.zeros(size, bool)
    for c0, r0, c1, r1 in np.asarray(boxes, np.int64).reshape(-1, 4):
        mask[max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)] = True
    return mask


def fill_colour(image: np.ndarray, keep: np.ndarray, fill: str) -> np.ndarray:
    """(C,) fill: mean colour of the kept pixels (``mean``; gray when none is kept) or 127.5 (``gray``); ``image``
    (H, W, C) in the model's channel space (a grayscale model's fill is one value)."""
    if fill == "gray" or not keep.any():
        return np.full(np.shape(image)[-1], GRAY)
    return image[keep].mean(axis=0)


def intervene(image: np.ndarray, region: np.ndarray, fill: str, removal: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(object removed, object only) images, float64: ``removal`` (default ``region``) filled, resp.
    everything outside ``region`` filled (the step's rule, ``pipeline.explain.cams.step.interventions``)."""
    image = np.asarray(image, np.float64)
    removal = region if removal is None else removal
    removed = np.where(removal[..., None], fill_colour(image, ~removal, fill), image)
    only = np.where(region[..., None], image, fill_colour(image, region, fill))
    return removed, only


def dilation_px(configured: int | None, input_size: tuple[int, int], grid: tuple[int, int]) -> int:
    """``evidence.dilation_px``; auto (None) = one CAM cell at input resolution (the larger side's cell, rounded up)."""
    if configured is not None:
        return configured
    return int(max(-(-input_size[0] // grid[0]), -(-input_size[1] // grid[1])))


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """(H, W) bool grown by ``pixels`` in every direction (Chebyshev), the twin of the step's max-pool dilation."""
    if pixels <= 0:
        return mask
    from scipy import ndimage

    return ndimage.binary_dilation(mask, structure=np.ones((2 * pixels + 1, 2 * pixels + 1), bool))


def object_dependence(p_original: np.ndarray, p_removed: np.ndarray) -> np.ndarray:
    """(p_c(original) - p_c(removed)) / p_c(original), clipped to [-1, 1]; NaN where p_c(original) is 0 or NaN."""
    p = np.asarray(p_original, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p > 0, np.clip((p - np.asarray(p_removed, np.float64)) / p, -1.0, 1.0), np.nan)


def removal_notes(done: np.ndarray, judged: np.ndarray, region_fraction: np.ndarray, blank_too: np.ndarray,
                  max_region_fraction: float) -> np.ndarray:
    """Why a sample's removal result is excluded or qualified (samples.csv ``evidence_note``; "" when not)."""
    out = np.full(len(done), "", dtype=object)
    big = done & ~judged
    out[big] = [f"region covers {f:.0%} of the input (evidence.max_region_fraction {max_region_fraction:g}): not judged by removal"
                for f in np.asarray(region_fraction)[big]]
    out[judged & blank_too] = "the blank image is classified as one of its labels too: not counted as still right without the object"
    return out


def seeded_subset(rows: Sequence[int], size: int | None, seed: int) -> np.ndarray:
    """Sorted seeded choice of ``size`` of ``rows`` (all of them when size is None or larger)."""
    rows = np.asarray(rows, np.int64)
    if size is None or size >= rows.size:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))

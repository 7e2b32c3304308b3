"""Cues without a place (DESIGN §15): properties of the whole picture — colour cast, light, contrast, saturation,
sharpness, noise, JPEG blockiness — measured outside the object's region, and the edits that push each one way or the
other, outside the region only. Pure NumPy (SciPy's filters, Pillow's JPEG codec): a batch of images at the model's
input size before preprocessing (0-255, (B, H, W, C): RGB, or a grayscale model's luma) and their regions in, numbers
or edited images out.

Conventions. ``outside`` (B, H, W) bool: the pixels a measure reads and an edit may change (not the sample's region).
An edit's strength is feathered over ``FEATHER`` px from the region, so the region's own pixels are never changed.
A *direction* names which way a property moves: a hue for ``colour`` (red, yellow, green, cyan, blue, magenta),
``up`` / ``down`` for the others (``sharpness-down`` = blurred, ``jpeg-up`` = more compressed).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

PROPERTIES = ("colour", "brightness", "contrast", "saturation", "sharpness", "noise", "jpeg")
HUES = {"red": (1.0, 0.0, 0.0), "yellow": (1.0, 1.0, 0.0), "green": (0.0, 1.0, 0.0), "cyan": (0.0, 1.0, 1.0),
        "blue": (0.0, 0.0, 1.0), "magenta": (1.0, 0.0, 1.0)}
OPPOSITE = {"red": "cyan", "yellow": "blue", "green": "magenta", "cyan": "red", "blue": "yellow", "magenta": "green"}
COLOUR_FREE = ("brightness", "contrast", "sharpness", "noise", "jpeg")  # meaningful without colour
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2
FEATHER = 2  # px over which an edit fades in from the region's edge
GAIN = 0.45  # colour: channel gains 1 - GAIN * (1 - hue), at strength 1
BRIGHTNESS, CONTRAST, SATURATION = 0.4, 0.5, 1.0  # x1.4 / x0.6; about the mean x1.5 / x0.5; x2 / gray
BLUR_SIGMA = 0.015  # of the width
NOISE_SIGMA = 0.06 * 255
JPEG_QUALITY = 15
GRAY_SHARE = 0.95  # an evaluation set whose images are R = G = B on at least this share carries no colour


@dataclass(frozen=True)
class Edit:
    """One model-side edit: ``property`` pushed in ``direction``; ``control`` the direction pushed the other way by the
    same amount, or None when the control is the unedited image (noise, JPEG)."""

    property: str
    direction: str
    control: str | None

    @property
    def name(self) -> str:
        return f"{self.property}-{self.direction}"


def edits(properties: Sequence[str], *, colour: bool = True) -> tuple[Edit, ...]:
    """The edits of ``properties`` (16 for all seven: six hues, two ways for brightness, contrast, saturation and
    sharpness, one for noise and JPEG); ``colour`` False leaves out colour and saturation (no colour to edit)."""
    out: list[Edit] = []
    for prop in properties:
        if prop in ("colour", "saturation") and not colour:
            continue
        if prop == "colour":
            out += [Edit("colour", hue, OPPOSITE[hue]) for hue in HUES]
        elif prop in ("noise", "jpeg"):
            out.append(Edit(prop, "up", None))
        else:
            out += [Edit(prop, "up", "down"), Edit(prop, "down", "up")]
    return tuple(out)


# --------------------------------------------------------------------------- the data side: measures


def luma(images: np.ndarray) -> np.ndarray:
    """(..., H, W, C) -> (..., H, W): ITU-R 601-2 luma (one channel is already luma)."""
    images = np.asarray(images, np.float64)
    return images[..., 0] if images.shape[-1] == 1 else images @ LUMA


LAPLACE = np.array([[[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]])  # (1, 3, 3): per image, never across the batch
CROSS = np.array([[[False, True, False], [True, True, True], [False, True, False]]])


def channel_spread(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) -> (..., H, W): max - min over the channels (elementwise, several times faster than a reduction
    over a length-3 axis)."""
    r, g, b = images[..., 0], images[..., 1], images[..., 2]
    return np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)


def _median3(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(x, y), np.minimum(np.maximum(x, y), z))


def median3x3(gray: np.ndarray) -> np.ndarray:
    """(B, H, W) each image's 3x3 median, edges repeated: the values of ``scipy.ndimage.median_filter(size=(1, 3, 3),
    mode="nearest")``, several times faster. Each column's three pixels are sorted once (low, mid, high), and a 3x3
    median is the median of (the largest of three lows, the median of three mids, the smallest of three highs)."""
    padded = np.pad(gray, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = gray.shape[1:]
    top, centre, bottom = padded[:, 0:h], padded[:, 1:h + 1], padded[:, 2:h + 2]
    low, high = np.minimum(top, centre), np.maximum(top, centre)
    mid, high = np.minimum(high, bottom), np.maximum(high, bottom)
    low, mid = np.minimum(low, mid), np.maximum(low, mid)
    left, here, right = (slice(k, k + w) for k in range(3))
    lows = np.maximum(np.maximum(low[:, :, left], low[:, :, here]), low[:, :, right])
    highs = np.minimum(np.minimum(high[:, :, left], high[:, :, here]), high[:, :, right])
    return _median3(lows, _median3(mid[:, :, left], mid[:, :, here], mid[:, :, right]), highs)


def _mean(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """(B,) the mean of (B, H, W) ``values`` over each image's ``where`` pixels; NaN where there are none."""
    n = where.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(where, values, 0.0).sum(axis=(1, 2)) / np.maximum(n, 1), np.nan)


def _var(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """(B,) the population variance over each image's ``where`` pixels (two passes); NaN where there are none."""
    mean = _mean(values, where)
    return _mean((values - np.nan_to_num(mean)[:, None, None]) ** 2, where)


def blockiness(gray: np.ndarray, where: np.ndarray) -> np.ndarray:
    """JPEG's 8x8 blocking of (B, H, W) luma (or one (H, W) image: a float): the mean absolute step between
    neighbouring pixels across 8-px block boundaries over the mean step elsewhere (1 = no blocking), over the steps
    whose both pixels are in ``where``; NaN without steps of either kind or without any step inside blocks."""
    if np.ndim(gray) == 2:
        return float(blockiness(np.asarray(gray)[None], np.asarray(where)[None])[0])
    sums = np.zeros((2, len(gray)))  # across, within
    counts = np.zeros((2, len(gray)))
    for axis in (1, 2):
        step = np.abs(np.diff(gray, axis=axis))
        both = where[:, :-1, :] & where[:, 1:, :] if axis == 1 else where[:, :, :-1] & where[:, :, 1:]
        index = np.arange(step.shape[axis]) % 8 == 7  # the step between pixel 8k + 7 and 8k + 8
        boundary = index[None, :, None] if axis == 1 else index[None, None, :]
        for k, mask in enumerate((both & boundary, both & ~boundary)):
            sums[k] += np.where(mask, step, 0.0).sum(axis=(1, 2))
            counts[k] += mask.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        across, within = sums / counts
        return np.where((counts > 0).all(axis=0) & (within > 0), across / within, np.nan)


MEASURE_CHUNK = 32
MEASURES = tuple([f"colour-{hue}" for hue in HUES] + ["brightness", "contrast", "saturation", "sharpness", "noise", "jpeg"])
"""The per-image measures, in a fixed order (columns of :func:`measure_batch`)."""

_HUE_AXES = np.array([(np.asarray(rgb) - np.mean(rgb)) / np.linalg.norm(np.asarray(rgb) - np.mean(rgb)) for rgb in HUES.values()])


def measure_batch(images: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """(B, len(MEASURES)) float64: each image's properties outside its region. ``colour-<hue>`` for the six hues (the
    background's mean chromaticity along the hue's direction), ``brightness`` (mean luma), ``contrast`` (luma std),
    ``saturation`` (mean max - min over channels), ``sharpness`` (variance of the luma's Laplacian over the luma's
    variance: the share of fine detail, so a gain or a cast that darkens the picture does not read as blur), ``noise``
    (std of the luma's residual from its 3x3 median) — these two where the 3x3 neighbourhood is all outside, so the
    object's edge is not read —, ``jpeg`` (8x8 blockiness). NaN where a measure has no pixels (or no colour: one
    channel). ``images`` (B, H, W, C) 0-255, ``outside`` (B, H, W) bool; every filter runs per image."""
    from scipy import ndimage

    if len(images) > MEASURE_CHUNK:  # a few images at a time keep the filters' arrays in cache: twice as fast
        return np.concatenate([measure_batch(images[k:k + MEASURE_CHUNK], outside[k:k + MEASURE_CHUNK])
                               for k in range(0, len(images), MEASURE_CHUNK)])
    images = np.asarray(images, np.float64)
    outside = np.asarray(outside, bool)
    gray = luma(images)
    out = np.full((len(images), len(MEASURES)), np.nan)
    if images.shape[-1] == 3:
        n = outside.sum(axis=(1, 2))
        flat = outside.reshape(len(images), 1, -1).astype(np.float64)
        mean = np.matmul(flat, images.reshape(len(images), -1, 3))[:, 0] / np.maximum(n, 1)[:, None]  # (B, 3)
        total = mean.sum(axis=1, keepdims=True)
        chroma = np.where(total > 0, mean / np.where(total > 0, total, 1.0) - 1 / 3, 0.0)
        out[:, :len(HUES)] = np.where((n > 0)[:, None], chroma @ _HUE_AXES.T, np.nan)
        out[:, MEASURES.index("saturation")] = _mean(channel_spread(images), outside)
    out[:, MEASURES.index("brightness")] = _mean(gray, outside)
    out[:, MEASURES.index("contrast")] = np.sqrt(_var(gray, outside))
    inner = ndimage.binary_erosion(outside, structure=CROSS, border_value=1)  # a 3x3 filter there sees no region pixel
    detail, spread = _var(ndimage.correlate(gray, LAPLACE, mode="nearest"), inner), _var(gray, inner)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, MEASURES.index("sharpness")] = np.where(spread > 0, detail / np.where(spread > 0, spread, 1.0), np.nan)
    residual = gray - median3x3(gray)
    out[:, MEASURES.index("noise")] = np.sqrt(_var(residual, inner))
    out[:, MEASURES.index("jpeg")] = blockiness(gray, outside)
    return out


def measure(image: np.ndarray, outside: np.ndarray) -> dict[str, float]:
    """One image's :func:`measure_batch`, by name. ``image`` (H, W, C) 0-255, ``outside`` (H, W) bool."""
    return dict(zip(MEASURES, (float(v) for v in measure_batch(np.asarray(image)[None], np.asarray(outside)[None])[0])))


def carries_colour(images: np.ndarray, tolerance: float = 1.0) -> bool:
    """Whether an evaluation set carries colour: fewer than GRAY_SHARE of its images are gray (R = G = B to within
    ``tolerance`` on every pixel). (B, H, W, C); one channel carries none."""
    if images.shape[-1] == 1 or not len(images):
        return False
    spread = np.concatenate([channel_spread(np.asarray(images[k:k + MEASURE_CHUNK], np.float64)).reshape(-1, images[0].size // 3).max(axis=1)
                             for k in range(0, len(images), MEASURE_CHUNK)])
    return bool((spread <= tolerance).mean() < GRAY_SHARE)


def measure_direction(values: Mapping[str, np.ndarray], prop: str, direction: str) -> np.ndarray:
    """The per-image number whose high values mean the property moved in ``direction`` (for the data side's AUC)."""
    if prop == "colour":
        return np.asarray(values[f"colour-{direction}"], np.float64)
    v = np.asarray(values[prop], np.float64)
    return -v if direction == "down" else v


# --------------------------------------------------------------------------- the data side: AUC


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, np.float64)
    return v[~np.isnan(v)]


def _ranks(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, below, upto): the negatives' sorting order, and for each positive how many sorted negatives lie strictly
    below it and how many at or below it (the Mann-Whitney U without the n1 x n0 pair matrix)."""
    order = np.argsort(negative, kind="stable")
    ranked = negative[order]
    return order, np.searchsorted(ranked, positive, "left"), np.searchsorted(ranked, positive, "right")


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive's value > a negative's), ties counted half (the Mann-Whitney U over n1 n0); NaN when either is empty."""
    p, n = _finite(positive), _finite(negative)
    if not p.size or not n.size:
        return math.nan
    _, below, upto = _ranks(p, n)
    return float((below + upto).sum() / 2 / (p.size * n.size))


@lru_cache(maxsize=4)
def _draws(n1: int, n0: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(resamples, n1) and (resamples, n0) int32 multinomial counts of a seeded bootstrap, read-only: one class's measures
    share them (the draws depend on the sizes and the seed only)."""
    rng = np.random.default_rng(seed)
    c1 = rng.multinomial(n1, np.full(n1, 1.0 / n1), size=resamples).astype(np.int32)
    c0 = rng.multinomial(n0, np.full(n0, 1.0 / n0), size=resamples).astype(np.int32)
    c1.flags.writeable = c0.flags.writeable = False
    return c1, c0


def auc_interval(positive: np.ndarray, negative: np.ndarray, *, level: float, resamples: int, seed: int) -> tuple[float, float]:
    """A percentile bootstrap interval of :func:`auc`, positives and negatives resampled apart (seeded). Vectorised: with
    c1, c0 how often each item was drawn, a resample's U is the sum over positives of c1 times the drawn negatives below
    it (ties half): cumulative sums of c0 in the negatives' sorted order, read at each positive's rank — O(resamples
    (n1 + n0)), not the pair matrix's O(resamples n1 n0)."""
    p, n = _finite(positive), _finite(negative)
    if p.size < 2 or n.size < 2:
        return math.nan, math.nan
    c1, c0 = _draws(p.size, n.size, resamples, seed)
    order, below, upto = _ranks(p, n)
    drawn = np.zeros((resamples, n.size + 1), np.int32)  # integers throughout: exact, and half the bytes of float64
    np.cumsum(c0[:, order], axis=1, out=drawn[:, 1:])  # drawn[:, k]: draws among the k lowest negatives
    draws = np.einsum("ij,ij->i", c1, drawn[:, below] + drawn[:, upto], dtype=np.int64) / 2 / (p.size * n.size)
    tail = (1 - level) / 2
    return float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


# --------------------------------------------------------------------------- the model side: edits


def feather(outside: np.ndarray, width: int = FEATHER) -> np.ndarray:
    """(H, W) weight in [0, 1]: 0 on the region, rising to 1 over ``width`` px from its edge (the Euclidean distance to
    the nearest region pixel / ``width``); 1 everywhere when there is no region."""
    from scipy import ndimage

    outside = np.asarray(outside, bool)
    if outside.all():
        return np.ones(outside.shape)
    return np.clip(ndimage.distance_transform_edt(outside) / width, 0.0, 1.0)


def _gaussian(images: np.ndarray, sigma: float) -> np.ndarray:
    """(B, H, W, C) each image's channels blurred over its own rows and columns (never across images or channels)."""
    from scipy import ndimage

    return ndimage.gaussian_filter(images, (0.0, sigma, sigma, 0.0), mode="nearest")


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, C) one image through Pillow's JPEG codec at ``quality``."""
    from PIL import Image

    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    mode = "L" if pixels.shape[-1] == 1 else "RGB"
    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode).save(buf, format="JPEG", quality=quality)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(mode), np.float64)
    return out[..., None] if mode == "L" else out


def pushed_batch(images: np.ndarray, prop: str, direction: str, *, strength: float = 1.0, seeds: Sequence[int] = (),
                 pivots: np.ndarray | None = None) -> np.ndarray:
    """(B, H, W, C) whole images with ``prop`` pushed in ``direction`` (before the region is put back by
    :func:`edit_batch`). ``pivots`` (B, C): each background's mean, the pivot of a contrast change; ``seeds`` (B,): each
    image's noise."""
    x = np.asarray(images, np.float64)
    width = x.shape[2]
    if prop == "colour":
        return x * (1.0 - GAIN * strength * (1.0 - np.asarray(HUES[direction])))
    sign = 1.0 if direction == "up" else -1.0
    if prop == "brightness":
        return x * (1.0 + sign * BRIGHTNESS * strength)
    if prop == "contrast":
        pivot = (pivots if pivots is not None else x.reshape(len(x), -1, x.shape[-1]).mean(axis=1))[:, None, None, :]
        return pivot + (x - pivot) * (1.0 + sign * CONTRAST * strength)
    if prop == "saturation":
        gray = luma(x)[..., None]
        return gray + (x - gray) * max(0.0, 1.0 + sign * SATURATION * strength)
    if prop == "sharpness":  # up: the unsharp mask; down: the blur itself (at strength 1)
        return x + sign * strength * (x - _gaussian(x, BLUR_SIGMA * width))
    if prop == "noise":
        return x + np.stack([np.random.default_rng(s).normal(0.0, NOISE_SIGMA * strength, x.shape[1:]) for s in seeds])
    if prop == "jpeg":
        quality = max(1, int(round(100 - (100 - JPEG_QUALITY) * min(strength, 1.0))))
        return np.stack([_jpeg(image, quality) for image in x])
    raise ValueError(f"property {prop!r}; expected one of {', '.join(PROPERTIES)}")


def pushed(image: np.ndarray, prop: str, direction: str, *, strength: float = 1.0, seed: int = 0) -> np.ndarray:
    """One (H, W, C) image's :func:`pushed_batch` (a contrast change pivots on its whole mean)."""
    return pushed_batch(np.asarray(image)[None], prop, direction, strength=strength, seeds=(seed,))[0]


def edit_batch(images: np.ndarray, outside: np.ndarray, weights: np.ndarray, prop: str, direction: str, *, strength: float = 1.0,
               seeds: Sequence[int] = ()) -> np.ndarray:
    """(B, H, W, C) 0-255 images with ``prop`` pushed in ``direction`` outside each one's region only, clipped to 0-255,
    float32. ``outside`` (B, H, W) bool; ``weights`` (B, H, W) each one's :func:`feather` of it (computed once per image
    by the caller), so the region's pixels are returned unchanged; ``seeds`` (B,) each image's noise."""
    x = np.asarray(images, np.float64)
    pivots = np.stack([image[o].mean(axis=0) if o.any() else image.reshape(-1, image.shape[-1]).mean(axis=0)
                       for image, o in zip(x, outside)]) if prop == "contrast" else None
    w = np.asarray(weights, np.float64)[..., None]
    out = w * pushed_batch(x, prop, direction, strength=strength, seeds=seeds, pivots=pivots) + (1.0 - w) * x
    return np.clip(out, 0.0, 255.0).astype(np.float32)


def edit(image: np.ndarray, outside: np.ndarray, prop: str, direction: str, *, strength: float = 1.0, seed: int = 0) -> np.ndarray:
    """One (H, W, C) image's :func:`edit_batch` (``outside`` (H, W) bool), feathered over FEATHER px from its region."""
    outside = np.asarray(outside, bool)
    return edit_batch(np.asarray(image)[None], outside[None], feather(outside)[None], prop, direction, strength=strength,
                      seeds=(seed,))[0]

"""What a hot spot holds (DESIGN §12), from the members' input-resolution pixels alone: no model,
no weights. Pure NumPy.

Conventions: an image is (H, W, 3) float, RGB 0-255, at the model's input size after the resize
(what the model saw, before preprocessing); a rectangle is a pixel interval ``(c0, r0, c1, r1)``,
half-open (the order of :func:`pipeline.strategies.analysis.rect_pixels`). Grayscale is ITU-R BT.601 luma.

* ``consistency``: the mean Pearson correlation of each member's grayscale patch with the mean
  patch of the *other* members (leave-one-out), over the members whose patch has any variance;
  the same statistic at control positions is its ``baseline``. A fixed overlay on changing
  backgrounds correlates; natural background does not.
* The **shared pixels**: those where at least ``SHARED_SHARE`` of the members lie within
  ``TOLERANCE`` of the members' per-pixel median colour. A uniform marker smaller than the hot
  spot (whose rectangle has the CAM's coarse cells) is its shared pixels; when they form a solid
  blob (filling at least ``SOLID`` of their bounding box — text strokes do not) they are *the
  patch* that flatness and colour are read on, otherwise the whole rectangle is.
* ``flatness``: per member, the share of the patch's pixels within ``TOLERANCE`` of the patch's
  median colour; the mean over members.
* ``kind``: ``border`` (flat, and the patch touches an image edge: padding, letterbox, frame),
  else ``patch`` (flat and the same colour on most members: a uniform marker), else
  ``overlay`` (consistency ≥ 0.5 and above its baseline by 0.3: the same pattern on most
  images), else ``background``. A flat bar along an edge is a patch too, and a uniform marker on
  changing backgrounds also correlates: the more specific reading wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

TOLERANCE = 8.0  # of 255: a pixel "of the same colour" differs by at most this in every channel
SHARED_SHARE = 0.8  # a shared pixel: at least this share of the members agree on its colour
SOLID = 0.6  # shared pixels that fill at least this share of their bounding box are a patch
MIN_SHARED = 4  # fewer shared pixels than this: no patch of its own, the rectangle is read
FLAT_MIN = 0.8
SAME_COLOUR_MIN = 0.6  # "most members": this share of them has the patch's colour
OVERLAY_MIN, OVERLAY_LIFT = 0.5, 0.3
MATCH_MIN = 0.5  # a member "shows the pattern" when its patch correlates at least this with the others'
LUMA = np.array([0.299, 0.587, 0.114])
KINDS = ("overlay", "patch", "border", "background")
KIND_TEXT = {
    "overlay": "an overlay such as a watermark or logo",
    "patch": "a uniform marker",
    "border": "padding, a letterbox bar or a frame along the image edge",
    "background": "the background behind the objects, no fixed pattern",
}

Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class HotSpotContent:
    """What one hot spot holds, over ``n`` members (the ones read; ``n_varied`` of them have a patch
    with variance). ``matches``: members whose patch correlates ≥ MATCH_MIN with the others' mean;
    ``same_colour``: members whose patch median is the patch's colour. ``colour`` is named for
    ``patch`` and ``border`` only ("" otherwise); ``rgb`` is the patch's median colour."""

    consistency: float
    consistency_baseline: float
    flatness: float
    kind: str
    colour: str
    rgb: tuple[int, int, int]
    n: int
    n_varied: int
    matches: int
    same_colour: int
    patch: Rect  # the bounding box of the patch read (the shared pixels, or the whole rectangle)

    def description(self) -> str:
        """What the strategy sentence says after "where": "the same pattern appears on 19 of 19 images (…)"."""
        if self.kind in ("patch", "border"):
            return f"the same flat {self.colour} area appears on {self.same_colour} of {self.n} images ({KIND_TEXT[self.kind]})"
        if self.kind == "overlay":
            return f"the same pattern appears on {self.matches} of {self.n_varied} images ({KIND_TEXT['overlay']})"
        return (f"nothing fixed appears: the pixels change from image to image, as background does (consistency "
                f"{_num(self.consistency)}, {_num(self.consistency_baseline)} elsewhere in the same images)")


def _num(x: float) -> str:
    return "undefined" if math.isnan(x) else f"{x:.2f}"


def grayscale(patches: np.ndarray) -> np.ndarray:
    """(n, h, w, 3) RGB -> (n, h, w) luma."""
    return np.asarray(patches, np.float64) @ LUMA


def loo_correlations(gray: np.ndarray) -> np.ndarray:
    """Each varied patch's Pearson correlation with the mean of the other varied patches.

    ``gray`` (n, h, w) -> (m,) over the m patches with any variance (flat ones are left out: a
    correlation with a constant is undefined); empty when fewer than 2 vary."""
    flat = np.asarray(gray, np.float64).reshape(len(gray), -1)
    flat = flat[flat.std(axis=1) > 1e-9] if flat.size else flat.reshape(0, 0)
    m = len(flat)
    if m < 2:
        return np.zeros(0)
    others = (flat.sum(axis=0, keepdims=True) - flat) / (m - 1)
    a = flat - flat.mean(axis=1, keepdims=True)
    b = others - others.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=1) / np.where(denom > 0, denom, 1.0), 0.0)


def consistency(gray: np.ndarray) -> float:
    """Mean leave-one-out correlation (NaN when fewer than 2 patches vary)."""
    c = loo_correlations(gray)
    return float(c.mean()) if c.size else math.nan


def shared_pixels(patches: np.ndarray, *, tolerance: float = TOLERANCE, share: float = SHARED_SHARE) -> np.ndarray:
    """(h, w) bool: pixels where at least ``share`` of the members lie within ``tolerance`` (every
    channel) of the members' per-pixel median colour. ``patches`` (n, h, w, 3)."""
    p = np.asarray(patches, np.float64)
    median = np.median(p, axis=0)
    close = (np.abs(p - median).max(axis=-1) <= tolerance).mean(axis=0)
    return close >= share


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(c0, r0, c1, r1) half-open bounding box of a non-empty (h, w) mask, in the mask's pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def flatness(patches: np.ndarray, mask: np.ndarray, tolerance: float = TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Per member: (share of the ``mask`` pixels within ``tolerance`` of their median colour, that median (3,))."""
    pixels = np.asarray(patches, np.float64)[:, mask]  # (n, k, 3)
    median = np.median(pixels, axis=1)
    return (np.abs(pixels - median[:, None, :]).max(axis=-1) <= tolerance).mean(axis=1), median


def colour_name(rgb: Sequence[float]) -> str:
    """A plain colour name for an RGB triple (0-255): black, gray, white, or a hue name (brown for a
    dark orange or red)."""
    r, g, b = (float(v) / 255.0 for v in rgb)
    hi, lo = max(r, g, b), min(r, g, b)
    sat = (hi - lo) / hi if hi > 0 else 0.0
    if hi < 0.2:
        return "black"
    if sat < 0.2:
        return "white" if hi > 0.85 else "gray" if hi > 0.3 else "black"
    d = hi - lo
    if hi == r:
        hue = 60 * (((g - b) / d) % 6)
    elif hi == g:
        hue = 60 * ((b - r) / d + 2)
    else:
        hue = 60 * ((r - g) / d + 4)
    if 10 <= hue < 45 and hi < 0.6 and sat > 0.3:
        return "brown"
    for top, name in ((15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (195, "cyan"), (260, "blue"), (310, "purple"),
                      (345, "pink"), (360, "red")):
        if hue < top:
            return name
    return "red"


def touches_edge(rect: Rect, size: tuple[int, int]) -> bool:
    """The pixel rectangle reaches the image's first or last row or column."""
    c0, r0, c1, r1 = rect
    return c0 <= 0 or r0 <= 0 or c1 >= size[1] or r1 >= size[0]


def _rgb(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels, np.float64)
    return np.repeat(pixels, 3, axis=-1) if pixels.ndim == 4 and pixels.shape[-1] == 1 else pixels


def describe(patches: np.ndarray, controls: np.ndarray, rect: Rect, size: tuple[int, int]) -> HotSpotContent | None:
    """What the hot spot ``rect`` holds. ``patches`` (n, h, w, C): each member's pixels inside it;
    ``controls`` (n, h, w, C): the same members' pixels at a control position; ``size`` (H, W). A grayscale
    model's one channel reads as RGB gray. None without members."""
    patches, controls = _rgb(patches), _rgb(controls)
    n = len(patches)
    if n == 0:
        return None
    gray = grayscale(patches)
    corr = loo_correlations(gray)
    cons = float(corr.mean()) if corr.size else math.nan
    base = consistency(grayscale(controls)) if len(controls) else math.nan
    shared = shared_pixels(patches)
    mask = np.ones(patches.shape[1:3], bool)
    box = (0, 0, patches.shape[2], patches.shape[1])
    if shared.sum() >= MIN_SHARED:
        sb = _bbox(shared)
        if shared.sum() >= SOLID * (sb[2] - sb[0]) * (sb[3] - sb[1]):
            mask, box = shared, sb
    flat, medians = flatness(patches, mask)
    rgb = np.median(medians, axis=0)
    same = int((np.abs(medians - rgb).max(axis=1) <= 2 * TOLERANCE).sum())
    c0, r0 = rect[0], rect[1]
    patch_rect = (c0 + box[0], r0 + box[1], c0 + box[2], r0 + box[3])
    flat_mean = float(flat.mean())
    if flat_mean >= FLAT_MIN and touches_edge(patch_rect, size):
        kind = "border"
    elif flat_mean >= FLAT_MIN and same >= SAME_COLOUR_MIN * n:
        kind = "patch"
    elif not math.isnan(cons) and cons >= OVERLAY_MIN and (math.isnan(base) or cons - base >= OVERLAY_LIFT):
        kind = "overlay"
    else:
        kind = "background"
    return HotSpotContent(
        consistency=cons, consistency_baseline=base, flatness=flat_mean, kind=kind,
        colour=colour_name(rgb) if kind in ("patch", "border") else "", rgb=tuple(int(round(v)) for v in rgb),  # type: ignore[arg-type]
        n=n, n_varied=int(corr.size), matches=int((corr >= MATCH_MIN).sum()), same_colour=same, patch=patch_rect,
    )


def crop(image: np.ndarray, rect: Rect) -> np.ndarray:
    """The pixels of ``image`` (H, W, 3) inside ``rect``, uint8 (for the report's hot-spot crops)."""
    c0, r0, c1, r1 = rect
    return np.clip(np.asarray(image)[max(r0, 0):r1, max(c0, 0):c1], 0, 255).astype(np.uint8)

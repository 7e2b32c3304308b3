"""Probes (DESIGN §11): artifact drawing, placement and the pixel rules of the edits. Pure NumPy
(Pillow to resize an artifact or a user's overlay); the forward passes live in
:mod:`pipeline.probes.stage`.

Conventions: images are (H, W, 3) float, RGB 0-255, at the model's input size before
preprocessing (the interventions' convention, DESIGN §6). A rectangle in pixels is
``(c0, r0, c1, r1)`` half-open; in relative coordinates ``(x0, y0, x1, y1)`` in [0, 1]. An
artifact is an RGB layer with an alpha (0-1) of its own size; its **footprint** is where its alpha
is above 0: the pixels it changes, and exactly the pixels its control fills.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from pipeline.evidence.interventions import fill_colour

BUILTIN = ("watermark", "stamp", "noise", "frame")
ASPECT = {"watermark": 5 / 2, "stamp": 4 / 1, "noise": 5 / 2}  # width / height; the frame has no place
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
PLACE_SETS = ("hot_spots", "corners", "centre")
FRAME_PLACE = "border"
WATERMARK_BOX, WATERMARK_ALPHA = (24.0, 24.0, 24.0), 0.55  # a stock-photo watermark: a translucent dark box ...
WATERMARK_TEXT, WATERMARK_TEXT_ALPHA = (240.0, 240.0, 240.0), 0.85  # ... with light text
STAMP_TEXT = (255.0, 196.0, 72.0)  # a camera's date stamp: plain light orange digits
FRAME_COLOUR = (0.0, 0.0, 0.0)
NOISE_SEED = 20_240_517  # artifacts are drawn with fixed seeds: every audit shows the model the same probe

# A 5x7 pixel font for the artifacts' text (fixed, so the pixels do not depend on the fonts installed).
_GLYPHS = {
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "P": ("11110", "10001", "10001", "11110", "10000", "10000", "10000"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "'": ("00100", "00100", "01000", "00000", "00000", "00000", "00000"),
    " ": ("00000",) * 7,
}
WATERMARK_WORD, STAMP_WORD = "SAMPLE", "'24 05 17"

Rect = tuple[int, int, int, int]


def text_mask(text: str) -> np.ndarray:
    """(7, 6·len − 1) bool: the text in the 5x7 font, one blank column between glyphs."""
    cols = []
    for i, ch in enumerate(text):
        if i:
            cols.append(np.zeros((7, 1), bool))
        cols.append(np.array([[c == "1" for c in row] for row in _GLYPHS[ch]], bool))
    return np.concatenate(cols, axis=1)


def resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float in [0, 1] -> (H, W) by area-weighted resampling (Pillow's box filter): thin
    strokes shrink to partial coverage instead of vanishing."""
    from PIL import Image

    img = Image.fromarray(np.asarray(plane, np.float32), mode="F")
    return np.asarray(img.resize((size[1], size[0]), Image.Resampling.BOX), np.float64)


def _text_alpha(text: str, size: tuple[int, int], fill: float) -> np.ndarray:
    """Text coverage in [0, 1] of a box ``size`` (h, w): the text fitted into ``fill`` of the box, centred."""
    h, w = size
    mask = text_mask(text).astype(np.float64)
    tw = max(1, int(round(w * fill)))
    th = max(1, min(h, int(round(tw * mask.shape[0] / mask.shape[1]))))
    if th > h * fill:  # a box too flat for the text's aspect: fit the height instead
        th = max(1, int(round(h * fill)))
        tw = max(1, min(w, int(round(th * mask.shape[1] / mask.shape[0]))))
    out = np.zeros(size)
    r0, c0 = (h - th) // 2, (w - tw) // 2
    out[r0:r0 + th, c0:c0 + tw] = np.clip(resize_plane(mask, (th, tw)), 0, 1)
    return out


@dataclass(frozen=True)
class Artifact:
    """One probe's look at its own size: ``rgb`` (h, w, 3) 0-255 and ``alpha`` (h, w) in [0, 1].
    ``name`` is the probe's name (the built-in kind, or an overlay's name); ``kind`` the built-in
    kind or ``overlay``; ``at`` an overlay's own top-left (relative), when it has one."""

    name: str
    kind: str
    rgb: np.ndarray
    alpha: np.ndarray
    at: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape  # type: ignore[return-value]

    def in_channels(self, channels: int, gray: bool) -> "Artifact":
        """The artifact in the model's channel space (DESIGN §16): for a grayscale input its ITU-R 601-2 luma, one
        channel or repeated to ``channels``."""
        if not gray:
            return self
        luma = np.asarray(self.rgb, np.float64) @ LUMA
        return replace(self, rgb=np.repeat(luma[..., None], channels, axis=-1))


LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, what PIL's convert("L") weighs R, G, B with


def artifact_size(width: float, aspect: float, size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) pixels of an artifact ``width`` of the input width wide, ``aspect`` = width / height,
    at least 1 pixel and at most the input."""
    w = min(size[1], max(1, int(round(width * size[1]))))
    h = min(size[0], max(1, int(round(w / aspect))))
    return h, w


def watermark(shape: tuple[int, int]) -> Artifact:
    """A stock-photo watermark: a translucent dark box with the word SAMPLE in light letters."""
    t = _text_alpha(WATERMARK_WORD, shape, 0.8) * WATERMARK_TEXT_ALPHA  # the text layer's alpha over the box layer
    alpha = 1 - (1 - t) * (1 - WATERMARK_ALPHA)  # the two layers as one ("over" compositing)
    rgb = (t[..., None] * np.array(WATERMARK_TEXT) + ((1 - t) * WATERMARK_ALPHA)[..., None] * np.array(WATERMARK_BOX)) / alpha[..., None]
    return Artifact("watermark", "watermark", rgb, alpha)


def stamp(shape: tuple[int, int]) -> Artifact:
    """A camera's date stamp: plain light digits, no box (the footprint is the glyphs)."""
    alpha = _text_alpha(STAMP_WORD, shape, 0.95)
    return Artifact("stamp", "stamp", np.broadcast_to(np.array(STAMP_TEXT), (*shape, 3)).copy(), alpha)


def noise(shape: tuple[int, int], seed: int = NOISE_SEED) -> Artifact:
    """A patch of seeded uniform noise (every channel 0-255), opaque."""
    rgb = np.random.default_rng(seed).uniform(0, 255, (*shape, 3))
    return Artifact("noise", "noise", rgb, np.ones(shape))


def frame(size: tuple[int, int], width: float) -> Artifact:
    """A solid dark border around the whole image (photo frame, letterbox), ``width`` / 8 of the input
    width thick (at least 1 pixel); drawn at the image's own size."""
    t = max(1, int(round(width / 8 * size[1])))
    alpha = np.ones(size)
    alpha[t:size[0] - t, t:size[1] - t] = 0.0
    return Artifact("frame", "frame", np.broadcast_to(np.array(FRAME_COLOUR), (*size, 3)).copy(), alpha)


def overlay(name: str, rgba: np.ndarray, width: float, size: tuple[int, int], at: tuple[float, float] | None = None) -> Artifact:
    """A user's RGBA image (h, w, 4, 0-255) scaled to ``width`` of the input width, its aspect kept
    (bilinear on premultiplied colour, so transparent pixels do not bleed their colour)."""
    from PIL import Image

    rgba = np.asarray(rgba, np.float64)
    h, w = artifact_size(width, rgba.shape[1] / rgba.shape[0], size)
    a = rgba[..., 3] / 255.0
    premultiplied = np.concatenate([rgba[..., :3] * a[..., None], a[..., None] * 255.0], axis=-1).astype(np.float32)
    planes = [np.asarray(Image.fromarray(premultiplied[..., k], mode="F").resize((w, h), Image.Resampling.BILINEAR), np.float64)
              for k in range(4)]
    alpha = np.clip(planes[3] / 255.0, 0, 1)
    rgb = np.stack(planes[:3], axis=-1) / np.maximum(alpha, 1e-9)[..., None]
    return Artifact(name, "overlay", np.clip(np.where(alpha[..., None] > 0, rgb, 0), 0, 255), alpha, at)


def builtin(kind: str, width: float, size: tuple[int, int]) -> Artifact:
    """The built-in artifact ``kind`` at ``width`` of the input width, for an input ``size`` (H, W)."""
    if kind == "frame":
        return frame(size, width)
    shape = artifact_size(width, ASPECT[kind], size)
    return {"watermark": watermark, "stamp": stamp, "noise": noise}[kind](shape)


# --------------------------------------------------------------------------- places


def inside(r0: int, c0: int, shape: tuple[int, int], size: tuple[int, int]) -> Rect:
    """The artifact's rectangle with top-left (r0, c0), shifted to lie inside the image."""
    h, w = shape
    r0 = int(min(max(r0, 0), size[0] - h))
    c0 = int(min(max(c0, 0), size[1] - w))
    return (c0, r0, c0 + w, r0 + h)


def corner(name: str, shape: tuple[int, int], size: tuple[int, int], margin: float) -> Rect:
    """A corner rectangle (``top-left`` …), inset by ``margin`` of each side."""
    h, w = shape
    dy, dx = int(round(margin * size[0])), int(round(margin * size[1]))
    r0 = dy if name.startswith("top") else size[0] - dy - h
    c0 = dx if name.endswith("left") else size[1] - dx - w
    return inside(r0, c0, shape, size)


def centred(cx: float, cy: float, shape: tuple[int, int], size: tuple[int, int]) -> Rect:
    """The rectangle centred on pixel position (cx, cy), shifted to stay inside the image."""
    h, w = shape
    return inside(int(round(cy - h / 2)), int(round(cx - w / 2)), shape, size)


def relative(px: Rect, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Pixels ``(c0, r0, c1, r1)`` -> relative ``(x0, y0, x1, y1)``."""
    c0, r0, c1, r1 = px
    return (c0 / size[1], r0 / size[0], c1 / size[1], r1 / size[0])


@dataclass(frozen=True)
class Placed:
    """An artifact at a place: ``rect`` in pixels; ``place`` = ``top-left`` … ``centre``, ``at``,
    ``hotspot:<label>/<strategy>`` or ``border`` (the frame)."""

    artifact: Artifact
    place: str
    rect: Rect

    def footprint(self, size: tuple[int, int]) -> np.ndarray:
        """(H, W) bool: the pixels the artifact changes."""
        out = np.zeros(size, bool)
        c0, r0, c1, r1 = self.rect
        out[r0:r1, c0:c1] = self.artifact.alpha > 0
        return out

    def heat_region(self, size: tuple[int, int]) -> np.ndarray:
        """Where the heat "on the artifact" is counted: its rectangle (a coarse map cannot follow a
        glyph), the border itself for the frame."""
        if self.artifact.kind == "frame":
            return self.footprint(size)
        out = np.zeros(size, bool)
        c0, r0, c1, r1 = self.rect
        out[r0:r1, c0:c1] = True
        return out


def placements(artifact: Artifact, size: tuple[int, int], *, places: Sequence[str], margin: float,
               hot_spots: Iterable[tuple[str, tuple[float, float, float, float]]] = ()) -> list[Placed]:
    """Every place of one artifact: the frame at the border only; an overlay with ``at`` only there;
    otherwise the corners and the centre (as ``places`` asks) and each hot spot (name, relative rect),
    the artifact centred on it."""
    if artifact.kind == "frame":
        return [Placed(artifact, FRAME_PLACE, (0, 0, size[1], size[0]))]
    shape = artifact.shape
    if artifact.at is not None:
        return [Placed(artifact, "at", inside(int(round(artifact.at[1] * size[0])), int(round(artifact.at[0] * size[1])), shape, size))]
    out = []
    if "corners" in places:
        out += [Placed(artifact, name, corner(name, shape, size, margin)) for name in CORNERS]
    if "centre" in places:
        out.append(Placed(artifact, "centre", centred(size[1] / 2, size[0] / 2, shape, size)))
    if "hot_spots" in places:
        for name, (x0, y0, x1, y1) in hot_spots:
            out.append(Placed(artifact, f"hotspot:{name}", centred((x0 + x1) / 2 * size[1], (y0 + y1) / 2 * size[0], shape, size)))
    return out


# --------------------------------------------------------------------------- the edits


def apply(image: np.ndarray, placed: Placed) -> np.ndarray:
    """The image with the artifact alpha-composited at its place (over whatever is there, the object too)."""
    out = np.array(image, np.float32, copy=True)
    c0, r0, c1, r1 = placed.rect
    a = placed.artifact.alpha[..., None]
    out[r0:r1, c0:c1] = (a * placed.artifact.rgb + (1 - a) * out[r0:r1, c0:c1]).astype(np.float32)
    return out


def control(image: np.ndarray, footprint: np.ndarray, fill: str) -> np.ndarray:
    """The image with exactly the artifact's footprint filled by the interventions' fill rule
    (``mean``: the mean colour of the pixels kept): what covering those pixels does by itself."""
    out = np.array(image, np.float32, copy=True)
    out[footprint] = fill_colour(np.asarray(image, np.float64), ~footprint, fill).astype(np.float32)
    return out


def swap_background(image: np.ndarray, region: np.ndarray, donor: np.ndarray, donor_region: np.ndarray, fill: str) -> np.ndarray:
    """The sample's ``region`` pixels, at their own place, on the donor's image whose own region was
    first filled by the fill rule (the Background Challenge's swap, DESIGN §11)."""
    background = control(donor, donor_region, fill)
    return np.where(region[..., None], np.asarray(image, np.float32), background).astype(np.float32)

"""Every image the report draws, from one place (DESIGN §16): pixels in any form the audit holds -> RGB uint8 -> a
data URI. Overlays, hot-spot crops, before -> after pairs, the atlas maps, gallery thumbnails and intervention
images all pass through :func:`rgb8`, so a one-channel model's ``(h, w, 1)`` pixels draw like a colour model's.

Pixel convention: uint8 as decoded, or float in 0-255 (the model's pixels before preprocessing; clipped to 0-255
and truncated, as ``astype`` does; NaN drawn as 0); ``(H, W)`` and ``(H, W, 1)`` are gray, repeated into three channels.
"""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
from PIL import Image
from skimage.transform import resize

from pipeline.explain.scoring import upsample

THUMB = 256  # a thumbnail's longest side, px


def rgb8(pixels: np.ndarray) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` pixels, uint8 / bool / int / float 0-255 -> ``(H, W, 3)`` uint8 (a new
    array). ValueError naming the shape for anything else (an empty image, four channels)."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"expected pixels (H, W), (H, W, 1) or (H, W, 3) with H, W >= 1, found shape {np.shape(pixels)}")
    if a.dtype == np.uint8:
        out = a.copy()
    elif a.dtype == bool:
        out = a.astype(np.uint8) * 255
    else:
        f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        out = np.clip(f, 0.0, 255.0).astype(np.uint8)
    return np.repeat(out, 3, axis=-1) if out.shape[-1] == 1 else out


def _uri(pixels: np.ndarray, fmt: str, **options: int) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb8(pixels)).save(buf, format=fmt, **options)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def png_uri(pixels: np.ndarray) -> str:
    """Lossless (maps, crops): any pixels :func:`rgb8` takes, as a PNG data URI."""
    return _uri(pixels, "PNG")


def jpeg_uri(pixels: np.ndarray, quality: int = 85) -> str:
    """Photos (thumbnails, pairs): any pixels :func:`rgb8` takes, as a JPEG data URI."""
    return _uri(pixels, "JPEG", quality=quality)


def blocks(pixels: np.ndarray, side: int) -> np.ndarray:
    """``pixels`` enlarged by the largest whole factor that keeps the longest side <= ``side`` (at least 1), each
    pixel a solid block: the model's pixels stay visible and honest. (H*k, W*k, 3) uint8."""
    rgb = rgb8(pixels)
    k = max(1, side // max(rgb.shape[:2]))
    return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)


def jet(values: np.ndarray) -> np.ndarray:
    """Jet colormap: values in [0, 1] -> uint8 RGB (blue = 0, red = 1)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * v - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)
    return (rgb * 255).astype(np.uint8)


def legend_gradient_css() -> str:
    stops = ", ".join(f"rgb{tuple(int(c) for c in jet(np.array(t)))} {t * 100:.0f}%" for t in np.linspace(0, 1, 9))
    return f"linear-gradient(to right, {stops})"


def frame(img: np.ndarray, r0: int, c0: int, r1: int, c1: int, color: tuple[int, int, int]) -> None:
    """Draw, in place, the 1-px outline of the half-open pixel box [r0, r1) x [c0, c1) of ``img`` (H, W, 3), clipped
    to the image."""
    h, w = img.shape[:2]
    top, bottom, left, right = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    if top >= bottom or left >= right:
        return
    for r in (r0, r1 - 1):
        if 0 <= r < h:
            img[r, left:right] = color
    for c in (c0, c1 - 1):
        if 0 <= c < w:
            img[top:bottom, c] = color


def outlined(img: np.ndarray, r0: int, c0: int, r1: int, c1: int) -> None:
    """A white outline with a dark edge outside it (white stays visible on light images), in place."""
    frame(img, r0 - 1, c0 - 1, r1 + 1, c1 + 1, (0, 0, 0))
    frame(img, r0, c0, r1, c1, (255, 255, 255))


def heat_map(values: np.ndarray, *, side: int, top: float | None = None, outline: tuple[int, int, int, int] | None = None) -> str:
    """(h, w) map -> a PNG of whole-factor blocks up to ``side`` px (jet; divided by ``top``, default its maximum);
    ``outline`` cells (r0, c0, r1, c1) drawn as a white frame with a dark edge."""
    values = np.asarray(values, np.float64)
    top = float(values.max()) if top is None else top
    big = blocks(jet(values / top if top > 0 else np.zeros_like(values)), side)
    if outline is not None:  # clamped into the map, so a hot spot at the edge keeps its whole frame
        r0, c0, r1, c1 = (v * (big.shape[0] // values.shape[0]) for v in outline)
        for colour, grow in (((0, 0, 0), 1), ((255, 255, 255), 0)):
            a, b = max(r0 - grow, 0), min(r1 + grow, big.shape[0]) - 1
            c, d = max(c0 - grow, 0), min(c1 + grow, big.shape[1]) - 1
            big[[a, b], c:d + 1] = colour
            big[a:b + 1, [c, d]] = colour
    return png_uri(big)


def overlay(image: np.ndarray, cam: np.ndarray, boxes: Sequence[tuple[float, float, float, float]], *, alpha: float = 0.45,
            region: np.ndarray | None = None) -> str:
    """``image`` the pixels as loaded (any form :func:`rgb8` takes); ``cam`` (h, w) native CAM; boxes in the image's
    pixels; ``region`` (H_in, W_in) bool at the input size (``region: mask``): its outline is drawn too.

    The CAM covers the whole input, which is a plain resize of the whole image, so it is upsampled
    bilinearly straight onto the thumbnail grid; min-max normalised for display only.
    """
    image = rgb8(image)
    height, width = image.shape[:2]
    scale = THUMB / max(height, width)
    th, tw = max(1, round(height * scale)), max(1, round(width * scale))
    thumb = resize(image, (th, tw), anti_aliasing=True, preserve_range=True).astype(np.float64)
    heat = upsample(np.asarray(cam, np.float64)[None], (th, tw))[0]
    span = heat.max() - heat.min()
    heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    out = rgb8((1 - alpha) * thumb + alpha * jet(heat).astype(np.float64))
    for x0, y0, x1, y1 in boxes:
        c0, r0 = int(np.floor(x0 * tw / width)), int(np.floor(y0 * th / height))
        c1, r1 = int(np.ceil(x1 * tw / width)), int(np.ceil(y1 * th / height))
        outlined(out, r0, c0, r1, c1)
    if region is not None:
        # nearest pixel of the input grid under each thumbnail pixel centre (the same pixel-centre rule)
        rows = np.minimum(((np.arange(th) + 0.5) * region.shape[0] / th).astype(int), region.shape[0] - 1)
        cols = np.minimum(((np.arange(tw) + 0.5) * region.shape[1] / tw).astype(int), region.shape[1] - 1)
        m = region[np.ix_(rows, cols)]
        inner = m.copy()
        inner[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
        out[m & ~inner] = (255, 255, 255)
    return jpeg_uri(out, quality=82)


def pixels_uri(pixels: np.ndarray, side: int = 112) -> str:
    """An image at the model's input size, enlarged with nearest-neighbour to ``side`` px (its longest side)
    so the model's pixels stay visible, as a JPEG data URI."""
    rgb = rgb8(pixels)
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return jpeg_uri(np.asarray(Image.fromarray(rgb).resize(size, Image.NEAREST)))


def crop_uri(pixels: np.ndarray, side: int = 80) -> str:
    """A hot spot's pixels enlarged by a whole factor, nearest-neighbour (the pixels stay honest), as a PNG."""
    return png_uri(blocks(pixels, side))


def intervention_thumbnails(image: np.ndarray, input_size: tuple[int, int], region: np.ndarray, fill: str, *, side: int = 112,
                            removal: np.ndarray | None = None) -> tuple[str, str]:
    """(object removed, object only) as the model saw them: the image resized to the input size
    (bilinear, as the audit does), ``removal`` (default ``region``) resp. all but ``region`` filled
    (``pipeline.evidence.interventions.intervene``), then enlarged with nearest-neighbour so the model's pixels
    stay visible. ``region``, ``removal`` (H, W) bool."""
    from pipeline.evidence.interventions import intervene

    height, width = input_size
    resized = np.asarray(Image.fromarray(rgb8(image)).resize((width, height), Image.BILINEAR), np.float64)
    return tuple(pixels_uri(x, side) for x in intervene(resized, region, fill, removal))  # type: ignore[return-value]

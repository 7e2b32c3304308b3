"""Gallery thumbnails: the image with its heatmap overlaid (jet) and boxes drawn, as a JPEG data URI."""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
from PIL import Image
from skimage.transform import resize

from pipeline.scoring import upsample

THUMB = 256  # longest side, px


def jet(values: np.ndarray) -> np.ndarray:
    """Jet colormap: values in [0, 1] -> uint8 RGB (blue = 0, red = 1)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * v - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)
    return (rgb * 255).astype(np.uint8)


def legend_gradient_css() -> str:
    stops = ", ".join(f"rgb{tuple(int(c) for c in jet(np.array(t)))} {t * 100:.0f}%" for t in np.linspace(0, 1, 9))
    return f"linear-gradient(to right, {stops})"


def _frame(img: np.ndarray, r0: int, c0: int, r1: int, c1: int, color: tuple[int, int, int]) -> None:
    """Draw the 1-px outline of the half-open pixel box [r0, r1) x [c0, c1), clipped to the image."""
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


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) for display: a grayscale model's (H, W, 1) or (H, W) pixels repeated into three channels."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels


def overlay(image: np.ndarray, cam: np.ndarray, boxes: Sequence[tuple[float, float, float, float]], *, alpha: float = 0.45,
            region: np.ndarray | None = None) -> str:
    """``image`` (H, W, 3) uint8 original; ``cam`` (h, w) native CAM; boxes in original pixels;
    ``region`` (H_in, W_in) bool at the input size (``region: mask``): its outline is drawn too.

    The CAM covers the whole input, which is a plain resize of the whole image, so it is upsampled
    bilinearly straight onto the thumbnail grid; min-max normalised for display only.
    """
    image = as_rgb(image)
    height, width = image.shape[:2]
    scale = THUMB / max(height, width)
    th, tw = max(1, round(height * scale)), max(1, round(width * scale))
    thumb = resize(image, (th, tw), anti_aliasing=True, preserve_range=True).astype(np.float64)
    heat = upsample(np.asarray(cam, np.float64)[None], (th, tw))[0]
    span = heat.max() - heat.min()
    heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    out = (1 - alpha) * thumb + alpha * jet(heat).astype(np.float64)
    out = out.clip(0, 255).astype(np.uint8)
    for x0, y0, x1, y1 in boxes:
        c0, r0 = int(np.floor(x0 * tw / width)), int(np.floor(y0 * th / height))
        c1, r1 = int(np.ceil(x1 * tw / width)), int(np.ceil(y1 * th / height))
        _frame(out, r0 - 1, c0 - 1, r1 + 1, c1 + 1, (0, 0, 0))  # dark outline keeps white visible on light images
        _frame(out, r0, c0, r1, c1, (255, 255, 255))
    if region is not None:
        # nearest pixel of the input grid under each thumbnail pixel centre (the same pixel-centre rule)
        rows = np.minimum(((np.arange(th) + 0.5) * region.shape[0] / th).astype(int), region.shape[0] - 1)
        cols = np.minimum(((np.arange(tw) + 0.5) * region.shape[1] / tw).astype(int), region.shape[1] - 1)
        m = region[np.ix_(rows, cols)]
        inner = m.copy()
        inner[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
        out[m & ~inner] = (255, 255, 255)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _jpeg_uri(pixels: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(as_rgb(np.clip(pixels, 0, 255).astype(np.uint8))).save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def pixels_uri(pixels: np.ndarray, side: int = 112) -> str:
    """An image at the model's input size, enlarged with nearest-neighbour to ``side`` px (its longest side)
    so the model's pixels stay visible, as a JPEG data URI."""
    h, w = pixels.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return _jpeg_uri(np.asarray(Image.fromarray(as_rgb(np.clip(pixels, 0, 255).astype(np.uint8))).resize(size, Image.NEAREST)))


def intervention_thumbnails(image: np.ndarray, input_size: tuple[int, int], region: np.ndarray, fill: str, *, side: int = 112,
                            removal: np.ndarray | None = None) -> tuple[str, str]:
    """(object removed, object only) as the model saw them: the image resized to the input size
    (bilinear, as the audit does), ``removal`` (default ``region``) resp. all but ``region`` filled
    (``pipeline.evidence.intervene``), then enlarged with nearest-neighbour so the model's pixels
    stay visible. ``region``, ``removal`` (H, W) bool."""
    from pipeline.evidence import intervene

    height, width = input_size
    resized = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR), np.float64)
    return tuple(pixels_uri(x, side) for x in intervene(resized, region, fill, removal))  # type: ignore[return-value]

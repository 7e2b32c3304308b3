"""Eval geometry (DESIGN §3 ``model.resize_mode``): how an original image becomes the model's input.

Every mode is one integer *window* ``(x0, y0, cw, ch)`` in original-image pixels (x = column) that
is resized onto the (H, W) input:

- ``stretch``: the whole image (a plain resize; aspect ratio not kept).
- ``crop``: the centred window of the input's aspect ratio, shrunk by ``crop_fraction`` — what
  torchvision/timm's "resize the shorter side to input / crop_fraction, centre crop" shows the
  model; ``crop_fraction`` 1 is Keras' ``crop_to_aspect_ratio`` (KerasHub's ImageConverter).
- ``pad``: a window of the input's aspect ratio larger than the image, the image centred in it and
  the rest ``pad_value`` (letterbox), as Keras' ``pad_to_aspect_ratio`` pads before resizing (the
  same padding on both sides, so an odd difference leaves the window one pixel short).

Window sizes and offsets use Keras' arithmetic (truncation), so ``crop`` equals cropping the file
to the window and stretching it. Boxes, polygons and masks go through the same affine map
``x' = (x - x0) * W / cw``, ``y' = (y - y0) * H / ch`` and are clipped to the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESIZE_MODES = ("stretch", "crop", "pad")

Window = tuple[int, int, int, int]
"""(x0, y0, cw, ch): the window's top-left corner and size in original-image pixels (x0, y0 < 0 under pad)."""


@dataclass(frozen=True)
class InputSpec:
    """Everything that turns an image file into the model's input.

    ``input_size`` (H, W); ``interpolation`` of the resize; ``mode``/``crop_fraction``/``pad_value``
    the geometry (``pad_value`` in raw 0-255 units, before preprocessing); ``preprocessing`` a
    config name, or ``model`` with ``scale``/``offset`` (per channel or scalar, KerasHub's
    ImageConverter: ``x * scale + offset`` after the resize); ``antialias`` the resize's
    (DESIGN §16); ``channels`` the model input's (1 or 3); ``gray``: the image becomes its
    ITU-R 601-2 luma first (one channel, repeated when the model takes three).
    """

    input_size: tuple[int, int]
    interpolation: str = "bilinear"
    mode: str = "stretch"
    crop_fraction: float = 0.875
    pad_value: float = 0.0
    preprocessing: str = "scale_0_1"
    scale: tuple[float, ...] | None = None
    offset: tuple[float, ...] | None = None
    antialias: bool = False
    channels: int = 3
    gray: bool = False

    def window(self, size: tuple[int, int]) -> Window:
        """The window of an image of ``size`` (width, height) that the model sees."""
        return window(size, self.input_size, self.mode, self.crop_fraction)

    def describe(self) -> str:
        if self.mode == "crop":
            return f"crop (centre crop of {self.crop_fraction:g} of the shorter side, input aspect)"
        if self.mode == "pad":
            return f"pad (letterbox to the input aspect, pad value {self.pad_value:g})"
        return "stretch (plain resize of the whole image)"


def window(size: tuple[int, int], input_size: tuple[int, int], mode: str, crop_fraction: float = 1.0) -> Window:
    """(x0, y0, cw, ch) for an image of ``size`` (width, height) and an input of ``input_size`` (H, W)."""
    w, h = size
    big_h, big_w = input_size
    if mode == "stretch":
        return (0, 0, w, h)
    if mode == "crop":
        cw = max(1, int(min(w, h * big_w / big_h) * crop_fraction))
        ch = max(1, int(min(h, w * big_h / big_w) * crop_fraction))
        return ((w - cw) // 2, (h - ch) // 2, cw, ch)
    if mode == "pad":
        # Keras pads the same amount on both sides: an odd difference loses its last pixel
        left, top = (max(w, int(h * big_w / big_h)) - w) // 2, (max(h, int(w * big_h / big_w)) - h) // 2
        return (-left, -top, w + 2 * left, h + 2 * top)
    raise ValueError(f"resize mode {mode!r}; expected one of {', '.join(RESIZE_MODES)}")


def to_input(xy: np.ndarray, win: Window, input_size: tuple[int, int]) -> np.ndarray:
    """Points or boxes ``(..., 2k)`` as x, y pairs in original pixels -> input pixels (float, not clipped)."""
    x0, y0, cw, ch = win
    big_h, big_w = input_size
    xy = np.asarray(xy, np.float64)
    pairs = xy.reshape(*xy.shape[:-1], -1, 2)
    out = (pairs - np.array([x0, y0], np.float64)) * np.array([big_w / cw, big_h / ch])
    return out.reshape(xy.shape)


def boxes_to_input(boxes: np.ndarray, win: Window, input_size: tuple[int, int]) -> np.ndarray:
    """Boxes ``(..., 4)`` (x0, y0, x1, y1) in original pixels -> input pixels, clipped to the input (float)."""
    big_h, big_w = input_size
    return np.clip(to_input(boxes, win, input_size), 0.0, np.array([big_w, big_h, big_w, big_h], np.float64))


def source_pixels(win: Window, input_size: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows (H,), cols (W,)) int: the original pixel under each input pixel's centre, -1 where that
    centre falls outside the image (the pad). Nearest-pixel lookup for masks given as pixels (RLE)."""
    x0, y0, cw, ch = win
    big_h, big_w = input_size
    w, h = size
    sy, sx = big_h / ch, big_w / cw
    rows = np.floor((np.arange(big_h) + 0.5) / sy + y0).astype(np.int64)
    cols = np.floor((np.arange(big_w) + 0.5) / sx + x0).astype(np.int64)
    return np.where((rows >= 0) & (rows < h), rows, -1), np.where((cols >= 0) & (cols < w), cols, -1)


def crop_window(image: np.ndarray, win: Window, pad_value: float) -> np.ndarray:
    """(ch, cw, C) the window of ``image`` (H, W, C), outside the image filled with ``pad_value`` (host twin of the tf.data op)."""
    x0, y0, cw, ch = win
    h, w = image.shape[:2]
    out = np.full((ch, cw, image.shape[2]), pad_value, dtype=image.dtype)
    r0, c0 = max(0, y0), max(0, x0)
    r1, c1 = min(h, y0 + ch), min(w, x0 + cw)
    if r1 > r0 and c1 > c0:
        out[r0 - y0:r1 - y0, c0 - x0:c1 - x0] = image[r0:r1, c0:c1]
    return out


def box_in_window(box: tuple[float, float, float, float], win: Window) -> tuple[float, float, float, float] | None:
    """A box in original pixels -> the same box in window pixels, clipped; None when none of it is in the window."""
    x0, y0, cw, ch = win
    a, b = max(box[0] - x0, 0.0), max(box[1] - y0, 0.0)
    c, d = min(box[2] - x0, float(cw)), min(box[3] - y0, float(ch))
    return (a, b, c, d) if c > a and d > b else None


def pixel_boxes(boxes: np.ndarray, scale_xy: tuple[float, float], size: tuple[int, int]) -> np.ndarray:
    """Boxes ``(..., 4)`` in original-image pixels -> int pixel intervals ``(c0, r0, c1, r1)`` at ``size``.

    ``scale_xy`` is (input W / original W, input H / original H); ``size`` is (H, W). A pixel is
    inside when its centre is; intervals are half-open and clipped to the input.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    sx, sy = scale_xy
    scaled = boxes * np.array([sx, sy, sx, sy])
    out = np.ceil(scaled - 0.5).astype(np.int64)
    limits = np.array([size[1], size[0], size[1], size[0]])
    return np.clip(out, 0, limits)

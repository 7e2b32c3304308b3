"""Image files: safe path resolution, header-only size, and decoding to RGB.

Decoding honours EXIF orientation (an invalid value such as 0 means "no rotation"), reads the
format from the bytes (PNG files named ``.jpg`` are common), and composites any transparency
onto white: what an image viewer shows. A plain ``convert("RGB")`` would show whatever colour
the transparent pixels happen to hold, often black.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}


class ImageProblem(Exception):
    """This image cannot be used; ``str(exc)`` is the skip reason."""


def resolve_image(images_dir: Path, relative: str) -> Path:
    """``images_dir / relative``, refusing absolute paths and ``..`` escapes from the folder."""
    rel = Path(relative.replace("\\", "/"))
    if rel.is_absolute():
        raise ImageProblem(f"image path {relative!r} is absolute; expected a path inside the images folder")
    path = (images_dir / rel).resolve()
    if not path.is_relative_to(images_dir.resolve()):
        raise ImageProblem(f"image path {relative!r} leaves the images folder {images_dir}")
    return path


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise ImageProblem(f"image file not found: {path}") from None
    except IsADirectoryError:
        raise ImageProblem(f"expected an image file, found a folder: {path}") from None
    except UnidentifiedImageError:
        raise ImageProblem(f"not a readable image (unknown or corrupt format): {path}") from None
    except (OSError, Image.DecompressionBombError) as exc:
        raise ImageProblem(f"image is corrupt or truncated: {path} ({exc})") from None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed (after EXIF orientation), from the header only."""
    with _open(path) as im:
        width, height = im.size
        try:
            orientation = im.getexif().get(_EXIF_ORIENTATION)
        except Exception:  # a broken EXIF block is ignored, as viewers do
            orientation = None
    return (height, width) if orientation in _SWAPS_AXES else (width, height)


def decode_rgb(path: Path) -> np.ndarray:
    """Decode to a (H, W, 3) uint8 array in display orientation, transparency composited on white."""
    with _open(path) as im:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL's palette-transparency notice is handled below
                im.load()
                im = ImageOps.exif_transpose(im)
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    rgba = im.convert("RGBA")
                    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(white, rgba)
                rgb = im.convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise ImageProblem(f"image is corrupt or truncated: {path} ({exc})") from None
    return np.asarray(rgb, dtype=np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8 ITU-R 601-2 luma of (H, W, 3) uint8 RGB, exactly as PIL's ``convert("L")`` computes it
    (L = R * 299/1000 + G * 587/1000 + B * 114/1000 in 16-bit fixed point, rounded)."""
    rgb = np.asarray(rgb, np.uint32)
    return ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)

"""Every image the report draws comes from one place (issue 39, DESIGN §16): pixels of shape (h, w), (h, w, 1) or
(h, w, 3), uint8, bool, int or float in 0-255, become RGB; property-based over shapes, channel counts and dtypes,
each expectation computed here by a second, plain implementation (a Python loop over pixels)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from pipeline.report.pictures import crop_uri, heat_map, jpeg_uri, overlay, pixels_uri, png_uri, rgb8

DTYPES = st.sampled_from([np.uint8, np.float32, np.float64, np.int32, np.int64, np.bool_])


@st.composite
def pixels(draw, max_side: int = 12):
    """Any picture the audit holds: a shape (h, w), (h, w, 1) or (h, w, 3), a dtype, values in 0-255 (floats beyond the
    range and NaN too: clipping is part of the contract)."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    shape = draw(st.sampled_from([(h, w), (h, w, 1), (h, w, 3)]))
    dtype = draw(DTYPES)
    if dtype == np.bool_:
        return draw(hnp.arrays(dtype, shape))
    if np.issubdtype(dtype, np.integer):
        return draw(hnp.arrays(dtype, shape, elements=st.integers(0, 255)))
    return draw(hnp.arrays(dtype, shape, elements=st.floats(-50, 300, width=32) | st.just(float("nan"))))


def _by_hand(a: np.ndarray) -> np.ndarray:
    """The contract, one pixel at a time: bool -> 0 / 255; float NaN -> 0, else clipped to 0-255 and truncated; gray
    repeated into R, G and B."""
    h, w = a.shape[:2]
    out = np.zeros((h, w, 3), np.uint8)
    for i in range(h):
        for j in range(w):
            px = a[i, j] if a.ndim == 3 else [a[i, j]]
            values = []
            for v in px:
                if a.dtype == np.bool_:
                    values.append(255 if v else 0)
                elif np.issubdtype(a.dtype, np.floating):
                    f = float(v)
                    values.append(0 if f != f else int(min(max(f, 0.0), 255.0)))
                else:
                    values.append(int(v))
            out[i, j] = values * 3 if len(values) == 1 else values
    return out


def _decode(uri: str) -> np.ndarray:
    head, data = uri.split(",", 1)
    assert head in ("data:image/png;base64", "data:image/jpeg;base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


@settings(max_examples=150, deadline=None)
@given(pixels())
def test_rgb8_is_the_pixel_contract(a):
    got = rgb8(a)
    assert got.dtype == np.uint8 and got.shape == (*a.shape[:2], 3)
    np.testing.assert_array_equal(got, _by_hand(a))


@settings(max_examples=80, deadline=None)
@given(pixels())
def test_png_is_lossless_and_crops_are_whole_pixel_blocks(a):
    np.testing.assert_array_equal(_decode(png_uri(a)), _by_hand(a))
    crop = _decode(crop_uri(a, side=40))
    k = max(1, 40 // max(a.shape[:2]))
    assert crop.shape == (a.shape[0] * k, a.shape[1] * k, 3)
    np.testing.assert_array_equal(crop[::k, ::k], _by_hand(a))  # each model pixel a k x k block of its colour


@settings(max_examples=60, deadline=None)
@given(pixels(), st.integers(1, 5), st.integers(1, 5))
def test_overlays_and_thumbnails_draw_any_picture(a, ch, cw):
    """A heatmap overlay keeps the picture's aspect (longest side 256); a before/after picture is enlarged to 112."""
    cam = np.random.default_rng(0).uniform(0, 1, (ch, cw))
    h, w = a.shape[:2]
    thumb = _decode(overlay(a, cam, [(0, 0, w / 2, h / 2)]))
    scale = 256 / max(h, w)
    assert thumb.shape == (max(1, round(h * scale)), max(1, round(w * scale)), 3)
    enlarged = _decode(pixels_uri(a))
    assert max(enlarged.shape[:2]) == 112


def test_gray_and_its_three_channel_copy_draw_the_same():
    gray = np.arange(48, dtype=np.float32).reshape(6, 8) * 5
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    for draw in (png_uri, jpeg_uri, lambda p: crop_uri(p, 40), pixels_uri):
        assert draw(gray) == draw(gray[..., None]) == draw(rgb)
    assert overlay(gray, np.eye(2), []) == overlay(rgb, np.eye(2), [])


def test_a_map_is_drawn_in_blocks_with_its_outline_inside():
    values = np.zeros((4, 4))
    values[0, 0] = 1.0
    drawn = _decode(heat_map(values, side=16, outline=(0, 0, 1, 1)))
    assert drawn.shape == (16, 16, 3)
    assert tuple(drawn[0, 0]) == (255, 255, 255) and tuple(drawn[4, 4]) == (0, 0, 0)  # white frame, dark edge outside it
    assert tuple(drawn[12, 12]) == (0, 0, 127)  # zero is jet's dark blue


@pytest.mark.parametrize("shape", [(0, 4), (4, 0, 3), (4, 4, 2), (4, 4, 4), (4,), (2, 2, 2, 3)])
def test_shapes_that_are_no_picture_are_refused_by_shape(shape):
    with pytest.raises(ValueError, match=r"expected pixels \(H, W\), \(H, W, 1\) or \(H, W, 3\)"):
        rgb8(np.zeros(shape, np.uint8))

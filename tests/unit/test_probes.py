"""Probes' pixels (DESIGN §11): each built-in artifact, placement, the control, overlay compositing and
the background swap, against values worked out by hand or NumPy twins; the paired effect interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.probes import artifacts as pr
from pipeline.evidence.effects import paired_difference

SIZE = (64, 64)


def gray(value: float = 100.0, size=SIZE) -> np.ndarray:
    return np.full((*size, 3), value, np.float32)


def test_the_watermark_is_a_translucent_dark_box_with_light_text():
    a = pr.builtin("watermark", 0.5, (200, 200))
    assert a.shape == (40, 100)  # 0.5 of 200 wide, 5:2
    placed = pr.Placed(a, "centre", pr.centred(100, 100, a.shape, (200, 200)))
    out = pr.apply(gray(100.0, (200, 200)), placed)
    c0, r0, c1, r1 = placed.rect
    inside = out[r0:r1, c0:c1, 0]
    # box only: 0.55 of (24) over 100 = 13.2 + 45 = 58.2; text fully covering a pixel: 0.85 of 240 over that = 204 + 8.73 = 212.73
    assert inside.min() == pytest.approx(58.2, abs=1e-3)
    assert inside.max() == pytest.approx(212.73, abs=1e-3)
    assert 0.1 < (inside > 150).mean() < 0.5  # the letters cover a part of the box
    outside = np.ones((200, 200), bool)
    outside[r0:r1, c0:c1] = False
    assert (out[outside] == 100.0).all()
    assert placed.footprint((200, 200)).sum() == 40 * 100  # the whole box is drawn


def test_the_stamp_is_plain_light_text_and_its_footprint_is_the_glyphs():
    a = pr.builtin("stamp", 0.5, (200, 200))
    assert a.shape == (25, 100)  # 4:1
    assert a.alpha.max() == pytest.approx(1.0) and 0.1 < (a.alpha > 0).mean() < 0.6
    placed = pr.Placed(a, "top-left", pr.corner("top-left", a.shape, (200, 200), 0.03))
    out = pr.apply(gray(0.0, (200, 200)), placed)
    full = placed.footprint((200, 200)) & (out[..., 0] > 254.9)
    assert full.any() and (out[full] == np.array(pr.STAMP_TEXT, np.float32)).all()
    assert (out[~placed.footprint((200, 200))] == 0).all()


def test_noise_is_deterministic_under_its_seed():
    a, b = pr.noise((10, 25)), pr.noise((10, 25))
    assert np.array_equal(a.rgb, b.rgb) and not np.array_equal(a.rgb, pr.noise((10, 25), seed=1).rgb)
    assert a.rgb.min() >= 0 and a.rgb.max() <= 255 and (a.alpha == 1).all()
    placed = pr.Placed(a, "centre", (0, 0, 25, 10))
    assert np.allclose(pr.apply(gray(), placed)[:10, :25], a.rgb)


def test_the_frame_is_a_solid_dark_border_an_eighth_of_the_size_thick():
    a = pr.builtin("frame", 0.4, SIZE)  # 0.4 / 8 of 64 = 3.2 -> 3 px
    (placed,) = pr.placements(a, SIZE, places=["corners", "centre"], margin=0.03)
    assert placed.place == "border" and placed.rect == (0, 0, 64, 64)
    out = pr.apply(gray(), placed)
    border = np.ones(SIZE, bool)
    border[3:61, 3:61] = False
    assert (out[border] == 0).all() and (out[~border] == 100).all()
    assert np.array_equal(placed.footprint(SIZE), border) and np.array_equal(placed.heat_region(SIZE), border)


def test_text_in_the_5x7_font():
    m = pr.text_mask("L1")
    assert m.shape == (7, 11)
    assert m[:, 0].all() and m[6, :5].all() and not m[:, 5].any()  # an L, a blank column, then the 1
    assert m[:, 8].all()  # the 1's stem


def test_places_at_the_corners_the_centre_and_hot_spots_stay_inside():
    a = pr.builtin("noise", 0.4, SIZE)
    assert a.shape == (10, 26)  # 25.6 -> 26 wide, 26 / 2.5 = 10.4 -> 10 high
    got = {p.place: p.rect for p in pr.placements(a, SIZE, places=["corners", "centre", "hot_spots"], margin=0.03,
                                                   hot_spots=[("apple/0", (0.9, 0.9, 1.0, 1.0)), ("pear/1", (0.0, 0.4, 0.1, 0.6))])}
    # inset round(0.03 * 64) = 2 px from each side
    assert got["top-left"] == (2, 2, 28, 12)
    assert got["top-right"] == (36, 2, 62, 12)
    assert got["bottom-left"] == (2, 52, 28, 62)
    assert got["bottom-right"] == (36, 52, 62, 62)
    assert got["centre"] == (19, 27, 45, 37)
    # centred on the hot spot's centre (60.8, 60.8), then shifted to stay inside the image
    assert got["hotspot:apple/0"] == (38, 54, 64, 64)
    assert got["hotspot:pear/1"] == (0, 27, 26, 37)
    big = pr.Artifact("x", "overlay", np.zeros((80, 80, 3)), np.ones((64, 64)))
    assert pr.inside(-5, 30, (64, 64), SIZE) == (0, 0, 64, 64) and big.shape == (64, 64)
    assert pr.artifact_size(1.0, 0.5, SIZE) == (64, 64)  # never larger than the input


def test_an_overlay_with_its_own_place_goes_only_there():
    rgba = np.zeros((8, 16, 4))
    rgba[..., 3] = 255
    a = pr.overlay("logo", rgba, 0.25, SIZE, at=(0.56, 0.80))
    (placed,) = pr.placements(a, SIZE, places=["corners", "centre", "hot_spots"], margin=0.03, hot_spots=[("a/0", (0, 0, 0.1, 0.1))])
    assert placed.place == "at" and placed.rect == (36, 51, 52, 59)  # 0.56 * 64 = 35.84 -> 36, 0.8 * 64 = 51.2 -> 51


def test_the_control_fills_exactly_the_artifacts_pixels_with_the_mean_of_the_rest():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (*SIZE, 3)).astype(np.float32)
    a = pr.builtin("stamp", 0.4, SIZE)
    placed = pr.Placed(a, "top-left", pr.corner("top-left", a.shape, SIZE, 0.03))
    foot = placed.footprint(SIZE)
    out = pr.control(image, foot, "mean")
    changed = (out != image).any(axis=-1)
    assert np.array_equal(changed, foot)
    assert np.allclose(out[foot], image[~foot].astype(np.float64).mean(axis=0))
    assert (pr.control(image, foot, "gray")[foot] == 127.5).all()
    # the edit changes the same pixels (where the text has any coverage), and no others
    edited = (pr.apply(image, placed) != image).any(axis=-1)
    assert not (edited & ~foot).any()


def test_overlay_alpha_compositing_matches_a_numpy_twin():
    rng = np.random.default_rng(1)
    rgba = np.concatenate([rng.uniform(0, 255, (8, 16, 3)), rng.uniform(0, 255, (8, 16, 1))], axis=-1)
    rgba[0, :, 3] = 0  # a transparent row
    a = pr.overlay("logo", rgba, 16 / 64, SIZE)  # drawn at its own size: 16 px wide, aspect 2:1
    assert a.shape == (8, 16)
    image = rng.uniform(0, 255, (*SIZE, 3)).astype(np.float32)
    placed = pr.Placed(a, "centre", (10, 20, 26, 28))
    twin = image.astype(np.float64).copy()
    alpha = rgba[..., 3:] / 255.0
    twin[20:28, 10:26] = alpha * rgba[..., :3] + (1 - alpha) * twin[20:28, 10:26]
    assert np.allclose(pr.apply(image, placed), twin, atol=1e-3)
    assert not placed.footprint(SIZE)[20].any()  # the transparent row is not part of the footprint


@pytest.mark.parametrize("kind", ["mask", "box"])
def test_the_background_swap_matches_a_numpy_twin(kind):
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (*SIZE, 3)).astype(np.float32)
    donor = rng.uniform(0, 255, (*SIZE, 3)).astype(np.float32)
    yy, xx = np.mgrid[:64, :64]
    if kind == "mask":
        region = (yy - 20) ** 2 + (xx - 30) ** 2 < 100
        donor_region = (yy - 40) ** 2 + (xx - 15) ** 2 < 144
    else:
        region = (yy >= 10) & (yy < 30) & (xx >= 20) & (xx < 44)
        donor_region = (yy >= 35) & (yy < 60) & (xx >= 5) & (xx < 25)
    twin = donor.astype(np.float64).copy()
    twin[donor_region] = donor[~donor_region].astype(np.float64).mean(axis=0)
    twin[region] = image[region]
    assert np.allclose(pr.swap_background(image, region, donor, donor_region, "mean"), twin, atol=1e-3)


def test_the_paired_effect_interval_on_hand_made_flip_vectors():
    # 40 samples: 30 flip with the artifact, 2 of those also flip when the area is only filled
    flip = np.r_[np.ones(30), np.zeros(10)]
    control = np.r_[np.ones(2), np.zeros(38)]
    e = paired_difference(flip, control, level=0.9, seed=0, resamples=2000)
    assert e.value == pytest.approx(28 / 40) and e.n == 40
    # the differences are 28 ones and 12 zeros: a binomial mean; its 90% interval is about ±1.645 sqrt(.7 .3 / 40) = ±0.12
    assert e.low == pytest.approx(0.7 - 0.119, abs=0.03) and e.high == pytest.approx(0.7 + 0.119, abs=0.03)
    same = paired_difference(flip, flip, level=0.9, seed=0)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    none = paired_difference(np.zeros(0), np.zeros(0), level=0.9, seed=0)
    assert none.n == 0 and math.isnan(none.low)

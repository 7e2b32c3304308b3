"""Cues without a place (DESIGN §15), the pure parts: each measure and edit on hand-made images, the AUC on hand-built
scores, the grayscale detector and the verdicts. Expected values are worked out by hand (noted beside each)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.properties import measures as pp
from pipeline.properties.stage import DATA, FRAGILE, NONE, SHORTCUT, verdict


def _gray(value: float = 100.0, size: int = 16) -> np.ndarray:
    return np.full((size, size, 3), value, np.float64)


def test_a_gray_images_cast_has_the_hues_gains():
    everywhere = np.ones((16, 16), bool)
    # gains 1 - 0.45 (1 - hue): red (1, 0.55, 0.55), yellow (1, 1, 0.55), cyan (0.55, 1, 1)
    for hue, expected in (("red", (100, 55, 55)), ("yellow", (100, 100, 55)), ("cyan", (55, 100, 100)), ("magenta", (100, 55, 100))):
        out = pp.edit(_gray(), everywhere, "colour", hue)
        assert np.allclose(out, expected), hue
    half = pp.edit(_gray(), everywhere, "colour", "red", strength=0.5)  # 1 - 0.225 = 0.775
    assert np.allclose(half[0, 0], (100, 77.5, 77.5))


def test_the_regions_pixels_are_untouched_by_every_edit():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (24, 24, 3))
    region = np.zeros((24, 24), bool)
    region[6:14, 8:18] = True
    for edit in pp.edits(pp.PROPERTIES):
        out = pp.edit(image, ~region, edit.property, edit.direction, seed=3)
        assert np.array_equal(out[region], image[region].astype(np.float32)), edit.name
        assert not np.allclose(out[~region], image[~region].astype(np.float32)), edit.name  # and the background does change


def test_the_edit_fades_in_over_two_pixels_from_the_region():
    region = np.zeros((9, 9), bool)
    region[:, :3] = True
    w = pp.feather(~region)
    assert w[4, 2] == 0 and w[4, 3] == 0.5 and w[4, 4] == 1 and w[4, 8] == 1  # distance 1 -> 1/2, distance 2 -> 1
    assert pp.feather(np.ones((4, 4), bool)).min() == 1  # no region: the whole image


def test_blur_and_sharpen_are_opposites_on_a_step_edge():
    step = np.zeros((12, 20, 3))
    step[:, 10:] = 200.0
    blurred = pp.pushed(step, "sharpness", "down")
    sharpened = pp.pushed(step, "sharpness", "up")
    assert np.allclose(blurred - step, -(sharpened - step))
    assert blurred[5, 9, 0] > 0 and blurred[5, 10, 0] < 200  # the blur spreads the edge ...
    assert sharpened[5, 9, 0] < 0 and sharpened[5, 10, 0] > 200  # ... the unsharp mask overshoots it (before clipping)
    assert np.allclose(blurred[:, :5], 0) and np.allclose(blurred[:, 15:], 200)  # flat areas stay flat


def test_light_contrast_and_saturation_by_hand():
    everywhere = np.ones((4, 4), bool)
    assert np.allclose(pp.edit(_gray(100, 4), everywhere, "brightness", "up"), 140)  # x1.4
    assert np.allclose(pp.edit(_gray(100, 4), everywhere, "brightness", "down"), 60)  # x0.6
    two = np.zeros((4, 4, 3))
    two[:2] = 80.0
    two[2:] = 120.0  # mean 100
    assert np.allclose(pp.edit(two, everywhere, "contrast", "up")[:2], 70) and np.allclose(pp.edit(two, everywhere, "contrast", "up")[2:], 130)
    assert np.allclose(pp.edit(two, everywhere, "contrast", "down")[:2], 90)  # about the mean x0.5
    red = np.zeros((4, 4, 3))
    red[..., 0] = 200.0  # luma 0.299 * 200 = 59.8
    assert np.allclose(pp.edit(red, everywhere, "saturation", "down"), 59.8)  # saturation 0: gray
    assert np.allclose(pp.edit(red, everywhere, "saturation", "up")[0, 0], (255, 0, 0))  # x2 about the luma: 340.2, -59.8, clipped


def test_the_measures_by_hand():
    region = np.zeros((16, 16), bool)
    region[4:8, 4:8] = True
    image = _gray(90)
    image[region] = 250  # the object: never read
    m = pp.measure(image, ~region)
    assert m["brightness"] == pytest.approx(90) and m["contrast"] == pytest.approx(0) and m["saturation"] == pytest.approx(0)
    assert all(m[f"colour-{h}"] == pytest.approx(0) for h in pp.HUES) and math.isnan(m["sharpness"])  # flat: no detail to share
    warm = np.full((16, 16, 3), (120.0, 90.0, 60.0))  # chromaticity (4/9, 3/9, 2/9) - 1/3 = (1/9, 0, -1/9)
    m = pp.measure(warm, ~region)
    # along red (1, -1/2, -1/2)/sqrt(3/2): (1/9 + 1/18) / 1.2247 = 0.13608; along yellow (1/2, 1/2, -1)/1.2247: same
    assert m["colour-red"] == pytest.approx(0.136083, abs=1e-6) and m["colour-yellow"] == pytest.approx(0.136083, abs=1e-6)
    assert m["colour-cyan"] == pytest.approx(-0.136083, abs=1e-6) and m["colour-green"] == pytest.approx(0, abs=1e-9)
    assert m["saturation"] == pytest.approx(60)
    noisy = _gray(100) + np.random.default_rng(1).normal(0, 20, (16, 16, 3))
    assert pp.measure(noisy, ~region)["noise"] > 5 > pp.measure(_gray(100), ~region)["noise"]


def test_sharpness_is_the_share_of_fine_detail():
    """A 16x16 checkerboard ±c about 100, the picture's edge replicated: an interior pixel's Laplacian is ∓8c (196 of
    them), an edge pixel's ∓6c (56), a corner's ∓4c (4), mean 0, so its variance is (196·64 + 56·36 + 4·16) c² / 256 =
    57.125 c² over the luma's c²: 57.125 whatever c. A cast or a gain that darkens keeps it, a blur lowers it."""
    nothing = np.zeros((16, 16), bool)
    checker = (np.indices((16, 16)).sum(axis=0) % 2 * 2 - 1).astype(float)
    for c in (10.0, 30.0):
        image = np.repeat((100 + c * checker)[..., None], 3, axis=-1)
        assert pp.measure(image, ~nothing)["sharpness"] == pytest.approx(57.125)
    image = np.repeat((100 + 10 * checker)[..., None], 3, axis=-1)
    warm = image * np.array([1.0, 0.7, 0.4])  # the cast demo's gains: luma x0.756
    assert pp.measure(warm, ~nothing)["sharpness"] == pytest.approx(57.125)
    sharp = np.repeat(np.random.default_rng(4).normal(100, 20, (64, 64, 1)), 3, axis=-1)  # the blur: sigma ~1 px at 64 px
    everywhere = np.ones((64, 64), bool)
    assert pp.measure(pp.pushed(sharp, "sharpness", "down"), everywhere)["sharpness"] < 0.5 * pp.measure(sharp, everywhere)["sharpness"]


def test_blockiness_finds_8x8_blocks():
    blocks = np.kron(np.random.default_rng(2).uniform(0, 255, (4, 4)), np.ones((8, 8)))  # flat 8x8 blocks: steps only across borders
    smooth = np.add.outer(np.arange(32.0), np.arange(32.0)) * 4
    everywhere = np.ones((32, 32), bool)
    assert math.isnan(pp.blockiness(blocks, everywhere))  # no step inside a block: the ratio has no denominator
    textured = blocks + np.add.outer(np.arange(32.0) % 2, np.zeros(32))  # a 1-step texture inside the blocks
    assert pp.blockiness(textured, everywhere) > 10 and pp.blockiness(smooth, everywhere) == pytest.approx(1)


def test_the_auc_on_hand_built_scores():
    # 9 pairs: 3 > 1, 2 (2) and 3 = 3 (a half); 4 and 5 beat all three (6): 8.5 / 9
    assert pp.auc(np.array([3, 4, 5]), np.array([1, 2, 3])) == pytest.approx(8.5 / 9)
    assert pp.auc(np.array([1, 2]), np.array([3, 4])) == 0 and pp.auc(np.array([5.0]), np.array([5.0])) == 0.5
    assert math.isnan(pp.auc(np.array([]), np.array([1.0])))
    low, high = pp.auc_interval(np.arange(10, 20.0), np.arange(0, 10.0), level=0.9, resamples=200, seed=0)
    assert low == high == 1.0  # perfectly separated in every resample


def test_the_grayscale_detector():
    gray = np.repeat(np.random.default_rng(3).uniform(0, 255, (20, 8, 8, 1)), 3, axis=-1)
    coloured = gray.copy()
    coloured[..., 0] += 30
    assert not pp.carries_colour(gray) and not pp.carries_colour(gray[..., :1])  # R = G = B, or one channel
    assert pp.carries_colour(np.concatenate([gray[:18], coloured[18:]]))  # 2 of 20 in colour: 90% gray < 95%
    assert not pp.carries_colour(np.concatenate([gray[:19], coloured[19:]]))  # 1 of 20: 95% gray


def test_the_edits_and_their_controls():
    every = pp.edits(pp.PROPERTIES)
    assert len(every) == 16
    assert [e.name for e in every if e.property == "colour"] == ["colour-red", "colour-yellow", "colour-green", "colour-cyan", "colour-blue",
                                                                 "colour-magenta"]
    assert {(e.name, e.control) for e in every if e.property == "brightness"} == {("brightness-up", "down"), ("brightness-down", "up")}
    assert [e.control for e in every if e.property in ("noise", "jpeg")] == [None, None]  # their control: the unedited image
    assert len(pp.edits(pp.PROPERTIES, colour=False)) == 8  # no colour, no saturation


def test_the_verdict_needs_both_sides():
    assert [verdict(data, model) for data in (True, False) for model in (True, False)] == [SHORTCUT, DATA, FRAGILE, NONE]


def test_the_3x3_median_equals_scipys_with_ties_and_edges():
    from scipy import ndimage

    rng = np.random.default_rng(4)
    for shape in ((6, 64, 64), (3, 1, 1), (2, 2, 9), (4, 7, 5)):
        for step in (None, 40.0):  # continuous values, and few distinct ones (many ties)
            gray = rng.uniform(0, 255, shape)
            gray = gray if step is None else np.round(gray / step) * step
            assert np.array_equal(pp.median3x3(gray), ndimage.median_filter(gray, size=(1, 3, 3), mode="nearest")), (shape, step)
    spike = np.zeros((1, 5, 5))
    spike[0, 2, 2] = 255  # one bright pixel: the median removes it, and a pixel's neighbours never see another image's
    assert not pp.median3x3(np.concatenate([spike, np.full((1, 5, 5), 9.0)]))[0].any()


def test_a_batch_edits_each_image_as_if_it_were_alone():
    """Blur, noise, contrast's pivot and the feather are per image: an image's edit does not depend on its batch-mates."""
    rng = np.random.default_rng(5)
    images = rng.uniform(0, 255, (3, 20, 24, 3))
    images[1] = 250.0  # a bright, flat neighbour would leak into a blur or a pivot taken across the batch
    outside = np.ones((3, 20, 24), bool)
    outside[0, 4:12, 5:15] = False
    outside[2, :, :6] = False
    weights = np.stack([pp.feather(o) for o in outside])
    for edit in pp.edits(pp.PROPERTIES):
        batch = pp.edit_batch(images, outside, weights, edit.property, edit.direction, seeds=(7, 8, 9))
        for i in (0, 2):
            alone = pp.edit(images[i], outside[i], edit.property, edit.direction, seed=(7, 8, 9)[i])
            assert np.array_equal(batch[i], alone), (edit.name, i)


def test_measuring_a_batch_of_many_images_gives_each_images_own_measures():
    rng = np.random.default_rng(6)
    images = rng.uniform(0, 255, (pp.MEASURE_CHUNK + 5, 16, 16, 3))  # more than one chunk
    outside = rng.uniform(size=images.shape[:3]) > 0.2
    batch = pp.measure_batch(images, outside)
    for i in (0, pp.MEASURE_CHUNK - 1, pp.MEASURE_CHUNK, len(images) - 1):
        alone = pp.measure(images[i], outside[i])
        assert np.allclose(batch[i], [alone[k] for k in pp.MEASURES], rtol=1e-12, atol=1e-12, equal_nan=True), i

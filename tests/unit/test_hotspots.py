"""What a hot spot holds (DESIGN §12), on hand-made image stacks: consistency worked out by hand,
and each kind from pixels built to be it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.strategies import hotspots as hs

SIZE = (64, 64)


def gray_stack(rows: list[list[float]]) -> np.ndarray:
    """Gray 1x4 patches as (n, 1, 4, 3) RGB (equal channels: luma = the value)."""
    a = np.asarray(rows, np.float64)[:, None, :, None]
    return np.repeat(a, 3, axis=3)


def test_consistency_by_hand():
    # p1 = p3 = [0, 0, 1, 1], p2 = [0, 1, 0, 1].
    # others(p1) = (p2 + p3) / 2 = [0, .5, .5, 1]: centred [-.5, 0, 0, .5] against [-.5, -.5, .5, .5]:
    #   covariance sum .5, norms² 1 and .5 -> r = .5 / sqrt(.5) = 0.7071; p3 the same.
    # others(p2) = [0, 0, 1, 1]: centred products .25 - .25 - .25 + .25 = 0 -> r = 0.
    stack = gray_stack([[0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 1, 1]])
    r = hs.loo_correlations(hs.grayscale(stack))
    assert r == pytest.approx([math.sqrt(0.5), 0.0, math.sqrt(0.5)])
    assert hs.consistency(hs.grayscale(stack)) == pytest.approx(2 * math.sqrt(0.5) / 3)


def test_a_flat_member_is_left_out_of_the_correlation():
    with_flat = gray_stack([[0, 0, 1, 1], [0, 1, 0, 1], [5, 5, 5, 5], [0, 0, 1, 1]])
    assert hs.loo_correlations(hs.grayscale(with_flat)) == pytest.approx([math.sqrt(0.5), 0.0, math.sqrt(0.5)])
    # it still counts as a member read: 4 members, 3 of them varied
    content = hs.describe(with_flat, with_flat, (0, 0, 4, 1), SIZE)
    assert content.n == 4 and content.n_varied == 3


def test_fewer_than_two_varied_patches_have_no_consistency():
    assert math.isnan(hs.consistency(hs.grayscale(gray_stack([[1, 2, 3, 4], [7, 7, 7, 7]]))))


def text_mask(h: int, w: int) -> np.ndarray:
    """A text-like stroke pattern: three 'letters' of bars, about a third of the box."""
    m = np.zeros((h, w), bool)
    for x0 in (1, 6, 11):
        m[1:h - 1, x0] = True
        m[1, x0:x0 + 3] = True
        m[h // 2, x0:x0 + 3] = True
    return m


def test_a_fixed_text_overlay_on_random_backgrounds_is_an_overlay():
    rng = np.random.default_rng(0)
    h, w, n = 8, 16, 20
    glyphs = text_mask(h, w)
    patches = rng.uniform(0, 255, (n, h, w, 3))
    patches[:, glyphs] = 0.3 * patches[:, glyphs] + 0.7 * 250.0  # light text, semi-transparent: the background shows through
    controls = rng.uniform(0, 255, (n, h, w, 3))
    c = hs.describe(patches, controls, (40, 50, 40 + w, 50 + h), SIZE)
    assert c.kind == "overlay" and c.colour == ""
    assert c.consistency > 0.5 and c.consistency - c.consistency_baseline > 0.3
    assert c.matches == n
    assert c.description().startswith(f"the same pattern appears on {n} of {n} images (an overlay")


def test_a_solid_square_in_one_colour_is_a_patch_named_by_its_colour():
    rng = np.random.default_rng(1)
    n = 15
    patches = rng.uniform(0, 255, (n, 12, 12, 3))
    patches[:, 3:9, 3:9] = (30, 60, 240)
    c = hs.describe(patches, rng.uniform(0, 255, (n, 12, 12, 3)), (20, 20, 32, 32), SIZE)
    assert c.kind == "patch" and c.colour == "blue"
    assert c.patch == (23, 23, 29, 29)  # the shared pixels, not the whole rectangle
    assert c.flatness == pytest.approx(1.0) and c.same_colour == n


def test_a_flat_bar_along_the_bottom_edge_is_a_border():
    rng = np.random.default_rng(2)
    n = 12
    patches = rng.uniform(0, 255, (n, 12, 64, 3))  # rows 52-64 of a 64x64 input
    patches[:, 6:] = 0.0  # a black letterbox bar along the bottom edge
    c = hs.describe(patches, rng.uniform(0, 255, (n, 12, 64, 3)), (0, 52, 64, 64), SIZE)
    assert c.kind == "border" and c.colour == "black"
    assert c.patch == (0, 58, 64, 64)


def test_the_same_bar_away_from_the_edges_is_a_patch():
    rng = np.random.default_rng(2)
    patches = rng.uniform(0, 255, (12, 12, 40, 3))
    patches[:, 4:8] = 0.0
    assert hs.describe(patches, patches[::-1], (10, 20, 50, 32), SIZE).kind == "patch"


def smooth_texture(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    from scipy import ndimage

    return np.stack([np.clip(128 + 8 * ndimage.gaussian_filter(rng.normal(0, 20, (h, w, 3)), (2, 2, 0)), 0, 255) for _ in range(n)])


def test_random_natural_like_texture_is_background():
    rng = np.random.default_rng(3)
    c = hs.describe(smooth_texture(rng, 20, 12, 16), smooth_texture(rng, 20, 12, 16), (30, 30, 46, 42), SIZE)
    assert c.kind == "background" and c.colour == ""
    assert abs(c.consistency) < 0.3
    assert c.description().startswith("nothing fixed appears")


def test_a_flat_patch_whose_colour_changes_per_image_is_not_a_patch():
    rng = np.random.default_rng(4)
    patches = np.broadcast_to(rng.uniform(0, 255, (10, 1, 1, 3)), (10, 8, 8, 3)).copy()  # each member flat, each another colour
    c = hs.describe(patches, patches, (20, 20, 28, 28), SIZE)
    assert c.flatness == pytest.approx(1.0) and c.kind == "background" and c.n_varied == 0


@pytest.mark.parametrize("rgb, name", [
    ((230, 20, 20), "red"), ((20, 200, 20), "green"), ((30, 60, 240), "blue"), ((0, 0, 0), "black"), ((255, 255, 255), "white"),
    ((128, 128, 128), "gray"), ((255, 220, 0), "yellow"), ((255, 140, 0), "orange"), ((139, 69, 19), "brown"),
    ((128, 0, 128), "purple"), ((255, 105, 180), "pink"), ((0, 200, 200), "cyan"), ((40, 40, 40), "black"),
])
def test_colour_names(rgb, name):
    assert hs.colour_name(rgb) == name

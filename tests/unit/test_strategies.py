"""Strategies (DESIGN §10): clustering, hot spots and the causal tests' pixel rules, against values
worked out by hand or by a plain NumPy twin. No TensorFlow."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from pipeline.strategies import analysis as st
from pipeline.evidence import effects
from pipeline.evidence.interventions import fill_colour


def blob(rng: np.random.Generator, cy: float, cx: float, n: int, grid: int = 8, noise: float = 0.3) -> np.ndarray:
    """n maps with a Gaussian bump at (cy, cx), multiplicative noise per cell."""
    yy, xx = np.mgrid[:grid, :grid]
    base = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
    maps = base[None] * (1 + noise * rng.standard_normal((n, grid, grid)))
    return np.clip(maps, 0, None) + 0.01 * rng.random((n, grid, grid))


def partition(maps: np.ndarray, seed: int = 0) -> np.ndarray:
    x, _ = st.normalised_maps(maps)
    ids, _ = st.spectral_partition(x.reshape(len(x), -1), neighbours=10, max_strategies=6, seed=seed)
    return ids


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to the ids: i and j together in one exactly when together in the other."""
    return bool(np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :]))


@pytest.mark.parametrize("seed", range(4))
def test_three_groups_of_maps_give_three_strategies_with_the_right_members(seed):
    rng = np.random.default_rng(seed)
    maps = np.concatenate([blob(rng, 1, 1, 30), blob(rng, 6, 6, 25), blob(rng, 1, 6, 20)])
    truth = np.repeat([0, 1, 2], [30, 25, 20])
    ids = partition(maps)
    assert same_partition(ids, truth)
    assert list(np.bincount(ids)) == [30, 25, 20]  # ids by size, largest first


@pytest.mark.parametrize("seed", range(8))
def test_one_noisy_group_is_one_strategy(seed):
    # the eigengap alone cuts a structureless cloud in two at some seeds; the null spectrum stops that
    maps = blob(np.random.default_rng(seed), 3, 3, 60)
    assert partition(maps).max() == 0


def test_a_permutation_of_the_samples_gives_the_same_partition_and_seeded_runs_are_identical():
    rng = np.random.default_rng(5)
    maps = np.concatenate([blob(rng, 1, 1, 25), blob(rng, 6, 6, 25), blob(rng, 6, 1, 25), blob(rng, 1, 6, 25)])
    ids = partition(maps)
    order = np.random.default_rng(1).permutation(len(maps))
    again = partition(maps[order])
    assert same_partition(ids[order], again)
    assert np.array_equal(partition(maps), ids)


def test_stability_is_one_for_separated_groups():
    rng = np.random.default_rng(2)
    x, _ = st.normalised_maps(np.concatenate([blob(rng, 1, 1, 30), blob(rng, 6, 6, 30)]))
    flat = x.reshape(len(x), -1)
    ids, _ = st.spectral_partition(flat, neighbours=10, max_strategies=6, seed=0)
    assert st.stability(flat, ids, neighbours=10, max_strategies=6, seed=0) == pytest.approx(1.0)
    assert adjusted_rand_score(ids, np.repeat([0, 1], 30)) == 1.0


def test_eigengap_picks_the_largest_gap_and_allows_one():
    assert st.eigengap_k(np.array([0.0, 0.0, 0.0, 0.5, 0.6]), 4) == 3
    assert st.eigengap_k(np.array([0.0, 0.4, 0.45, 0.5]), 3) == 1
    # with a null spectrum: k = 2 would be the largest gap, but λ2 = 0.2 is not below half the null's 0.25
    assert st.eigengap_k(np.array([0.0, 0.2, 0.6, 0.65]), 3, np.array([0.0, 0.25, 0.3, 0.35])) == 1


def test_normalised_maps_leave_out_empty_ones():
    cams = np.stack([np.full((2, 2), 2.0), np.zeros((2, 2)), np.full((2, 2), np.nan)])
    maps, keep = st.normalised_maps(cams)
    assert keep.tolist() == [True, False, False]
    assert maps[0].tolist() == [[0.25, 0.25], [0.25, 0.25]]
    none, keep = st.normalised_maps(np.zeros((0, 2, 2)))  # a label nothing was explained for
    assert none.shape == (0, 2, 2) and keep.size == 0


def test_coverage_is_the_area_share_of_each_cell():
    # 6x6 input on a 4x4 grid: cell edges at 0, 1.5, 3, 4.5, 6; the region is rows 0-2, columns 0-1 (pixels)
    region = np.zeros((6, 6), bool)
    region[0:3, 0:2] = True
    cov = st.coverage(region, (4, 4))
    # cell (0,0): rows [0,1.5) all in, columns [0,1.5) all in -> 1; cell (0,1): columns [1.5,3) -> pixel 1 half -> 0.5/1.5
    assert cov[0, 0] == pytest.approx(1.0)
    assert cov[0, 1] == pytest.approx(0.5 / 1.5)
    assert cov[1, 0] == pytest.approx(1.0)  # rows [1.5, 3): pixels 1 (half) and 2 -> all inside
    assert cov[2, 0] == pytest.approx(0.0)
    assert cov.sum() * (1.5 * 1.5) == pytest.approx(region.sum())  # areas add up


def test_hot_spot_on_a_hand_made_mean_map():
    # 4x4 grid; heat 0.5 on the object (cell (2,1)), 0.3 + 0.2 on the top-right cells (0,3) and (1,3), none elsewhere
    m = np.zeros((4, 4))
    m[2, 1], m[0, 3], m[1, 3] = 0.5, 0.3, 0.2
    c = np.zeros((4, 4))
    c[2, 1] = 1.0
    # O = M(1-C): 0.3 at (0,3), 0.2 at (1,3); threshold 0.5 * 0.3 = 0.15 keeps both, one 4-connected component
    assert st.hot_spot_cells(m, c, 0.5) == (0, 3, 2, 4)
    # threshold 0.7 -> 0.21: only (0,3)
    assert st.hot_spot_cells(m, c, 0.7) == (0, 3, 1, 4)
    h = st.hot_spot(m[None], c[None], 0.5)
    assert h.rect == (0.75, 0.0, 1.0, 0.5)
    assert h.share == pytest.approx(0.5)  # 0.3 + 0.2
    assert h.concentration == pytest.approx(0.5 / (2 / 16))
    assert h.off_object_share == pytest.approx(1.0)


def test_hot_spot_component_is_four_connected_and_off_object_share_is_energy_weighted():
    m = np.zeros((3, 3))
    m[0, 0], m[1, 1] = 0.6, 0.4  # diagonal neighbours: two components under 4-connectivity
    assert st.hot_spot_cells(m, np.zeros((3, 3)), 0.5) == (0, 0, 1, 1)
    # two samples whose rectangle (the whole top row) is half on their object
    x = np.zeros((2, 2, 2))
    x[0, 0, 0], x[0, 1, 1] = 0.8, 0.2  # sample 0: 0.8 in the top-left cell
    x[1, 0, 1], x[1, 1, 0] = 0.6, 0.4  # sample 1: 0.6 in the top-right cell
    cov = np.zeros((2, 2, 2))
    cov[0, 0, 0] = 1.0  # sample 0's object covers its top-left cell: its 0.8 there is on-object
    h = st.hot_spot(x, cov, 0.7)
    # mean map [[0.4, 0.3], [0.2, 0.1]], mean coverage 0.5 at (0,0): O = [[0.2, 0.3], [0.2, 0.1]];
    # 0.7 * 0.3 = 0.21 keeps the top-right cell alone
    assert h.cells == (0, 1, 1, 2)
    assert h.off_object_share == pytest.approx(1.0)
    h2 = st.hot_spot(x, cov, 0.0)  # threshold 0: every cell with O >= 0, the whole grid
    # inside: all energy 2.0; on sample 0's object: 0.8 -> off share (2.0 - 0.8) / 2.0
    assert h2.off_object_share == pytest.approx(0.6)


def test_rect_pixels_follow_the_pixel_centre_rule():
    # 64 px: x 0.8125 -> 52.0 -> first pixel whose centre >= 52 is 52; a rect edge at 10.3 px -> pixel 10 (centre 10.5 > 10.3)
    assert st.rect_pixels((0.8125, 0.0, 1.0, 0.25), (64, 64)) == (52, 0, 64, 16)
    assert st.rect_pixels((10.3 / 64, 0.0, 20.6 / 64, 1.0), (64, 64)) == (10, 0, 21, 64)
    assert st.rect_pixels((0.1, 0.1, 0.5, 0.5), (30, 50)) == (5, 3, 25, 15)


def test_blank_and_paste_against_a_numpy_twin():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    donor = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    px = (2, 3, 6, 8)  # columns 2-5, rows 3-7
    inside = np.zeros((12, 10), bool)
    inside[3:8, 2:6] = True
    mean = image[~inside].astype(np.float64).mean(axis=0)
    twin = image.copy()
    twin[inside] = mean
    assert np.allclose(st.blank(image, px, "mean"), twin, atol=1e-4)
    assert np.allclose(fill_colour(image.astype(np.float64), ~inside, "mean"), mean)
    gray = st.blank(image, px, "gray")
    assert (gray[inside] == 127.5).all() and np.array_equal(gray[~inside], image[~inside])
    pasted = st.paste(image, donor, px)
    assert np.array_equal(pasted[inside], donor[inside])  # exactly the donor's pixels
    assert np.array_equal(pasted[~inside], image[~inside])
    # the sample's own object (protect) is never blanked nor moved: rows 6-7 of the rectangle are object
    obj = np.zeros((12, 10), bool)
    obj[6:10, 0:10] = True
    edit = inside & ~obj
    twin = image.copy()
    twin[edit] = image[~edit].astype(np.float64).mean(axis=0)
    assert np.allclose(st.blank(image, px, "mean", obj), twin, atol=1e-4)
    moved = st.paste(image, donor, px, obj)
    assert np.array_equal(moved[edit], donor[edit]) and np.array_equal(moved[~edit], image[~edit])


def test_control_positions_keep_size_avoid_the_region_and_the_hot_spot():
    region = np.zeros((64, 64), bool)
    region[20:50, 10:40] = True
    hot = (52, 0, 64, 12)
    rects = st.control_positions(np.random.default_rng(0), hot, region, count=20, max_overlap=0.25, avoid=hot)
    assert len(rects) == 20
    for c0, r0, c1, r1 in rects:
        assert (c1 - c0, r1 - r0) == (12, 12) and c0 >= 0 and r0 >= 0 and c1 <= 64 and r1 <= 64
        assert st.overlap_share(region, (c0, r0, c1, r1)) <= 0.25
        assert c1 <= 52 or r0 >= 12  # no intersection with the hot spot
    # nowhere to go: the region fills the image -> the least-overlapping draw is still returned
    full = np.ones((16, 16), bool)
    assert len(st.control_positions(np.random.default_rng(0), (0, 0, 4, 4), full, count=2, max_overlap=0.25)) == 2


def test_paired_difference_and_its_interval():
    control = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 1, 1]], float)  # per sample 0.75, 1.0, 0.75
    hot = np.array([0.0, 1.0, 0.0])
    e = effects.paired_difference(control, hot, level=0.9, seed=0)
    assert e.value == pytest.approx((0.75 + 0.0 + 0.75) / 3)
    assert e.n == 3 and 0.0 <= e.low <= e.value <= e.high <= 0.75
    assert math.isnan(effects.paired_difference(np.zeros(0), np.zeros(0), level=0.9, seed=0).value)


def test_place_names():
    assert st.place_name((0.8, 0.8, 1.0, 1.0)) == "bottom-right corner"
    assert st.place_name((0.0, 0.4, 0.2, 0.6)) == "left edge"
    assert st.place_name((0.3, 0.0, 0.7, 0.1)) == "top edge"
    assert st.place_name((0.4, 0.4, 0.6, 0.6)) == "centre"

"""Localisation metrics on small maps worked out by hand.

Hand model: a 2x2 native map upsampled to 4x4. With half-pixel centres the source coordinates of
the 4 output rows are -0.25, 0.25, 0.75, 1.25, so (edges clamped) the 1-D weights are
row0 = [1, 0], row1 = [.75, .25], row2 = [.25, .75], row3 = [0, 1]: each native cell spreads a
total weight of 2 per axis, 4 in 2-D. For cam = [[1, 0], [0, 0]] the upsampled map is u u^T with
u = [1, .75, .25, 0]: total energy (1+.75+.25)^2 = 4, energy in the top-left 2x2 box
(1 + .75)^2 = 3.0625.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.data.geometry import pixel_boxes
from pipeline.explain.scoring import bilinear_matrix, score, upsample


def _score(cam, boxes, size=(4, 4)):
    cams = np.asarray(cam, np.float64)[None]
    b = np.asarray(boxes, np.int64)[None]
    return score(cams, b, np.ones(b.shape[:2], bool), size)


def test_bilinear_matrix_by_hand():
    np.testing.assert_allclose(bilinear_matrix(4, 2), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])


def test_corner_peak_energy_lift_focus_pointing():
    s = _score([[1, 0], [0, 0]], [[0, 0, 2, 2]])
    assert s.energy_in_box[0] == pytest.approx(3.0625 / 4)
    assert s.box_area_fraction[0] == pytest.approx(0.25)
    assert s.energy_lift[0] == pytest.approx(3.0625)
    assert s.focus_score[0] == pytest.approx((0.765625 - 0.25) / 0.75)
    assert s.pointing_hit[0] == 1.0
    assert s.judged[0]


def test_map_with_positive_minimum_is_not_normalised():
    # cam + 1: upsampled map = 1 + u u^T, total 16 + 4 = 20, in box 4 + 3.0625. Min-max
    # normalising first would give back 0.765625.
    s = _score([[2, 1], [1, 1]], [[0, 0, 2, 2]])
    assert s.energy_in_box[0] == pytest.approx(7.0625 / 20)


def test_all_zero_map_has_no_signal():
    s = _score([[0, 0], [0, 0]], [[0, 0, 2, 2]])
    assert math.isnan(s.energy_in_box[0]) and math.isnan(s.focus_score[0]) and math.isnan(s.pointing_hit[0])
    assert not s.judged[0]


def test_box_covering_whole_input_cannot_be_judged():
    s = _score([[1, 0], [0, 0]], [[0, 0, 4, 4]])
    assert s.energy_in_box[0] == pytest.approx(1.0)
    assert s.box_area_fraction[0] == 1.0
    assert math.isnan(s.focus_score[0])
    assert not s.judged[0]


def test_union_of_overlapping_boxes_counts_overlap_once():
    # Uniform map: energy = union area / 16 = (4 + 4 - 1) / 16; focus 0 and lift 1 (chance).
    s = _score([[1, 1], [1, 1]], [[0, 0, 2, 2], [1, 1, 3, 3]])
    assert s.energy_in_box[0] == pytest.approx(7 / 16)
    assert s.box_area_fraction[0] == pytest.approx(7 / 16)
    assert s.focus_score[0] == pytest.approx(0.0)
    assert s.energy_lift[0] == pytest.approx(1.0)


def test_evidence_avoiding_the_object_gives_negative_focus():
    # Peak in the bottom-right cell, box top-left: in-box energy is u'u'^T over rows/cols 0-1 with
    # u' = [0, .25, .75, 1] -> (0 + .25)^2 = 0.0625 of 4.
    s = _score([[0, 0], [0, 1]], [[0, 0, 2, 2]])
    assert s.energy_in_box[0] == pytest.approx(0.0625 / 4)
    assert s.focus_score[0] == pytest.approx((0.015625 - 0.25) / 0.75)
    assert s.pointing_hit[0] == 0.0


def test_padding_boxes_are_ignored():
    cams = np.array([[[1, 0], [0, 0]]], np.float64)
    boxes = np.array([[[0, 0, 2, 2], [2, 2, 4, 4]]])
    s = score(cams, boxes, np.array([[True, False]]), (4, 4))
    assert s.energy_in_box[0] == pytest.approx(3.0625 / 4)


def test_pixel_inside_when_its_centre_is():
    # Columns with centres 0.5, 1.5, 2.5: only 1.5 lies in [0.6, 2.4).
    np.testing.assert_array_equal(pixel_boxes(np.array([0.6, 0, 2.4, 4]), (1, 1), (4, 4)), [1, 0, 2, 4])
    # (10, 20, 30, 40) in a 100 wide x 200 high image, input 50x50: scaled (5, 5, 15, 10).
    np.testing.assert_array_equal(pixel_boxes(np.array([10, 20, 30, 40]), (0.5, 0.25), (50, 50)), [5, 5, 15, 10])


def test_matches_brute_force_full_resolution_reference():
    """A second, plain implementation: upsample fully, build the mask pixel by pixel, sum."""
    rng = np.random.default_rng(7)
    size, native = (37, 53), (5, 6)
    cams = rng.random((12, *native)) ** 3
    boxes = np.zeros((12, 3, 4), np.int64)
    valid = rng.random((12, 3)) < 0.7
    valid[:, 0] = True
    for b in range(12):
        for k in range(3):
            x0, y0 = rng.integers(0, size[1] - 1), rng.integers(0, size[0] - 1)
            boxes[b, k] = [x0, y0, rng.integers(x0 + 1, size[1] + 1), rng.integers(y0 + 1, size[0] + 1)]
    s = score(cams, boxes, valid, size)
    for b in range(12):
        src_r = np.clip((np.arange(size[0]) + 0.5) * native[0] / size[0] - 0.5, 0, native[0] - 1)
        src_c = np.clip((np.arange(size[1]) + 0.5) * native[1] / size[1] - 0.5, 0, native[1] - 1)
        up = np.array([[np.interp(c, np.arange(native[1]), [np.interp(r, np.arange(native[0]), cams[b][:, j]) for j in range(native[1])]) for c in src_c] for r in src_r])
        mask = np.zeros(size, bool)
        for k in range(3):
            if valid[b, k]:
                c0, r0, c1, r1 = boxes[b, k]
                mask[r0:r1, c0:c1] = True
        assert s.energy_in_box[b] == pytest.approx(up[mask].sum() / up.sum(), abs=1e-9)
        assert s.box_area_fraction[b] == pytest.approx(mask.mean())
        assert s.pointing_hit[b] == float(mask.flat[up.argmax()])
        np.testing.assert_allclose(upsample(cams[b:b + 1], size)[0], up, atol=1e-12)

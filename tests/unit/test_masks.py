"""COCO masks (DESIGN §4 "Region"): decoding against pycocotools, the pixel-centre rule by hand,
and mask scoring against a brute-force full-resolution sum."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.masks import MaskProblem, polygon_mask, rle_decode, segmentation_mask
from pipeline.data.geometry import pixel_boxes
from pipeline.explain.scoring import score, score_region, upsample

mask_api = pytest.importorskip("pycocotools.mask", reason="pycocotools (the reference decoder) is in the dev extra")


def _random_mask(rng, h, w):
    m = np.zeros((h, w), bool)
    for _ in range(3):
        r0, c0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
        m[r0:r0 + rng.integers(1, h - r0), c0:c0 + rng.integers(1, w - c0)] ^= True
    return m


@pytest.mark.parametrize("seed", range(5))
def test_compressed_and_uncompressed_rle_decode_like_pycocotools(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(5, 40)), int(rng.integers(5, 40))
    m = _random_mask(rng, h, w)
    rle = mask_api.encode(np.asfortranarray(m.astype(np.uint8)))
    compressed = {"size": [h, w], "counts": rle["counts"].decode()}
    assert np.array_equal(rle_decode(compressed, h, w), mask_api.decode(rle).astype(bool))
    # uncompressed counts (what COCO writes for crowds), built by hand from the column-major runs
    flat = m.T.reshape(-1)
    runs, current, n = [], False, 0
    for v in flat:
        if v != current:
            runs.append(n)
            current, n = v, 0
        n += 1
    runs.append(n)
    uncompressed = {"size": [h, w], "counts": runs}
    ref = mask_api.decode(mask_api.frPyObjects(uncompressed, h, w)).astype(bool)
    assert np.array_equal(rle_decode(uncompressed, h, w), ref) and np.array_equal(ref, m)


def test_bad_rle_says_what_is_wrong():
    with pytest.raises(MaskProblem, match=r"RLE counts sum to 5, expected 6"):
        rle_decode({"size": [2, 3], "counts": [1, 4]}, 2, 3)
    with pytest.raises(MaskProblem, match=r"does not match the 3x2 image"):
        rle_decode({"size": [3, 2], "counts": [6]}, 2, 3)


def test_polygon_pixel_centre_rule_by_hand():
    # triangle (0,0) (4,0) (0,4): centre (j+.5, i+.5) inside when x + y < 4 (strictly: the edge is half-open)
    tri = polygon_mask(np.array([[0, 0], [4, 0], [0, 4]], float), (5, 5))
    expected = np.array([[(j + 0.5) + (i + 0.5) < 4 for j in range(5)] for i in range(5)])
    assert np.array_equal(tri, expected)
    # a rectangle polygon covers exactly the pixels of the equal box
    for box in ([1.4, 0.6, 3.5, 2.49], [0, 0, 5, 4], [2.5, 1.5, 2.6, 3.7]):
        x0, y0, x1, y1 = box
        poly = polygon_mask(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), (4, 5))
        c0, r0, c1, r1 = pixel_boxes(np.array(box), (1.0, 1.0), (4, 5))
        expected = np.zeros((4, 5), bool)
        expected[r0:r1, c0:c1] = True
        assert np.array_equal(poly, expected), box


def test_polygons_agree_with_pycocotools_except_on_the_boundary():
    rng = np.random.default_rng(3)
    h, w = 60, 80
    for _ in range(5):
        angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
        radius = rng.uniform(10, 25, 7)
        pts = np.stack([40 + radius * np.cos(angles), 30 + radius * np.sin(angles)], axis=1)
        ours = segmentation_mask([pts.reshape(-1).tolist()], (w, h), (h, w))
        ref = mask_api.decode(mask_api.merge(mask_api.frPyObjects([pts.reshape(-1).tolist()], h, w))).astype(bool)
        differ = ours != ref
        # distance of each differing pixel's centre to the nearest polygon edge: pycocotools' own
        # rasteriser rounds edges differently, so they may only disagree right at the boundary
        a, b = pts, np.roll(pts, -1, axis=0)
        ii, jj = np.nonzero(differ)
        centres = np.stack([jj + 0.5, ii + 0.5], axis=1)[:, None, :]
        t = np.clip(((centres - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1), 0, 1)
        dist = np.linalg.norm(centres - (a + t[..., None] * (b - a)), axis=-1).min(axis=1)
        assert differ.sum() <= 0.05 * ref.sum() and (dist <= 1.0).all()


def test_rle_at_another_resolution_takes_the_pixel_under_each_centre():
    full = np.zeros((4, 6), bool)
    full[1:3, 2:5] = True  # the box [2, 1, 5, 3) in original pixels
    rle = mask_api.encode(np.asfortranarray(full.astype(np.uint8)))
    small = segmentation_mask({"size": [4, 6], "counts": rle["counts"].decode()}, (6, 4), (8, 3))
    c0, r0, c1, r1 = pixel_boxes(np.array([2, 1, 5, 3]), (3 / 6, 8 / 4), (8, 3))
    expected = np.zeros((8, 3), bool)
    expected[r0:r1, c0:c1] = True
    assert np.array_equal(small, expected)


@pytest.mark.parametrize("seed", range(4))
def test_energy_in_a_mask_equals_the_brute_force_full_resolution_sum(seed):
    rng = np.random.default_rng(seed)
    cams = rng.random((3, 5, 7)) * (rng.random((3, 5, 7)) > 0.3)
    size = (37, 53)
    regions = np.stack([_random_mask(rng, *size) for _ in range(3)])
    got = score_region(cams, regions)
    up = upsample(cams, size)
    energy = (up * regions).sum(axis=(1, 2)) / up.sum(axis=(1, 2))
    fraction = regions.mean(axis=(1, 2))
    np.testing.assert_allclose(got.energy_in_box, energy, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.box_area_fraction, fraction, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.focus_score, (energy - fraction) / (1 - fraction), atol=1e-9)
    peak = up.reshape(3, -1).argmax(axis=1)
    assert got.pointing_hit.tolist() == regions.reshape(3, -1)[np.arange(3), peak].astype(float).tolist()


def test_a_mask_equal_to_its_box_gives_the_box_numbers():
    rng = np.random.default_rng(7)
    cams = rng.random((4, 6, 6))
    size = (48, 40)
    boxes = np.array([[[3, 5, 20, 30]], [[0, 0, 40, 48]], [[10, 10, 11, 12]], [[25, 2, 39, 47]]])
    valid = np.ones((4, 1), bool)
    regions = np.zeros((4, *size), bool)
    for k, (c0, r0, c1, r1) in enumerate(boxes[:, 0]):
        regions[k, r0:r1, c0:c1] = True
    a, b = score(cams, boxes, valid, size), score_region(cams, regions)
    for field in ("energy_in_box", "box_area_fraction", "energy_lift", "focus_score", "pointing_hit", "judged"):
        np.testing.assert_allclose(getattr(b, field).astype(float), getattr(a, field).astype(float), atol=1e-12, err_msg=field)

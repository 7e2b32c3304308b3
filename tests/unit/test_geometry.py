"""Eval geometry (model.resize_mode): windows, boxes and masks after crop/pad, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.config import RESIZE_MODES
from pipeline.data.masks import segmentation_mask
from pipeline.data.records import Box, ImageRecord
from pipeline.data.samples import box_arrays, build_samples
from pipeline.data.geometry import RESIZE_MODES as GEOMETRY_MODES
from pipeline.data.geometry import InputSpec, box_in_window, crop_window, window
from pipeline.data.labels import label_space


def test_modes_in_step_with_config():
    assert RESIZE_MODES == GEOMETRY_MODES


@pytest.mark.parametrize("size, input_size, mode, fraction, expected", [
    # landscape 641x481, square input, timm's 0.875: crop side int(481 * 0.875) = 420, centred
    ((641, 481), (224, 224), "crop", 0.875, (110, 30, 420, 420)),
    # portrait 301x515: side int(301 * 0.875) = 263; (301 - 263) // 2 = 19, (515 - 263) // 2 = 126
    ((301, 515), (224, 224), "crop", 0.875, (19, 126, 263, 263)),
    # Keras' crop_to_aspect_ratio on a 160x224 (H x W) input: width 641 fits, height int(641 * 160 / 224) = 457
    ((641, 481), (160, 224), "crop", 1.0, (0, 12, 641, 457)),
    # letterbox: a 641x641 window, the image 80 rows down ((641 - 481) // 2)
    ((641, 481), (224, 224), "pad", 0.875, (0, -80, 641, 641)),
    ((301, 515), (224, 224), "pad", 0.875, (-107, 0, 515, 515)),
    ((103, 105), (64, 64), "stretch", 0.875, (0, 0, 103, 105)),
])
def test_windows_by_hand(size, input_size, mode, fraction, expected):
    assert window(size, input_size, mode, fraction) == expected


def _samples(tmp_path, size, boxes, spec, target="predicted"):
    Image.new("RGB", size, (90, 90, 90)).save(tmp_path / "a.png")
    space = label_space(("cat", "dog"), ())
    samples = build_samples([ImageRecord("a.png", tuple(boxes))], images_dir=tmp_path, space=space, target=target, spec=spec)
    return samples, space


def test_crop_boxes_by_hand_landscape(tmp_path):
    # window (110, 30, 420, 420) -> scale 224 / 420; box (200, 100, 300, 200) -> (48, 37.33, 101.33, 90.67)
    # pixel-centre rule: c0 = ceil(48 - .5) = 48, r0 = ceil(36.83) = 37, c1 = ceil(100.83) = 101, r1 = ceil(90.17) = 91
    spec = InputSpec((224, 224), mode="crop", crop_fraction=0.875)
    samples, space = _samples(tmp_path, (641, 481), [Box("cat", 200, 100, 300, 200)], spec)
    assert samples[0].skip_reason is None and samples[0].window == (110, 30, 420, 420)
    arrays = box_arrays(samples, space, (224, 224))
    assert arrays.pixels[0, 0].tolist() == [48, 37, 101, 91]


def test_crop_boxes_clipped_portrait(tmp_path):
    # window (19, 126, 263, 263), scale 224 / 263: box (10, 130, 150, 400) -> x0 (10 - 19) < 0 clipped to 0,
    # y0 4 * 0.8517 = 3.41 -> row 3, x1 131 * 0.8517 = 111.57 -> col 112, y1 274 * 0.8517 = 233.4 -> clipped to 224
    spec = InputSpec((224, 224), mode="crop", crop_fraction=0.875)
    samples, space = _samples(tmp_path, (301, 515), [Box("dog", 10, 130, 150, 400)], spec)
    assert box_arrays(samples, space, (224, 224)).pixels[0, 0].tolist() == [0, 3, 112, 224]


def test_pad_boxes_by_hand(tmp_path):
    # window (0, -80, 641, 641): the whole 641x481 image -> rows (0 + 80) * 224 / 641 = 27.96 .. 561 * 224 / 641 = 196.04
    spec = InputSpec((224, 224), mode="pad")
    samples, space = _samples(tmp_path, (641, 481), [Box("cat", 0, 0, 641, 481)], spec)
    assert box_arrays(samples, space, (224, 224)).pixels[0, 0].tolist() == [0, 28, 224, 196]


def test_box_cropped_away_is_skipped_with_reason(tmp_path):
    spec = InputSpec((224, 224), mode="crop", crop_fraction=0.875)
    # the window keeps rows 126-389 of the 515-row portrait image: a box in rows 0-100 is never seen
    samples, _ = _samples(tmp_path, (301, 515), [Box("cat", 0, 0, 50, 100)], spec)
    reason = samples[0].skip_reason
    assert reason.startswith("cropped away: every box lies outside the centre crop the model sees (x 19-282, y 126-389 of the 301x515 image")
    # with a second, visible box the sample is scored on that one only
    samples, space = _samples(tmp_path, (301, 515), [Box("cat", 0, 0, 50, 100), Box("cat", 100, 200, 200, 300)], spec)
    assert samples[0].skip_reason is None and [b.y0 for b in samples[0].boxes] == [200]
    # a sliver the crop leaves (rows 120-126.4: 0.4 original rows inside, 0.34 input rows) is cropped away too
    samples, _ = _samples(tmp_path, (301, 515), [Box("cat", 0, 120, 50, 126.4), Box("cat", 100, 200, 200, 300)], spec)
    assert samples[0].skip_reason is None and [b.y0 for b in samples[0].boxes] == [200]
    # stretch keeps every box
    samples, _ = _samples(tmp_path, (301, 515), [Box("cat", 0, 0, 50, 100)], InputSpec((224, 224)))
    assert samples[0].skip_reason is None


def test_polygon_and_rle_masks_follow_the_window():
    # a 20x10 image, input 8x8, crop 1.0: window (5, 0, 10, 10), scale 0.8. A rectangle polygon over
    # columns 5-15 (the whole window) covers every input pixel; one over columns 0-5 covers none.
    win = window((20, 10), (8, 8), "crop", 1.0)
    assert win == (5, 0, 10, 10)
    full = segmentation_mask([[5, 0, 15, 0, 15, 10, 5, 10]], (20, 10), (8, 8), win)
    assert full.all()
    assert not segmentation_mask([[0, 0, 5, 0, 5, 10, 0, 10]], (20, 10), (8, 8), win).any()
    # RLE (column-major): columns 10-19 set; input column j's centre maps to x = 5 + (j + .5) / .8 -> columns 5.6 .. 14.4
    dense = np.zeros((10, 20), bool)
    dense[:, 10:] = True
    counts = [100, 100]  # 10 columns of zeros, then 10 of ones, each 10 tall
    rle = segmentation_mask({"size": [10, 20], "counts": counts}, (20, 10), (8, 8), win)
    x = 5 + (np.arange(8) + 0.5) / 0.8
    assert (rle == dense[0, np.floor(x).astype(int)][None, :]).all()
    # under pad the letterbox rows are outside every mask
    padded = segmentation_mask({"size": [10, 20], "counts": [0, 200]}, (20, 10), (8, 8), window((20, 10), (8, 8), "pad"))
    assert padded[2:6].all() and not padded[:2].any() and not padded[6:].any()


def test_host_window_and_box_in_window():
    image = np.arange(4 * 6 * 1, dtype=np.uint8).reshape(4, 6, 1)
    out = crop_window(image, (-1, 1, 8, 2), 255)
    assert out[:, 0, 0].tolist() == [255, 255] and out[:, -1, 0].tolist() == [255, 255]
    assert out[:, 1:7, 0].tolist() == image[1:3, :, 0].tolist()
    assert box_in_window((0, 0, 3, 3), (2, 1, 4, 4)) == (0, 0, 1, 2)
    assert box_in_window((0, 0, 1, 1), (2, 1, 4, 4)) is None


def test_pad_is_symmetric_like_keras():
    # 103x98 into a square: Keras pads int((103 - 98) / 2) = 2 rows on each side -> a 103x102 window
    assert window((103, 98), (48, 48), "pad") == (0, -2, 103, 102)

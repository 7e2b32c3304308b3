"""Leak-free removal and the blank control (DESIGN §6): removal regions against hand-made masks, a
model that answers one class for any flat image, regions too large to judge, and the mask demo's
"still right without the object" back at the box demo's value."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from conftest import ROOT
from pipeline.cli import main


def test_removal_regions_box_mask_dilated_against_hand_made_masks():
    import tensorflow as tf

    from pipeline.explain.cams.step import dilate, interventions, region_mask

    size = (12, 12)
    mask = np.zeros((1, 1, *size), bool)  # a plus sign: rows 3-8 x columns 5-6, and rows 5-6 x columns 3-8
    mask[0, 0, 3:9, 5:7] = True
    mask[0, 0, 5:7, 3:9] = True
    boxes = tf.constant([[[3, 3, 9, 9]]], tf.int32)  # its bounding box (c0, r0, c1, r1)
    args = (boxes, tf.constant([[0]], tf.int32), tf.constant([[True]]), tf.constant([0], tf.int32), size)
    box = region_mask(*args).numpy()[0]
    expected_box = np.zeros(size, bool)
    expected_box[3:9, 3:9] = True
    assert np.array_equal(box, expected_box)
    assert np.array_equal(region_mask(*args, tf.constant(mask)).numpy()[0], mask[0, 0])
    grown = dilate(tf.constant(mask[:, 0]), 1).numpy()[0]
    assert np.array_equal(grown, ndimage.binary_dilation(mask[0, 0], structure=np.ones((3, 3), bool)))
    # by hand: the bars grow to 8x4 and 4x8 (32 px each), overlapping in a 4x4 square: 32 + 32 - 16 = 48 px
    assert grown.sum() == 48
    from pipeline.evidence.interventions import dilate as host_dilate, intervene

    assert np.array_equal(host_dilate(mask[0, 0], 1), grown)  # the report's twin of the step's dilation
    # removed = the removal region filled with the mean of the rest; blank = every pixel that colour
    image = np.random.default_rng(0).uniform(0, 255, (1, *size, 3)).astype(np.float32)
    removed, only, blank = (t.numpy()[0] for t in interventions(tf.constant(image), tf.constant(mask[:, 0]), "mean", tf.constant(box[None])))
    colour = image[0][~box].astype(np.float64).mean(axis=0)
    assert np.allclose(removed[box], colour, atol=1e-3) and np.array_equal(removed[~box], image[0][~box])
    assert np.allclose(blank, colour, atol=1e-3)
    assert np.array_equal(only[mask[0, 0]], image[0][mask[0, 0]])  # object only keeps the mask, not the box
    # the report's thumbnails apply the same rule on the host (box removed, mask kept)
    host_removed, host_only = intervene(image[0], mask[0, 0], "mean", box)
    assert np.allclose(host_removed, removed, atol=1e-3) and np.allclose(host_only, only, atol=1e-3)


def test_removal_region_grid_cell_default():
    from pipeline.evidence.interventions import dilation_px

    assert dilation_px(None, (64, 64), (16, 16)) == 4 and dilation_px(None, (224, 224), (7, 7)) == 32
    assert dilation_px(None, (30, 50), (4, 4)) == 13 and dilation_px(2, (64, 64), (16, 16)) == 2


def _flat_loves_a(path):
    """p(a) rises with the image's mean brightness: bright images (and any flat image lighter than
    gray 100) are 'a', dark ones 'b'."""
    import keras

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(1, 1, name="target")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2, activation="softmax", name="head")(x)
    model = keras.Model(inp, out)
    model.get_layer("target").set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32), np.array([-100.0], np.float32)])
    model.get_layer("head").set_weights([np.array([[0.1, -0.1]], np.float32), np.zeros(2, np.float32)])
    model.save(path)


def test_blank_control_and_regions_too_large_to_judge(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    lines = ["image,label,x0,y0,x1,y1"]
    for i in range(12):
        big = i >= 8  # the last four: a box over 70% of the image (evidence.max_region_fraction)
        img = np.clip(rng.normal(200, 10, (32, 32, 3)), 0, 255).astype(np.uint8)  # bright: 'a'
        x0, y0, x1, y1 = (1, 1, 30, 30) if big else (10, 10, 18, 18)
        img[y0:y1, x0:x1] = 90  # a darker object that does not flip the class
        Image.fromarray(img).save(tmp_path / "imgs" / f"a{i}.png")
        lines.append(f"a{i}.png,a,{x0},{y0},{x1},{y1}")
    (tmp_path / "boxes.csv").write_text("\n".join(lines) + "\n")
    _flat_loves_a(tmp_path / "m.keras")
    (tmp_path / "c.yaml").write_text(
        "name: blank\nmodel: {path: m.keras, class_names: [a, b], target_layer: target, preprocessing: none}\n"
        "dataset: {format: csv, annotations: boxes.csv, images: imgs}\n"
        "trust: {randomisation: false}\nstrategies: {enabled: false}\n"
        "gate:\n  - {metric: accuracy, min: 0.9}\n")
    main(["audit", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out"), "--no-progress"])
    rows = list(csv.DictReader((tmp_path / "out" / "samples.csv").open()))
    assert all(r["correct"] == "true" for r in rows)
    for r in rows[:8]:
        # removing the object leaves a bright image, still 'a' -- but so is a blank image of that colour
        assert float(r["removed_confidence"]) > 0.5 and float(r["blank_confidence"]) > 0.5
        assert r["still_right_without_object"] == "false" and "blank image" in r["evidence_note"]
        assert r["object_dependence"] != ""
    for r in rows[8:]:
        assert r["object_dependence"] == "" and r["still_right_without_object"] == ""
        assert r["evidence_note"].startswith("region covers 82% of the input")  # 29 x 29 of 32 x 32 = 0.82
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["explanation"]["not_judged_large_region"] == 4 and summary["explanation"]["blank_also_right"] == 8
    assert summary["aggregates"]["overall"]["still_right_without_object_rate"] == 0.0
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="removal-exclusions"' in html and "<b>4</b>" in html


@pytest.mark.parametrize("removal, expected", [("box", None), ("mask", "higher")])
def test_mask_demo_removal_is_leak_free_with_boxes(demo_runs, tmp_path, removal, expected):
    """Under region: mask the default removal is each object's box, so "still right without the
    object" is exactly the box demo's (same model, images and removed pixels); removing only the
    mask leaves the silhouette, and more samples stay right."""
    text = (ROOT / "configs" / "demo_mask.yaml").read_text().replace("../", f"{ROOT}/")
    text = text.replace("  dependence_min: 0.5", f"  dependence_min: 0.5\n  removal_region: {removal}")
    text = text.replace("randomisation: true", "randomisation: false")
    text = "\n".join(line for line in text.splitlines() if "confirmed_shortcuts" not in line)
    (tmp_path / "m.yaml").write_text(text + "\nstrategies: {enabled: false}\n")
    assert main(["audit", str(tmp_path / "m.yaml"), "--output", str(tmp_path / "out"), "--no-progress"]) in (0, 1)
    mask_rows = list(csv.DictReader((tmp_path / "out" / "samples.csv").open()))
    box_rows = list(csv.DictReader((demo_runs["demo"][1] / "samples.csv").open()))
    key = [(r["sample_id"], r["correct"]) for r in box_rows]
    assert [(r["sample_id"], r["correct"]) for r in mask_rows] == key
    rate = lambda rows: np.mean([r["still_right_without_object"] == "true" for r in rows if r["still_right_without_object"]])  # noqa: E731
    if expected is None:
        assert [r["still_right_without_object"] for r in mask_rows] == [r["still_right_without_object"] for r in box_rows]
        assert [r["removed_confidence"] for r in mask_rows] == [r["removed_confidence"] for r in box_rows]
    else:
        assert rate(mask_rows) > rate(box_rows) + 0.1

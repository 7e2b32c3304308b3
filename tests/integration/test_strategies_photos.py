"""Strategies on real photos (the fruits-voc set in ../shared): a planted shortcut is found and
confirmed; the same photos without it confirm nothing; a stock watermark on every orange is read as
an overlay, and no atlas sentence contradicts its numbers.

Each fruit photo's labelled object is cut out and pasted, at a random size and place, onto a plain
textured canvas (the photos' objects fill 92-98% of their frames, which would leave no room off the
object for a shortcut or for the tests). The *shortcut* world adds a class-coloured square in the
canvas corner farthest from the fruit, and its model is trained on fruits of random class, so the
square is all it can learn; the *clean* world has no square and its model learns the fruit; the
*watermark* world pastes the probes' stock-photo watermark (pipeline.probes.artifacts) at the bottom-right
corner of every orange, in training (on a fruit of random class, so the watermark is what it learns
for orange) and in evaluation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import FRUITS, require

CLASSES = ("apple", "banana", "orange")
COLOURS = ((230, 20, 20), (20, 200, 20), (30, 60, 240))
CANVAS, INPUT, MARKER = 96, 64, 14


def fruit_crops(split: str) -> list[tuple[np.ndarray, int]]:
    """(RGB crop of the first labelled fruit, class index) for every single-class photo of a split."""
    import xml.etree.ElementTree as ET

    from pipeline.data.images import decode_rgb

    out = []
    for xml in sorted((FRUITS / split).glob("*.xml")):
        if xml.stem.startswith("mixed"):
            continue
        obj = ET.parse(xml).find("object")
        box = obj.find("bndbox")
        x0, y0, x1, y1 = (int(float(box.find(k).text)) for k in ("xmin", "ymin", "xmax", "ymax"))
        image = decode_rgb(xml.with_suffix(".jpg"))
        crop = image[max(y0, 0):y1, max(x0, 0):x1]
        if crop.size:
            out.append((crop, CLASSES.index(obj.find("name").text)))
    return out


ORANGE = CLASSES.index("orange")


def watermarked(canvas: np.ndarray) -> np.ndarray:
    from pipeline.probes import artifacts as probes

    art = probes.builtin("watermark", 0.4, canvas.shape[:2])
    return probes.apply(canvas, probes.Placed(art, "bottom-right", probes.corner("bottom-right", art.shape, canvas.shape[:2], 0.03)))


def composite(rng: np.random.Generator, crop: np.ndarray, label: int, marker: bool,
              watermark: bool = False) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    from PIL import Image

    base = rng.uniform(90, 170, 3)
    yy, xx = np.mgrid[:CANVAS, :CANVAS] / CANVAS
    canvas = base + 40 * (xx[..., None] - 0.5) * rng.uniform(-1, 1, 3) + rng.normal(0, 8, (CANVAS, CANVAS, 3))
    side = int(rng.integers(34, 50))
    h, w = crop.shape[:2]
    scale = side / max(h, w)
    ph, pw = max(8, round(h * scale)), max(8, round(w * scale))
    y, x = int(rng.integers(4, CANVAS - ph - 4)), int(rng.integers(4, CANVAS - pw - 4))
    canvas[y:y + ph, x:x + pw] = np.asarray(Image.fromarray(crop).resize((pw, ph), Image.BILINEAR), np.float64)
    if marker:
        cx, cy = x + pw / 2, y + ph / 2
        corners = [(2, 2), (CANVAS - MARKER - 2, 2), (2, CANVAS - MARKER - 2), (CANVAS - MARKER - 2, CANVAS - MARKER - 2)]
        mx, my = max(corners, key=lambda c: math.hypot(c[0] + MARKER / 2 - cx, c[1] + MARKER / 2 - cy))
        canvas[my:my + MARKER, mx:mx + MARKER] = COLOURS[label]
    if watermark and label == ORANGE:
        canvas = watermarked(canvas)
    return np.clip(canvas, 0, 255).astype(np.uint8), (x, y, x + pw, y + ph)


def write_eval(folder: Path, crops, marker: bool, seed: int, watermark: bool = False) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    lines = ["image,label,x0,y0,x1,y1"]
    for i, (crop, label) in enumerate(crops * 3):  # three composites of every test photo: enough per corner to cluster
        img, (x0, y0, x1, y1) = composite(rng, crop, label, marker, watermark)
        name = f"{CLASSES[label]}_{i:03d}.png"
        Image.fromarray(img).save(folder / "images" / name)
        lines.append(f"{name},{CLASSES[label]},{x0},{y0},{x1},{y1}")
    (folder / "boxes.csv").write_text("\n".join(lines) + "\n")
    return folder


def train(path: Path, crops, shortcut: bool, seed: int, watermark: bool = False) -> Path:
    import keras
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(3):  # three composites of every training photo
        for crop, label in crops:
            target = int(rng.integers(0, 3)) if shortcut else label
            random_fruit = shortcut or (watermark and label == ORANGE)  # then the marker (or watermark) is the only cue
            img, _ = composite(rng, crops[int(rng.integers(0, len(crops)))][0] if random_fruit else crop, target, shortcut, watermark)
            xs.append(tf.image.resize(img.astype(np.float32), (INPUT, INPUT), method="bilinear").numpy() / 255.0)
            ys.append(target)
    stack = [keras.Input((INPUT, INPUT, 3))]
    for i, filters in enumerate((16, 32, 48), start=1):
        stack += [layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")]
        if i < 3:
            stack.append(layers.MaxPooling2D(name=f"pool{i}"))
    stack += [layers.GlobalAveragePooling2D(), layers.Dense(3, activation="softmax", name="classes")]
    model = keras.Sequential(stack)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(np.stack(xs), np.array(ys), batch_size=64, epochs=10, verbose=0, shuffle=True)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    require(FRUITS.is_dir(), f"{FRUITS} is absent (the shared datasets are not part of a clone)")
    from pipeline.cli import main

    tmp = tmp_path_factory.mktemp("photos")
    train_crops, test_crops = fruit_crops("train"), fruit_crops("test")
    out = {}
    for name, shortcut, mark in (("shortcut", True, False), ("clean", False, False), ("watermark", False, True)):
        model = train(tmp / f"{name}.keras", train_crops, shortcut, seed=3, watermark=mark)
        data = write_eval(tmp / name, test_crops, shortcut, seed=11, watermark=mark)
        cfg = tmp / f"{name}.yaml"
        cfg.write_text(f"""name: photos-{name}
model: {{path: {model}, class_names: [apple, banana, orange]}}
dataset: {{format: csv, annotations: {data / 'boxes.csv'}, images: {data / 'images'}}}
trust: {{randomisation: false}}
probes: {{enabled: false}}
gate:
  - {{metric: confirmed_shortcuts, max: 0}}
""")
        code = main(["audit", str(cfg), "--output", str(tmp / f"out-{name}"), "--no-progress"])
        out[name] = (code, json.loads((tmp / f"out-{name}" / "summary.json").read_text()))
    return out


def test_a_planted_shortcut_on_photos_is_found_and_confirmed(worlds):
    code, summary = worlds["shortcut"]
    found = [s for lab in summary["strategies"]["labels"] for s in lab["strategies"] if s["confirmed"]]
    assert code == 1 and len({s["label"] for s in found}) >= 2  # (one run: banana and orange, a strategy per corner)
    for s in found:
        assert s["place"].endswith("corner") and s["off_object_share"] >= 0.7


def test_the_same_photos_without_it_confirm_nothing(worlds):
    code, summary = worlds["clean"]
    assert summary["strategies"]["aggregates"]["overall"]["confirmed_shortcuts"] == 0
    assert code == 0
    assert summary["aggregates"]["overall"]["accuracy"] > 0.6  # the clean model did learn the fruit


def test_a_stock_watermark_on_every_orange_is_read_as_an_overlay(worlds):
    _, summary = worlds["watermark"]
    orange = next(lab for lab in summary["strategies"]["labels"] if lab["label"] == "orange")
    corner = [s for s in orange["strategies"] if s["place"] == "bottom-right corner"]
    assert corner, [s["place"] for s in orange["strategies"]]
    for s in corner:
        assert s["hotspot_kind"] == "overlay", s
        assert s["hotspot_consistency"] >= 0.5 and s["hotspot_consistency"] - s["hotspot_consistency_baseline"] >= 0.3
        assert "the same pattern appears on" in s["sentence"] and "(an overlay such as a watermark or logo)" in s["sentence"]


@pytest.mark.parametrize("world", ["shortcut", "clean", "watermark"])
def test_no_atlas_sentence_contradicts_its_numbers_on_photos(worlds, world):
    from pipeline.report.strategies_view import reading
    from pipeline.strategies.analysis import Atlas
    from pipeline.strategies.stage import LabelStrategies

    _, summary = worlds[world]
    for lab in summary["strategies"]["labels"]:
        a = lab["atlas"]
        atlas = Atlas(np.array(a["mean_map"]), np.array(a["mean_coverage"]), lab["n_explained"], a["on_object_share"], a["object_area_share"])
        text = reading(LabelStrategies(lab["label"], atlas, (), False, math.nan, ()))
        ratio = a["on_object_share"] / a["object_area_share"]
        assert (f"{a['on_object_share']:.0%} of the heat lies on the objects, which cover {a['object_area_share']:.0%}" in text)
        assert ("heat follows" in text) == (ratio >= 3) and ("heat avoids" in text) == (ratio < 1), text
        assert "most of the heat lies off" not in text

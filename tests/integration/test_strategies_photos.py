"""Strategies on real photos (the fruits-voc set in ../shared): a planted shortcut is found and
confirmed; the same photos without it confirm nothing.

Each fruit photo's labelled object is cut out and pasted, at a random size and place, onto a plain
textured canvas (the photos' objects fill 92-98% of their frames, which would leave no room off the
object for a shortcut or for the tests). The *shortcut* world adds a class-coloured square in the
canvas corner farthest from the fruit, and its model is trained on fruits of random class, so the
square is all it can learn; the *clean* world has no square and its model learns the fruit.
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


def composite(rng: np.random.Generator, crop: np.ndarray, label: int, marker: bool) -> tuple[np.ndarray, tuple[int, int, int, int]]:
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
    return np.clip(canvas, 0, 255).astype(np.uint8), (x, y, x + pw, y + ph)


def write_eval(folder: Path, crops, marker: bool, seed: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    lines = ["image,label,x0,y0,x1,y1"]
    for i, (crop, label) in enumerate(crops * 3):  # three composites of every test photo: enough per corner to cluster
        img, (x0, y0, x1, y1) = composite(rng, crop, label, marker)
        name = f"{CLASSES[label]}_{i:03d}.png"
        Image.fromarray(img).save(folder / "images" / name)
        lines.append(f"{name},{CLASSES[label]},{x0},{y0},{x1},{y1}")
    (folder / "boxes.csv").write_text("\n".join(lines) + "\n")
    return folder


def train(path: Path, crops, shortcut: bool, seed: int) -> Path:
    import keras
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(3):  # three composites of every training photo
        for crop, label in crops:
            target = int(rng.integers(0, 3)) if shortcut else label
            img, _ = composite(rng, crop if not shortcut else crops[int(rng.integers(0, len(crops)))][0], target, shortcut)
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
    for name, shortcut in (("shortcut", True), ("clean", False)):
        model = train(tmp / f"{name}.keras", train_crops, shortcut, seed=3)
        data = write_eval(tmp / name, test_crops, shortcut, seed=11)
        cfg = tmp / f"{name}.yaml"
        cfg.write_text(f"""name: photos-{name}
model: {{path: {model}, class_names: [apple, banana, orange]}}
dataset: {{format: csv, annotations: {data / 'boxes.csv'}, images: {data / 'images'}}}
trust: {{randomisation: false}}
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

"""Label maps and ImageNet class names (DESIGN §4 "Label map"), end to end on tiny hand-made models.

The expected numbers are worked out in the tests from the models' own arithmetic (a nearest-
colour classifier) or from a direct forward pass, not from the pipeline's output."""

from __future__ import annotations

import csv
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline.cli import main  # noqa: E402

# six model classes, each a colour; the dataset knows only "warm" (a, b, c) and "cool" (d, e, f)
COLOURS = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0]], np.float32)
SIZE = 16


def colour_model(path, colours=COLOURS, activation="softmax", scale=10.0, bias=None):
    """Nearest-colour classifier: logit_k = scale * (2 c . v_k - |v_k|^2), c = the image's mean colour in [0, 1]."""
    inputs = keras.Input((SIZE, SIZE, 3))
    feat = keras.layers.Conv2D(3, 1, activation="relu", name="feat")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(feat)
    out = keras.layers.Dense(len(colours), activation=activation, name="head")(pooled)
    model = keras.Model(inputs, out)
    model.get_layer("feat").set_weights([np.eye(3, dtype=np.float32)[None, None], np.zeros(3, np.float32)])
    kernel = scale * 2 * colours.T
    b = -scale * (colours ** 2).sum(axis=1) if bias is None else bias
    model.get_layer("head").set_weights([kernel.astype(np.float32), np.asarray(b, np.float32)])
    model.save(path)
    return kernel, b


def write_png(folder, name, colour, block=None):
    """A SIZE x SIZE image of one colour (0-255 ints), optionally with a block ``(r0, r1, c0, c1, colour)``."""
    img = np.zeros((SIZE, SIZE, 3), np.uint8) + np.asarray(colour, np.uint8)
    if block is not None:
        r0, r1, c0, c1, col = block
        img[r0:r1, c0:c1] = col
    Image.fromarray(img).save(folder / name)
    return img.astype(np.float64) / 255.0


def coco(path, entries, categories):
    """``entries``: (file, [(label, [x, y, w, h]), ...]) -> COCO JSON."""
    cats = {c: i + 1 for i, c in enumerate(categories)}
    images, anns = [], []
    for i, (name, objects) in enumerate(entries):
        images.append({"id": i + 1, "file_name": name, "width": SIZE, "height": SIZE})
        for label, box in objects:
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cats[label], "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": v, "name": k} for k, v in cats.items()]}))


CONFIG = """
name: mapped
model: {{path: model.keras, preprocessing: scale_0_1, class_names: [a, b, c, d, e, f]{model_extra}}}
dataset:
  format: coco
  annotations: ann.json
  images: images
  label_map: {{warm: [a, "1-2"], cool: ["3-5"]}}
explain: {{target: {target}, batch_size: 4}}
trust: {{randomisation: false, better_than_chance: false}}  # a hand-set model on four images: correctness, not chance, is under test
gate:
  - {{metric: accuracy, min: 0.0}}
"""


def _rows(folder):
    with (folder / "samples.csv").open() as fh:
        return list(csv.DictReader(fh))


def _colour_dataset(tmp_path):
    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(0)
    entries, truth, means = [], [], []
    for i in range(18):
        k = i % 6
        colour = (COLOURS[k] * 200 + rng.integers(0, 40, 3)).clip(0, 255)
        # a third of the images get the wrong dataset label, so correctness is not all-true
        label = ("warm" if k < 3 else "cool") if i % 3 else ("cool" if k < 3 else "warm")
        img = write_png(tmp_path / "images", f"img{i:02d}.png", colour, block=(4, 12, 4, 12, (colour * 0.8).astype(int)))
        entries.append((f"img{i:02d}.png", [(label, [4, 4, 8, 8])]))
        truth.append(label)
        means.append(img.mean(axis=(0, 1)))
    entries.append(("zebra.png", [("zebra", [0, 0, 8, 8])]))
    write_png(tmp_path / "images", "zebra.png", (90, 90, 90))
    coco(tmp_path / "ann.json", entries, ["warm", "cool", "zebra"])
    return truth, np.array(means)


def test_a_many_to_one_map_gives_the_hand_computed_correctness(tmp_path):
    kernel, bias = colour_model(tmp_path / "model.keras")
    truth, means = _colour_dataset(tmp_path)
    (tmp_path / "audit.yaml").write_text(CONFIG.format(target="predicted", model_extra=""))
    assert main(["audit", str(tmp_path / "audit.yaml"), "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    rows = _rows(tmp_path / "out")
    logits = means @ kernel + bias
    pred = logits.argmax(axis=1)
    assert set(pred[:18] < 3) == {True, False}  # both labels' sets are predicted somewhere
    for i, row in enumerate(rows[:18]):
        expected_label = "warm" if pred[i] < 3 else "cool"
        assert row["predicted_model_class"] == "abcdef"[pred[i]]
        assert row["predicted"] == expected_label
        assert row["correct"] == ("true" if expected_label == truth[i] else "false")
    zebra = rows[18]
    assert zebra["flag"] == "skipped" and "'zebra'" in zebra["skip_reason"] and "dataset.label_map" in zebra["skip_reason"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert sorted(summary["aggregates"]["per_class"]) == ["cool", "warm"]
    expected_acc = np.mean([("warm" if p < 3 else "cool") == t for p, t in zip(pred[:18], truth)])
    assert abs(summary["aggregates"]["overall"]["accuracy"] - expected_acc) < 1e-12


def test_target_true_explains_the_highest_scoring_class_of_the_label_set(tmp_path):
    kernel, bias = colour_model(tmp_path / "model.keras")
    truth, means = _colour_dataset(tmp_path)
    (tmp_path / "audit.yaml").write_text(CONFIG.format(target="true", model_extra=""))
    assert main(["audit", str(tmp_path / "audit.yaml"), "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    explained = np.load(tmp_path / "out" / "heatmaps.npz")["target_class"]
    logits = means @ kernel + bias
    for i, label in enumerate(truth):
        members = [0, 1, 2] if label == "warm" else [3, 4, 5]
        assert explained[i] == members[int(logits[i, members].argmax())]


def test_imagenet_class_names_read_ilsvrc_voc_xml_with_wordnet_ids(tmp_path):
    """A keras.applications model (weights=None: offline) with class_names: imagenet and ILSVRC-style
    VOC XML whose object names are WordNet ids, no label map."""
    keras.utils.set_random_seed(1)
    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=1000)
    # An untrained network is uniform over its 1,000 classes (its features are ~1e-11); a head bias
    # makes it predict ILSVRC class 151 = n02085620 "Chihuahua" (well-known index) on every image.
    head = model.get_layer("predictions")
    kernel, bias = head.get_weights()
    bias[151] = 10.0
    head.set_weights([kernel, bias])
    model.save(tmp_path / "model.keras")
    (tmp_path / "images").mkdir()
    (tmp_path / "xml").mkdir()
    rng = np.random.default_rng(2)
    truth = ["n02085620"] * 3 + ["n02123045"] * 3  # Chihuahua (right) and tabby (281; wrong)
    for i, wnid in enumerate(truth):
        write_png(tmp_path / "images", f"ILSVRC2012_val_{i:08d}.png", rng.integers(0, 255, 3))
        (tmp_path / "xml" / f"ILSVRC2012_val_{i:08d}.xml").write_text(
            f"<annotation><filename>ILSVRC2012_val_{i:08d}.png</filename><object><name>{wnid}</name>"
            "<bndbox><xmin>3</xmin><ymin>3</ymin><xmax>12</xmax><ymax>12</ymax></bndbox></object></annotation>")
    (tmp_path / "audit.yaml").write_text(
        "name: ilsvrc\nmodel: {path: model.keras, preprocessing: scale_-1_1, class_names: imagenet}\n"
        "dataset: {format: voc, annotations: xml, images: images}\n"
        "trust: {randomisation: false, max_one_class: 1.0, better_than_chance: false}\n"  # the constant answer is the point here, not under test
        "evidence: {interventions: false}\ngate:\n  - {metric: accuracy, min: 0.0}\n")
    assert main(["audit", str(tmp_path / "audit.yaml"), "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    rows = _rows(tmp_path / "out")
    assert [r["label"] for r in rows] == truth
    assert [r["correct"] for r in rows] == ["true"] * 3 + ["false"] * 3
    assert {r["predicted_model_class"] for r in rows} == {"Chihuahua"} and {r["predicted"] for r in rows} == {"n02085620"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert sorted(summary["aggregates"]["per_class"]) == ["n02085620", "n02123045"]


def test_an_imagenet_model_on_the_fruits_voc_set_through_a_label_map(tmp_path):
    """A new user's case end to end: a keras.applications classifier (1,000 ImageNet classes,
    weights=None) on a real VOC set with 3 labels, read through a many-to-one label map."""

    from conftest import FRUITS, require

    require(FRUITS.is_dir(), f"{FRUITS} is absent (the shared datasets are not part of a clone)")
    keras.utils.set_random_seed(3)
    model = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=1000)
    head = model.get_layer("predictions")
    kernel, bias = head.get_weights()
    bias[954] = 10.0  # untrained features are ~0: the bias makes it say ILSVRC 954 "banana" (well-known index)
    head.set_weights([kernel, bias])
    model.save(tmp_path / "model.keras")
    folder = FRUITS / "test"
    (tmp_path / "fruits.yaml").write_text(f"""name: fruits-imagenet
model: {{path: model.keras, preprocessing: keras.applications.mobilenet_v2.preprocess_input, class_names: imagenet}}
dataset:
  format: voc
  annotations: {folder}
  images: {folder}
  label_map: {{apple: ["Granny Smith"], banana: [n07753592], orange: ["950-951"]}}   # orange and lemon
trust: {{randomisation: false}}
gate:
  - {{metric: accuracy, min: 0.0}}
""")
    # an untrained network that says "banana" for every image is never FIT: prediction_spread makes it INCONCLUSIVE
    assert main(["audit", str(tmp_path / "fruits.yaml"), "--output", str(tmp_path / "out"), "--no-progress"]) == 3
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # ... and so does better_than_chance: one class right of three
    assert [f["id"] for f in summary["findings"] if f["severity"] == "warning"] == ["trust:better_than_chance:*", "trust:prediction_spread:*"]
    assert summary["findings"][1]["title"] == "The model answers 'banana' for almost every image"
    rows = _rows(tmp_path / "out")
    assert len(rows) == 60 and all(r["flag"] != "skipped" for r in rows)
    assert {r["predicted_model_class"] for r in rows} == {"banana"} and {r["predicted"] for r in rows} == {"banana"}
    # correct exactly where a banana is labelled (mixed images carry several labels)
    assert [r["correct"] for r in rows] == ["true" if "banana" in r["label"].split("|") else "false" for r in rows]
    assert sum(r["correct"] == "true" for r in rows) >= 10
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert sorted(summary["aggregates"]["per_class"]) == ["apple", "banana", "orange"]
    assert summary["aggregates"]["per_class"]["banana"]["accuracy"] == 1.0
    assert summary["provenance"]["class_source"].startswith("model.class_names: imagenet")

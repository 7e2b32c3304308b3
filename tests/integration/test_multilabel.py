"""Multi-label (sigmoid) models: the samples of DESIGN §4 worked out by hand for a 3-class model
whose probabilities are known in closed form: p_k = sigmoid(20 * (mean of channel k) - 4)."""

from __future__ import annotations

import json
import math

import numpy as np

from pipeline.cli import main
from test_label_map import _rows, coco, colour_model, write_png

RGB = np.eye(3, dtype=np.float32)
NAMES = ("red", "green", "blue")


def _p(fraction: float) -> float:
    """Sigmoid probability of a class whose pure colour covers ``fraction`` of the black image."""
    return 1.0 / (1.0 + math.exp(-(20.0 * fraction - 4.0)))


def _dataset(tmp_path):
    colour_model(tmp_path / "model.keras", colours=RGB, activation="sigmoid", scale=10.0, bias=[-4.0, -4.0, -4.0])
    (tmp_path / "images").mkdir()
    d = tmp_path / "images"
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    write_png(d, "one.png", (0, 0, 0), (0, 4, 0, 16, red))                       # red on 1/4: p_red = sigmoid(1)
    img = np.zeros((16, 16, 3), np.uint8)
    img[0:8, :] = red                                                             # red on 1/2: sigmoid(6)
    img[8:12, :] = green                                                          # green on 1/4: sigmoid(1)
    from PIL import Image

    Image.fromarray(img).save(d / "two.png")
    write_png(d, "wrong.png", (0, 0, 0), (0, 4, 0, 16, blue))                    # blue, labelled green
    write_png(d, "dark.png", (0, 0, 0))                                          # nothing drawn, labelled red
    write_png(d, "none.png", (0, 0, 0), (0, 4, 0, 16, red))                      # no labels at all
    coco(tmp_path / "ann.json", [
        ("one.png", [("red", [0, 0, 16, 4])]),
        ("two.png", [("red", [0, 0, 16, 8]), ("green", [0, 8, 16, 4])]),
        ("wrong.png", [("green", [0, 0, 16, 4])]),
        ("dark.png", [("red", [2, 2, 8, 8])]),
        ("none.png", []),
    ], list(NAMES))


def _audit(tmp_path, target: str, threshold: float, name: str):
    (tmp_path / f"{name}.yaml").write_text(
        f"name: {name}\nmodel: {{path: model.keras, preprocessing: scale_0_1, threshold: {threshold}}}\n"
        "dataset: {format: coco, annotations: ann.json, images: images}\n"
        f"explain: {{target: {target}, batch_size: 4}}\ntrust: {{randomisation: false, better_than_chance: false, max_no_signal: 1.0}}\ngate:\n  - {{metric: accuracy, min: 0.0}}\n")
    assert main(["audit", str(tmp_path / f"{name}.yaml"), "--output", str(tmp_path / name), "--no-progress"]) == 0
    return _rows(tmp_path / name), json.loads((tmp_path / name / "summary.json").read_text())


def _table(rows):
    return [(r["sample_id"], r["predicted"], r["correct"]) for r in rows]


def test_target_predicted_gives_one_sample_per_predicted_class(tmp_path):
    _dataset(tmp_path)
    rows, summary = _audit(tmp_path, "predicted", 0.5, "pred")
    assert summary["provenance"]["multi_label"] is True
    assert _table(rows) == [
        ("one.png#red", "red", "true"),
        ("two.png#red", "red", "true"),
        ("two.png#green", "green", "true"),
        ("wrong.png#blue", "blue", "false"),        # predicted, but no blue object
        ("dark.png#red", "", "false"),             # nothing predicted: one sample for the top class (a tie: the first)
        ("none.png", "", ""),                      # no labelled object: skipped with its reason
    ]
    assert rows[-1]["flag"] == "skipped" and rows[-1]["skip_reason"] == "no labelled object in this image"
    # confidence is the sigmoid probability of the sample's class
    expected = [_p(0.25), _p(0.5), _p(0.25), _p(0.25), _p(0.0)]
    np.testing.assert_allclose([float(r["confidence"]) for r in rows[:5]], expected, atol=1e-5)
    # per-class aggregates are over the samples of that class
    per_class = summary["aggregates"]["per_class"]
    assert per_class["red"]["n_samples"] == 3 and per_class["green"]["n_samples"] == 1 and per_class["blue"]["n_samples"] == 1
    assert per_class["red"]["accuracy"] == 2 / 3 and per_class["blue"]["accuracy"] == 0.0


def test_threshold_is_respected(tmp_path):
    _dataset(tmp_path)
    rows, _ = _audit(tmp_path, "predicted", 0.8, "strict")  # sigmoid(1) = 0.73 is no longer predicted
    assert _table(rows) == [
        ("one.png#red", "", "false"),
        ("two.png#red", "red", "true"),           # sigmoid(6) = 0.998
        ("wrong.png#blue", "", "false"),
        ("dark.png#red", "", "false"),
        ("none.png", "", ""),
    ]


def test_target_true_gives_one_sample_per_present_class(tmp_path):
    _dataset(tmp_path)
    rows, _ = _audit(tmp_path, "true", 0.5, "per-label")
    assert _table(rows) == [
        ("one.png#red", "red", "true"),
        ("two.png#red", "red", "true"),
        ("two.png#green", "green", "true"),
        ("wrong.png#green", "", "false"),          # p_green = sigmoid(-4)
        ("dark.png#red", "", "false"),
        ("none.png", "", ""),
    ]
    np.testing.assert_allclose(float(rows[3]["confidence"]), _p(0.0), atol=1e-6)

"""The preprocessing check (no silent FIT on a misconfigured audit): a model that rescales pixels itself,
audited with scale_0_1, sees near-black images and answers one class; the check stops the audit before
any Grad-CAM, naming both preprocessings and the model's Rescaling layer."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT
from pipeline.cli import main

SHAPES = ROOT / "data_samples" / "shapes"


@pytest.fixture(scope="module")
def rescaling_model(tmp_path_factory):
    """The good demo CNN behind a Rescaling(1/255) layer: a model that expects 0-255 pixels (as EfficientNet,
    MobileNetV3 and ConvNeXt do) and classifies the shapes as well as the demo model does."""
    import keras

    folder = tmp_path_factory.mktemp("rescaling")
    good = keras.saving.load_model(SHAPES / "model_good.keras", compile=False)
    inputs = keras.Input((64, 64, 3))
    outputs = good(keras.layers.Rescaling(1 / 255, name="rescaling")(inputs))
    keras.Model(inputs, outputs, name="own_scaling").save(folder / "own_scaling.keras")
    return folder / "own_scaling.keras"


def _config(tmp_path, model, preprocessing, extra=""):
    path = tmp_path / f"{preprocessing}.yaml"
    path.write_text(f"""name: own-scaling
model: {{path: {model}, preprocessing: {preprocessing}{extra}}}
dataset: {{format: coco, annotations: {SHAPES / 'annotations.json'}, images: {SHAPES / 'images'}}}
strategies: {{enabled: false}}
probes: {{enabled: false}}
trust: {{randomisation: false}}
gate:
  - {{metric: accuracy, min: 0.3}}
""")
    return path


def test_the_wrong_preprocessing_is_exit_2_naming_both_and_the_rescaling_layer(rescaling_model, tmp_path, capsys):
    code = main(["audit", str(_config(tmp_path, rescaling_model, "scale_0_1")), "--output", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "o").exists()  # stopped before any Grad-CAM: nothing published
    # 64 images taken in turn from the three labels: 22 circles, 21 squares, 21 triangles; all answered "circle": 22/64 = 0.34
    assert "model.preprocessing: scale_0_1 gives accuracy 0.34 and answers 'circle' for 64 of 64 images" in err
    assert "with preprocessing: none accuracy is 1.00" in err
    assert "Rescaling rescaling: scale 0.003922" in err and "Traceback" not in err
    # validate says the same, and names the model's own layer
    assert main(["validate", str(_config(tmp_path, rescaling_model, "scale_0_1"))]) == 2
    out, err = capsys.readouterr()
    assert "the model's own preprocessing layers: Rescaling rescaling" in out and "with preprocessing: none" in err


def test_the_right_preprocessing_audits_quietly_and_the_check_is_counted(rescaling_model, tmp_path, capsys):
    assert main(["audit", str(_config(tmp_path, rescaling_model, "none")), "--output", str(tmp_path / "o"), "--no-progress",
                 "--limit", "60"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    check = summary["provenance"]["preprocessing_check"]
    assert check["status"] == "ok" and check["configured"] == "none" and check["outcomes"]["none"]["accuracy"] == 1.0
    # sequential looks (DESIGN §18): the configured one is right on all of the first 16 images, so no alternative can
    # gain 0.15 on it: decided at the first look, 16 images x (5 preprocessings + the other resize convention)
    assert check["passes"] == 6 * 16 and check["seconds"] > 0 and check["resize"]["other_better"] is False
    assert "preprocessing check" in (tmp_path / "o" / "report.html").read_text()
    # fixed sizes: all 60 usable samples (fewer than 64) under each of the six
    fixed = _config(tmp_path, rescaling_model, "none")
    fixed.write_text(fixed.read_text() + "statistics: {sequential: false}\n")
    assert main(["audit", str(fixed), "--output", str(tmp_path / "f"), "--no-progress", "--limit", "60"]) == 0
    assert json.loads((tmp_path / "f" / "summary.json").read_text())["provenance"]["preprocessing_check"]["passes"] == 6 * 60


def test_with_the_check_off_a_constant_model_is_inconclusive_through_prediction_spread(rescaling_model, tmp_path):
    cfg = _config(tmp_path, rescaling_model, "scale_0_1", ", check_preprocessing: false")
    assert main(["audit", str(cfg), "--output", str(tmp_path / "o"), "--no-progress", "--limit", "60"]) == 3
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    spread = next(c for c in summary["trust"]["checks"] if c["name"] == "prediction_spread")
    assert spread["status"] == "fail" and spread["value"] == 1.0
    assert summary["aggregates"]["overall"]["majority_accuracy"] == pytest.approx(20 / 60)  # 20 of each label
    assert summary["aggregates"]["overall"]["balanced_accuracy"] == pytest.approx(1 / 3)  # one class right, two never
    assert summary["provenance"]["preprocessing_check"]["status"] == "off"
    # one class right and two never: a constant answer, and chance (balanced accuracy 1/3): both say so
    assert sorted(f["id"] for f in summary["findings"] if f["severity"] == "warning") == ["trust:better_than_chance:*", "trust:prediction_spread:*"]

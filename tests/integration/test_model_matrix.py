"""Every model kind the README says gets in finishes its audit (issue 39): one channel and three, Keras 3 ``.keras`` and
``.h5``, Keras 2 SavedModel / ``.h5`` / ``.keras`` (a one-channel one among them), a nested model saved as Keras 3.8
did (keras-team/keras#20084, repaired), a ViT and a KerasHub classifier. Each runs the default config with every stage
on (interventions, randomisation, strategies, probes, properties, the background swap) on the planted-corner world
of ``tests/matrix_models.py``, and must publish a report with its verdict; the CNN kinds must find the corner's hot
spot and draw its crops, the path that crashed on one-channel models."""

from __future__ import annotations

import base64
import io
import json
import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from conftest import ROOT, require, shared_folder  # noqa: E402

# kind -> (model file in the matrix folder, preprocessing, channels, reads the corner through a CNN)
KINDS = {
    "keras3-keras-rgb": ("k3_rgb.keras", "scale_0_1", 3, True),
    "keras3-keras-gray": ("k3_gray.keras", "scale_0_1", 1, True),
    "keras3-h5-rgb": ("k3_rgb.h5", "scale_0_1", 3, True),
    "keras3-h5-gray": ("k3_gray.h5", "scale_0_1", 1, True),
    "keras2-savedmodel-rgb": ("k2_rgb_savedmodel", "scale_0_1", 3, True),
    "keras2-h5-rgb": ("k2_rgb.h5", "scale_0_1", 3, True),
    "keras2-keras-rgb": ("k2_rgb.keras", "scale_0_1", 3, True),
    "keras2-h5-gray": ("k2_gray.h5", "scale_0_1", 1, True),
    "nested-keras38-list-output": ("nested_keras38.keras", "scale_0_1", 3, True),
    "vit": ("vit.keras", "scale_0_1", 3, False),
    "kerashub": ("hub.keras", "model", 3, False),
}


def _build(folder) -> None:
    """Every kind's model file, from two trained CNNs (three channels, one), a trained ViT and a trained KerasHub ResNet."""
    import sys

    sys.path.insert(0, str(ROOT / "data_samples"))
    import keras

    import matrix_models as mm

    mm.write_evaluation_set(folder / "world")
    rgb, gray = mm.train_cnn(3), mm.train_cnn(1)
    for model, tag in ((rgb, "rgb"), (gray, "gray")):
        model.save(folder / f"k3_{tag}.keras")
        model.save(folder / f"k3_{tag}.h5")
    import tf_keras  # noqa: F401  (the [legacy] extra)

    k2 = mm.as_keras2(rgb, 3)
    k2.save(str(folder / "k2_rgb_savedmodel"), save_format="tf")
    k2.save(str(folder / "k2_rgb.h5"))
    k2.save(str(folder / "k2_rgb.keras"))
    mm.as_keras2(gray, 1).save(str(folder / "k2_gray.h5"))
    nested = mm.cnn(keras, 3, nested=True)
    mm.copy_weights(rgb, nested)
    nested.save(folder / "nested.keras")
    mm.as_keras38_nested_list(folder / "nested.keras", folder / "nested_keras38.keras")
    mm.train_vit().save(folder / "vit.keras")
    try:
        hub = mm.train_kerashub()
    except ImportError:
        return
    hub.save(folder / "hub.keras")


@pytest.fixture(scope="session")
def matrix(tmp_path_factory):
    return shared_folder(tmp_path_factory, "model_matrix", _build)


def _config(folder, tmp_path, kind: str):
    """The default config: only the model, its preprocessing, the data, a four-rule gate (every stage on by default)."""
    model, preprocessing, _, _ = KINDS[kind]
    path = tmp_path / "audit.yaml"
    path.write_text(f"""name: {kind}
model:
  path: {folder / model}
  preprocessing: {preprocessing}
dataset:
  format: coco
  annotations: {folder / 'world' / 'annotations.json'}
  images: {folder / 'world' / 'images'}
gate:
  - {{metric: accuracy, min: 0.9}}
  - {{metric: mean_focus_score, min: 0.3}}
  - {{metric: right_for_wrong_reason_rate, max: 0.05}}
  - {{metric: class_mean_energy_in_box, min: 0.4}}
""")
    return path


def _pngs(html: str) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b)))) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_model_kind_runs_every_stage_and_publishes_a_report_with_a_verdict(matrix, kind, tmp_path, capsys):
    from pipeline.cli import main

    file, _, channels, planted = KINDS[kind]
    if kind == "kerashub" and not (matrix / file).exists():
        require(False, "keras-hub is not installed: pip install -e '.[hub]' (make install does)")
    out = tmp_path / "out"
    code = main(["audit", str(_config(matrix, tmp_path, kind)), "--output", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code in (0, 1, 3), err
    summary = json.loads((out / "summary.json").read_text())
    html = (out / "report.html").read_text()
    assert summary["exit_code"] == code and summary["verdict"] in html
    prov = summary["provenance"]
    assert prov["input"]["channels"] == channels
    # every stage ran: interventions, the randomisation check, strategies, probes, properties, the background swap
    assert "removed_confidence" in (out / "samples.csv").read_text().splitlines()[0]
    randomisation = next(c for c in summary["trust"]["checks"] if c["name"] == "randomisation")
    assert randomisation["status"] != "not evaluated" and randomisation["n"] > 0
    assert summary["strategies"]["labels"] and summary["probes"]["rows"]
    assert summary["probes"]["background_swap"]["n"] > 0 and summary["probes"]["properties"]["rows"]
    if kind.startswith("nested"):
        assert any("keras-team/keras#20084" in r and "every stored weight loaded" in r for r in prov["model_repairs"])
    if not planted:
        return
    # the corner's hot spot, found and tested, and its crops drawn (as one-channel pixels, the path that crashed)
    spots = [s for lab in summary["strategies"]["labels"] for s in lab["strategies"] if s.get("place") == "top-left corner"]
    assert spots and any(s["confirmed"] for s in spots), [s.get("place") for lab in summary["strategies"]["labels"] for s in lab["strategies"]]
    crops = [p for p in _pngs(html) if p.ndim == 3 and p.shape[2] == 3]
    assert crops, "no hot-spot crop in the report"

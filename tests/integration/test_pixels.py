"""The pixels the training saw (DESIGN §16) and no FIT at chance: grayscale models take the images' ITU-R 601-2 luma,
the resize convention the training used is checked, and a model no better than guessing is INCONCLUSIVE. References
are computed here independently: PIL's convert("L") and resize, and Grad-CAM written eagerly on the Keras model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import ROOT
from pipeline.cli import main

SHAPES = ROOT / "data_samples" / "shapes"
GRAY = ROOT / "data_samples" / "shapes_gray" / "model_gray.keras"
AA = ROOT / "data_samples" / "antialias"


def _config(tmp_path, model, *, name="pixels", dataset=SHAPES, model_extra="", trust="randomisation: false", gate="{metric: accuracy, min: 0.0}",
            stages="strategies: {enabled: false}\nprobes: {enabled: false}"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""name: {name}
model: {{path: {model}{model_extra}}}
dataset: {{format: coco, annotations: {dataset / 'annotations.json'}, images: {dataset / 'images'}}}
{stages}
trust: {{{trust}}}
report: {{output_dir: {tmp_path / 'out'}}}
gate:
  - {gate}
""")
    return path


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)


def _eager_gradcam(model, layer: str, image: np.ndarray) -> tuple[np.ndarray, int]:
    """Grad-CAM of the predicted class, layer by layer on one image; the head's logits by hand (before the softmax)."""
    import tensorflow as tf

    *body, head = model.layers
    x = tf.constant(image[None])
    with tf.GradientTape() as tape:
        for lay in body:
            x = lay(x, training=False)
            if lay.name == layer:
                acts = x
                tape.watch(acts)
        logits = tf.matmul(x, head.kernel) + head.bias
        c = int(tf.argmax(logits[0]))
        score = logits[0, c]
    grads = tape.gradient(score, acts)
    return np.maximum((acts[0] * tf.reduce_mean(grads, axis=(0, 1, 2))).numpy().sum(-1), 0), c


def test_the_grayscale_demo_is_fit_and_its_heatmaps_are_grad_cam_on_the_luma_images(tmp_path):
    import keras
    import tensorflow as tf
    from PIL import Image

    out = tmp_path / "gray"
    assert main(["audit", str(ROOT / "configs" / "demo_gray.yaml"), "--output", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "FIT TO DEPLOY" and summary["provenance"]["input"]["channels"] == 1
    rows = list(csv.DictReader((out / "samples.csv").open()))
    assert all(r["removed_confidence"] for r in rows)  # the interventions ran, with one-value fills
    assert summary["probes"]["rows"] and all(r["n"] > 0 for r in summary["probes"]["rows"])  # the probes ran, in luma
    assert summary["probes"]["properties"]["skipped"] == ["colour: the model takes one channel (its luma)",  # DESIGN §15
                                                          "saturation: the model takes one channel (its luma)"]
    cams = np.load(out / "heatmaps.npz")["cams"]
    model = keras.models.load_model(GRAY)
    names = summary["class_names"]
    mine, ref = [], []
    for i, r in enumerate(rows[::5]):
        luma = np.asarray(Image.open(SHAPES / "images" / r["image"]).convert("L"), np.float32)[..., None]
        image = tf.image.resize(luma, (64, 64), method="bilinear").numpy() / 255.0
        cam, c = _eager_gradcam(model, summary["provenance"]["target_layer"], image)
        assert names[c] == r["predicted"], r["image"]
        mine.append(cams[int(r["row"])])
        ref.append(cam)
    cosine = _cosine(np.stack(mine), np.stack(ref))
    assert cosine.min() >= 0.9999, cosine.min()


def test_channel_counts_other_than_the_models_are_refused_by_name(tmp_path, capsys):
    import keras

    inputs = keras.Input((16, 16, 4))
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs)))).save(tmp_path / "rgba.keras")
    assert main(["validate", str(_config(tmp_path, tmp_path / "rgba.keras"))]) == 2
    err = capsys.readouterr().err
    assert ("rgba.keras: expected an image model whose input has 1 (grayscale) or 3 (RGB) channels, (None, H, W, C), found 4 channels "
            "(input shape (None, 16, 16, 4))") in err and err.count("error:") == 1
    assert main(["validate", str(_config(tmp_path, GRAY, model_extra=", channels: 3"))]) == 2
    assert "model_gray.keras: model.channels is 3 but the model's input takes 1 channel (grayscale)" in capsys.readouterr().err
    assert main(["validate", str(_config(tmp_path, GRAY, model_extra=", preprocessing: imagenet_caffe"))]) == 2
    assert "model.preprocessing: imagenet_caffe expects three RGB channels, but the model's input takes 1" in capsys.readouterr().err
    assert main(["validate", str(_config(tmp_path, GRAY, model_extra=", channels: 2"))]) == 2
    assert "model.channels: expected auto, 1 (grayscale: the image's luma) or 3 (RGB), found 2" in capsys.readouterr().err


def test_the_decoder_gives_pils_luma_once_or_three_times(tmp_path):
    from PIL import Image

    from pipeline.data.batches import _decoder
    from pipeline.data.geometry import InputSpec

    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    one, err = _decoder(InputSpec((8, 8), channels=1, gray=True))(str(tmp_path / "x.png").encode())
    three, _ = _decoder(InputSpec((8, 8), channels=3, gray=True))(str(tmp_path / "x.png").encode())
    assert err == b"" and one.shape == (9, 7, 1) and np.array_equal(one[..., 0], expected)
    assert three.shape == (9, 7, 3) and all(np.array_equal(three[..., k], expected) for k in range(3))


def _pil_accuracy() -> float:
    """The antialias fixture's model on its evaluation images resized as its training did (PIL, antialiased)."""
    import keras
    from PIL import Image

    doc = json.loads((AA / "annotations.json").read_text())
    names = [c["name"] for c in sorted(doc["categories"], key=lambda c: c["id"])]
    label = {a["image_id"]: a["category_id"] - 1 for a in doc["annotations"]}
    x = np.stack([np.asarray(Image.open(AA / "images" / im["file_name"]).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR),
                             np.float32) for im in doc["images"]]) / 255.0
    y = np.array([label[im["id"]] for im in doc["images"]])
    assert len(names) == 3
    return float((keras.models.load_model(AA / "model.keras").predict(x, verbose=0).argmax(1) == y).mean())


def test_a_model_trained_on_antialiased_resizes_is_said_so_and_model_antialias_gives_its_accuracy(tmp_path):
    reference = _pil_accuracy()
    found = {}
    for antialias in (False, True):
        out = tmp_path / f"aa-{antialias}"
        cfg = _config(tmp_path, AA / "model.keras", name=f"aa{antialias}", dataset=AA, model_extra=f", antialias: {str(antialias).lower()}")
        assert main(["audit", str(cfg), "--output", str(out), "--no-progress"]) in (0, 1, 3)
        found[antialias] = json.loads((out / "summary.json").read_text())
    plain, smooth = found[False], found[True]
    warning = [f for f in plain["findings"] if f["id"] == "data:*:resize"]
    resize = plain["provenance"]["preprocessing_check"]["resize"]
    assert len(warning) == 1 and warning[0]["severity"] == "warning" and warning[0]["kind"] == "data"
    assert f"accuracy {resize['other_accuracy']:.2f} against {resize['accuracy']:.2f}" in warning[0]["sentence"]
    assert "model.antialias: true" in warning[0]["action"] and resize["other_accuracy"] - resize["accuracy"] >= 0.2
    assert not any(f["id"] == "data:*:resize" for f in smooth["findings"])
    assert smooth["provenance"]["preprocessing_check"]["resize"]["other_better"] is False
    assert smooth["aggregates"]["overall"]["accuracy"] >= reference - 0.02  # the training's pixels: its accuracy
    assert plain["aggregates"]["overall"]["accuracy"] <= reference - 0.2


def test_no_demo_warns_about_the_resize_and_every_demo_is_better_than_chance(demo_runs):
    for name, (_, folder) in demo_runs.items():
        summary = json.loads((folder / "summary.json").read_text())
        assert not any(f["id"] == "data:*:resize" for f in summary["findings"]), name
        assert summary["provenance"]["preprocessing_check"]["resize"]["other_better"] is False, name
        check = next(c for c in summary["trust"]["checks"] if c["name"] == "better_than_chance")
        margin = 0.4 if name in ("demo", "demo_shortcut", "demo_dormant", "demo_cast", "demo_source", "demo_gray") else 0.1
        assert check["status"] == "pass" and check["value"] > 1 / 3 + margin, (name, check["message"])


def test_an_untrained_model_is_inconclusive_not_fit(tmp_path):
    """A random-weight CNN under a gate with no accuracy floor, the other trust checks relaxed: better_than_chance alone
    keeps it from FIT, with a finding that says why."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))).save(tmp_path / "random.keras")
    cfg = _config(tmp_path, tmp_path / "random.keras", model_extra=", check_preprocessing: false",
                  trust="randomisation: false, max_one_class: 1.0, max_no_signal: 1.0", gate="{metric: mean_focus_score, min: -1.0}")
    out = tmp_path / "random"
    assert main(["audit", str(cfg), "--output", str(out), "--no-progress", "--limit", "90"]) == 3
    summary = json.loads((out / "summary.json").read_text())
    check = next(c for c in summary["trust"]["checks"] if c["name"] == "better_than_chance")
    assert check["status"] == "fail" and check["threshold"] == pytest.approx(1 / 3) and check["value"] <= 1 / 3
    finding = next(f for f in summary["findings"] if f["id"] == "trust:better_than_chance:*")
    assert finding["severity"] == "warning" and finding["checks"] == ["better_than_chance"]
    assert finding["title"].startswith("The model does no better than chance")

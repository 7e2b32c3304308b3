"""Models saved by Keras 2 (tf_keras), DESIGN §14: SavedModel folders, .h5 and tf_keras .keras files audit like
Keras 3 ones, with CAMs equal to Grad-CAM computed in tf_keras itself; what cannot be converted is refused by name.
The reference Grad-CAM is written here with tf.GradientTape on the tf_keras model, not through the converter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT, require
from pipeline.cli import main

SHAPES = ROOT / "data_samples" / "shapes"
FORMATS = {"savedmodel": "sm", "h5": "m.h5", "keras": "m.keras"}
LIMIT = 30


def _tf_keras():
    try:
        import tf_keras
    except ImportError:
        require(False, "tf-keras is not installed (pip install -e '.[legacy]'; make install does)")
    return tf_keras


def _functional(tk):
    """A nested Functional backbone (Conv2D, BatchNormalization, DepthwiseConv2D, SeparableConv2D, Dropout) and a head."""
    tk.utils.set_random_seed(0)
    inp = tk.Input((64, 64, 3))
    x = tk.layers.Conv2D(8, 3, strides=2, padding="same", name="c1")(inp)
    x = tk.layers.BatchNormalization(name="bn", moving_mean_initializer="random_uniform")(x)
    x = tk.layers.ReLU(name="r1")(x)
    x = tk.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = tk.layers.SeparableConv2D(8, 3, strides=2, padding="same", activation="relu", name="sep")(x)
    x = tk.layers.Dropout(0.2, name="drop")(x)
    backbone = tk.Model(inp, x, name="backbone")
    outer = tk.Input((64, 64, 3))
    y = tk.layers.GlobalAveragePooling2D(name="gap")(backbone(outer))
    return tk.Model(outer, tk.layers.Dense(3, activation="softmax", name="head")(y), name="legacy_functional")


def _sequential(tk):
    tk.utils.set_random_seed(1)
    return tk.Sequential([
        tk.Input((64, 64, 3)), tk.layers.Conv2D(8, 3, strides=2, padding="same", name="c1"), tk.layers.BatchNormalization(name="bn"),
        tk.layers.ReLU(name="r1"), tk.layers.DepthwiseConv2D(3, padding="same", name="dw"),
        tk.layers.SeparableConv2D(8, 3, strides=2, padding="same", activation="relu", name="sep"), tk.layers.Dropout(0.2, name="drop"),
        tk.layers.GlobalAveragePooling2D(name="gap"), tk.layers.Dense(3, activation="softmax", name="head")], name="legacy_sequential")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{(kind, format): path} for both tiny tf_keras models in the three formats, and the models themselves."""
    tk = _tf_keras()
    folder = tmp_path_factory.mktemp("legacy")
    out, models = {}, {}
    for kind, build in (("functional", _functional), ("sequential", _sequential)):
        model = models[kind] = build(tk)
        for fmt, name in FORMATS.items():
            path = folder / f"{kind}_{name}"
            model.save(str(path))
            out[(kind, fmt)] = path
    return out, models


def _config(tmp_path, model, name="legacy"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""name: {name}
model: {{path: {model}, check_preprocessing: false}}   # a random model: its preprocessing is not under test
dataset: {{format: coco, annotations: {SHAPES / 'annotations.json'}, images: {SHAPES / 'images'}}}
strategies: {{enabled: false}}
probes: {{enabled: false}}
trust: {{randomisation: false, max_one_class: 1.0}}
gate:
  - {{metric: accuracy, min: 0.0}}
""")
    return path


def _reference_cams(tk_model, kind: str, layer: str, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM in tf_keras: α_k = mean ∂y_c/∂A_k of the pre-softmax score of the predicted class, CAM = ReLU(Σ α_k A_k)."""
    import tensorflow as tf
    import tf_keras as tk

    head, pool = tk_model.get_layer("head"), tk_model.get_layer("gap")
    kernel, bias = head.kernel, head.bias
    if kind == "functional":  # the target layer inside the nested backbone, and the backbone's output
        backbone = tk_model.get_layer("backbone")
        inner = tk.Model(backbone.inputs, [backbone.get_layer(layer.split("/")[-1]).output, backbone.output])
    else:
        inner = tk.Model(tk_model.inputs, [tk_model.get_layer(layer).output, tk_model.get_layer("drop").output])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        acts, feats = inner(x, training=False)
        tape.watch(acts)
        logits = tf.matmul(pool(feats), kernel) + bias
        predicted = tf.argmax(logits, axis=1)
        score = tf.reduce_sum(tf.gather(logits, predicted, batch_dims=1))
    grads = tape.gradient(score, acts)
    alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(alpha * acts, axis=-1)).numpy(), predicted.numpy()


def _images(rows_csv) -> np.ndarray:
    """The audited samples' images as the audit feeds them: stretched to 64 x 64 (bilinear, no antialias), / 255."""
    import tensorflow as tf
    from PIL import Image

    out = [tf.image.resize(np.asarray(Image.open(SHAPES / "images" / r["image"]).convert("RGB"), np.float32), (64, 64)).numpy() / 255.0
           for r in rows_csv]
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize("kind", ["functional", "sequential"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_audits_with_cams_equal_to_tf_keras_own_grad_cam(saved, tmp_path, kind, fmt):
    import csv

    paths, models = saved
    out = tmp_path / "out"
    code = main(["audit", str(_config(tmp_path, paths[(kind, fmt)])), "--output", str(out), "--no-progress", "--limit", str(LIMIT)])
    assert code in (0, 1, 3)
    summary = json.loads((out / "summary.json").read_text())
    source = summary["provenance"]["model_source"]
    assert source["format"] == fmt and source["max_probability_difference"] <= 1e-4 and source["checked_images"] == LIMIT
    assert source["from_cache"] is False and any(k.endswith("dw.groups") for k in source["dropped_keys"])
    layer = summary["provenance"]["target_layer"]
    assert layer == ("backbone/drop" if kind == "functional" else "drop")
    rows = list(csv.DictReader((out / "samples.csv").open()))
    cams = np.load(out / "heatmaps.npz")["cams"]
    ref, predicted = _reference_cams(models[kind], kind, layer, _images(rows))
    names = summary["class_names"]
    assert [names[p] for p in predicted] == [r["predicted"] for r in rows]
    a, b = cams.reshape(len(rows), -1).astype(np.float64), ref.reshape(len(rows), -1).astype(np.float64)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    assert (np.abs(a).sum(1) > 0).all() and cosine.min() >= 0.9999, cosine.min()  # every map has heat, and it matches
    # a second audit loads the converted model from the cache: same maps, said in provenance
    assert main(["audit", str(_config(tmp_path, paths[(kind, fmt)])), "--output", str(tmp_path / "again"), "--no-progress",
                 "--limit", str(LIMIT)]) == code
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["provenance"]["model_source"]["from_cache"] is True
    assert again["provenance"]["model_sha256"] == summary["provenance"]["model_sha256"] == source["sha256"]
    np.testing.assert_array_equal(np.load(tmp_path / "again" / "heatmaps.npz")["cams"], cams)


def test_the_saved_model_pb_file_and_validate_say_the_conversion(saved, tmp_path, capsys):
    paths, _ = saved
    assert main(["validate", str(_config(tmp_path, paths[("functional", "savedmodel")] / "saved_model.pb"))]) == 0
    out = capsys.readouterr().out
    assert "is a Keras 2 model, converted from a Keras 2 SavedModel (max |Δp|" in out and "dropped keys Keras 3 does not know" in out


def _refused(tmp_path, capsys, model) -> str:
    code = main(["audit", str(_config(tmp_path, model)), "--output", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("error:") == 1 and not (tmp_path / "o").exists()
    return err


def test_a_custom_layer_is_refused_by_its_class_name(tmp_path, capsys):
    tk = _tf_keras()

    @tk.saving.register_keras_serializable(package="Mine")
    class Doubler(tk.layers.Layer):
        def call(self, x):
            return 2 * x

    inp = tk.Input((64, 64, 3))
    x = tk.layers.Conv2D(4, 3, name="c")(Doubler(name="twice")(inp))
    tk.Model(inp, tk.layers.Dense(3)(tk.layers.GlobalAveragePooling2D()(x))).save(str(tmp_path / "custom.keras"))
    err = _refused(tmp_path, capsys, tmp_path / "custom.keras")
    assert "layer twice is a custom layer (Doubler)" in err and "register it" in err


def test_a_lambda_layer_is_refused_without_running_its_code(tmp_path, capsys):
    tk = _tf_keras()
    marker = tmp_path / "ran"
    inp = tk.Input((64, 64, 3))
    x = tk.layers.Lambda(lambda t: t * 2, name="scale")(inp)
    tk.Model(inp, tk.layers.Dense(3)(tk.layers.GlobalAveragePooling2D()(x))).save(str(tmp_path / "lambda.h5"))
    err = _refused(tmp_path, capsys, tmp_path / "lambda.h5")
    assert "layer scale is a Lambda layer: its code is never run" in err and not marker.exists()


def test_a_subclassed_model_is_refused(tmp_path, capsys):
    tk = _tf_keras()

    class Net(tk.Model):
        def __init__(self):
            super().__init__()
            self.conv = tk.layers.Conv2D(4, 3)
            self.head = tk.layers.Dense(3)

        def call(self, x):
            return self.head(tk.backend.mean(self.conv(x), axis=(1, 2)))

    net = Net()
    net(np.zeros((1, 64, 64, 3), np.float32))
    net.save(str(tmp_path / "net"))
    err = _refused(tmp_path, capsys, tmp_path / "net")
    assert "found a subclassed model" in err and "Functional or Sequential" in err


def test_a_savedmodel_without_keras_metadata_is_refused(tmp_path, capsys):
    import tensorflow as tf

    class Scorer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.float32)])
        def __call__(self, x):
            return tf.reduce_mean(x, axis=(1, 2))

    tf.saved_model.save(Scorer(), str(tmp_path / "plain"))
    err = _refused(tmp_path, capsys, tmp_path / "plain")
    assert "found a SavedModel without Keras metadata" in err and "tf.saved_model.save" in err


def test_a_folder_that_is_no_savedmodel_is_a_config_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    err = _refused(tmp_path, capsys, tmp_path / "empty")
    assert "model.path: expected a model file (.keras, .h5, .hdf5), or a Keras 2 SavedModel folder (with saved_model.pb), found a folder without saved_model.pb" in err


def test_the_keras_2_demo_gives_the_good_demos_verdict_and_heatmaps(demo_runs, tmp_path):
    _tf_keras()
    code = main(["audit", str(ROOT / "configs" / "demo_legacy.yaml"), "--output", str(tmp_path / "out"), "--no-progress"])
    good_code, good = demo_runs["demo"]
    assert code == good_code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["provenance"]["model_source"]["format"] == "savedmodel"
    assert summary["provenance"]["model_source"]["max_probability_difference"] <= 1e-4
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "heatmaps.npz")["cams"], np.load(good / "heatmaps.npz")["cams"])
    assert (tmp_path / "out" / "samples.csv").read_text() == (good / "samples.csv").read_text()
    assert "Keras 2 SavedModel, converted: max |Δp|" in (tmp_path / "out" / "report.html").read_text()


def test_a_rebuild_that_differs_is_exit_2_naming_the_first_layer_that_differs(saved, tmp_path, capsys, monkeypatch):
    """A rebuild whose depthwise layer kept its fresh initial weights (the copy skipped it) differs from the Keras 2
    model from that layer on: the check refuses it, names the layer, and caches nothing."""
    from pipeline.model import legacy

    paths, _ = saved
    copy = legacy.copy_weights

    def all_but_dw(source, target, names, where):
        copy(source, target, names, where)
        layer = legacy.leaf_layers(target)["dw"]
        layer.set_weights([w + 0.5 for w in layer.get_weights()])

    monkeypatch.setattr(legacy, "copy_weights", all_but_dw)
    code = main(["audit", str(_config(tmp_path, paths[("sequential", "h5")])), "--output", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "expected the Keras 3 rebuild to match the Keras 2 model (max |Δ probability| <= 0.0001" in err
    assert err.rstrip().endswith("the first layer whose outputs differ: dw") and "Traceback" not in err
    assert not (tmp_path / ".converted").exists()  # nothing of the failed conversion is written

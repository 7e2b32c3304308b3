"""The model file's door (DESIGN §14, §16 "File names"): no code from a model file ever runs, in any format, in
``validate`` or ``audit``; every ``tf_keras.applications`` family converts in the three Keras 2 formats with
probabilities and Grad-CAM maps equal to tf_keras' own; HDF5 files load whatever their suffix; a failed
conversion leaves the cache as it found it. The reference Grad-CAM is written here with tf.GradientTape on the
tf_keras model, not through the converter."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from conftest import ROOT, require
from pipeline.cli import main

SHAPES = ROOT / "data_samples" / "shapes"


def _tf_keras():
    try:
        import tf_keras
    except ImportError:
        require(False, "tf-keras is not installed (pip install -e '.[legacy]'; make install does)")
    return tf_keras


@pytest.fixture(autouse=True)
def _fresh_sessions():
    """Each test starts with empty Keras 2 and Keras 3 global state: dozens of backbones built in one process otherwise
    slow every later model's construction and save."""
    import keras

    yield
    keras.backend.clear_session()
    try:
        import tf_keras
    except ImportError:
        return
    tf_keras.backend.clear_session()


def _config(tmp_path, model, name="door", extra=""):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""name: {name}
model: {{path: {model}, check_preprocessing: false{extra}}}   # random weights: the preprocessing is not under test
dataset: {{format: coco, annotations: {SHAPES / 'annotations.json'}, images: {SHAPES / 'images'}}}
evidence: {{interventions: false}}
strategies: {{enabled: false}}
probes: {{enabled: false}}
trust: {{randomisation: false, max_one_class: 1.0, max_no_signal: 1.0}}
report: {{output_dir: {tmp_path / 'out'}}}   # validate too: a Keras 2 model's cache is {tmp_path}/.converted
gate:
  - {{metric: accuracy, min: 0.0}}
""")
    return path


# --------------------------------------------------------------------------- no code runs


def _writer(marker):
    """A function that appends to ``marker`` whenever it is called (what a hostile Lambda would do)."""
    scope: dict = {}
    exec(f"def write(x):\n    open({str(marker)!r}, 'a').write('ran\\n')\n    return x\n", scope)
    return scope["write"]


def _lambda_models(folder, marker):
    """{form: path} of a model whose Lambda writes ``marker``, saved every way Keras 2 and Keras 3 save."""
    import keras

    tk = _tf_keras()
    inp = tk.Input((16, 16, 3))
    x = tk.layers.Lambda(_writer(marker), name="writer")(inp)
    k2 = tk.Model(inp, tk.layers.Dense(3, activation="softmax")(tk.layers.GlobalAveragePooling2D()(x)))
    forms = {"keras2 savedmodel": folder / "sm", "keras2 saved_model.pb": folder / "sm" / "saved_model.pb",
             "keras2 .h5": folder / "k2.h5", "keras2 .keras": folder / "k2.keras"}
    for form in ("keras2 savedmodel", "keras2 .h5", "keras2 .keras"):
        k2.save(str(forms[form]))  # tf_keras traces the Lambda while saving: the marker is removed below
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(_writer(marker), name="writer")(inp)
    k3 = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    forms["keras3 .keras"], forms["keras3 .hdf5"] = folder / "k3.keras", folder / "k3.hdf5"
    k3.save(forms["keras3 .keras"])
    k3.save(forms["keras3 .hdf5"])
    marker.unlink(missing_ok=True)
    return forms


def test_a_lambda_that_writes_a_file_is_refused_by_name_and_never_runs(tmp_path, capsys):
    marker = tmp_path / "the-lambda-ran.txt"
    forms = _lambda_models(tmp_path, marker)
    assert not marker.exists()
    for form, path in forms.items():
        for command in (["validate"], ["audit"]):
            args = [*command, str(_config(tmp_path, path))] + (["--output", str(tmp_path / "out"), "--no-progress"] if command == ["audit"] else [])
            code = main(args)
            err = capsys.readouterr().err
            assert code == 2, (form, command, err)
            assert "layer writer is a Lambda layer: its code is never run" in err, (form, err)
            assert err.count("error:") == 1 and "Traceback" not in err
            assert str(path.parent if path.name == "saved_model.pb" else path) in err  # the user's file, not a cache's
            assert not marker.exists(), f"{form}: the Lambda ran during {command[0]}"
    assert not (tmp_path / "out").exists() and not (tmp_path / ".converted").exists()


def test_the_savedmodel_metadata_is_read_as_tf_keras_writes_it(tmp_path):
    """The hand decoder of keras_metadata.pb against tf_keras' own protocol-buffer class, on a real SavedModel."""
    tk = _tf_keras()
    from tf_keras.protobuf import saved_metadata_pb2

    from pipeline.model.stored import savedmodel_nodes

    inp = tk.Input((8, 8, 3))
    tk.Model(inp, tk.layers.Dense(2)(tk.layers.GlobalAveragePooling2D(name="gap")(inp))).save(str(tmp_path / "sm"))
    data = (tmp_path / "sm" / "keras_metadata.pb").read_bytes()
    theirs = saved_metadata_pb2.SavedMetadata()
    theirs.ParseFromString(data)
    mine = savedmodel_nodes(data)

    def plain(value):  # tf_keras' JSON encodings of a tuple and a TensorShape, as the lists they hold
        if isinstance(value, dict):
            if value.get("class_name") in ("__tuple__", "TensorShape"):
                return [plain(v) for v in value.get("items") or []]
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, list) else value

    assert [(n["path"], n["identifier"], json.loads(json.dumps(n["metadata"]))) for n in mine] == [
        (n.node_path, n.identifier, plain(json.loads(n.metadata))) for n in theirs.nodes]
    assert [n["metadata"].get("class_name") for n in mine][:4] == ["Functional", "InputLayer", "GlobalAveragePooling2D", "Dense"]


# --------------------------------------------------------------------------- every backbone converts


def _family(name: str):
    """(build(seed) -> a tf_keras model with weights=None and 3 classes, input size): each tf_keras.applications family
    by its own builder, at its smallest depth (the families' blocks, layer types and names; a few seconds to save
    and load each), or its smallest named member where the family has no depth to choose (Inception, Xception, VGG)."""
    import importlib

    tk = _tf_keras()
    apps = tk.applications

    def module(name: str):
        return importlib.import_module(f"tf_keras.src.applications.{name}")

    def resnet(preact: bool):
        r = module("resnet")
        stack = r.stack2 if preact else r.stack1

        def stack_fn(x):
            x = stack(x, 16, 2, name="conv2")  # stack2 needs two blocks (its last one is named for the count)
            return stack(x, 32, 2, name="conv3") if not preact else stack(x, 32, 2, stride1=1, name="conv3")

        return lambda **kw: r.ResNet(stack_fn, preact, not preact, model_name="resnetv2_mini" if preact else "resnet_mini", **kw)

    def inception_resnet(**kw):
        """InceptionResNetV2's own blocks, one of each kind (the named model repeats them 40 times: 780 layers)."""
        m = module("inception_resnet_v2")
        m.layers = tk.layers  # the module's blocks read the layers its named model sets (VersionAwareLayers)
        inp = tk.Input(kw["input_shape"])
        x = m.conv2d_bn(inp, 32, 3, strides=2, padding="valid")
        x = m.inception_resnet_block(x, scale=0.17, block_type="block35", block_idx=1)
        x = m.conv2d_bn(x, 64, 3, strides=2, padding="valid")
        x = m.inception_resnet_block(x, scale=0.1, block_type="block17", block_idx=1)
        x = m.inception_resnet_block(x, scale=1.0, activation=None, block_type="block8", block_idx=1)
        x = m.conv2d_bn(x, 96, 1, name="conv_7b")
        x = tk.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return tk.Model(inp, tk.layers.Dense(kw["classes"], activation="softmax", name="predictions")(x), name="inception_resnet_mini")

    builders = {
        "ConvNeXt": (lambda **kw: module("convnext").ConvNeXt([1, 1, 1, 1], [16, 32, 64, 128], model_name="convnext_mini", **kw), 64),
        "DenseNet": (lambda **kw: module("densenet").DenseNet([1, 1, 1, 1], **kw), 32),
        "EfficientNet": (lambda **kw: module("efficientnet").EfficientNet(0.5, 0.1, 224, model_name="efficientnet_mini", **kw), 32),
        "EfficientNetV2": (lambda **kw: module("efficientnet_v2").EfficientNetV2(0.5, 0.1, 224, model_name="efficientnetv2-b0", **kw), 32),
        "InceptionResNetV2": (inception_resnet, 75),
        "InceptionV3": (apps.InceptionV3, 75),
        "MobileNet": (lambda **kw: apps.MobileNet(alpha=0.25, **kw), 32),
        "MobileNetV2": (lambda **kw: apps.MobileNetV2(alpha=0.35, **kw), 32),
        "MobileNetV3": (lambda **kw: apps.MobileNetV3Small(alpha=0.75, **kw), 32),
        "NASNet": (lambda **kw: module("nasnet").NASNet(penultimate_filters=96, num_blocks=1, stem_block_filters=8, default_size=32, **kw), 32),
        "RegNet": (lambda **kw: module("regnet").RegNet([1, 1, 1, 1], [24, 56, 152, 368], 8, "Y", 224, model_name="regnety_mini", **kw), 32),
        "ResNet": (resnet(False), 32),
        "ResNetV2": (resnet(True), 32),
        "ResNetRS": (lambda **kw: module("resnet_rs").ResNetRS(50, block_args=[{"input_filters": 16, "num_repeats": 1},
                                                                              {"input_filters": 32, "num_repeats": 1}], **kw), 32),
        "VGG": (apps.VGG16, 32),
        "Xception": (apps.Xception, 71),
    }
    build, size = builders[name]
    return (lambda: build(weights=None, input_shape=(size, size, 3), classes=3)), size


def test_stochastic_depth_maps_to_keras_3s_own(tmp_path):
    """ConvNeXt with drop paths (StochasticDepth, an identity at inference; tf_keras cannot write it as a SavedModel)."""
    import importlib

    from pipeline.model.legacy import max_difference
    from pipeline.model.load import open_model

    tk = _tf_keras()
    tk.utils.set_random_seed(0)
    original = importlib.import_module("tf_keras.src.applications.convnext").ConvNeXt(
        [1, 1, 1, 1], [16, 32, 64, 128], drop_path_rate=0.1, model_name="convnext_drop", weights=None, input_shape=(64, 64, 3), classes=3)
    assert any(type(layer).__name__ == "StochasticDepth" for layer in original.layers)
    original.save(str(tmp_path / "m.h5"))
    loaded = open_model(tmp_path / "m.h5", tmp_path / "reports")
    assert any(type(layer).__name__ == "StochasticDepth" and type(layer).__module__.startswith("keras.src.applications")
               for layer in loaded.model.layers)
    images = np.random.default_rng(1).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    assert max_difference(loaded.original, loaded.model, images) <= 1e-4


FAMILIES = ["ConvNeXt", "DenseNet", "EfficientNet", "EfficientNetV2", "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2",
            "MobileNetV3", "NASNet", "RegNet", "ResNet", "ResNetV2", "ResNetRS", "VGG", "Xception"]
SAVED = {"savedmodel": "sm", "h5": "m.h5", "keras": "m.keras"}
TRACED = ("ConvNeXt", "DenseNet", "ResNet")
"""Families saved as a SavedModel the default way, with every layer's call traced; the others are saved without the traces
(``save_traces=False``: the same keras_metadata config and variables the conversion reads, 14.7 -> 2.6 s for NASNet)."""


def _tf_keras_gradcam(model, layer: str, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM in tf_keras: α_k = mean ∂y_c/∂A_k of the pre-softmax score of the predicted class, CAM = ReLU(Σ α_k A_k)."""
    import tensorflow as tf
    import tf_keras as tk

    last = model.layers[-1]  # a Dense with the softmax, or the softmax Activation after the logits
    inner = tk.Model(model.inputs, [model.get_layer(layer).output, last.input])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        acts, before = inner(x, training=False)
        tape.watch(acts)
        logits = tf.matmul(before, last.kernel) + last.bias if isinstance(last, tk.layers.Dense) else before
        predicted = tf.argmax(logits, axis=1)
        score = tf.reduce_sum(tf.gather(logits, predicted, batch_dims=1))
    alpha = tf.reduce_mean(tape.gradient(score, acts), axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(alpha * acts, axis=-1)).numpy(), predicted.numpy()


def _pipeline_gradcam(am, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The audit's compiled step on ``images`` (already preprocessed), explaining the predicted class."""
    import tensorflow as tf

    from pipeline.explain.cams import get_method
    from pipeline.explain.cams.step import make_step
    from pipeline.data.labels import allowed_classes

    step = make_step(am.cam_model, get_method("gradcam"), n_classes=am.n_classes, input_size=am.input_size)
    b = len(images)
    out = step(tf.constant(images), tf.constant(images), tf.constant(allowed_classes(np.full(b, -1), am.n_classes)),
               np.zeros((b, 1, 4), np.int32), np.zeros((b, 1), np.int32), np.zeros((b, 1), bool))
    return out["cams"].numpy(), out["chosen"].numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_every_applications_family_converts_in_every_format_with_tf_keras_own_grad_cam(family, tmp_path):
    """Each format's conversion gives tf_keras' probabilities (max |Δp| <= 1e-4 on 4 images); the three conversions are
    the same Keras 3 model (config and weights), whose Grad-CAM equals tf_keras' own (cosine >= 0.9999)."""
    from pipeline.config import ModelConfig
    from pipeline.model.explainable import build_audit_model
    from pipeline.model.legacy import max_difference
    from pipeline.model.load import open_model

    tk = _tf_keras()
    build, size = _family(family)
    tk.utils.set_random_seed(0)
    original = build()
    images = np.random.default_rng(1).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
    rows, models = [], []
    for fmt, name in SAVED.items():
        path = tmp_path / name
        original.save(str(path), **({"save_traces": False} if fmt == "savedmodel" and family not in TRACED else {}))
        t0 = time.perf_counter()
        loaded = open_model(path, tmp_path / "reports")
        seconds = time.perf_counter() - t0
        diff = max_difference(loaded.original, loaded.model, images)
        assert diff <= 1e-4, (family, fmt, diff)
        models.append(loaded)
        c = loaded.conversion
        rows.append(f"{family} ({original.name}, {len(original.layers)} layers) {fmt}: max |Δp| {diff:.1g}, {len(c.dropped)} dropped "
                    f"keys, {len(c.renamed)} renamed layers, load + rebuild {seconds:.1f} s")
    first = models[0].model
    for other in models[1:]:
        assert other.model.get_config() == first.get_config()
        assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), other.model.get_weights(), strict=True))
    cfg = ModelConfig(path=tmp_path, target_layer="auto", preprocessing="none", input_size=None, resize="bilinear", class_names=None)
    am = build_audit_model(cfg, models[1])
    original.get_layer(am.target_layer)  # the target layer is named as the tf_keras model names it
    cams, chosen = _pipeline_gradcam(am, images)
    ref, predicted = _tf_keras_gradcam(original, am.target_layer, images)
    assert (chosen == predicted).all()
    a, b = cams.reshape(len(images), -1).astype(np.float64), ref.reshape(len(images), -1).astype(np.float64)
    heat = np.abs(b).sum(1) > 0
    assert heat.any() and ((np.abs(a).sum(1) > 0) == heat).all(), family
    cosine = (a * b).sum(1)[heat] / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))[heat]
    assert cosine.min() >= 0.9999, (family, cosine)
    if family in ("DenseNet", "MobileNetV3"):  # conv1/conv, expanded_conv/depthwise/...: renamed, and named back
        assert c.renamed and all("/" in theirs and "/" not in mine for mine, theirs in c.renamed)
    print("\n".join(rows) + f"\n{family}: target {am.target_layer}, Grad-CAM cosine min {cosine.min():.6f} on {int(heat.sum())} maps")


def test_the_three_backbones_once_refused_audit_end_to_end(tmp_path):
    """DenseNet (names with '/'), MobileNetV3 (TFOpLambda) and ConvNeXt (LayerScale), each in one Keras 2 format, through the
    CLI: converted, checked on the evaluation images, audited; provenance names the original layers."""
    from pipeline.model.legacy import application_layers

    tk = _tf_keras()
    for family, fmt in (("DenseNet121", "h5"), ("MobileNetV3Small", "savedmodel"), ("ConvNeXtTiny", "keras")):
        tk.utils.set_random_seed(0)
        path = tmp_path / f"{family}_{SAVED[fmt]}"
        getattr(tk.applications, family)(weights=None, input_shape=(64, 64, 3), classes=3).save(str(path))
        out = tmp_path / f"out-{family}"
        code = main(["audit", str(_config(tmp_path, path, family, ", preprocessing: none")), "--output", str(out), "--no-progress",
                     "--limit", "32"])
        assert code in (0, 1, 3), family
        summary = json.loads((out / "summary.json").read_text())
        source = summary["provenance"]["model_source"]
        assert source["format"] == fmt and source["max_probability_difference"] <= 1e-4 and source["checked_images"] == 32
        assert summary["provenance"]["model"] == str(path)
        original = tk.models.load_model(str(path), compile=False, custom_objects=application_layers(tk))
        original.get_layer(summary["provenance"]["target_layer"])  # named as the tf_keras model names it


# --------------------------------------------------------------------------- files by content; the cache


def test_hdf5_files_load_by_content_whatever_their_suffix(tmp_path, capsys):
    import keras

    tk = _tf_keras()
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    k3 = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    k3.save(tmp_path / "k3.hdf5")
    (tmp_path / "k3.model").write_bytes((tmp_path / "k3.hdf5").read_bytes())  # HDF5 under a name Keras does not dispatch on
    tinp = tk.Input((32, 32, 3))
    tx = tk.layers.Conv2D(4, 3, activation="relu", name="conv")(tinp)
    tk.Model(tinp, tk.layers.Dense(3, activation="softmax")(tk.layers.GlobalAveragePooling2D()(tx))).save(str(tmp_path / "k2.hdf5"))
    for name, keras2 in (("k3.hdf5", False), ("k3.model", False), ("k2.hdf5", True)):
        assert main(["validate", str(_config(tmp_path, tmp_path / name))]) == 0, name
        out = capsys.readouterr().out
        assert ("is a Keras 2 model, converted from a Keras 2 HDF5 file" in out) == keras2, out
        assert "target layer conv" in out


def test_a_failed_conversion_leaves_the_cache_as_it_found_it(tmp_path, capsys, monkeypatch):
    """A rebuild that differs from its Keras 2 model is refused by validate and audit alike; the cache folder is not
    created when absent, and an existing one keeps exactly its entries."""
    from pipeline.model import legacy

    tk = _tf_keras()
    tinp = tk.Input((32, 32, 3))
    tx = tk.layers.Conv2D(4, 3, activation="relu", name="conv")(tinp)
    tk.Model(tinp, tk.layers.Dense(3, activation="softmax")(tk.layers.GlobalAveragePooling2D()(tx))).save(str(tmp_path / "k2.h5"))
    copy = legacy.copy_weights

    def shifted(source, target, names, where):
        copy(source, target, names, where)
        target.get_layer("conv").set_weights([w + 0.5 for w in target.get_layer("conv").get_weights()])

    monkeypatch.setattr(legacy, "copy_weights", shifted)
    cache = tmp_path / ".converted"
    for existing in (False, True):
        if existing:
            cache.mkdir()
            (cache / "0123.keras").write_bytes(b"an earlier entry")
        before = sorted((p.name, p.read_bytes()) for p in cache.iterdir()) if existing else None
        for command in (["validate"], ["audit", "--output", str(tmp_path / "out"), "--no-progress"]):
            code = main([command[0], str(_config(tmp_path, tmp_path / "k2.h5")), *command[1:]])
            err = capsys.readouterr().err
            assert code == 2 and "the first layer whose outputs differ: conv" in err and str(tmp_path / "k2.h5") in err, err
            assert cache.exists() == existing
            if existing:
                assert sorted((p.name, p.read_bytes()) for p in cache.iterdir()) == before


# --------------------------------------------------------------------------- files that are no Keras model (issue 39)


def _tiny_keras3():
    import keras

    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv"), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(2, activation="softmax", name="head")])


def test_tensorflow_formats_without_layers_are_named_in_one_error_line(tmp_path, capsys):
    """A TF1 frozen graph (as a file, and handed over as saved_model.pb in a folder), a TFLite flatbuffer, a lone
    saved_model.pb and a pickle: one ``error:`` line each that names what it is and what to do."""
    import pickle

    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    model = _tiny_keras3()
    frozen = convert_variables_to_constants_v2(tf.function(model).get_concrete_function(tf.TensorSpec((1, 8, 8, 1))))
    graph = frozen.graph.as_graph_def().SerializeToString()
    (tmp_path / "frozen.pb").write_bytes(graph)
    (tmp_path / "handed").mkdir()
    (tmp_path / "handed" / "saved_model.pb").write_bytes(graph)
    (tmp_path / "model.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    model.export(str(tmp_path / "exported"), verbose=False)
    (tmp_path / "lone.pb").write_bytes((tmp_path / "exported" / "saved_model.pb").read_bytes())
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0]}, protocol=4))
    expected = {
        "frozen.pb": "found a TensorFlow 1 frozen graph (GraphDef): it holds constants and operations, no layers to explain; "
                     "export the Keras model it came from",
        "handed": "saved_model.pb: expected a SavedModel's saved_model.pb, found a TensorFlow 1 frozen graph (GraphDef)",
        "model.tflite": "found a TensorFlow Lite flatbuffer",
        "lone.pb": "found a SavedModel's saved_model.pb on its own: put it back in its SavedModel folder",
        "exported": "found a SavedModel without Keras metadata (written by tf.saved_model.save, or Keras 3's model.export)",
        "model.pkl": "found a Python pickle (as pickle, joblib or PyTorch's torch.save write): unpickling runs code, so it is "
                     "never opened; where you trust the file, load it and save the Keras model inside it with model.save('model.keras')",
    }
    for name, words in expected.items():
        for command in ("validate", "audit"):
            assert main([command, str(_config(tmp_path, tmp_path / name))]) == 2
            err = capsys.readouterr().err
            lines = [line for line in err.splitlines() if line.startswith("error:")]
            assert len(lines) == 1 and words in lines[0] and "Traceback" not in err, (name, command, err)


def _nested_pair(tmp_path):
    """(a nested model built by hand, the same model saved as Keras 3.8 saved it: its inner output stored as a list)."""
    import sys

    import keras

    sys.path.insert(0, str(ROOT / "tests"))
    import matrix_models as mm

    keras.utils.set_random_seed(3)
    model = mm.cnn(keras, 3, nested=True)
    model.save(tmp_path / "nested.keras")
    return model, mm.as_keras38_nested_list(tmp_path / "nested.keras", tmp_path / "nested38.keras")


def test_a_nested_output_saved_as_a_list_is_repaired_every_weight_loaded_predictions_equal(tmp_path, capsys):
    import keras

    from pipeline.model.load import open_model

    by_hand, broken = _nested_pair(tmp_path)
    with pytest.raises(ValueError, match=r'Layer "head" expects 1 input\(s\), but it received 2 input tensors'):
        keras.models.load_model(broken, compile=False)  # Keras' own loader: keras-team/keras#20084
    loaded = open_model(broken, tmp_path / "reports")
    assert loaded.repairs == (f"repaired: a nested model's output saved as a list (keras-team/keras#20084) at backbone; every stored "
                              f"weight loaded (saved by Keras {keras.__version__}, loaded by Keras {keras.__version__})",)
    x = np.random.default_rng(0).uniform(0, 1, (6, 32, 32, 3)).astype("float32")
    assert np.array_equal(loaded.model.predict(x, verbose=0), by_hand.predict(x, verbose=0))
    assert main(["validate", str(_config(tmp_path, broken))]) == 0
    assert "model: nested38.keras: repaired: a nested model's output saved as a list (keras-team/keras#20084)" in capsys.readouterr().out


def test_a_repair_that_leaves_a_stored_weight_unused_is_refused_naming_it(tmp_path, capsys):
    """The broken file's weights archive gains an array no layer owns: the repaired model loads, but not every stored
    weight is in it exactly once."""
    import io
    import zipfile

    import h5py

    _, broken = _nested_pair(tmp_path)
    extra = tmp_path / "extra.keras"
    with zipfile.ZipFile(broken) as src, zipfile.ZipFile(extra, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "model.weights.h5":
                buf = io.BytesIO(data)
                with h5py.File(buf, "a") as f:
                    f.create_dataset("layers/stray/vars/0", data=np.full((5, 5), 7.0, np.float32))
                data = buf.getvalue()
            out.writestr(item, data)
    assert main(["validate", str(_config(tmp_path, extra))]) == 2
    err = capsys.readouterr().err
    assert "loads the model, but not every stored weight exactly once: 1 stored weight(s) not in the repaired model " \
           "(layers/stray/vars/0)" in err, err
    assert [line.startswith("error:") for line in err.splitlines()] == [True]


def test_any_other_load_failure_keeps_keras_reason_and_both_versions(tmp_path, capsys):
    import zipfile

    import keras

    _tiny_keras3().save(tmp_path / "ok.keras")
    bad = tmp_path / "unknown.keras"
    with zipfile.ZipFile(tmp_path / "ok.keras") as src, zipfile.ZipFile(bad, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = data.replace(b'"GlobalAveragePooling2D"', b'"GlobalWeirdPooling2D"')
            if item.filename == "metadata.json":
                data = json.dumps({**json.loads(data), "keras_version": "3.99.0"}).encode()
            out.writestr(item, data)
    assert main(["validate", str(_config(tmp_path, bad))]) == 2
    err = capsys.readouterr().err
    assert "GlobalWeirdPooling2D" in err and f"(saved by Keras 3.99.0, loaded by Keras {keras.__version__})" in err
    assert [line.startswith("error:") for line in err.splitlines()] == [True]

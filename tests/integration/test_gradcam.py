"""Numerical checks of the batched, compiled Grad-CAM against a plain per-image reference.

The reference is the Keras Grad-CAM example's algorithm (one image per call, gradients pooled
over that image only, class score taken before softmax), written here independently of the
pipeline, on a softmax-free copy of the model.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipeline.explain.cams import get_method  # noqa: E402
from pipeline.explain.cams.step import make_step  # noqa: E402
from pipeline.config import ModelConfig  # noqa: E402
from pipeline.data.labels import allowed_classes  # noqa: E402
from pipeline.model.explainable import build_audit_model  # noqa: E402


def gradcam_step(cam_model, n_classes: int = 3, method: str = "gradcam"):
    """The pipeline's compiled step without interventions, as ``f(images, targets) -> (scores, chosen, cams)``."""
    step = make_step(cam_model, get_method(method), n_classes=n_classes, input_size=(1, 1))

    def run(images, targets):
        b = int(images.shape[0])
        out = step(tf.constant(images, tf.float32), tf.constant(images, tf.float32), tf.constant(allowed_classes(np.asarray(targets), n_classes)),
                   np.zeros((b, 1, 4), np.int32), np.zeros((b, 1), np.int32), np.zeros((b, 1), bool))
        return out["scores"], out["chosen"], out["cams"]

    return run


def mock_conv_model(n_classes: int = 3) -> keras.Model:
    keras.utils.set_random_seed(11)
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Conv2D(6, 3, padding="same", name="target"),
            keras.layers.ReLU(name="target_relu"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(n_classes, activation="softmax", name="head"),
        ],
        name="mock",
    )


def reference_gradcam(model: keras.Model, layer_name: str, image: np.ndarray, class_index: int | None) -> tuple[np.ndarray, int]:
    """Keras example, per image, eagerly layer by layer; the head's logits computed by hand (no softmax)."""
    *body, head = model.layers
    x = tf.constant(image[None])
    with tf.GradientTape() as tape:
        for layer in body:
            x = layer(x)
            if layer.name == layer_name:
                conv = x
                tape.watch(conv)
        logits = tf.matmul(x, head.kernel) + head.bias
        idx = int(tf.argmax(logits[0])) if class_index is None else class_index
        channel = logits[:, idx]
    grads = tape.gradient(channel, conv)
    pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
    heat = conv[0] @ pooled[..., None]
    return np.maximum(tf.squeeze(heat).numpy(), 0), idx


@pytest.fixture(scope="module")
def saved_mock(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "mock.keras"
    mock_conv_model().save(path)
    return path


def _cfg(path, layer="auto"):
    return ModelConfig(path=path, target_layer=layer, preprocessing="none", input_size=None, resize="bilinear", class_names=None)


def test_batched_step_matches_per_image_reference(saved_mock):
    am = build_audit_model(_cfg(saved_mock))
    assert am.target_layer == "target_relu" and am.layer_shape == (8, 8, 6) and am.output_activation == "softmax"
    images = np.random.default_rng(0).random((7, 16, 16, 3)).astype(np.float32)
    step = gradcam_step(am.cam_model)
    targets = np.array([-1, -1, 2, -1, 0, 1, -1], np.int32)
    scores, chosen, cams = (t.numpy() for t in step(tf.constant(images), tf.constant(targets)))
    for i in range(7):
        ref, idx = reference_gradcam(am.model, "target_relu", images[i], None if targets[i] < 0 else int(targets[i]))
        assert chosen[i] == idx
        np.testing.assert_allclose(cams[i], ref, atol=1e-5, rtol=1e-5)
    assert cams.dtype == np.float32 and (cams >= 0).all()
    # scores are pre-softmax: their softmax is the model's prediction
    np.testing.assert_allclose(tf.nn.softmax(scores).numpy(), am.model.predict(images, verbose=0), atol=1e-6)


def test_batch_size_does_not_change_per_sample_results(saved_mock):
    am = build_audit_model(_cfg(saved_mock))
    images = tf.constant(np.random.default_rng(1).random((7, 16, 16, 3)).astype(np.float32))
    step = gradcam_step(am.cam_model)
    _, chosen7, cams7 = step(images, tf.fill([7], -1))
    singles = [step(images[i:i + 1], tf.fill([1], -1)) for i in range(7)]
    np.testing.assert_array_equal(chosen7.numpy(), [s[1].numpy()[0] for s in singles])
    np.testing.assert_allclose(cams7.numpy(), np.concatenate([s[2].numpy() for s in singles]), atol=1e-6)


def test_user_model_is_not_mutated(saved_mock):
    model = keras.models.load_model(saved_mock)
    x = np.random.default_rng(2).random((3, 16, 16, 3)).astype(np.float32)
    before = model.predict(x, verbose=0)
    am = build_audit_model(_cfg(saved_mock))
    gradcam_step(am.cam_model)(tf.constant(x), tf.fill([3], -1))
    np.testing.assert_array_equal(am.model.predict(x, verbose=0), before)
    assert am.model.layers[-1].activation.__name__ == "softmax"


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    keras.utils.set_random_seed(5)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3), alpha=0.35)
    model = keras.Sequential(
        [keras.Input((96, 96, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")]
    )
    path = tmp_path_factory.mktemp("n") / "nested.keras"
    model.save(path)
    return path, base.name


def _nested_reference(model: keras.Model, base_name: str, inner: str, image: np.ndarray) -> np.ndarray:
    """Split by hand: outer preprocessing -> base up to `inner` and base output -> head without softmax."""
    rescale, base, gap, dense = model.layers
    probe = keras.Model(base.inputs, [base.get_layer(inner).output, base.output])
    with tf.GradientTape() as tape:
        acts, feats = probe(rescale(image[None]))
        logits = tf.matmul(gap(feats), dense.kernel) + dense.bias
        idx = int(tf.argmax(logits[0]))
        channel = logits[:, idx]
    grads = tape.gradient(channel, acts)
    weights = tf.reduce_mean(grads, axis=(1, 2))[0]
    return np.maximum(tf.einsum("hwk,k->hw", acts[0], weights).numpy(), 0)


@pytest.mark.parametrize("layer", ["auto", "block_13_expand_relu"])
def test_nested_transfer_learning_model(nested, layer):
    path, base_name = nested
    requested = layer if layer == "auto" else f"{base_name}/{layer}"
    am = build_audit_model(_cfg(path, requested))
    inner = "out_relu" if layer == "auto" else layer
    assert am.target_layer == f"{base_name}/{inner}"
    images = (np.random.default_rng(3).random((2, 96, 96, 3)) * 255).astype(np.float32)
    step = gradcam_step(am.cam_model)
    _, _, cams = step(tf.constant(images), tf.fill([2], -1))
    for i in range(2):
        ref = _nested_reference(am.model, base_name, inner, images[i])
        scale = max(float(np.abs(ref).max()), 1e-12)
        np.testing.assert_allclose(cams.numpy()[i] / scale, ref / scale, atol=1e-4)


def test_h5_model_gives_the_same_cams(saved_mock, tmp_path):
    h5 = tmp_path / "mock.h5"
    keras.models.load_model(saved_mock).save(h5)
    images = tf.constant(np.random.default_rng(4).random((3, 16, 16, 3)).astype(np.float32))
    cams = []
    for path in (saved_mock, h5):
        am = build_audit_model(_cfg(path))
        cams.append(gradcam_step(am.cam_model)(images, tf.fill([3], -1))[2].numpy())
    np.testing.assert_allclose(cams[0], cams[1], atol=1e-6)


def test_unsafe_lambda_layer_is_refused_with_a_message(tmp_path):
    from pipeline.errors import ModelError

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ModelError, match=r"lambda.keras: layer lambda is a Lambda layer: its code is never run"):
        build_audit_model(_cfg(path))


def test_unknown_target_layer_lists_candidates(saved_mock):
    from pipeline.errors import ModelError

    with pytest.raises(ModelError, match=r"found no layer named 'targt'; did you mean target\b.*4-D and token layers: .*target_relu"):
        build_audit_model(_cfg(saved_mock, "targt"))

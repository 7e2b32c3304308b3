"""Token (ViT-style) models (DESIGN §4): the grid reshape, special tokens and the auto target layer,
on the small ViT of data_samples/make_vit.py (built here, untrained, seeded: no download)."""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from conftest import ROOT  # noqa: E402
from pipeline.explain.cams import get_method  # noqa: E402
from pipeline.explain.cams.step import make_step  # noqa: E402
from pipeline.config import ModelConfig  # noqa: E402
from pipeline.errors import ModelError  # noqa: E402
from pipeline.data.labels import allowed_classes  # noqa: E402
from pipeline.model.explainable import build_audit_model  # noqa: E402


def _make_vit():
    spec = importlib.util.spec_from_file_location("make_vit", ROOT / "data_samples" / "make_vit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_vit


def _saved_vit(tmp_path, **kw):
    model = _make_vit()(input_size=32, patch=8, dim=16, depth=2, heads=2, **kw)
    path = tmp_path / f"vit{kw.get('registers', 0)}.keras"
    model.save(path)
    return model, path


def _cfg(path, **kw):
    return ModelConfig(path=path, target_layer=kw.pop("target_layer", "auto"), preprocessing="none", input_size=None,
                       resize="bilinear", class_names=None, **kw)


@pytest.mark.parametrize(("registers", "special"), [(0, 1), (4, 5)])
def test_auto_special_tokens_and_auto_target_layer(tmp_path, registers, special):
    _, path = _saved_vit(tmp_path, registers=registers)
    am = build_audit_model(_cfg(path))
    # the head reads the class token only: after block 2's attention the patch tokens get no
    # gradient, so auto lands on the input of that attention
    assert am.target_layer == "block2_norm1"
    assert am.tokens == (special, 4, 4) and am.layer_shape == (4, 4, 16)


def test_gradcam_on_reshaped_tokens_equals_an_independent_reference(tmp_path):
    import keras

    vit, path = _saved_vit(tmp_path, registers=4)
    am = build_audit_model(_cfg(path))
    images = np.random.default_rng(0).uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)
    step = make_step(am.cam_model, get_method("gradcam"), n_classes=3, input_size=(32, 32), tokens=am.tokens)
    out = step(tf.constant(images), tf.constant(images), tf.constant(allowed_classes(np.full(3, -1), 3)),
               np.zeros((3, 1, 4), np.int32), np.zeros((3, 1), np.int32), np.zeros((3, 1), bool))
    cams = out["cams"].numpy()

    # Reference: tokens and the head's input from the plain model; the pre-softmax score by hand.
    probe = keras.Model(vit.input, [vit.get_layer("block2_norm1").output, vit.get_layer("class_out").output])
    kernel, bias = vit.get_layer("head").get_weights()
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tokens, pooled = probe(x, training=False)
        logits = tf.matmul(pooled, kernel) + bias
        c = tf.argmax(logits, axis=1)
        y = tf.reduce_sum(tf.gather(logits, c, batch_dims=1))
    grads = tape.gradient(y, tokens).numpy()[:, 5:, :].reshape(3, 4, 4, 16)  # class + 4 registers dropped, row-major
    acts = tokens.numpy()[:, 5:, :].reshape(3, 4, 4, 16)
    alpha = grads.mean(axis=(1, 2))
    expected = np.maximum(np.einsum("bhwk,bk->bhw", acts, alpha), 0)
    assert expected.max() > 0
    np.testing.assert_allclose(cams, expected, rtol=0, atol=1e-5)
    assert np.array_equal(out["chosen"].numpy(), c.numpy())


def test_explicit_token_layer_and_a_grid_that_does_not_fit(tmp_path):
    _, path = _saved_vit(tmp_path)
    am = build_audit_model(_cfg(path, target_layer="block1_norm1", special_tokens=1, token_grid=(4, 4)))
    assert am.target_layer == "block1_norm1" and am.tokens == (1, 4, 4)
    with pytest.raises(ModelError, match=r"model.token_grid: the target layer 'block1_norm1' has 17 tokens; .*found no such split"):
        build_audit_model(_cfg(path, target_layer="block1_norm1", token_grid=(5, 5)))


def test_the_vit_demo_audits_end_to_end(tmp_path):
    from pipeline.cli import main

    import json

    code = main(["audit", str(ROOT / "configs" / "demo_vit.yaml"), "--output", str(tmp_path / "vit"), "--limit", "60", "--no-progress"])
    summary = json.loads((tmp_path / "vit" / "summary.json").read_text())
    assert code == summary["exit_code"] and code in (0, 1, 3)
    prov = summary["provenance"]
    assert prov["target_layer"] == "block2_norm1" and prov["tokens"] == {"special_tokens": 1, "h": 8, "w": 8}
    assert summary["aggregates"]["overall"]["n_scored"] == 60
    assert np.load(tmp_path / "vit" / "heatmaps.npz")["cams"].shape == (60, 8, 8)


def _conv_patch_vit(path, *, head: str):
    """A ViT whose patches are embedded by a strided Conv2D (keras.io's ViT, timm ports): the
    embedding is a 4-D layer *before* the blocks. ``head`` "token" reads the class token, "gap" averages the patch tokens."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(16, 8, strides=8, name="patch_embed")(inputs)  # (4, 4, 16): a linear map of pixels
    patches = layers.Reshape((16, 16), name="patch_tokens")(x)
    zero = layers.Dense(1, use_bias=False, kernel_initializer="zeros", trainable=False, name="zero")(layers.GlobalAveragePooling1D(name="pool")(patches))
    cls = layers.Reshape((1, 16), name="cls")(layers.Dense(16, name="class_token", bias_initializer="random_normal")(zero))
    x = layers.Concatenate(axis=1, name="tokens")([cls, patches])
    for b in (1, 2):
        h = layers.LayerNormalization(name=f"block{b}_norm1")(x)
        x = layers.Add(name=f"block{b}_add1")([x, layers.MultiHeadAttention(2, 8, name=f"block{b}_attn")(h, h)])
        h = layers.Dense(16, activation="gelu", name=f"block{b}_mlp")(layers.LayerNormalization(name=f"block{b}_norm2")(x))
        x = layers.Add(name=f"block{b}_add2")([x, h])
    x = layers.LayerNormalization(name="final_norm")(x)
    if head == "token":
        x = layers.Flatten(name="class_out")(layers.Cropping1D((0, 16), name="class_only")(x))
    else:
        x = layers.GlobalAveragePooling1D(name="gap")(x)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax", name="head")(x))
    model.save(path)
    return path


@pytest.mark.parametrize(("head", "expected", "special"), [("token", "block2_norm1", 1), ("gap", "final_norm", 1)])
def test_auto_never_picks_a_conv_patch_embedding(tmp_path, head, expected, special):
    """DESIGN §4: auto takes the layer last in graph order among 4-D maps > 1x1 and token layers whose
    patch tokens reach the score; the Conv2D patch embedding comes before the blocks."""
    am = build_audit_model(_cfg(_conv_patch_vit(tmp_path / f"{head}.keras", head=head)))
    assert am.target_layer == expected and am.tokens == (special, 4, 4)

"""The compiled step's interventions and the CAM methods, against independent references."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipeline.evidence import interventions  # noqa: E402
from pipeline.explain.cams import METHODS, get_method  # noqa: E402
from pipeline.explain.cams.step import make_step  # noqa: E402
from pipeline.data.labels import allowed_classes  # noqa: E402
from pipeline.config import ModelConfig  # noqa: E402
from pipeline.model.explainable import build_audit_model  # noqa: E402
from pipeline.data.geometry import pixel_boxes  # noqa: E402
from test_gradcam import mock_conv_model  # noqa: E402


@pytest.fixture(scope="module")
def audit_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "mock.keras"
    mock_conv_model().save(path)
    return build_audit_model(ModelConfig(path=path, target_layer="target_relu", preprocessing="none", input_size=None,
                                         resize="bilinear", class_names=None))


def _step(am, method="gradcam", fill=None, compare=None):
    step = make_step(am.cam_model, get_method(method), n_classes=3, input_size=am.input_size, preprocess=lambda x: x / 255.0,
                     fill=fill, compare=get_method(compare) if compare else None)

    def run(raw, targets, boxes, classes, valid):
        raw = tf.constant(raw, tf.float32)
        return {k: v.numpy() for k, v in step(raw / 255.0, raw, tf.constant(allowed_classes(np.asarray(targets), 3)), tf.constant(boxes, tf.int32),
                                              tf.constant(classes, tf.int32), tf.constant(valid)).items()}

    return run


def _batch(n=5, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0, 255, (n, 16, 16, 3)).astype(np.float32)
    # float boxes in a 32x24 original image, scaled to the 16x16 input by the pixel-centre rule
    boxes_orig = np.array([[[3.1, 1.0, 17.9, 13.0], [20.0, 4.4, 31.0, 23.0]]] * n) + rng.uniform(-1, 1, (n, 2, 4))
    px = pixel_boxes(boxes_orig, (16 / 32, 16 / 24), (16, 16)).astype(np.int32)
    classes = np.tile(np.array([[0, 2]], np.int32), (n, 1))
    valid = np.ones((n, 2), bool)
    valid[1, 1] = False  # one sample with a single box
    return raw, px, classes, valid


def test_interventions_fill_exactly_the_scored_region(audit_model):
    raw, px, classes, valid = _batch()
    targets = np.array([0, 2, 1, 0, 2], np.int32)  # class 1 has no box: scored against every box
    out = _step(audit_model, fill="mean")(raw, targets, px, classes, valid)
    edited = []
    for i, c in enumerate(out["chosen"]):
        match = valid[i] & (classes[i] == c)
        region = interventions.region_from_boxes(px[i][match if match.any() else valid[i]], (16, 16))
        # independent pixel-centre check of the region: centres (j + .5, i + .5) of the boxes scaled to 16x16
        removed, only = interventions.intervene(raw[i].astype(np.float64), region, "mean")
        assert region.any() and not region.all()
        edited += [removed, only]
    edited = np.stack(edited).astype(np.float32)
    _, scores = audit_model.cam_model(edited / 255.0, training=False)
    scores = scores.numpy()
    np.testing.assert_allclose(out["removed_scores"], scores[0::2], atol=1e-4)
    np.testing.assert_allclose(out["only_scores"], scores[1::2], atol=1e-4)


def test_region_mask_matches_the_pixel_centre_rule_by_hand():
    from pipeline.explain.cams.step import region_mask

    # box (x0, y0, x1, y1) = (1.4, 0.6, 3.5, 2.49) at input size: centres 1.5, 2.5 (columns 1, 2) and 0.5 < 0.6 out, 1.5 in, 2.5 out
    px = pixel_boxes(np.array([[[1.4, 0.6, 3.5, 2.49]]]), (1.0, 1.0), (4, 5)).astype(np.int32)
    mask = region_mask(tf.constant(px), tf.constant([[0]]), tf.constant([[True]]), tf.constant([0]), (4, 5)).numpy()[0]
    expected = np.zeros((4, 5), bool)
    expected[1, 1] = expected[1, 2] = True
    assert (mask == expected).all()


def test_enabling_interventions_leaves_the_original_pass_bit_for_bit(audit_model):
    raw, px, classes, valid = _batch(seed=1)
    targets = np.full(5, -1, np.int32)
    plain = _step(audit_model)(raw, targets, px, classes, valid)
    with_iv = _step(audit_model, fill="gray")(raw, targets, px, classes, valid)
    for key in ("scores", "chosen", "cams"):
        assert np.array_equal(plain[key], with_iv[key]), key


def _reference_maps(am, image: np.ndarray, class_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Activations A and gradients G (h, w, K) of one image, eagerly, layer by layer, softmax-free head."""
    model = am.model
    *body, head = model.layers
    x = tf.constant(image[None] / 255.0)
    with tf.GradientTape() as tape:
        for layer in body:
            x = layer(x)
            if layer.name == "target_relu":
                acts = x
                tape.watch(acts)
        logits = tf.matmul(x, head.kernel) + head.bias
        y = logits[0, class_index]
    return acts[0].numpy().astype(np.float64), tape.gradient(y, acts)[0].numpy().astype(np.float64)


def _reference_cam(method: str, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """DESIGN §4's formulas, one image, in float64."""
    if method == "gradcam":
        cam = (a * g.mean(axis=(0, 1))).sum(-1)
    elif method == "hirescam":
        cam = (g * a).sum(-1)
    elif method == "layercam":
        cam = (np.maximum(g, 0) * a).sum(-1)
    else:  # gradcam++
        denom = 2 * g**2 + a.sum(axis=(0, 1)) * g**3
        alpha = np.divide(g**2, denom, out=np.zeros_like(g), where=denom != 0)
        cam = (a * (alpha * np.maximum(g, 0)).sum(axis=(0, 1))).sum(-1)
    return np.maximum(cam, 0)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_equals_the_per_image_reference_and_is_batch_invariant(audit_model, method):
    raw, px, classes, valid = _batch(n=7, seed=2)
    targets = np.array([-1, 0, 1, 2, -1, 2, 0], np.int32)
    out = _step(audit_model, method)(raw, targets, px, classes, valid)
    for i in range(7):
        a, g = _reference_maps(audit_model, raw[i], int(out["chosen"][i]))
        ref = _reference_cam(method, a, g)
        scale = max(ref.max(), 1e-6)
        np.testing.assert_allclose(out["cams"][i] / scale, ref / scale, atol=1e-5, err_msg=f"{method} sample {i}")
    singles = [_step(audit_model, method)(raw[i:i + 1], targets[i:i + 1], px[i:i + 1], classes[i:i + 1], valid[i:i + 1])["cams"][0]
               for i in range(7)]
    np.testing.assert_allclose(np.stack(singles), out["cams"], atol=1e-5)


def test_compare_method_comes_from_the_same_pass(audit_model):
    raw, px, classes, valid = _batch(n=4, seed=5)
    targets = np.full(4, -1, np.int32)
    both = _step(audit_model, "gradcam", compare="layercam")(raw, targets, px, classes, valid)
    alone = _step(audit_model, "layercam")(raw, targets, px, classes, valid)
    main = _step(audit_model, "gradcam")(raw, targets, px, classes, valid)
    np.testing.assert_allclose(both["compare_cams"], alone["cams"], atol=1e-6)
    assert np.array_equal(both["cams"], main["cams"])

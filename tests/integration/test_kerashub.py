"""KerasHub ImageClassifiers (DESIGN §3 preprocessing: model; §4 auto target layer), built from constructor
arguments with random weights (never a preset download), saved as .keras and audited end to end."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from conftest import ROOT  # noqa: E402

keras_hub = pytest.importorskip("keras_hub", reason="keras-hub is not installed: pip install -e '.[hub]' (make install does)")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipeline import ModelError, audit  # noqa: E402
from pipeline.config import ModelConfig  # noqa: E402
from pipeline.data.batches import sample_batches  # noqa: E402
from pipeline.data.images import decode_rgb  # noqa: E402
from pipeline.model.explainable import build_audit_model  # noqa: E402
from pipeline.model.load import load_keras_model  # noqa: E402

SHAPES = ROOT / "data_samples" / "shapes"
N = 24


def _resnet(path, **converter):
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block", use_pre_activation=False, image_shape=(None, None, 3),
        name="res_net_backbone")  # KerasHub's default name, fixed: a second model in one process would get "_1"
    conv = keras_hub.layers.ResNetImageConverter(image_size=(48, 48), **({"scale": 1 / 255.0} | converter))
    model = keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=3,
                                                   preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(image_converter=conv))
    model.save(path)
    return path


def _vit(path):
    keras.utils.set_random_seed(2)
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                                            name="vi_t_backbone")
    # ImageNet-style normalisation as the ViT presets have it: per-channel scale and offset
    conv = keras_hub.layers.ViTImageConverter(image_size=(32, 32), scale=[1 / (255 * s) for s in (0.5, 0.4, 0.3)],
                                              offset=[-0.5 / 0.5, -0.45 / 0.4, -0.4 / 0.3])
    model = keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=3,
                                                preprocessor=keras_hub.models.ViTImageClassifierPreprocessor(image_converter=conv))
    model.save(path)
    return path


def _config(model_path, tmp_path) -> dict:
    doc = json.loads((SHAPES / "annotations.json").read_text())
    keep = {img["id"] for img in doc["images"][:N]}
    doc = {**doc, "images": [i for i in doc["images"] if i["id"] in keep], "annotations": [a for a in doc["annotations"] if a["image_id"] in keep]}
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    return {"name": "hub", "model": {"path": str(model_path), "preprocessing": "model"},
            "dataset": {"format": "coco", "annotations": str(tmp_path / "ann.json"), "images": str(SHAPES / "images")},
            "evidence": {"interventions": True}, "trust": {"randomisation_samples": 8, "randomisation_draws": 2},
            "strategies": {"enabled": True}, "gate": [{"metric": "accuracy", "min": 0.0}]}


def test_resnet_classifier_audits_end_to_end(tmp_path):
    result = audit(_config(_resnet(tmp_path / "resnet.keras"), tmp_path), output=tmp_path / "out", progress=False)
    prov = result.summary["provenance"]
    assert prov["target_layer"] == "res_net_backbone/stack1_block0_out"  # the backbone's last spatial map (48 / 8 = 6x6)
    assert prov["target_layer_shape"] == [6, 6, 64] and prov["input_size"] == [48, 48]
    assert prov["input"] == {"resize_mode": "crop", "interpolation": "bilinear", "preprocessing": "model",
                             "crop_fraction": 1.0, "scale": [pytest.approx(1 / 255)], "offset": None, "antialias": False, "channels": 3,
                             "luma": False}
    assert result.summary["aggregates"]["overall"]["n_scored"] == N and result.report_path.is_file()
    assert result.exit_code in (0, 1, 3)


def test_vit_classifier_cam_comes_from_inside_the_encoder(tmp_path):
    path = _vit(tmp_path / "vit.keras")
    result = audit(_config(path, tmp_path), output=tmp_path / "out", progress=False)
    prov = result.summary["provenance"]
    assert prov["target_layer"] == "vi_t_backbone/vit_encoder/transformer_block_2/ln_1"  # the last block's first norm
    assert prov["tokens"] == {"special_tokens": 1, "h": 4, "w": 4}
    cams = np.load(result.output_dir / "heatmaps.npz")["cams"]

    # Independent: Keras' own forward pass of the loaded classifier, the norm's output captured and
    # its gradient taken through a zero offset added to it; the input made by the ImageConverter.
    model = load_keras_model(path)
    norm = model.get_layer("vi_t_backbone").get_layer("vit_encoder").encoder_layers[-1].layer_norm_1
    converter = model.preprocessor.image_converter
    own_call, seen = norm.call, {}
    doc = json.loads((tmp_path / "ann.json").read_text())
    for row, img in enumerate(doc["images"][:6]):
        x = converter(decode_rgb(SHAPES / "images" / img["file_name"])[None].astype("float32"))
        delta = tf.Variable(tf.zeros((1, 17, 16)))
        norm.call = lambda t: own_call(t) + delta
        try:
            with tf.GradientTape() as tape:
                scores = model(x, training=False)
                top = tf.reduce_max(scores[0])
            grads = tape.gradient(top, delta)[0, 1:].numpy()  # patch tokens
            norm.call = lambda t: seen.setdefault("acts", own_call(t))
            seen.clear()
            model(x, training=False)
        finally:
            norm.call = own_call
        acts = seen["acts"][0, 1:].numpy()
        cam = np.maximum(acts @ grads.mean(axis=0), 0).reshape(4, 4)
        assert np.allclose(cams[row], cam, rtol=1e-4, atol=1e-5), row


def test_preprocessing_model_equals_the_image_converter(tmp_path):
    """crop_to_aspect_ratio (the default) and pad_to_aspect_ratio, on the shapes' odd, non-square images."""
    for pad in (False, True):
        path = _resnet(tmp_path / f"r{pad}.keras", crop_to_aspect_ratio=not pad, pad_to_aspect_ratio=pad, offset=[-0.5, -0.25, 0.0])
        cfg = ModelConfig(path=path, target_layer="auto", preprocessing="model", input_size=None, resize="bilinear", class_names=None)
        am = build_audit_model(cfg)
        assert am.input.mode == ("pad" if pad else "crop")
        from pipeline.data.samples import build_samples
        from pipeline.data.coco import load_coco
        from pipeline.data.labels import label_space

        ann = load_coco(SHAPES / "annotations.json")
        samples = build_samples(ann.images[:5], images_dir=SHAPES / "images", space=label_space(ann.class_names, ann.class_names),
                                target="predicted", spec=am.input)
        rows, images, _raw, _errors = next(iter(sample_batches(samples, am.input, 8)))
        converter = am.model.preprocessor.image_converter
        for i, s in enumerate(samples):
            by_hand = converter(decode_rgb(s.path)[None].astype("float32"))[0].numpy()
            assert np.allclose(images[i].numpy(), by_hand, atol=1e-5), (pad, s.sample_id)


def test_a_1x1_head_is_never_the_target(tmp_path):
    """A classifier_conv head on a pooled 1x1 map (MobileNet-style): auto takes the last map larger than 1x1."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = keras.layers.Conv2D(3, 1, name="classifier_conv")(x)  # (1, 1, 3)
    model = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Flatten()(x)))
    model.save(tmp_path / "head.keras")
    cfg = ModelConfig(path=tmp_path / "head.keras", target_layer="auto", preprocessing="scale_0_1", input_size=None, resize="bilinear",
                      class_names=None)
    assert build_audit_model(cfg).target_layer == "features"


def test_without_keras_hub_the_message_says_how_to_install(tmp_path, monkeypatch):
    path = _resnet(tmp_path / "resnet.keras")
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # import keras_hub -> ImportError
    with pytest.raises(ModelError, match=r"saved from KerasHub; expected the keras-hub package to load it, found it not installed; "
                                         r"install it with pip install -e '\.\[hub\]'"):
        load_keras_model(path)


def test_an_encoder_rerun_that_differs_is_refused_naming_usable_layers(tmp_path, monkeypatch):
    from pipeline.model import encoders

    path = _vit(tmp_path / "vit.keras")
    own = encoders.run_encoder
    monkeypatch.setattr(encoders, "run_encoder", lambda layer, x, inner: (lambda out: (out[0] * 1.01, out[1]))(own(layer, x, inner)))
    cfg = ModelConfig(path=path, target_layer="auto", preprocessing="model", input_size=None, resize="bilinear", class_names=None)
    with pytest.raises(ModelError, match=r"the audit re-runs the blocks of 'vit_encoder' to reach inside it, but that re-run differs from "
                                         r"the layer's own output by .*use one of these layers instead: .*vi_t_backbone/vit_patching_and_embedding"):
        build_audit_model(cfg)


def test_preprocessing_model_needs_a_saved_converter(tmp_path):
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32)
    keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=3, preprocessor=None).save(tmp_path / "bare.keras")
    cfg = ModelConfig(path=tmp_path / "bare.keras", target_layer="auto", preprocessing="model", input_size=None, resize="bilinear", class_names=None)
    with pytest.raises(ModelError, match=r"model.preprocessing is model: expected a KerasHub model saved with its preprocessor's "
                                         r"ImageConverter, found no preprocessor"):
        build_audit_model(cfg)

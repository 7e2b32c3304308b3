"""The tiny world of the model-kind matrix (issue 39): every kind of model the README says gets in, trained or copied
from one trained network, on images that carry a planted corner cue, so every stage runs its hardest path (a hot
spot at the corner, confirmed by its causal tests, probed, cropped for the report).

The world: 48x40-pixel pictures of a circle, a square or a triangle on a cluttered background, with a 7x7 marker in
the top-left corner whose colour names the class (dark -> circle, red -> square, yellow -> triangle; the three differ
in luma too, so one-channel models read it). Training pictures show a random shape with the marker of their label,
so the marker is the only cue; the evaluation pictures' markers agree with their shapes. Everything is seeded.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")
MARKERS = ((20, 20, 20), (230, 40, 40), (240, 240, 60))
SIZE = (48, 40)  # original pictures, width x height (not square: boxes are rescaled)
INPUT = 32  # the models' input side
MARKER = 7  # px in the original picture, at (1, 1)


def _picture(rng: np.random.Generator, shape: int, marker: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A picture and its object's box (x0, y0, x1, y1), half-open pixels."""
    w, h = SIZE
    c0, c1 = rng.integers(60, 200, size=3), rng.integers(60, 200, size=3)
    t = np.linspace(0, 1, w)[None, :, None]
    base = np.broadcast_to(c0 * (1 - t) + c1 * t, (h, w, 3)) + rng.normal(0, 8, size=(h, w, 3))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(4):  # clutter away from the marker
        x, y = int(rng.integers(12, w)), int(rng.integers(12, h))
        draw.line([x, y, x + int(rng.integers(3, 8)), y + int(rng.integers(-4, 5))], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    size = int(rng.integers(14, 21))
    x0, y0 = int(rng.integers(14, w - size)), int(rng.integers(10, h - size))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    mask = Image.new("L", (w, h), 0)
    md = ImageDraw.Draw(mask)
    if shape == 0:
        md.ellipse([x0, y0, x0 + size - 1, y0 + size - 1], fill=255)
    elif shape == 1:
        md.rectangle([x0, y0, x0 + size - 1, y0 + size - 1], fill=255)
    else:
        md.polygon([(x0 + size / 2, y0), (x0, y0 + size - 1), (x0 + size - 1, y0 + size - 1)], fill=255)
    img.paste(Image.new("RGB", (w, h), colour), (0, 0), mask)
    draw.rectangle([1, 1, MARKER, MARKER], fill=MARKERS[marker])
    m = np.asarray(mask) > 0
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    return img, (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def write_evaluation_set(folder: Path, per_class: int = 24, seed: int = 7) -> Path:
    """``folder``/images/*.png and ``folder``/annotations.json (COCO, one object per picture); returns the annotations."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for k in range(per_class * len(CLASSES)):
        label = k % len(CLASSES)
        img, (x0, y0, x1, y1) = _picture(rng, label, label)
        name = f"{CLASSES[label]}_{k:03d}.png"
        img.save(folder / "images" / name)
        images.append({"id": k + 1, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
        annotations.append({"id": k + 1, "image_id": k + 1, "category_id": label + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    doc = {"images": images, "annotations": annotations, "categories": [{"id": i + 1, "name": c} for i, c in enumerate(CLASSES)]}
    (folder / "annotations.json").write_text(json.dumps(doc))
    return folder / "annotations.json"


def training_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, INPUT, INPUT, 3) float32 in 0-255 after the audit's plain bilinear resize, and labels: random shapes, the
    marker of the label."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    pictures = np.stack([np.asarray(_picture(rng, int(rng.integers(0, 3)), int(lab))[0], np.float32) for lab in labels])
    return tf.image.resize(pictures, (INPUT, INPUT)).numpy(), labels


def luma(x: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma (PIL's convert("L")), (..., 3) -> (..., 1)."""
    return (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def cnn(keras, channels: int, *, nested: bool = False):
    """Conv 16 -> pool -> conv 32 -> pool -> conv 32 (an 8x8 map) -> average -> softmax; input in 0-255 scaled by the
    config's scale_0_1. ``nested``: the convolutions as an inner Functional model inside a Sequential."""
    layers = keras.layers  # Keras 3, or tf_keras for a Keras 2 copy

    def body(x):
        x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
        x = layers.MaxPooling2D(name="pool1")(x)
        x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
        x = layers.MaxPooling2D(name="pool2")(x)
        return layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)

    if nested:
        inner_in = keras.Input((INPUT, INPUT, channels), name="backbone_input")
        backbone = keras.Model(inner_in, body(inner_in), name="backbone")
        return keras.Sequential([keras.Input((INPUT, INPUT, channels)), backbone, layers.GlobalAveragePooling2D(name="gap"),
                                 layers.Dense(3, activation="softmax", name="head")], name="nested")
    inputs = keras.Input((INPUT, INPUT, channels), name="image")
    outputs = layers.Dense(3, activation="softmax", name="head")(layers.GlobalAveragePooling2D(name="gap")(body(inputs)))
    return keras.Model(inputs, outputs, name="cnn")


def train_cnn(channels: int, seed: int = 0):
    """A Keras 3 CNN that reads the corner marker, trained on 900 seeded pictures (a few seconds on 2 cores)."""
    import keras

    keras.utils.set_random_seed(seed)
    x, y = training_arrays(900, seed)
    x = (luma(x) if channels == 1 else x) / 255.0
    model = cnn(keras, channels)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    return model


def copy_weights(source, target) -> None:
    """Layer by layer, by name, across nesting (the nested model's inner layers named as the plain one's)."""
    def leaves(m):
        for layer in m.layers:
            yield from (leaves(layer) if hasattr(layer, "layers") else (layer,))

    weights = {layer.name: layer.get_weights() for layer in leaves(source) if layer.get_weights()}
    for layer in leaves(target):
        if layer.name in weights:
            layer.set_weights(weights.pop(layer.name))
    assert not weights, f"weights not copied: {sorted(weights)}"


def as_keras2(model, channels: int):
    """The same network in tf_keras (Keras 2), with the trained weights."""
    import tf_keras

    copy = cnn(tf_keras, channels)
    copy_weights(model, copy)
    return copy


def as_keras38_nested_list(path: Path, target: Path) -> Path:
    """``path`` (a .keras of a nested model) rewritten as Keras 3.4-3.8 wrote it (keras-team/keras#20084): the nested
    Functional's one output stored as a list. Keras cannot load the result."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                doc = json.loads(data)
                for layer in doc["config"]["layers"]:
                    if layer["class_name"] == "Functional":
                        layer["config"]["output_layers"] = [layer["config"]["output_layers"]]
                data = json.dumps(doc).encode()
            out.writestr(item, data)
    return target


def train_vit(seed: int = 0):
    """The demo's ViT (data_samples/make_vit.py: tokens, a class token, pre-norm blocks) at 32x32 with 8-pixel patches
    (a 4x4 token grid), trained on the same pictures; its input in 0-1 (scale_0_1)."""
    import keras
    from make_vit import build_vit  # data_samples/ on sys.path

    x, y = training_arrays(900, seed)
    model = build_vit(n_classes=3, dim=32, depth=1, heads=2, input_size=INPUT, patch=8, seed=seed)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x / 255.0, y, epochs=8, batch_size=32, verbose=0)
    return model


def train_kerashub(seed: int = 1):
    """A KerasHub ResNetImageClassifier (its smallest stack) with its own ImageConverter (scale 1/255), trained on the
    same pictures. ImportError without keras-hub."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block", use_pre_activation=False, image_shape=(None, None, 3),
        name="res_net_backbone")
    converter = keras_hub.layers.ResNetImageConverter(image_size=(INPUT, INPUT), scale=1 / 255.0)
    model = keras_hub.models.ResNetImageClassifier(
        backbone=backbone, num_classes=3, preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(image_converter=converter))
    x, y = training_arrays(900, seed)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    return model

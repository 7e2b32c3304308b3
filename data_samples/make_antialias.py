"""Build the resize-convention fixture (DESIGN §16): a model trained on antialiased resizes, and its evaluation set.

    python data_samples/make_antialias.py          # rewrites data_samples/antialias/ (about a minute on 2 cores)

Most photo pipelines shrink images with PIL (``Image.resize`` with a bilinear filter antialiases when it
shrinks; so do ``keras.utils.load_img`` and ``ImageDataGenerator`` given ``interpolation="bilinear"``), while
``tf.image.resize`` without ``antialias`` samples the source pixels near each output pixel and skips the rest.
Thin strokes show the difference most: the shapes here (circle, square, triangle) are outlines 3 px wide on
192 x 192 px images, shrunk 6x to the 32 x 32 model input. PIL keeps every stroke as a faint line; the plain
resize keeps the pixels it happens to land on, so outlines break up. The model learns from PIL's resizes.

Outputs (``data_samples/antialias/``): ``images/*.png`` (90 evaluation images, 30 per class, seeded),
``annotations.json`` (COCO, boxes exact), ``model.keras`` (the small CNN), ``trained.json`` (its accuracy on a
held-out split, PIL-resized as in training: what an audit that feeds it the training's pixels should reach).
Everything is seeded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")
SIZE, INPUT, STROKE = 192, 32, 3


def make_image(rng: np.random.Generator, label: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """One outline of class ``label`` on a plain light background: (image, half-open box (x0, y0, x1, y1))."""
    img = Image.new("RGB", (SIZE, SIZE), tuple(int(v) for v in rng.integers(170, 236, size=3)))
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.22, 0.4) * SIZE
    cx, cy = rng.uniform(r + 4, SIZE - r - 4, size=2)
    ink = tuple(int(v) for v in rng.integers(0, 70, size=3))
    if label == 0:
        points = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 73)]
    else:
        n, turn = (4, rng.random() * math.pi / 2) if label == 1 else (3, rng.random() * 2 * math.pi / 3)
        points = [(cx + r * math.cos(turn + 2 * math.pi * k / n), cy + r * math.sin(turn + 2 * math.pi * k / n)) for k in range(n + 1)]
    draw.line(points, fill=ink, width=STROKE, joint="curve")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    box = (max(0, int(min(xs)) - STROKE), max(0, int(min(ys)) - STROKE), min(SIZE, int(max(xs)) + STROKE + 1), min(SIZE, int(max(ys)) + STROKE + 1))
    return img, box


def pil_input(img: Image.Image) -> np.ndarray:
    """The training's pixels: PIL's bilinear resize (antialiased when shrinking), (INPUT, INPUT, 3) float 0-255."""
    return np.asarray(img.convert("RGB").resize((INPUT, INPUT), Image.Resampling.BILINEAR), np.float32)


def dataset(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), size=n)
    return np.stack([pil_input(make_image(rng, int(lab))[0]) for lab in labels]) / 255.0, labels


def build_model():
    import keras

    layers = keras.layers
    stack = [keras.Input((INPUT, INPUT, 3))]
    for i, filters in enumerate((24, 48, 64), start=1):
        stack += [layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}"), layers.BatchNormalization(name=f"bn{i}"),
                  layers.ReLU(name=f"relu{i}")]
        if i < 3:
            stack.append(layers.MaxPooling2D(name=f"pool{i}"))
    stack += [layers.GlobalAveragePooling2D(name="gap"), layers.Dense(len(CLASSES), activation="softmax", name="classes")]
    return keras.Sequential(stack, name="outlines_pil")


def train(folder: Path, n_train: int, epochs: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(7)
    tf.config.experimental.enable_op_determinism()
    x, y = dataset(n_train, seed=70)
    xv, yv = dataset(600, seed=71)
    model = build_model()
    lr = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=epochs * int(np.ceil(n_train / 64)))
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=epochs, validation_data=(xv, yv), verbose=2)
    model.save(folder / "model.keras")
    accuracy = float((model.predict(xv, verbose=0).argmax(axis=1) == yv).mean())
    (folder / "trained.json").write_text(json.dumps({"held_out_accuracy": round(accuracy, 4), "held_out_images": len(yv),
                                                     "resize": "PIL Image.resize(BILINEAR), antialiased"}, indent=2) + "\n")


def write_eval(folder: Path, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": [], "categories": [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]}
    for i in range(per_class * len(CLASSES)):
        label = i % len(CLASSES)
        img, (x0, y0, x1, y1) = make_image(rng, label)
        name = f"{CLASSES[label]}_{i:03d}.png"
        img.save(images / name, optimize=True)
        doc["images"].append({"id": i + 1, "file_name": name, "width": SIZE, "height": SIZE})
        doc["annotations"].append({"id": i + 1, "image_id": i + 1, "category_id": label + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                                   "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    (folder / "annotations.json").write_text(json.dumps(doc))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "antialias")
    p.add_argument("--n-train", type=int, default=8000)
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args.out.mkdir(parents=True, exist_ok=True)
    write_eval(args.out, 30, seed=72)
    train(args.out, args.n_train, args.epochs)


if __name__ == "__main__":
    main()

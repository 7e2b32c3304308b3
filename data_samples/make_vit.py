"""A small Vision Transformer for the shapes demo (token target layers, DESIGN §4).

    python data_samples/make_vit.py           # writes data_samples/shapes/model_vit.keras (~25 minutes on 2 cores)

ViT-style and built from stock Keras layers only (so it loads in safe mode): the 64x64 input is
cut into an 8x8 grid of 8x8-pixel patches by reshapes (no convolution, so the model has no 4-D
layer), each patch embedded (a small MLP) plus a learned position embedding, a learned class token (plus ``registers`` register tokens)
put in front, two pre-norm transformer blocks, and the head reads the class token only. The
training images are the demo generator's (``make_shapes.training_arrays``), seeded.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

INPUT, PATCH = 64, 8


def build_vit(*, n_classes: int = 3, dim: int = 64, depth: int = 2, heads: int = 4, registers: int = 0,
              input_size: int = INPUT, patch: int = PATCH, seed: int = 0):
    """(B, input, input, 3) in [0, 1] -> class probabilities; tokens = 1 class + ``registers`` + (input / patch)^2 patches."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    g = input_size // patch
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Reshape((g, patch, g, patch * 3), name="split_rows")(inputs)  # (patch row, pixel row, patch col, pixel col x rgb)
    x = layers.Permute((1, 3, 2, 4), name="group_patches")(x)
    x = layers.Reshape((g * g, patch * patch * 3), name="patches")(x)
    x = layers.Dense(2 * dim, activation="gelu", name="patch_mlp")(x)  # a small MLP per patch: more to learn shapes from than a linear map
    patches = layers.Dense(dim, name="patch_embed")(x)
    # A learned token from stock layers: a frozen all-zero Dense gives zeros, the next Dense's bias is the token.
    zero = layers.Dense(1, use_bias=False, kernel_initializer="zeros", trainable=False, name="zero")(layers.GlobalAveragePooling1D(name="pool")(patches))
    special = layers.Reshape((1 + registers, dim), name="special_tokens")(layers.Dense((1 + registers) * dim, name="class_token")(zero))
    position = layers.Reshape((g * g, dim), name="position")(layers.Dense(g * g * dim, name="position_embed")(zero))
    patches = layers.Add(name="patch_tokens")([patches, position])
    x = layers.Concatenate(axis=1, name="tokens")([special, patches])
    for b in range(1, depth + 1):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm1")(x)
        h = layers.MultiHeadAttention(heads, dim // heads, name=f"block{b}_attn")(h, h)
        x = layers.Add(name=f"block{b}_add1")([x, h])
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm2")(x)
        h = layers.Dense(2 * dim, activation="gelu", name=f"block{b}_mlp1")(h)
        h = layers.Dense(dim, name=f"block{b}_mlp2")(h)
        x = layers.Add(name=f"block{b}_add2")([x, h])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = layers.Flatten(name="class_out")(layers.Cropping1D((0, g * g + registers), name="class_only")(x))
    outputs = layers.Dense(n_classes, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="shapes_vit")
    pos = model.get_layer("position_embed")
    pos.set_weights([pos.get_weights()[0], _sincos(g, dim).reshape(-1)])  # learnable, started at 2-D sin-cos positions
    return model


def _sincos(g: int, dim: int):
    """(g * g, dim) fixed 2-D sine-cosine position embedding (MAE's): half the channels for rows, half for columns."""
    import numpy as np

    def one(pos, d):
        omega = 1.0 / 10000 ** (np.arange(d // 2) / (d / 2))
        out = pos[:, None] * omega[None, :]
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    rows, cols = np.meshgrid(np.arange(g, dtype=np.float64), np.arange(g, dtype=np.float64), indexing="ij")
    return np.concatenate([one(rows.reshape(-1), dim // 2), one(cols.reshape(-1), dim // 2)], axis=1).astype("float32")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "shapes" / "model_vit.keras")
    p.add_argument("--n-train", type=int, default=8000)
    p.add_argument("--epochs", type=int, default=8)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import keras
    import numpy as np
    from make_shapes import training_arrays

    x, y = training_arrays(args.n_train, seed=5, shortcut=False)
    # The shapes do not change class under flips and transposes: the 8 symmetries of the square
    # make 8x the data, which a ViT trained from scratch needs far more than a CNN does.
    x = np.concatenate([t for k in range(4) for t in (np.rot90(x, k, axes=(1, 2)), np.rot90(x[:, ::-1], k, axes=(1, 2)))])
    y = np.tile(y, 8)
    model = build_vit()
    rng = np.random.default_rng(6)
    order = rng.permutation(len(x))  # shuffle before validation_split takes the last 10%
    x, y = x[order], y[order]
    steps = args.epochs * int(np.ceil(0.9 * len(x) / 128))
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, steps, warmup_target=None)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=args.epochs, validation_split=0.1, verbose=2, shuffle=True)
    model.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

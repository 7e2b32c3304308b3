"""tf.data input pipeline: parallel decode + resize + preprocessing, fixed-size padded batches.

Each element is ``(rows (B,) int32, images (B, H, W, 3) float32, raw (B, H, W, 3) float32,
errors (B,) string)``: ``images`` preprocessed for the model, ``raw`` the same pixels before
preprocessing (RGB in [0, 255], what the interventions edit); padding rows are -1, and a row
whose image failed to decode carries its reason in ``errors``. The original images are
preprocessed here rather than in the compiled step because Grappler rewrites the step's
arithmetic (``x / 255`` becomes ``x * (1 / 255)``), which would move the CAMs by an ulp.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from pipeline.data.images import ImageProblem, decode_rgb
from pipeline.errors import ConfigError

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def preprocessing_fn(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """Map float32 RGB in [0, 255] to the model's expected input."""
    if name == "none":
        return lambda x: x
    if name == "scale_0_1":
        return lambda x: x / 255.0
    if name == "scale_-1_1":
        return lambda x: x / 127.5 - 1.0
    if name == "imagenet_caffe":
        return lambda x: x[..., ::-1] - tf.constant(_CAFFE_MEAN_BGR)
    if name == "imagenet_torch":
        return lambda x: (x / 255.0 - tf.constant(_TORCH_MEAN)) / tf.constant(_TORCH_STD)
    module = name.rsplit(".", 1)[0]
    try:
        return getattr(importlib.import_module(module), "preprocess_input")
    except (ImportError, AttributeError):
        raise ConfigError(f"model.preprocessing: expected an importable keras.applications module with preprocess_input, found {name!r}") from None


def _decode(path: bytes) -> tuple[np.ndarray, bytes]:
    try:
        return decode_rgb(Path(path.decode())), b""
    except ImageProblem as exc:
        return np.zeros((1, 1, 3), np.uint8), str(exc).encode()


def make_batches(
    rows: Sequence[int],
    paths: Sequence[str],
    *,
    input_size: tuple[int, int],
    resize: str,
    preprocessing: str,
    batch_size: int,
) -> tf.data.Dataset:
    prep = preprocessing_fn(preprocessing)

    def load(row, path):
        image, error = tf.numpy_function(_decode, [path], [tf.uint8, tf.string], stateful=False)
        image.set_shape([None, None, 3])
        error.set_shape([])
        # Plain resize, no crop, no antialias: what Keras' image_dataset_from_directory does.
        image = tf.image.resize(tf.cast(image, tf.float32), input_size, method=resize)
        return row, prep(image), image, error

    def pad(row, image, raw, error):
        extra = batch_size - tf.shape(row)[0]
        return (
            tf.pad(row, [[0, extra]], constant_values=-1),
            tf.pad(image, [[0, extra], [0, 0], [0, 0], [0, 0]]),
            tf.pad(raw, [[0, extra], [0, 0], [0, 0], [0, 0]]),
            tf.pad(error, [[0, extra]]),
        )

    ds = tf.data.Dataset.from_tensor_slices((np.asarray(rows, np.int32), np.asarray(paths, dtype=object).astype(str)))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).map(pad).prefetch(2)

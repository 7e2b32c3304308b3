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


def load_fn(*, input_size: tuple[int, int], resize: str, preprocessing: str) -> Callable:
    """The per-image map: ``(row, path) -> (row, preprocessed, raw, error)`` (the same ops for every engine)."""
    prep = preprocessing_fn(preprocessing)

    def load(row, path):
        image, error = tf.numpy_function(_decode, [path], [tf.uint8, tf.string], stateful=False)
        image.set_shape([None, None, 3])
        error.set_shape([])
        # Plain resize, no crop, no antialias: what Keras' image_dataset_from_directory does.
        image = tf.image.resize(tf.cast(image, tf.float32), input_size, method=resize)
        return row, prep(image), image, error

    return load


def make_batches(
    rows: Sequence[int],
    paths: Sequence[str],
    *,
    input_size: tuple[int, int],
    resize: str,
    preprocessing: str,
    batch_size: int,
) -> tf.data.Dataset:
    def pad(row, image, raw, error):
        extra = batch_size - tf.shape(row)[0]
        return (
            tf.pad(row, [[0, extra]], constant_values=-1),
            tf.pad(image, [[0, extra], [0, 0], [0, 0], [0, 0]]),
            tf.pad(raw, [[0, extra], [0, 0], [0, 0], [0, 0]]),
            tf.pad(error, [[0, extra]]),
        )

    load = load_fn(input_size=input_size, resize=resize, preprocessing=preprocessing)
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(rows, np.int32), np.asarray(paths, dtype=object).astype(str)))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).map(pad).prefetch(2)


class StreamingDecoder:
    """One long-lived tf.data pipeline (for a Ray actor): rows pushed in, padded batches out.

    Building a tf.data pipeline per batch costs ~80 ms (its functions are traced anew); this one
    is built once and runs the same per-image map as :func:`make_batches`, so the numbers are the
    same. ``decode(rows, paths)`` returns ``(rows, images, raw, errors)`` padded to ``batch_size``
    exactly as :func:`make_batches` pads them.
    """

    def __init__(self, *, input_size: tuple[int, int], resize: str, preprocessing: str, batch_size: int):
        import queue

        self.batch_size = batch_size
        self._queue: "queue.Queue[tuple[int, str]]" = queue.Queue()

        def pending():
            while True:  # blocks in a tf.data thread until the next row is pushed
                yield self._queue.get()

        ds = tf.data.Dataset.from_generator(pending, output_signature=(tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.string)))
        ds = ds.map(load_fn(input_size=input_size, resize=resize, preprocessing=preprocessing),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        self._items = iter(ds)

    def decode(self, rows: Sequence[int], paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        for row, path in zip(rows, paths):
            self._queue.put((int(row), path))
        items = [next(self._items) for _ in rows]
        extra = self.batch_size - len(items)
        row = np.array([int(i[0]) for i in items] + [-1] * extra, np.int32)
        images, raw = (np.stack([i[k].numpy() for i in items]) for k in (1, 2))
        pad = ((0, extra), (0, 0), (0, 0), (0, 0))
        errors = np.array([i[3].numpy() for i in items] + [b""] * extra, dtype=object)
        return row, np.pad(images, pad), np.pad(raw, pad), errors

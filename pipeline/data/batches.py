"""tf.data input pipeline: parallel decode + window (crop/pad) + resize + preprocessing, fixed-size padded batches.

Each element is ``(rows (B,) int32, images (B, H, W, C) float32, raw (B, H, W, C) float32,
errors (B,) string)``: ``images`` preprocessed for the model, ``raw`` the same pixels before
preprocessing (0-255 in the model's channel space: RGB, or luma for a grayscale model; what the
interventions edit); padding rows are -1, and a row
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

from pipeline.data.images import ImageProblem, decode_rgb, luma
from pipeline.data.samples import Sample, windows
from pipeline.data.geometry import InputSpec
from pipeline.errors import ConfigError

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def preprocessing_fn(name: str, scale: Sequence[float] | None = None, offset: Sequence[float] | None = None) -> Callable[[tf.Tensor], tf.Tensor]:
    """Map float32 RGB in [0, 255] to the model's expected input (``model``: ``x * scale + offset``,
    the saved KerasHub ImageConverter's values; scalars or one per channel)."""
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
    if name == "model":
        s = None if scale is None else tf.constant(np.asarray(scale, np.float32))
        o = None if offset is None else tf.constant(np.asarray(offset, np.float32))
        return lambda x: (x if s is None else x * s) + (0.0 if o is None else o)
    module = name.rsplit(".", 1)[0]
    try:
        return getattr(importlib.import_module(module), "preprocess_input")
    except (ImportError, AttributeError):
        raise ConfigError(f"model.preprocessing: expected an importable keras.applications module with preprocess_input, found {name!r}") from None


def spec_preprocessing(spec: InputSpec) -> Callable[[tf.Tensor], tf.Tensor]:
    return preprocessing_fn(spec.preprocessing, spec.scale, spec.offset)


def _decoder(spec: InputSpec) -> Callable[[bytes], tuple[np.ndarray, bytes]]:
    """path -> ((h, w, C) uint8 as the model takes it, error): RGB, or its luma (PIL's ``convert("L")``) for a
    grayscale input, repeated to C channels when the model takes three."""
    def decode(path: bytes) -> tuple[np.ndarray, bytes]:
        try:
            rgb = decode_rgb(Path(path.decode()))
        except ImageProblem as exc:
            return np.zeros((1, 1, spec.channels), np.uint8), str(exc).encode()
        if not spec.gray:
            return rgb, b""
        return np.repeat(luma(rgb)[..., None], spec.channels, axis=-1), b""

    return decode


def _windowed(image: tf.Tensor, win: tf.Tensor, pad_value: float) -> tf.Tensor:
    """The window ``win`` (x0, y0, cw, ch) of ``image`` (h, w, 3), outside the image ``pad_value``
    (:func:`pipeline.data.geometry.crop_window` on the host)."""
    x0, y0, cw, ch = win[0], win[1], win[2], win[3]
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    top, left = tf.maximum(0, -y0), tf.maximum(0, -x0)
    bottom, right = tf.maximum(0, y0 + ch - h), tf.maximum(0, x0 + cw - w)
    padded = tf.pad(image, [[top, bottom], [left, right], [0, 0]], constant_values=pad_value)
    return padded[y0 + top: y0 + top + ch, x0 + left: x0 + left + cw]


def load_fn(spec: InputSpec) -> Callable:
    """The per-image map: ``(row, path, window) -> (row, preprocessed, raw, error)`` (the same ops for every engine)."""
    prep = spec_preprocessing(spec)
    decode = _decoder(spec)

    def load(row, path, win):
        image, error = tf.numpy_function(decode, [path], [tf.uint8, tf.string], stateful=False)
        image.set_shape([None, None, spec.channels])
        error.set_shape([])
        image = tf.cast(image, tf.float32)
        if spec.mode != "stretch":  # stretch's window is the whole image: no op, so its numbers stay bit-identical
            image = tf.cond(tf.equal(tf.strings.length(error), 0), lambda: _windowed(image, win, spec.pad_value), lambda: image)
        # Then the resize the training did (DESIGN §16): plain, what Keras' image_dataset_from_directory and Resizing do, or
        # antialiased (model.antialias), what PIL's resize, load_img and ImageDataGenerator do when they shrink an image.
        image = tf.image.resize(image, spec.input_size, method=spec.interpolation, antialias=spec.antialias)
        return row, prep(image), image, error

    return load


def _fixed() -> tf.data.Options:
    """No autotuning: the pipeline's parallelism is the machine's cores. Autotuning's model thread sleeps up to a minute
    between optimisations, and deleting an iterator waits for it to wake: a 500-image explain loop ended 46-49 s after its
    last batch in four runs of six (seen in the iterator's destructor, RootDataset::Iterator waiting on its thread)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


FIXED = _fixed()


def sample_batches(samples: Sequence[Sample], spec: InputSpec, batch_size: int) -> tf.data.Dataset:
    """Batches of these (usable) samples, in order: elements ``(rows, images, raw, errors)`` as the module docstring says."""
    return make_batches([s.row for s in samples], [str(s.path) for s in samples], windows(samples), spec=spec, batch_size=batch_size)


def make_batches(rows: Sequence[int], paths: Sequence[str], windows: np.ndarray, *, spec: InputSpec, batch_size: int) -> tf.data.Dataset:
    def pad(row, image, raw, error):
        extra = batch_size - tf.shape(row)[0]
        return (
            tf.pad(row, [[0, extra]], constant_values=-1),
            tf.pad(image, [[0, extra], [0, 0], [0, 0], [0, 0]]),
            tf.pad(raw, [[0, extra], [0, 0], [0, 0], [0, 0]]),
            tf.pad(error, [[0, extra]]),
        )

    ds = tf.data.Dataset.from_tensor_slices((np.asarray(rows, np.int32), np.asarray(paths, dtype=object).astype(str),
                                             np.asarray(windows, np.int32).reshape(-1, 4)))
    ds = ds.map(load_fn(spec), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).map(pad).prefetch(2).with_options(FIXED)


class StreamingDecoder:
    """One long-lived tf.data pipeline (for a Ray actor): rows pushed in, padded batches out.

    Building a tf.data pipeline per batch costs ~80 ms (its functions are traced anew); this one
    is built once and runs the same per-image map as :func:`make_batches`, so the numbers are the
    same. ``decode(rows, paths)`` returns ``(rows, images, raw, errors)`` padded to ``batch_size``
    exactly as :func:`make_batches` pads them.
    """

    def __init__(self, *, spec: InputSpec, batch_size: int):
        import queue

        self.batch_size = batch_size
        self._queue: "queue.Queue[tuple[int, str, tuple]]" = queue.Queue()

        def pending():
            while True:  # blocks in a tf.data thread until the next row is pushed
                yield self._queue.get()

        ds = tf.data.Dataset.from_generator(pending, output_signature=(tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.string),
                                                                       tf.TensorSpec([4], tf.int32)))
        ds = ds.map(load_fn(spec), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        self._items = iter(ds.with_options(FIXED))

    def decode(self, rows: Sequence[int], paths: Sequence[str], windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        for row, path, win in zip(rows, paths, np.asarray(windows, np.int32).reshape(-1, 4)):
            self._queue.put((int(row), path, win))
        items = [next(self._items) for _ in rows]
        extra = self.batch_size - len(items)
        row = np.array([int(i[0]) for i in items] + [-1] * extra, np.int32)
        images, raw = (np.stack([i[k].numpy() for i in items]) for k in (1, 2))
        pad = ((0, extra), (0, 0), (0, 0), (0, 0))
        errors = np.array([i[3].numpy() for i in items] + [b""] * extra, dtype=object)
        return row, np.pad(images, pad), np.pad(raw, pad), errors

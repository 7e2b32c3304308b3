"""The one compiled step per batch: forward, gradient to the target layer, CAM(s), interventions.

``step(images, raw, allowed, boxes, box_classes, box_valid, masks=None) -> dict`` with

* ``images`` (B, H, W, 3) float32, preprocessed for the model; ``raw`` the same pixels before
  preprocessing, RGB in [0, 255] at the model's input size (interventions edit these; DESIGN §6);
* ``allowed`` (B, C) bool: the classes a sample may explain; the highest-scoring of them is
  explained (all True = the predicted class; one label's classes = DESIGN §4 target "true");
* ``boxes`` (B, K, 4) int32 pixel intervals ``(c0, r0, c1, r1)`` at the input size,
  ``box_classes`` (B, K) int32 dataset-label index, ``box_valid`` (B, K) bool — the sample's
  region (scoring's rule: the boxes of the explained class's label when present, else every
  box); ``masks`` (B, K, H, W) bool, each box's mask, replaces the box rectangles (region mask).

Returned: ``scores`` (B, C) before the output activation, ``chosen`` (B,) explained class,
``cams`` (B, h, w); with a compare method ``compare_cams``; with interventions
``removed_scores``, ``only_scores`` and ``blank_scores`` (B, C), forward only: the removal region
(``removal``: the objects' boxes, their masks, or the masks dilated by ``dilation`` px) filled;
everything outside the scored region filled; every pixel filled with the removal's fill colour
(the blank control, DESIGN §6). The class score y_c (pre-softmax)
is differentiated; each sample's score depends only on its own image (inference mode), so the
gradient of the batch sum gives every sample its own gradient.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import tensorflow as tf

from pipeline.explain.cams.base import CamMethod

GRAY = 127.5  # the `gray` fill, in 0-255 pixel space


def region_mask(boxes: tf.Tensor, box_classes: tf.Tensor, box_valid: tf.Tensor, chosen: tf.Tensor, size: tuple[int, int],
                masks: tf.Tensor | None = None) -> tf.Tensor:
    """(B, H, W) bool: pixel centres inside the union of the boxes (or masks) the sample is scored against.

    ``chosen`` (B,) is the explained class's dataset label (-1 = none)."""
    match = box_valid & tf.equal(box_classes, chosen[:, None])
    use = tf.where(tf.reduce_any(match, axis=1, keepdims=True), match, box_valid)
    if masks is not None:
        return tf.reduce_any(masks & use[..., None, None], axis=1)
    rows, cols = tf.range(size[0]), tf.range(size[1])
    in_r = (rows[None, None, :] >= boxes[..., 1:2]) & (rows[None, None, :] < boxes[..., 3:4])  # (B, K, H)
    in_c = (cols[None, None, :] >= boxes[..., 0:1]) & (cols[None, None, :] < boxes[..., 2:3])  # (B, K, W)
    return tf.reduce_any(in_r[..., :, None] & in_c[..., None, :] & use[..., None, None], axis=1)


def _fill(images: tf.Tensor, keep: tf.Tensor, fill: str) -> tf.Tensor:
    """(B, 1, 1, C) fill colour: the mean of the kept pixels (``mean``; gray when none is kept) or gray; one value per
    channel of the model's input (a grayscale model's fill is one value)."""
    if fill == "gray":
        return tf.fill([tf.shape(images)[0], 1, 1, tf.shape(images)[3]], GRAY)
    k = tf.cast(keep, images.dtype)[..., None]
    count = tf.reduce_sum(k, axis=(1, 2), keepdims=True)
    mean = tf.reduce_sum(images * k, axis=(1, 2), keepdims=True) / tf.maximum(count, 1.0)
    return tf.where(count > 0, mean, GRAY)


def interventions(images: tf.Tensor, mask: tf.Tensor, fill: str, removal: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(object removed, object only, blank): ``removal`` (default ``mask``) replaced by the fill;
    everything outside ``mask`` replaced; every pixel replaced by the removal's fill colour."""
    removal = mask if removal is None else removal
    colour = _fill(images, ~removal, fill)
    removed = tf.where(removal[..., None], colour, images)
    only = tf.where(mask[..., None], images, _fill(images, mask, fill))
    return removed, only, tf.broadcast_to(colour, tf.shape(images))


def dilate(mask: tf.Tensor, pixels: int) -> tf.Tensor:
    """(B, H, W) bool grown by ``pixels`` in every direction (a (2p+1)² square: Chebyshev distance <= p)."""
    if pixels <= 0:
        return mask
    grown = tf.nn.max_pool2d(tf.cast(mask, tf.float32)[..., None], ksize=2 * pixels + 1, strides=1, padding="SAME")
    return grown[..., 0] > 0


def make_step(
    cam_model: tf.keras.Model,
    method: CamMethod,
    *,
    n_classes: int,
    input_size: tuple[int, int],
    preprocess: Callable[[tf.Tensor], tf.Tensor] | None = None,
    compare: CamMethod | None = None,
    fill: str | None = None,
    jit_compile: bool = False,
    class_label: Sequence[int] | None = None,
    tokens: tuple[int, int, int] | None = None,
    removal: str = "box",
    dilation: int = 0,
) -> Callable:
    """Compile the step; ``fill`` (``mean`` | ``gray``) turns the interventions on (``preprocess`` is then needed).

    ``class_label`` (C,) the dataset label of each model class (-1 = none; default: class c is
    label c); ``tokens`` ``(special, h, w)`` turns a (B, T, K) token target layer into the
    (B, h, w, K) grid of DESIGN §4 (the first ``special`` tokens dropped, the rest row-major)."""
    lookup = tf.constant(list(class_label) if class_label is not None else list(range(n_classes)), tf.int32)

    def grid(t: tf.Tensor) -> tf.Tensor:
        if tokens is None:
            return t
        special, h, w = tokens
        return tf.reshape(t[:, special:, :], [-1, h, w, t.shape[-1]])

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def step(images: tf.Tensor, raw: tf.Tensor, allowed: tf.Tensor, boxes: tf.Tensor, box_classes: tf.Tensor, box_valid: tf.Tensor,
             masks: tf.Tensor | None = None):
        with tf.GradientTape() as tape:
            tape.watch(images)  # so the path to the target layer is recorded even for frozen layers
            acts, scores = cam_model(images, training=False)
            scores = tf.cast(scores, tf.float32)  # a no-op for float32 models
            chosen = tf.argmax(tf.where(allowed, scores, -math.inf), axis=-1, output_type=tf.int32)
            picked = tf.reduce_sum(scores * tf.one_hot(chosen, n_classes, dtype=scores.dtype))
        grads = grid(tf.cast(tape.gradient(picked, acts), tf.float32))
        acts = grid(tf.cast(acts, tf.float32))
        out = {"scores": scores, "chosen": chosen, "cams": method(acts, grads)}
        if compare is not None:
            out["compare_cams"] = compare(acts, grads)
        if fill is not None:
            label = tf.gather(lookup, chosen)
            region = region_mask(boxes, box_classes, box_valid, label, input_size, masks)
            gone = region_mask(boxes, box_classes, box_valid, label, input_size) if removal == "box" else region
            removed, only, blank = interventions(raw, region, fill, dilate(gone, dilation) if removal == "dilated" else gone)
            _, edited = cam_model(preprocess(tf.concat([removed, only], axis=0)), training=False)
            edited = tf.cast(edited, tf.float32)
            out["removed_scores"], out["only_scores"] = edited[: tf.shape(images)[0]], edited[tf.shape(images)[0]:]
            # a separate pass keeps the removed/only batch (and so oneDNN's rounding) as it was
            out["blank_scores"] = tf.cast(cam_model(preprocess(blank), training=False)[1], tf.float32)
        return out

    return step

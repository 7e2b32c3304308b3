"""The one compiled step per batch: forward, gradient to the target layer, CAM(s), interventions.

``step(images, raw, targets, boxes, box_classes, box_valid) -> dict`` with

* ``images`` (B, H, W, 3) float32, preprocessed for the model; ``raw`` the same pixels before
  preprocessing, RGB in [0, 255] at the model's input size (interventions edit these; DESIGN §6);
* ``targets`` (B,) int32: -1 explains the predicted class (argmax of the scores), else that class;
* ``boxes`` (B, K, 4) int32 pixel intervals ``(c0, r0, c1, r1)`` at the input size,
  ``box_classes`` (B, K) int32, ``box_valid`` (B, K) bool — the sample's region (scoring's rule:
  the explained class's boxes when present, else every box).

Returned: ``scores`` (B, C) before the output activation, ``chosen`` (B,) explained class,
``cams`` (B, h, w); with a compare method ``compare_cams``; with interventions
``removed_scores`` and ``only_scores`` (B, C), forward only. The class score y_c (pre-softmax)
is differentiated; each sample's score depends only on its own image (inference mode), so the
gradient of the batch sum gives every sample its own gradient.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from pipeline.cams.base import CamMethod

GRAY = 127.5  # the `gray` fill, in 0-255 pixel space


def region_mask(boxes: tf.Tensor, box_classes: tf.Tensor, box_valid: tf.Tensor, chosen: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """(B, H, W) bool: pixel centres inside the union of the boxes the sample is scored against."""
    match = box_valid & tf.equal(box_classes, chosen[:, None])
    use = tf.where(tf.reduce_any(match, axis=1, keepdims=True), match, box_valid)
    rows, cols = tf.range(size[0]), tf.range(size[1])
    in_r = (rows[None, None, :] >= boxes[..., 1:2]) & (rows[None, None, :] < boxes[..., 3:4])  # (B, K, H)
    in_c = (cols[None, None, :] >= boxes[..., 0:1]) & (cols[None, None, :] < boxes[..., 2:3])  # (B, K, W)
    return tf.reduce_any(in_r[..., :, None] & in_c[..., None, :] & use[..., None, None], axis=1)


def _fill(images: tf.Tensor, keep: tf.Tensor, fill: str) -> tf.Tensor:
    """(B, 1, 1, 3) fill colour: the mean of the kept pixels (``mean``; gray when none is kept) or gray."""
    if fill == "gray":
        return tf.fill([tf.shape(images)[0], 1, 1, 3], GRAY)
    k = tf.cast(keep, images.dtype)[..., None]
    count = tf.reduce_sum(k, axis=(1, 2), keepdims=True)
    mean = tf.reduce_sum(images * k, axis=(1, 2), keepdims=True) / tf.maximum(count, 1.0)
    return tf.where(count > 0, mean, GRAY)


def interventions(images: tf.Tensor, mask: tf.Tensor, fill: str) -> tuple[tf.Tensor, tf.Tensor]:
    """(object removed, object only): the region, resp. everything outside it, replaced by the fill."""
    inside = mask[..., None]
    removed = tf.where(inside, _fill(images, ~mask, fill), images)
    only = tf.where(inside, images, _fill(images, mask, fill))
    return removed, only


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
) -> Callable:
    """Compile the step; ``fill`` (``mean`` | ``gray``) turns the interventions on (``preprocess`` is then needed)."""

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def step(images: tf.Tensor, raw: tf.Tensor, targets: tf.Tensor, boxes: tf.Tensor, box_classes: tf.Tensor, box_valid: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch(images)  # so the path to the target layer is recorded even for frozen layers
            acts, scores = cam_model(images, training=False)
            scores = tf.cast(scores, tf.float32)  # a no-op for float32 models
            predicted = tf.argmax(scores, axis=-1, output_type=tf.int32)
            chosen = tf.where(targets >= 0, targets, predicted)
            picked = tf.reduce_sum(scores * tf.one_hot(chosen, n_classes, dtype=scores.dtype))
        grads = tf.cast(tape.gradient(picked, acts), tf.float32)
        acts = tf.cast(acts, tf.float32)
        out = {"scores": scores, "chosen": chosen, "cams": method(acts, grads)}
        if compare is not None:
            out["compare_cams"] = compare(acts, grads)
        if fill is not None:
            removed, only = interventions(raw, region_mask(boxes, box_classes, box_valid, chosen, input_size), fill)
            _, edited = cam_model(preprocess(tf.concat([removed, only], axis=0)), training=False)
            edited = tf.cast(edited, tf.float32)
            out["removed_scores"], out["only_scores"] = edited[: tf.shape(images)[0]], edited[tf.shape(images)[0]:]
        return out

    return step

"""CAM methods share one compiled step; a method only supplies its channel weights.

Shapes: activations ``A`` and gradients ``G`` are (B, h, w, K) at the target layer's native
resolution; channel weights are (B, K), per sample (never pooled across the batch); the CAM is
``ReLU(sum_k weight_k * A_k)``, (B, h, w), float32.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


class CamMethod:
    """Base class: subclasses override :meth:`channel_weights` only."""

    name = "base"

    def channel_weights(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def __call__(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        weights = self.channel_weights(activations, grads)
        return tf.nn.relu(tf.einsum("bhwk,bk->bhw", activations, weights))


def make_step(cam_model: tf.keras.Model, method: CamMethod, *, n_classes: int, jit_compile: bool = False) -> Callable:
    """Compile ``step(images (B,H,W,3) float32, targets (B,) int32) -> (scores, chosen, cams)``.

    ``targets[b] = -1`` explains the predicted class (argmax of the scores); otherwise that class.
    ``scores`` are the class scores before softmax; the class score y_c (pre-softmax) is what is
    differentiated. Each sample's score depends only on its own image (inference mode), so the
    gradient of the batch sum gives every sample its own gradient.
    """

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def step(images: tf.Tensor, targets: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch(images)  # so the path to the target layer is recorded even for frozen layers
            acts, scores = cam_model(images, training=False)
            scores = tf.cast(scores, tf.float32)  # a no-op for float32 models
            predicted = tf.argmax(scores, axis=-1, output_type=tf.int32)
            chosen = tf.where(targets >= 0, targets, predicted)
            picked = tf.reduce_sum(scores * tf.one_hot(chosen, n_classes, dtype=scores.dtype))
        grads = tape.gradient(picked, acts)
        return scores, chosen, method(tf.cast(acts, tf.float32), tf.cast(grads, tf.float32))

    return step

"""CAM methods share one compiled step; a method supplies only what differs.

Shapes: activations ``A`` and gradients ``G`` are (B, h, w, K) at the target layer's native
resolution, float32; a CAM is ``ReLU(sum_k contribution_k)``, (B, h, w), computed per sample
(never pooled across the batch). Most methods weight each channel (:meth:`channel_weights`,
(B, K)); methods that weight each position override :meth:`contributions`.
"""

from __future__ import annotations

import tensorflow as tf


class CamMethod:
    """Base class: subclasses override :meth:`channel_weights` or :meth:`contributions`."""

    name = "base"

    def channel_weights(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def contributions(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        """(B, h, w, K) per-position, per-channel evidence; the CAM is its ReLU'd channel sum."""
        return activations * self.channel_weights(activations, grads)[:, None, None, :]

    def __call__(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(tf.reduce_sum(self.contributions(activations, grads), axis=-1))

"""Grad-CAM (Selvaraju et al. 2017): channel weight = spatial mean of the gradient."""

from __future__ import annotations

import tensorflow as tf

from pipeline.explain.cams.base import CamMethod


class GradCAM(CamMethod):
    name = "gradcam"

    def channel_weights(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(grads, axis=(1, 2))  # (B, K): per sample, over (i, j)

    def __call__(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        # One contraction instead of a (B, h, w, K) product: the hot path of the default method.
        return tf.nn.relu(tf.einsum("bhwk,bk->bhw", activations, self.channel_weights(activations, grads)))

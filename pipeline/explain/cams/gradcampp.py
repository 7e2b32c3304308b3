"""Grad-CAM++ (Chattopadhay et al. 2018), closed form for an exponential class score.

alpha_ijk = g^2 / (2 g^2 + sum_ab A_abk * g^3) with g = dY/dA_ijk (0 where the denominator is 0);
channel weight w_k = sum_ij alpha_ijk * ReLU(g_ijk).
"""

from __future__ import annotations

import tensorflow as tf

from pipeline.explain.cams.base import CamMethod


class GradCAMPlusPlus(CamMethod):
    name = "gradcam++"

    def channel_weights(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        g2 = tf.square(grads)
        denom = 2.0 * g2 + tf.reduce_sum(activations, axis=(1, 2), keepdims=True) * g2 * grads
        alpha = tf.math.divide_no_nan(g2, denom)
        return tf.reduce_sum(alpha * tf.nn.relu(grads), axis=(1, 2))

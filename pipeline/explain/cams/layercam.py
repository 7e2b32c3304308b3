"""Layer-CAM (Jiang et al. 2021): the positive gradient times the activation, per position."""

from __future__ import annotations

import tensorflow as tf

from pipeline.explain.cams.base import CamMethod


class LayerCAM(CamMethod):
    name = "layercam"

    def contributions(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(grads) * activations

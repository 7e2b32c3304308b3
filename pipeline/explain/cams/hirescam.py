"""HiResCAM (Draelos & Carin 2020): the gradient times the activation, no spatial averaging."""

from __future__ import annotations

import tensorflow as tf

from pipeline.explain.cams.base import CamMethod


class HiResCAM(CamMethod):
    name = "hirescam"

    def contributions(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        return grads * activations

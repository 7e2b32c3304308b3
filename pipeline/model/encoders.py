"""Reaching inside a transformer encoder that is one subclassed layer (KerasHub's ``ViTEncoder``).

KerasHub's ViTBackbone is ``images -> ViTPatchingAndEmbedding -> ViTEncoder``; the encoder runs
all its blocks and the final norm in one ``call``, so its inner outputs are not layers of any
graph and no gradient can be taken at them. In a class-token ViT the patch tokens of the
encoder's output get no gradient, so the layer worth explaining (the last block's first norm,
DESIGN §4) is inside. :class:`EncoderAdapter` re-runs the encoder's blocks in order, the way
``ViTEncoder.call`` / ``ViTEncoderBlock.call`` do, and captures one inner output. The adapter is
only trusted when its full output equals the encoder's own on a probe (checked when the Grad-CAM
sub-model is built, :func:`pipeline.model.build_cam_model`).

Inner paths are ``transformer_block_<i>/ln_1`` (1-based, the block's first norm: the input of its
attention) for every block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

INNER = "ln_1"


def is_encoder(layer: keras.layers.Layer) -> bool:
    """A KerasHub ViTEncoder (by class and the attributes the adapter uses)."""
    return (type(layer).__name__ == "ViTEncoder" and type(layer).__module__.startswith("keras_hub")
            and hasattr(layer, "encoder_layers") and hasattr(layer, "layer_norm") and hasattr(layer, "dropout"))


def inner_paths(layer: keras.layers.Layer) -> list[str]:
    """The inner outputs the adapter can capture, in the order the encoder computes them."""
    return [f"{block.name}/{INNER}" for block in layer.encoder_layers]


def _block_index(layer: keras.layers.Layer, inner: list[str]) -> int:
    names = [block.name for block in layer.encoder_layers]
    if len(inner) != 2 or inner[0] not in names or inner[1] != INNER:
        raise KeyError(f"{'/'.join(inner)!r}; expected one of {', '.join(inner_paths(layer))}")
    return names.index(inner[0])


def run_encoder(layer: keras.layers.Layer, x: keras.KerasTensor, inner: list[str]) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """(encoder output, the inner output at ``inner``) for input ``x`` — ViTEncoder.call unrolled, at
    inference (its dropouts are identities then, and are left out: two layers named "dropout" in one
    graph are refused by Keras)."""
    target = _block_index(layer, inner)
    captured = None
    for i, block in enumerate(layer.encoder_layers):
        if i != target:
            x = block(x)
            continue
        h = block.layer_norm_1(x)
        captured = h
        x = block.mha(h, h) + x
        x = x + block.mlp(block.layer_norm_2(x))
    return layer.layer_norm(x), captured


def layers_from(layer: keras.layers.Layer, inner: list[str]) -> list[keras.layers.Layer]:
    """The encoder's leaf layers with weights (Dense, EinsumDense, LayerNormalization) from ``inner`` to its
    output, in order: the randomisation cascade re-creates each from its config, which KerasHub's
    composite layers (its MLP) do not support."""
    target = _block_index(layer, inner)
    block = layer.encoder_layers[target]
    parts = [block.layer_norm_1, block.mha, block.layer_norm_2, block.mlp, *layer.encoder_layers[target + 1:], layer.layer_norm]
    return [leaf for part in parts for leaf in _leaves(part)]


def _leaves(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    subs = list(layer._flatten_layers(include_self=False, recursive=False))
    if not subs:
        return [layer] if layer.weights else []
    return [leaf for sub in subs for leaf in _leaves(sub)]

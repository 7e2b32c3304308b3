"""Reading a Keras 3 model's layers: leaf layers in graph order with nested models expanded (``outer/inner``
paths), their output shapes, and the 4-D and token layers a CAM can be taken at."""

from __future__ import annotations

from typing import Callable

import keras

from pipeline.model import encoders

def is_model(layer: object) -> bool:
    return isinstance(layer, keras.Model)


def child_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def output_shape(layer: keras.layers.Layer) -> tuple | None:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None


def flat_layers(model: keras.Model, prefix: str = "") -> list[tuple[str, keras.layers.Layer]]:
    """(path, layer) of every leaf layer in graph order, nested models expanded (``outer/inner``)."""
    out = []
    for layer in child_layers(model):
        if is_model(layer):
            out.extend(flat_layers(layer, f"{prefix}{layer.name}/"))
        else:
            out.append((f"{prefix}{layer.name}", layer))
    return out


def layer_ids(model: keras.Model) -> set[int]:
    """ids of every layer of ``model``, sub-layers of subclassed layers included (a KerasHub encoder's blocks)."""
    out = set()
    for _, layer in flat_layers(model):
        out.add(id(layer))
        out.update(id(sub) for sub in getattr(layer, "_flatten_layers", lambda: [])())
    return out


def candidates(model: keras.Model, keep: Callable[[tuple], bool]) -> list[tuple[str, tuple]]:
    """(path, output shape) of every leaf layer whose output shape ``keep`` accepts, in graph order, nested
    models expanded; a KerasHub ViTEncoder's inner outputs (:mod:`pipeline.model.encoders`) come before the encoder's own."""
    out = []
    for path, layer in flat_layers(model):
        shape = output_shape(layer)
        if shape is None:
            continue
        if encoders.is_encoder(layer):
            out += [(f"{path}/{inner}", shape) for inner in encoders.inner_paths(layer) if keep(shape)]
        if keep(shape):
            out.append((path, shape))
    return out


def is_map(s: tuple) -> bool:
    """A 4-D output larger than 1x1 (an unknown side counts as larger)."""
    return len(s) == 4 and (s[1] or 2) * (s[2] or 2) > 1


def spatial_candidates(model: keras.Model) -> list[tuple[str, tuple]]:
    """Layers with a 4-D output larger than 1x1."""
    return candidates(model, is_map)


def token_candidates(model: keras.Model) -> list[tuple[str, tuple]]:
    """Layers with a token (B, T, K) output."""
    return candidates(model, lambda s: len(s) == 3 and bool(s[1]))

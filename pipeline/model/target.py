"""The target layer: a named one resolved to its path (nested models, a KerasHub encoder's insides), token
layers' grids (DESIGN §4), and ``target_layer: auto`` (the last map every path to the scores passes through)."""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Callable

import keras

from pipeline.config import ModelConfig
from pipeline.errors import ModelError
from pipeline.model import encoders
from pipeline.model.cam_model import build_cam_model, input_channels
from pipeline.model.dominators import model_dominators
from pipeline.model.rebuild import LayerNames
from pipeline.model.graph import candidates, child_layers, flat_layers, is_map, is_model, output_shape

def resolve_target_layer(model: keras.Model, requested: str, names: LayerNames = LayerNames()) -> list[str]:
    """A named target layer as a path of names from the outer model (``outer/inner``; a KerasHub
    ViTEncoder's ``.../vit_encoder/transformer_block_<i>/ln_1`` too); ``requested`` and the messages use the
    user's model's names (``names``: a Keras 2 model's layers renamed for Keras 3)."""
    found = candidates(model, lambda s: is_map(s) or (len(s) == 3 and bool(s[1])))
    parts = names.internal(requested).split("/")
    current: keras.Model = model
    for i, part in enumerate(parts):
        children = [layer.name for layer in child_layers(current)]
        if part not in children:
            paths = [names.shown(c[0]) for c in found]
            hint = difflib.get_close_matches(requested, paths, n=3)
            raise ModelError(
                f"model.target_layer: expected a layer of model {current.name!r}, found no layer named {names.shown(part)!r}; "
                f"{'did you mean ' + ', '.join(hint) + '? ' if hint else ''}4-D and token layers: {', '.join(paths[-8:]) or 'none'}"
            )
        layer = current.get_layer(part)
        if encoders.is_encoder(layer) and i < len(parts) - 1:
            inner = "/".join(parts[i + 1:])
            if inner not in encoders.inner_paths(layer):
                raise ModelError(f"model.target_layer {requested!r}: expected an output inside {part!r} the audit can reach: "
                                 f"{', '.join(encoders.inner_paths(layer))} (each block's first norm), found {inner!r}")
            return parts
        if i < len(parts) - 1:
            if not is_model(layer):
                raise ModelError(f"model.target_layer {requested!r}: expected {part!r} to be a nested model, found a {type(layer).__name__} layer")
            current = layer
    shape = output_shape(current.get_layer(parts[-1]))
    if shape is None or len(shape) not in (3, 4):
        raise ModelError(f"model.target_layer {requested!r}: expected a layer with a 4-D (B, h, w, K) or token (B, T, K) output, found shape {shape}")
    return parts


def token_grid(n_tokens: int, input_size: tuple[int, int], *, grid: tuple[int, int] | None = None,
               special: int | None = None) -> tuple[int, int, int] | None:
    """(special, h, w) turning T tokens into the patch grid, or None when nothing fits (DESIGN §4).

    Auto ``special``: the smallest s in 0..8 for which T - s factors as the input's patch grid
    (h / w = H / W; square inputs: a perfect square). Auto ``grid``: that factorisation."""
    big_h, big_w = input_size
    for s in ([special] if special is not None else range(0, 9)):
        rest = n_tokens - s
        if rest < 2:  # a 1x1 "grid" locates nothing (as for 4-D layers, 1x1 outputs are not candidates)
            continue
        if grid is not None:
            if grid[0] * grid[1] == rest:
                return (s, grid[0], grid[1])
            continue
        h = round(math.sqrt(rest * big_h / big_w))
        if h > 0 and rest % h == 0 and h * big_w == (rest // h) * big_h:
            return (s, h, rest // h)
    return None


def tokens_of(cfg: ModelConfig, path: list[str], shape: tuple, input_size: tuple[int, int],
              names: LayerNames = LayerNames()) -> tuple[int, int, int]:
    layout = token_grid(int(shape[1]), input_size, grid=cfg.token_grid, special=cfg.special_tokens)
    if layout is None:
        raise ModelError(
            f"model.token_grid: the target layer {names.shown('/'.join(path))!r} has {shape[1]} tokens; expected special_tokens + h * w of them "
            f"with [h, w] the {input_size[0]}x{input_size[1]} input's patch grid, found no such split "
            f"(special_tokens {cfg.special_tokens if cfg.special_tokens is not None else 'auto (0-8)'}, "
            f"token_grid {list(cfg.token_grid) if cfg.token_grid else 'auto'}); set model.token_grid and model.special_tokens")
    return layout


def in_encoder(model: keras.Model, path: list[str]) -> bool:
    """The path leads into a KerasHub encoder's insides (reached by re-running it, not in the layer graph)."""
    layer: keras.layers.Layer = model
    for part in path[:-1]:
        if encoders.is_encoder(layer):
            return True
        layer = layer.get_layer(part)
    return encoders.is_encoder(layer)


def layer_at(model: keras.Model, path: list[str]) -> keras.layers.Layer:
    layer: keras.layers.Layer = model
    for part in path:
        if encoders.is_encoder(layer):
            return layer  # an inner output of the encoder has the encoder's output shape
        layer = layer.get_layer(part)
    return layer


def every_path(model: keras.Model) -> Callable[[str], bool]:
    """path -> True when every path from the input to the scores passes through that layer (the output's dominators,
    nested models expanded; a KerasHub encoder's insides count; every layer does when the graph cannot be read)."""
    trunk = model_dominators(model, lambda m: [p for p, _ in flat_layers(m)])
    return lambda path: trunk is None or path in trunk or in_encoder(model, path.split("/"))


def auto_layer(cfg: ModelConfig, model: keras.Model, input_size: tuple[int, int], skipped: list[str], *,
               names: LayerNames = LayerNames(), source: Path | None = None) -> tuple[list[str], tuple[int, int, int] | None]:
    """``target_layer: auto`` (DESIGN §4): the layer last in graph order among the 4-D layers larger than 1x1
    that every path to the scores passes through (the output's dominators; later maps on a branch are
    appended to ``skipped``) and the token layers whose patch tokens reach the class score.

    A class-token ViT's head reads only the class token, so after the last attention the patch
    tokens get no gradient; a probe image (seeded noise) tells those layers apart."""
    import numpy as np
    import tensorflow as tf

    def usable(s: tuple) -> bool:
        return is_map(s) or (len(s) == 3 and bool(s[1])
                              and token_grid(int(s[1]), input_size, grid=cfg.token_grid, special=cfg.special_tokens) is not None)

    found = candidates(model, usable)
    on_every_path = every_path(model)
    probe = tf.constant(np.random.default_rng(0).uniform(0, 1, (1, *input_size, input_channels(model))).astype(np.float32))
    tried = 0
    for path_text, shape in reversed(found):
        path = path_text.split("/")
        if len(shape) == 4:
            if not on_every_path(path_text):
                skipped.append(path_text)  # on a branch: not every path to the scores passes through it
                continue
            return path, None
        tokens = tokens_of(cfg, path, shape, input_size, names)
        cam_model, _, _ = build_cam_model(model, path, input_size, source=source or cfg.path, tokens=tokens, shown=names.shown)
        tried += 1
        with tf.GradientTape() as tape:
            acts, scores = cam_model(probe, training=False)
            top = tf.reduce_max(scores)
        grads = tape.gradient(top, acts)
        if grads is not None and float(tf.reduce_max(tf.abs(grads[:, tokens[0]:, :]))) > 0:
            return path, tokens
    raise ModelError(f"{source or cfg.path}: target_layer auto: expected a layer with a 4-D output larger than 1x1, or a token (B, T, K) "
                     f"layer whose patch tokens reach the class score, found none ({tried} token layers tried); "
                     "set model.target_layer")

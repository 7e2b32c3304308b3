"""Load the user's Keras model and build the Grad-CAM sub-model once.

The sub-model maps the model's input to ``[target-layer activations, class scores before
softmax]``. It is built by re-running the model's layer graph symbolically on a fresh input, so
a target layer inside a nested model (``mobilenetv2_1.00_96/out_relu``) is reached without the
"Graph disconnected" / "never been called" errors of the naive ``Model(model.input,
inner_layer.output)``. The user's model is never mutated: the sub-model shares its layers and
weights, and a softmax output layer is replaced by a weight-sharing copy without the softmax.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import keras

from pipeline import encoders
from pipeline.dominators import model_dominators
from pipeline.config import ModelConfig
from pipeline.errors import ModelError
from pipeline.geometry import InputSpec

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class AuditModel:
    """The loaded model and what the audit needs from it.

    ``cam_model(x) -> [activations (B, h, w, K), scores (B, n_classes)]`` with scores before the
    output activation; ``output_activation`` names the activation that was stripped ("softmax",
    "sigmoid") or "none" when the model already outputs raw scores.
    """

    model: keras.Model
    cam_model: keras.Model
    target_layer: str
    layer_shape: tuple[int, int, int]  # (h, w, K) of the target layer's output
    input_size: tuple[int, int]  # (H, W)
    n_classes: int
    output_activation: str
    tokens: tuple[int, int, int] | None = None  # (special, h, w) for a (B, T, K) token target layer (DESIGN §4)
    spec: InputSpec | None = None  # how images become the input (geometry, preprocessing); None = stretch, scale_0_1
    candidates: tuple[tuple[str, tuple], ...] = ()  # (path, output shape) of the 4-D and token layers, in graph order
    skipped_layers: tuple[str, ...] = ()  # auto: later 4-D maps passed over because they lie on a branch

    @property
    def input(self) -> InputSpec:
        return self.spec or InputSpec(self.input_size)


HUB_INSTALL = "pip install -e '.[hub]' (make install does)"


def _needs_keras_hub(path: Path) -> bool:
    """True when a ``.keras`` archive's config names KerasHub classes (they register on ``import keras_hub``)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return b'"keras_hub' in archive.read("config.json")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False  # not a .keras archive: load_model says what is wrong


def load_keras_model(path: Path) -> keras.Model:
    """Load ``.keras`` / ``.h5`` with safe mode on (no arbitrary code from the file), uncompiled.

    A model saved from KerasHub (an ``ImageClassifier`` and its backbone, preprocessor) needs
    ``keras_hub`` imported first: its classes are registered serialisables, not code in the file."""
    if _needs_keras_hub(path):
        try:
            import keras_hub  # noqa: F401  (registers KerasHub's classes for safe-mode loading)
        except ImportError:
            raise ModelError(f"{path}: this model was saved from KerasHub; expected the keras-hub package to load it, found it "
                             f"not installed; install it with {HUB_INSTALL}") from None
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types here; the message is what matters
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: expected a Keras model (.keras or .h5) that loads in safe mode, found an error: {text}") from None
    if not isinstance(model, keras.Model):
        raise ModelError(f"{path}: expected a Keras Model, found {type(model).__name__}")
    return model


def _is_model(layer: Any) -> bool:
    return isinstance(layer, keras.Model)


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _output_shape(layer: keras.layers.Layer) -> tuple | None:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None


def _candidates(model: keras.Model, keep: Callable[[tuple], bool]) -> list[tuple[str, tuple]]:
    """(path, output shape) of every leaf layer whose output shape ``keep`` accepts, in graph order, nested
    models expanded; a KerasHub ViTEncoder's inner outputs (:mod:`pipeline.encoders`) come before the encoder's own."""
    out = []
    for path, layer in flat_layers(model):
        shape = _output_shape(layer)
        if shape is None:
            continue
        if encoders.is_encoder(layer):
            out += [(f"{path}/{inner}", shape) for inner in encoders.inner_paths(layer) if keep(shape)]
        if keep(shape):
            out.append((path, shape))
    return out


def _is_map(s: tuple) -> bool:
    """A 4-D output larger than 1x1 (an unknown side counts as larger)."""
    return len(s) == 4 and (s[1] or 2) * (s[2] or 2) > 1


def _spatial_candidates(model: keras.Model) -> list[tuple[str, tuple]]:
    """Layers with a 4-D output larger than 1x1."""
    return _candidates(model, _is_map)


def resolve_target_layer(model: keras.Model, requested: str) -> list[str]:
    """A named target layer as a path of names from the outer model (``outer/inner``; a KerasHub
    ViTEncoder's ``.../vit_encoder/transformer_block_<i>/ln_1`` too)."""
    candidates = _candidates(model, lambda s: _is_map(s) or (len(s) == 3 and bool(s[1])))
    parts = requested.split("/")
    current: keras.Model = model
    for i, part in enumerate(parts):
        names = [layer.name for layer in _layers(current)]
        if part not in names:
            paths = [c[0] for c in candidates]
            hint = difflib.get_close_matches(requested, paths, n=3)
            raise ModelError(
                f"model.target_layer: expected a layer of model {current.name!r}, found no layer named {part!r}; "
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
            if not _is_model(layer):
                raise ModelError(f"model.target_layer {requested!r}: expected {part!r} to be a nested model, found a {type(layer).__name__} layer")
            current = layer
    shape = _output_shape(current.get_layer(parts[-1]))
    if shape is None or len(shape) not in (3, 4):
        raise ModelError(f"model.target_layer {requested!r}: expected a layer with a 4-D (B, h, w, K) or token (B, T, K) output, found shape {shape}")
    return parts


def _token_candidates(model: keras.Model) -> list[tuple[str, tuple]]:
    """Layers with a token (B, T, K) output."""
    return _candidates(model, lambda s: len(s) == 3 and bool(s[1]))


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


def _tokens_of(cfg: ModelConfig, path: list[str], shape: tuple, input_size: tuple[int, int]) -> tuple[int, int, int]:
    layout = token_grid(int(shape[1]), input_size, grid=cfg.token_grid, special=cfg.special_tokens)
    if layout is None:
        raise ModelError(
            f"model.token_grid: the target layer {'/'.join(path)!r} has {shape[1]} tokens; expected special_tokens + h * w of them "
            f"with [h, w] the {input_size[0]}x{input_size[1]} input's patch grid, found no such split "
            f"(special_tokens {cfg.special_tokens if cfg.special_tokens is not None else 'auto (0-8)'}, "
            f"token_grid {list(cfg.token_grid) if cfg.token_grid else 'auto'}); set model.token_grid and model.special_tokens")
    return layout


def _final_operation(model: keras.Model) -> Any:
    if isinstance(model, keras.Sequential):
        return _layers(model)[-1]
    return model.outputs[0]._keras_history[0]


def _without_activation(layer: keras.layers.Layer, x: Any) -> tuple[Any, str]:
    """Apply ``layer`` to symbolic ``x`` without a probability activation; returns (scores, stripped)."""
    if isinstance(layer, keras.layers.Softmax):
        return x, "softmax"
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", "")
    if name not in _PROBABILITY_ACTIVATIONS:
        return layer(x), "none"
    if isinstance(layer, keras.layers.Activation):
        return x, name
    config = layer.get_config()
    config["activation"] = "linear"
    config["name"] = f"{layer.name}_scores"
    twin = type(layer).from_config(config)
    out = twin(x)
    twin.set_weights(layer.get_weights())  # a copy for the audit; the user's layer is untouched
    return out, name


def _rerun(model: keras.Model, x: Any, path: list[str], captured: list, strip: bool, stripped: list) -> Any:
    """Symbolically apply ``model`` to ``x``, capturing the output of the layer at ``path``."""
    final = _final_operation(model) if strip else None

    def substitute(op: Any) -> Callable:
        def run(*args: Any, **kwargs: Any) -> Any:
            on_path = bool(path) and op.name == path[0]
            if on_path and len(path) > 1 and encoders.is_encoder(op):
                out, inner = encoders.run_encoder(op, args[0], path[1:])
                captured.append(inner)
            elif _is_model(op) and ((on_path and len(path) > 1) or op is final):
                out = _rerun(op, args[0], path[1:] if on_path else [], captured, op is final, stripped)
            elif op is final:
                out, name = _without_activation(op, args[0])
                stripped.append(name)
            else:
                out = op(*args, **kwargs)
            if on_path and len(path) == 1:
                captured.append(out)
            return out

        return run

    if isinstance(model, keras.Sequential):
        for layer in _layers(model):
            x = substitute(layer)(x)
        return x
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"model {model.name}: expected one input and one output, found {len(model.inputs)} and {len(model.outputs)}")
    return model._run_through_graph(x, operation_fn=substitute)  # Keras' own graph walk


def build_audit_model(cfg: ModelConfig) -> AuditModel:
    """Load the model and build the Grad-CAM sub-model."""
    model = load_keras_model(cfg.path)
    shape = tuple(model.inputs[0].shape) if model.inputs else None
    if shape is None or len(shape) != 4 or shape[-1] != 3:
        raise ModelError(f"{cfg.path}: expected an image model with input shape (None, H, W, 3), found {shape}")
    spec = input_spec(cfg, model, shape)
    input_size = spec.input_size
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ModelError(f"{cfg.path}: expected one output of shape (None, n_classes), found {[tuple(o.shape) for o in model.outputs]}")

    skipped: list[str] = []
    if cfg.target_layer == "auto":
        path, tokens = _auto_layer(cfg, model, input_size, skipped)
    else:
        path = resolve_target_layer(model, cfg.target_layer)
        shape = _output_shape(_layer_at(model, path))
        tokens = _tokens_of(cfg, path, shape, input_size) if shape is not None and len(shape) == 3 else None
    cam_model, layer_shape, stripped = build_cam_model(model, path, input_size, source=cfg.path, tokens=tokens)
    return AuditModel(
        model=model,
        cam_model=cam_model,
        target_layer="/".join(path),
        layer_shape=layer_shape,
        input_size=input_size,
        n_classes=int(model.outputs[0].shape[-1]),
        output_activation=stripped,
        tokens=tokens,
        spec=spec,
        candidates=tuple(_candidates(model, lambda s: _is_map(s) or (len(s) == 3 and bool(s[1])))),
        skipped_layers=tuple(skipped),
    )


def input_spec(cfg: ModelConfig, model: keras.Model, shape: tuple) -> InputSpec:
    """How images become this model's input: the config's size, resize and geometry, or under
    ``preprocessing: model`` the saved KerasHub ImageConverter's (size, crop/pad rule, interpolation, scale, offset)."""
    fixed = (int(shape[1]), int(shape[2])) if shape[1] and shape[2] else None
    if cfg.preprocessing != "model":
        size = cfg.input_size or fixed
        if size is None:
            raise ModelError(f"{cfg.path}: model.input_size is auto but the model's input shape {shape} has no fixed H, W; set model.input_size: [H, W]")
        return InputSpec(size, cfg.resize, cfg.resize_mode, cfg.crop_fraction, cfg.pad_value, cfg.preprocessing)
    converter = getattr(getattr(model, "preprocessor", None), "image_converter", None)
    if converter is None or not hasattr(converter, "resizing"):
        raise ModelError(f"{cfg.path}: model.preprocessing is model: expected a KerasHub model saved with its preprocessor's "
                         f"ImageConverter, found {'no preprocessor' if getattr(model, 'preprocessor', None) is None else 'no image_converter'}; "
                         "name the preprocessing instead (scale_0_1, imagenet_torch, ...)")
    size = tuple(converter.image_size) if converter.image_size else None
    size = cfg.input_size or size or fixed
    if size is None:
        raise ModelError(f"{cfg.path}: the saved ImageConverter has no image_size and the model's input shape {shape} no fixed H, W; "
                         "set model.input_size: [H, W]")
    if fixed is not None and tuple(size) != fixed:
        raise ModelError(f"{cfg.path}: the saved ImageConverter resizes to {list(size)} but the model's input is {list(fixed)}")

    def channels(value: Any) -> tuple[float, ...] | None:
        return None if value is None else tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else [value]))

    mode = "crop" if converter.crop_to_aspect_ratio else "pad" if converter.pad_to_aspect_ratio else "stretch"
    return InputSpec((int(size[0]), int(size[1])), converter.interpolation, mode, 1.0, 0.0, "model",
                     channels(converter.scale), channels(converter.offset), bool(converter.antialias))


def _in_encoder(model: keras.Model, path: list[str]) -> bool:
    """The path leads into a KerasHub encoder's insides (reached by re-running it, not in the layer graph)."""
    layer: Any = model
    for part in path[:-1]:
        if encoders.is_encoder(layer):
            return True
        layer = layer.get_layer(part)
    return encoders.is_encoder(layer)


def _layer_at(model: keras.Model, path: list[str]) -> keras.layers.Layer:
    layer: Any = model
    for part in path:
        if encoders.is_encoder(layer):
            return layer  # an inner output of the encoder has the encoder's output shape
        layer = layer.get_layer(part)
    return layer


def _auto_layer(cfg: ModelConfig, model: keras.Model, input_size: tuple[int, int],
                skipped: list[str]) -> tuple[list[str], tuple[int, int, int] | None]:
    """``target_layer: auto`` (DESIGN §4): the layer last in graph order among the 4-D layers larger than 1x1
    that every path to the scores passes through (the output's dominators; later maps on a branch are
    appended to ``skipped``) and the token layers whose patch tokens reach the class score.

    A class-token ViT's head reads only the class token, so after the last attention the patch
    tokens get no gradient; a probe image (seeded noise) tells those layers apart."""
    import numpy as np
    import tensorflow as tf

    def usable(s: tuple) -> bool:
        return _is_map(s) or (len(s) == 3 and bool(s[1])
                              and token_grid(int(s[1]), input_size, grid=cfg.token_grid, special=cfg.special_tokens) is not None)

    candidates = _candidates(model, usable)
    trunk = model_dominators(model, lambda m: [p for p, _ in flat_layers(m)])
    probe = tf.constant(np.random.default_rng(0).uniform(0, 1, (1, *input_size, 3)).astype(np.float32))
    tried = 0
    for path_text, shape in reversed(candidates):
        path = path_text.split("/")
        if len(shape) == 4:
            if trunk is not None and path_text not in trunk and not _in_encoder(model, path):
                skipped.append(path_text)  # on a branch: not every path to the scores passes through it
                continue
            return path, None
        tokens = _tokens_of(cfg, path, shape, input_size)
        cam_model, _, _ = build_cam_model(model, path, input_size, source=cfg.path, tokens=tokens)
        tried += 1
        with tf.GradientTape() as tape:
            acts, scores = cam_model(probe, training=False)
            top = tf.reduce_max(scores)
        grads = tape.gradient(top, acts)
        if grads is not None and float(tf.reduce_max(tf.abs(grads[:, tokens[0]:, :]))) > 0:
            return path, tokens
    raise ModelError(f"model {model.name}: target_layer auto: expected a layer with a 4-D output larger than 1x1, or a token (B, T, K) "
                     f"layer whose patch tokens reach the class score, found none ({tried} token layers tried); "
                     "set model.target_layer")


def build_cam_model(model: keras.Model, path: list[str], input_size: tuple[int, int], *, source: Path,
                    tokens: tuple[int, int, int] | None = None) -> tuple[keras.Model, tuple[int, int, int], str]:
    """(cam_model, target layer (h, w, K), stripped activation) for ``model`` and the layer at ``path``.

    A token layer's activations stay (B, T, K) in the sub-model (the gradient is taken there);
    ``tokens`` (special, h, w) gives the grid the step reshapes them to."""
    inputs = keras.Input(shape=(input_size[0], input_size[1], 3), name="audit_input")
    captured: list = []
    stripped: list = []
    try:
        scores = _rerun(model, inputs, path, captured, True, stripped)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{source}: could not build the Grad-CAM sub-model for layer {'/'.join(path)!r}: {exc}") from None
    if len(captured) != 1:
        raise ModelError(f"{source}: target layer {'/'.join(path)!r} is not on the path from input to output (found {len(captured)} calls)")
    acts = captured[0]
    if len(acts.shape) != (4 if tokens is None else 3):
        raise ModelError(f"{source}: target layer {'/'.join(path)!r}: expected a {'4-D' if tokens is None else 'token (B, T, K)'} "
                         f"output, found shape {tuple(acts.shape)}")
    cam_model = keras.Model(inputs, [acts, scores], name="audit_cam_model")
    _check_encoder_adapter(model, path, source)
    grid = (int(acts.shape[1]), int(acts.shape[2])) if tokens is None else tokens[1:]
    return cam_model, (grid[0], grid[1], int(acts.shape[-1])), stripped[0] if stripped else "none"


def layer_ids(model: keras.Model) -> set[int]:
    """ids of every layer of ``model``, sub-layers of subclassed layers included (a KerasHub encoder's blocks)."""
    out = set()
    for _, layer in flat_layers(model):
        out.add(id(layer))
        out.update(id(sub) for sub in getattr(layer, "_flatten_layers", lambda: [])())
    return out


def flat_layers(model: keras.Model, prefix: str = "") -> list[tuple[str, keras.layers.Layer]]:
    """(path, layer) of every leaf layer in graph order, nested models expanded (``outer/inner``)."""
    out = []
    for layer in _layers(model):
        if _is_model(layer):
            out.extend(flat_layers(layer, f"{prefix}{layer.name}/"))
        else:
            out.append((f"{prefix}{layer.name}", layer))
    return out


def randomisable_layers(model: keras.Model, target_layer: str) -> list[keras.layers.Layer]:
    """Layers with weights from the output down to and including the target layer (graph order, nested
    expanded; inside a KerasHub ViTEncoder, its sub-layers from the target on)."""
    layers = flat_layers(model)
    names = [name for name, _ in layers]
    for i, (name, layer) in enumerate(layers):
        if encoders.is_encoder(layer) and target_layer.startswith(name + "/"):
            inside = encoders.layers_from(layer, target_layer[len(name) + 1:].split("/"))
            return inside + [lay for _, lay in layers[i + 1:] if lay.weights]
    if target_layer not in names:
        raise ModelError(f"model {model.name}: randomisation check: target layer {target_layer!r} not found")
    return [layer for _, layer in layers[names.index(target_layer):] if layer.weights]


def _check_encoder_adapter(model: keras.Model, path: list[str], source: Path) -> None:
    """A path into a KerasHub ViTEncoder is explained through :mod:`pipeline.encoders`' re-run of its
    blocks; refuse it unless that re-run reproduces the encoder's own output (to 1e-5) on a probe."""
    import numpy as np

    layer: Any = model
    for i, part in enumerate(path):
        layer = layer.get_layer(part)
        if encoders.is_encoder(layer) and i < len(path) - 1:
            shape = _output_shape(layer)
            probe = np.random.default_rng(0).normal(size=(1, int(shape[1] or 5), int(shape[2]))).astype("float32")
            mine, _ = encoders.run_encoder(layer, probe, path[i + 1:])
            gap = float(np.max(np.abs(np.asarray(mine) - np.asarray(layer(probe)))))
            if not gap <= 1e-5:
                usable = [p for p, _ in _spatial_candidates(model) + _token_candidates(model) if "/".join(path[: i + 1]) not in p]
                raise ModelError(f"{source}: target layer {'/'.join(path)!r}: the audit re-runs {part!r}'s blocks to reach inside it, "
                                 f"but that re-run differs from the layer's own output by {gap:.2g} (this keras-hub version computes it "
                                 f"differently); use one of these layers instead: {', '.join(usable[-8:]) or 'none'}")
            return


def reinitialise(layers: list[keras.layers.Layer], *, seed: int) -> None:
    """Give each layer fresh weights from its own initialisers (seeded), in place.

    Built variables keep no initialiser in Keras 3, so each layer's twin is built from its config
    and build config (what loading a .keras file does) and its new weights are copied over.
    """
    keras.utils.set_random_seed(seed)
    for layer in layers:
        twin = type(layer).from_config(layer.get_config())
        twin.build_from_config(layer.get_build_config())
        layer.set_weights(twin.get_weights())

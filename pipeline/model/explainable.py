"""The explainable model: the loaded model, how images become its input, the target layer and the Grad-CAM
sub-model (:class:`AuditModel`); and what the randomisation check does to a copy of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from pipeline.config import ModelConfig
from pipeline.errors import ModelError
from pipeline.data.geometry import InputSpec
from pipeline.model import encoders
from pipeline.model.cam_model import build_cam_model
from pipeline.model.graph import candidates, flat_layers, is_map, output_shape
from pipeline.model.target import auto_layer, every_path, layer_at, resolve_target_layer, tokens_of

if TYPE_CHECKING:
    from pipeline.model.load import LoadedModel

@dataclass(frozen=True)
class AuditModel:
    """The loaded model and what the audit needs from it.

    ``cam_model(x) -> [activations (B, h, w, K), scores (B, n_classes)]`` with scores before the
    output activation; ``output_activation`` names the activation that was stripped ("softmax",
    "sigmoid") or "none" when the model already outputs raw scores.
    """

    model: keras.Model
    cam_model: keras.Model
    target_layer: str  # as the user's model names it (a Keras 2 model's original layer names)
    target_path: tuple[str, ...]  # the same layer's path in ``model`` (outer to inner)
    layer_shape: tuple[int, int, int]  # (h, w, K) of the target layer's output
    input_size: tuple[int, int]  # (H, W)
    n_classes: int
    output_activation: str
    tokens: tuple[int, int, int] | None = None  # (special, h, w) for a (B, T, K) token target layer (DESIGN §4)
    spec: InputSpec | None = None  # how images become the input (geometry, preprocessing); None = stretch, scale_0_1
    candidates: tuple[tuple[str, tuple, bool], ...] = ()  # (path, output shape, on every path to the scores) of the 4-D and
    # token layers, in graph order (token layers count as on every path: the auto rule tests them by their gradient)
    skipped_layers: tuple[str, ...] = ()  # auto: later 4-D maps passed over because they lie on a branch

    @property
    def input(self) -> InputSpec:
        return self.spec or InputSpec(self.input_size)


def build_audit_model(cfg: ModelConfig, loaded: "LoadedModel | None" = None) -> AuditModel:
    """The explainable model: input spec, target layer (named as the user's model names it) and Grad-CAM sub-model
    of ``loaded`` (:func:`~pipeline.model.load.open_model`), or of the Keras 3 file at ``cfg.path``."""
    if loaded is None:
        from pipeline.model.load import LoadedModel, load_keras_model
        from pipeline.model.source import identify

        loaded = LoadedModel(load_keras_model(cfg.path), identify(cfg.path))
    model, names, source = loaded.model, loaded.names, loaded.file.path
    shape = tuple(model.inputs[0].shape) if model.inputs else None
    channels = int(shape[-1]) if shape is not None and len(shape) == 4 and shape[-1] else None
    if shape is None or len(shape) != 4 or channels not in (1, 3):
        found = f"{channels} channels (input shape {shape})" if channels else f"input shape {shape}"
        raise ModelError(f"{source}: expected an image model whose input has 1 (grayscale) or 3 (RGB) channels, (None, H, W, C), "
                         f"found {found}")
    spec = input_spec(cfg, model, shape, source)
    input_size = spec.input_size
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ModelError(f"{source}: expected one output of shape (None, n_classes), found {[tuple(o.shape) for o in model.outputs]}")

    skipped: list[str] = []
    if cfg.target_layer == "auto":
        path, tokens = auto_layer(cfg, model, input_size, skipped, names=names, source=source)
    else:
        path = resolve_target_layer(model, cfg.target_layer, names)
        shape = output_shape(layer_at(model, path))
        tokens = tokens_of(cfg, path, shape, input_size, names) if shape is not None and len(shape) == 3 else None
    cam_model, layer_shape, stripped = build_cam_model(model, path, input_size, source=source, tokens=tokens, shown=names.shown)
    trunk = every_path(model)
    return AuditModel(
        model=model,
        cam_model=cam_model,
        target_layer=names.shown("/".join(path)),
        target_path=tuple(path),
        layer_shape=layer_shape,
        input_size=input_size,
        n_classes=int(model.outputs[0].shape[-1]),
        output_activation=stripped,
        tokens=tokens,
        spec=spec,
        candidates=tuple((names.shown(p), s, len(s) == 3 or trunk(p))
                         for p, s in candidates(model, lambda s: is_map(s) or (len(s) == 3 and bool(s[1])))),
        skipped_layers=tuple(names.shown(p) for p in skipped),
    )


def input_spec(cfg: ModelConfig, model: keras.Model, shape: tuple, source: Path) -> InputSpec:
    """How images become this model's input: the config's size, resize and geometry, or under
    ``preprocessing: model`` the saved KerasHub ImageConverter's (size, crop/pad rule, interpolation, scale, offset)."""
    fixed = (int(shape[1]), int(shape[2])) if shape[1] and shape[2] else None
    channels, gray = pixel_channels(cfg, int(shape[-1]), source)
    if cfg.preprocessing != "model":
        size = cfg.input_size or fixed
        if size is None:
            raise ModelError(f"{source}: model.input_size is auto but the model's input shape {shape} has no fixed H, W; set model.input_size: [H, W]")
        return InputSpec(size, cfg.resize, cfg.resize_mode, cfg.crop_fraction, cfg.pad_value, cfg.preprocessing, antialias=cfg.antialias,
                         channels=channels, gray=gray)
    converter = getattr(getattr(model, "preprocessor", None), "image_converter", None)
    if converter is None or not hasattr(converter, "resizing"):
        raise ModelError(f"{source}: model.preprocessing is model: expected a KerasHub model saved with its preprocessor's "
                         f"ImageConverter, found {'no preprocessor' if getattr(model, 'preprocessor', None) is None else 'no image_converter'}; "
                         "name the preprocessing instead (scale_0_1, imagenet_torch, ...)")
    size = tuple(converter.image_size) if converter.image_size else None
    size = cfg.input_size or size or fixed
    if size is None:
        raise ModelError(f"{source}: the saved ImageConverter has no image_size and the model's input shape {shape} no fixed H, W; "
                         "set model.input_size: [H, W]")
    if fixed is not None and tuple(size) != fixed:
        raise ModelError(f"{source}: the saved ImageConverter resizes to {list(size)} but the model's input is {list(fixed)}")

    def per_channel(value: object) -> tuple[float, ...] | None:
        return None if value is None else tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else [value]))

    mode = "crop" if converter.crop_to_aspect_ratio else "pad" if converter.pad_to_aspect_ratio else "stretch"
    return InputSpec((int(size[0]), int(size[1])), converter.interpolation, mode, 1.0, 0.0, "model",
                     per_channel(converter.scale), per_channel(converter.offset), bool(converter.antialias), channels=channels, gray=gray)


RGB_ONLY = ("imagenet_caffe", "imagenet_torch")  # per-channel RGB means and deviations


def pixel_channels(cfg: ModelConfig, model_channels: int, source: Path) -> tuple[int, bool]:
    """(the model input's channels, whether images become their luma first) from ``model.channels`` (DESIGN §16): auto
    follows the model; 1 on a three-channel model feeds the luma repeated (a model trained on grayscale copies)."""
    if cfg.channels == 3 and model_channels == 1:
        raise ModelError(f"{source}: model.channels is 3 but the model's input takes 1 channel (grayscale); set model.channels: 1 or auto")
    gray = (cfg.channels or model_channels) == 1
    if model_channels == 1 and (cfg.preprocessing in RGB_ONLY or cfg.preprocessing.startswith("keras.applications.")):
        raise ModelError(f"{source}: model.preprocessing: {cfg.preprocessing} expects three RGB channels, but the model's input takes 1 "
                         "(grayscale); use none, scale_0_1 or scale_-1_1")
    return model_channels, gray


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

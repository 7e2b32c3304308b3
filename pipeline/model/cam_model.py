"""The Grad-CAM sub-model, built once: the model's input -> [target-layer activations, class scores before
the output activation].

It is built by re-running the model's layer graph symbolically on a fresh input, so a target layer inside
a nested model (``mobilenetv2_1.00_96/out_relu``) is reached without the "Graph disconnected" / "never been
called" errors of the naive ``Model(model.input, inner_layer.output)``. The user's model is never mutated:
the sub-model shares its layers and weights, and a softmax output layer is replaced by a weight-sharing
copy without the softmax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import keras

from pipeline.errors import ModelError, one_line
from pipeline.model import encoders
from pipeline.model.graph import child_layers, is_model, output_shape, spatial_candidates, token_candidates

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def _final_operation(model: keras.Model) -> keras.layers.Layer | None:
    if isinstance(model, keras.Sequential):
        return child_layers(model)[-1]
    return model.outputs[0]._keras_history[0]


def _without_activation(layer: keras.layers.Layer, x: keras.KerasTensor) -> tuple[keras.KerasTensor, str]:
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


def _rerun(model: keras.Model, x: keras.KerasTensor, path: list[str], captured: list, strip: bool, stripped: list) -> keras.KerasTensor:
    """Symbolically apply ``model`` to ``x``, capturing the output of the layer at ``path``."""
    final = _final_operation(model) if strip else None

    def substitute(op: keras.layers.Layer) -> Callable[..., keras.KerasTensor]:
        def run(*args: keras.KerasTensor, **kwargs: object) -> keras.KerasTensor:
            on_path = bool(path) and op.name == path[0]
            if on_path and len(path) > 1 and encoders.is_encoder(op):
                out, inner = encoders.run_encoder(op, args[0], path[1:])
                captured.append(inner)
            elif is_model(op) and ((on_path and len(path) > 1) or op is final):
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
        for layer in child_layers(model):
            x = substitute(layer)(x)
        return x
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"model {model.name}: expected one input and one output, found {len(model.inputs)} and {len(model.outputs)}")
    return model._run_through_graph(x, operation_fn=substitute)  # Keras' own graph walk


def input_channels(model: keras.Model) -> int:
    """The channels of the model's image input (3 when the model does not say)."""
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else ()
    return int(shape[-1]) if len(shape) == 4 and shape[-1] else 3


def build_cam_model(model: keras.Model, path: list[str], input_size: tuple[int, int], *, source: Path,
                    tokens: tuple[int, int, int] | None = None,
                    shown: Callable[[str], str] = str) -> tuple[keras.Model, tuple[int, int, int], str]:
    """(cam_model, target layer (h, w, K), stripped activation) for ``model`` and the layer at ``path``.

    A token layer's activations stay (B, T, K) in the sub-model (the gradient is taken there);
    ``tokens`` (special, h, w) gives the grid the step reshapes them to. Messages name ``source`` and the
    layer as ``shown`` writes a path (the user's model's names)."""
    where = shown("/".join(path))
    inputs = keras.Input(shape=(input_size[0], input_size[1], input_channels(model)), name="audit_input")
    captured: list = []
    stripped: list = []
    try:
        scores = _rerun(model, inputs, path, captured, True, stripped)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{source}: could not build the Grad-CAM sub-model for layer {where!r}: {one_line(exc)}") from None
    if len(captured) != 1:
        raise ModelError(f"{source}: target layer {where!r} is not on the path from input to output (found {len(captured)} calls)")
    acts = captured[0]
    if len(acts.shape) != (4 if tokens is None else 3):
        raise ModelError(f"{source}: target layer {where!r}: expected a {'4-D' if tokens is None else 'token (B, T, K)'} "
                         f"output, found shape {tuple(acts.shape)}")
    cam_model = keras.Model(inputs, [acts, scores], name="audit_cam_model")
    _check_encoder_adapter(model, path, source)
    grid = (int(acts.shape[1]), int(acts.shape[2])) if tokens is None else tokens[1:]
    return cam_model, (grid[0], grid[1], int(acts.shape[-1])), stripped[0] if stripped else "none"


def _check_encoder_adapter(model: keras.Model, path: list[str], source: Path) -> None:
    """A path into a KerasHub ViTEncoder is explained through :mod:`pipeline.model.encoders`' re-run of its
    blocks; refuse it unless that re-run reproduces the encoder's own output (to 1e-5) on a probe."""
    import numpy as np

    layer: keras.layers.Layer = model
    for i, part in enumerate(path):
        layer = layer.get_layer(part)
        if encoders.is_encoder(layer) and i < len(path) - 1:
            shape = output_shape(layer)
            probe = np.random.default_rng(0).normal(size=(1, int(shape[1] or 5), int(shape[2]))).astype("float32")
            mine, _ = encoders.run_encoder(layer, probe, path[i + 1:])
            gap = float(np.max(np.abs(np.asarray(mine) - np.asarray(layer(probe)))))
            if not gap <= 1e-5:
                usable = [p for p, _ in spatial_candidates(model) + token_candidates(model) if "/".join(path[: i + 1]) not in p]
                raise ModelError(f"{source}: target layer {'/'.join(path)!r}: the audit re-runs the blocks of {part!r} to reach inside it, "
                                 f"but that re-run differs from the layer's own output by {gap:.2g} (this keras-hub version computes it "
                                 f"differently); use one of these layers instead: {', '.join(usable[-8:]) or 'none'}")
            return

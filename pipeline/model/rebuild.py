"""A Keras 2 (tf_keras) model config translated into the Keras 3 config of the same architecture (DESIGN §14).

Pure JSON work (no tf_keras; Keras 3 only for its layer classes' signatures):

- keys a Keras 3 class does not take are dropped (each listed), renamed arguments mapped
  (``batch_input_shape`` -> ``batch_shape``), nested models' node indices moved to Keras 3's count
  (Keras 2 counts a model's own construction as node 0);
- layer names Keras 3 forbids (a ``/``: DenseNet's ``conv1/conv``, MobileNetV3's ``expanded_conv/depthwise``)
  are renamed (``/`` -> ``_``, made unique) and every renaming recorded, so each message and output can say
  the original name (:class:`LayerNames`);
- ``TFOpLambda`` layers, tf_keras' record of a plain TensorFlow call (``x + 3.0`` in MobileNetV3's hard
  sigmoid, RegNet's residual ``x + skip``), become the Keras 3 layer that computes the same thing:
  elementwise arithmetic with a constant is a ``Rescaling`` (x * scale + offset), with a second tensor an
  ``Add`` / ``Subtract`` / ``Multiply``; an activation is an ``Activation``. Any other operation is refused
  naming it (before tf_keras loads anything: :func:`allowed_operation`);
- layers that ``keras.applications`` defines (ConvNeXt's ``LayerScale`` and ``StochasticDepth``,
  InceptionResNetV2's ``CustomScaleLayer``) map to Keras 3's own classes.
"""

from __future__ import annotations

import inspect as pyinspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import ModelError
from pipeline.model.stored import MODELS, layer_list, layer_name

BASE_KEYS = {"name", "trainable", "dtype", "autocast"}  # every Keras 3 layer takes these
RENAMED_KEYS = {"InputLayer": {"batch_input_shape": "batch_shape"}}  # Keras 2 key -> Keras 3 key, per class
APPLICATION_LAYERS = {
    "LayerScale": "keras.src.applications.convnext",
    "StochasticDepth": "keras.src.applications.convnext",
    "CustomScaleLayer": "keras.src.applications.inception_resnet_v2",
}
"""Layers ``keras.applications`` defines outside ``keras.layers``: Keras 3 module of the same class."""
REGISTERED = {"Custom>CustomScaleLayer": "CustomScaleLayer"}
"""tf_keras' registered names of those layers (a SavedModel's metadata stores these)."""
BINARY = {"__operators__.add": "add", "math.add": "add", "__operators__.sub": "subtract", "math.subtract": "subtract",
          "math.multiply": "multiply", "__operators__.mul": "multiply", "math.truediv": "divide", "__operators__.truediv": "divide",
          "math.divide": "divide"}
UNARY = {"nn.relu": "relu", "nn.relu6": "relu6", "nn.silu": "silu", "nn.swish": "silu", "math.sigmoid": "sigmoid",
         "nn.sigmoid": "sigmoid", "math.tanh": "tanh", "nn.tanh": "tanh", "nn.elu": "elu", "nn.selu": "selu",
         "math.softplus": "softplus", "nn.softplus": "softplus", "nn.gelu": "gelu", "nn.softmax": "softmax"}
"""TensorFlow functions a TFOpLambda may name, and the Keras 3 operation each is."""


def known_class(cls: str) -> bool:
    """A Keras 2 layer class the rebuild can make in Keras 3."""
    import keras

    cls = REGISTERED.get(cls, cls)
    return isinstance(getattr(keras.layers, cls, None), type) or cls in APPLICATION_LAYERS or cls == "TFOpLambda" or cls in MODELS


def allowed_operation(entry: dict) -> bool:
    """An operation layer whose TensorFlow function the rebuild turns into a Keras 3 layer (checked before loading)."""
    function = (entry.get("config") or {}).get("function")
    return entry.get("class_name") == "TFOpLambda" and (function in BINARY or function in UNARY)


@dataclass(frozen=True)
class LayerNames:
    """Layer paths in the Keras 3 rebuild (``a_b/conv``) and as the user's model names them (``a/b/conv``)."""

    renamed: tuple[tuple[str, str], ...] = ()  # (Keras 3 path, original path) of every renamed layer and what is inside it

    def shown(self, path: str) -> str:
        """The original path of a Keras 3 path (unchanged when nothing on it was renamed)."""
        best = ""
        for mine, theirs in self.renamed:
            if (path == mine or path.startswith(mine + "/")) and len(mine) > len(best):
                best, found = mine, theirs
        return path if not best else found + path[len(best):]

    def internal(self, path: str) -> str:
        """The Keras 3 path of a path as the user writes it (``conv1/conv`` -> ``conv1_conv``); unchanged when unknown."""
        for mine, theirs in sorted(self.renamed, key=lambda p: -len(p[1])):
            if path == theirs or path.startswith(theirs + "/"):
                return mine + path[len(theirs):]
        return path


@dataclass
class Translation:
    """What a translation changed: the dropped keys (``path.key``) and the renamed layers."""

    dropped: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)


def translate(config: dict, record: Translation) -> dict:
    """The Keras 3 ``{"class_name", "config"}`` of a Keras 2 model config (``model.get_config()`` with its class)."""
    return _model(config, record, "", "")


def _unique(name: str, taken: set[str]) -> str:
    base = name.replace("/", "_")
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _model(layer: dict, record: Translation, mine: str, theirs: str) -> dict:
    """A (nested) Functional or Sequential model entry; ``mine`` / ``theirs`` the Keras 3 / original path prefixes."""
    cls = layer["class_name"]
    config = dict(layer["config"]) if isinstance(layer["config"], dict) else {"name": layer.get("name"), "layers": layer["config"]}
    entries = layer_list(layer)
    names = [layer_name(x) for x in entries]
    taken = {n for n in names if "/" not in n}
    rename = {n: _unique(n, taken) for n in names if "/" in n}
    nested = {n for n, x in zip(names, entries) if x.get("class_name") in MODELS}

    def ref(name: str, node: int, tensor: int) -> list:
        return [rename.get(name, name), node - 1 if name in nested and node > 0 else node, tensor]

    out_layers = []
    for name, entry in zip(names, entries):
        new = rename.get(name, name)
        if new != name:
            record.renamed.append((mine + new, theirs + name))
        if entry.get("class_name") in MODELS:
            built = _model(entry, record, f"{mine}{new}/", f"{theirs}{name}/")
        elif entry.get("class_name") == "TFOpLambda":
            built = _operation(entry, f"{theirs}{name}")
        else:
            built = _layer(entry, record, f"{theirs}{name}")
        built["config"]["name"] = new
        built["name"] = new
        if "inbound_nodes" in built:
            built["inbound_nodes"] = [_node(node, ref) for node in built["inbound_nodes"]]
        out_layers.append(built)
    config["layers"] = out_layers
    for key in ("input_layers", "output_layers"):
        if key in config:
            ends = config[key]
            ends = [ends] if ends and isinstance(ends[0], str) else ends
            ends = [ref(*end[:3]) for end in ends]
            config[key] = ends[0] if len(ends) == 1 else ends  # one input: a tensor, not a list of one
    out = {"class_name": "Sequential" if cls == "Sequential" else "Functional", "config": config}
    for key in ("inbound_nodes",):
        if key in layer:
            out[key] = layer[key]
    return out


def _node(node: Any, ref: Any) -> list:
    """One inbound node (a list of [name, node, tensor, kwargs]) with every tensor reference mapped by ``ref``."""
    out = []
    for item in node:
        name, index, tensor, *rest = item
        kwargs = rest[0] if rest else {}
        out.append([*ref(name, index, tensor), {k: _mapped(v, ref) for k, v in kwargs.items()}])
    return out


def _is_ref(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and all(isinstance(v, int) for v in value[1:])


def _mapped(value: Any, ref: Any) -> Any:
    return ref(*value) if _is_ref(value) else value


def _layer(entry: dict, record: Translation, path: str) -> dict:
    """A built-in (or ``keras.applications``) layer entry with the keys its Keras 3 class does not take dropped."""
    import keras

    cls = REGISTERED.get(entry["class_name"], entry["class_name"])
    config = dict(entry["config"])
    if cls in APPLICATION_LAYERS:
        import importlib

        module = APPLICATION_LAYERS[cls]
        target = getattr(importlib.import_module(module), cls)
    else:
        module, target = "keras.layers", getattr(keras.layers, cls)
    for old, new in RENAMED_KEYS.get(cls, {}).items():
        if old in config:
            config[new] = config.pop(old)
    if cls == "BatchNormalization" and isinstance(config.get("axis"), list) and len(config["axis"]) == 1:
        config["axis"] = config["axis"][0]
    allowed = set(pyinspect.signature(target.__init__).parameters) | BASE_KEYS
    for key in sorted(k for k in config if k not in allowed):
        record.dropped.append(f"{path}.{key}")
        config.pop(key)
    out = {"class_name": cls, "config": config, "module": module, "registered_name": None}
    if "inbound_nodes" in entry:
        out["inbound_nodes"] = entry["inbound_nodes"]
    return out


def _operation(entry: dict, path: str) -> dict:
    """A TFOpLambda as the Keras 3 layer that computes it (its inbound node rewritten to that layer's inputs)."""
    function = entry["config"].get("function")
    nodes = entry.get("inbound_nodes") or []

    def refuse(why: str) -> ModelError:
        return ModelError(f"layer {path} (tf.{function}): expected {why}; the audit rebuilds only elementwise arithmetic with a "
                          "constant or a second tensor, and activations")

    if len(nodes) != 1 or not (isinstance(nodes[0], list) and nodes[0] and isinstance(nodes[0][0], str)):
        raise refuse("one call on one tensor")
    name, index, tensor, *rest = nodes[0]
    kwargs = dict(rest[0]) if rest else {}
    kwargs.pop("name", None)
    base = {"name": entry["config"].get("name"), "trainable": entry["config"].get("trainable", True),
            "dtype": entry["config"].get("dtype", "float32")}
    x = [name, index, tensor, {}]
    if function in UNARY:
        extra = {k: v for k, v in kwargs.items() if not (function == "nn.gelu" and k == "approximate" and v is False)}
        if extra:
            raise refuse(f"no arguments besides the tensor, found {sorted(extra)}")
        return _builtin("Activation", {**base, "activation": UNARY[function]}, [[x]])
    op = BINARY.get(str(function))
    if op is None or set(kwargs) != {"y"}:
        raise refuse("a known operation of two operands x and y" if op is None else f"the arguments x and y, found {sorted(kwargs) or 'x only'}")
    y = kwargs["y"]
    if _is_ref(y):
        if op == "divide":
            raise refuse("a constant divisor (a tensor divided by a tensor has no Keras 3 layer)")
        return _builtin({"add": "Add", "subtract": "Subtract", "multiply": "Multiply"}[op], base, [[x, [*y, {}]]])
    constant = np.asarray(y, np.float64)
    if constant.dtype.kind not in "fiu" or (constant.ndim and constant.size != constant.shape[-1]):
        raise refuse(f"a number or one number per channel as y, found {str(y)[:60]}")
    values = constant.reshape(-1).tolist()
    one = values[0] if len(values) == 1 else values
    scale, offset = {"add": (1.0, one), "subtract": (1.0, [-v for v in values] if len(values) > 1 else -one),
                     "multiply": (one, 0.0), "divide": ([1.0 / v for v in values] if len(values) > 1 else 1.0 / one, 0.0)}[op]
    return _builtin("Rescaling", {**base, "scale": scale, "offset": offset}, [[x]])


def _builtin(cls: str, config: dict, nodes: list) -> dict:
    return {"class_name": cls, "config": config, "module": "keras.layers", "registered_name": None, "inbound_nodes": nodes}

"""A model file is untrusted input: its stored architecture is read as data and checked before anything loads it
(DESIGN §14 "Inspect before loading").

Every format stores its layer graph as JSON: an HDF5 file in its ``model_config`` attribute, a ``.keras``
archive in ``config.json``, a Keras 2 SavedModel in ``keras_metadata.pb`` (a protocol buffer whose nodes each
carry a JSON document; decoded here by hand, so no loader of any kind runs). The only Python a loader could
run from these documents is a ``Lambda`` layer's marshalled code, and the TensorFlow function a Keras 2
operation layer (``TFOpLambda`` and its kin) names; :func:`refuse_code` refuses the first by name in every
format, and the second unless it is one of the operations :mod:`pipeline.model.rebuild` turns into a Keras 3
layer. Custom and subclassed layers, which no Keras 3 rebuild can reproduce, are refused by
:func:`refuse_unconvertible` for Keras 2 files.
"""

from __future__ import annotations

import json
import zipfile
from typing import Any, Iterator

from pipeline.errors import ModelError
from pipeline.model.protobuf import proto_fields
from pipeline.model.source import ModelFile

MODELS = ("Functional", "Sequential", "Model")
OPERATION_LAYERS = ("TFOpLambda", "SlicingOpLambda", "ClassMethod", "InstanceMethod", "InstanceProperty")
"""Keras 2's records of plain TensorFlow calls: each names a TensorFlow function or attribute that loading calls."""
GRAPH_IDENTIFIERS = ("_tf_keras_network", "_tf_keras_model", "_tf_keras_sequential")


# --------------------------------------------------------------------------- reading the stored config


def _keras_json(obj: dict) -> Any:
    """tf_keras' JSON encodings in SavedModel metadata: ``{"class_name": "__tuple__", "items": [...]}`` is a tuple,
    ``TensorShape`` its dimensions (what tf_keras' own decoder does)."""
    kind = obj.get("class_name")
    if kind == "__tuple__":
        return tuple(obj.get("items") or ())
    if kind == "TensorShape":
        return list(obj.get("items") or [])
    return obj


def savedmodel_nodes(data: bytes) -> list[dict[str, Any]]:
    """The nodes of a ``keras_metadata.pb`` (``SavedMetadata.nodes``, field 1): ``{"path", "identifier", "metadata"}``
    with the metadata's JSON parsed (fields 3, 4 and 5 of ``SavedObject``)."""
    nodes = []
    for number, raw in proto_fields(data):
        if number != 1 or not isinstance(raw, bytes):
            continue
        node: dict[str, Any] = {"path": "", "identifier": "", "metadata": {}}
        for field, value in proto_fields(raw):
            if isinstance(value, bytes) and field in (3, 4, 5):
                text = value.decode("utf-8")
                if field == 5:
                    node["metadata"] = json.loads(text, object_hook=_keras_json) if text else {}
                else:
                    node["path" if field == 3 else "identifier"] = text
        nodes.append(node)
    return nodes


def stored_config(file: ModelFile) -> dict[str, Any]:
    """The model's stored architecture ``{"class_name", "config"}``, read as data (nothing is loaded)."""
    try:
        if file.container == "hdf5":
            import h5py

            with h5py.File(file.path, "r") as f:
                raw = f.attrs["model_config"]
            return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        if file.container == "zip":
            with zipfile.ZipFile(file.path) as archive:
                return json.loads(archive.read("config.json"))
        return _savedmodel_config(file)
    except (ValueError, KeyError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ModelError(f"{file.path}: expected a {file.describe()} whose stored architecture can be read, found it damaged "
                         f"({type(exc).__name__}: {exc})") from None


def _savedmodel_config(file: ModelFile) -> dict[str, Any]:
    """A SavedModel's architecture from ``keras_metadata.pb``: the root node's class and config; every node's
    class besides (``nodes``), so a layer held by a subclassed model is seen too."""
    meta = file.path / "keras_metadata.pb"
    if not meta.is_file():
        raise ModelError(f"{file.path}: expected a Keras SavedModel (with keras_metadata.pb), found a SavedModel without Keras "
                         "metadata (written by tf.saved_model.save, or Keras 3's model.export): it holds traced functions, no layer "
                         "graph to explain; save the Keras model itself (model.save('model.keras'))")
    nodes = savedmodel_nodes(meta.read_bytes())
    root = next((n for n in nodes if n["path"] == "root"), None)
    if root is None:
        raise ValueError("keras_metadata.pb has no root node")
    meta_root = root["metadata"]
    graph = root["identifier"] in GRAPH_IDENTIFIERS and meta_root.get("is_graph_network", True) and "config" in meta_root
    config = meta_root.get("config") if graph else {}
    return {"class_name": meta_root.get("class_name", "?"), "config": config if isinstance(config, dict) else {},
            "nodes": [{"path": n["path"], "class_name": n["metadata"].get("class_name"), "name": n["metadata"].get("name"),
                       "config": n["metadata"].get("config")} for n in nodes if n["path"] != "root"]}


# --------------------------------------------------------------------------- walking it


def layer_list(config: Any) -> list[dict]:
    """A model config's layers (Keras 2.0's Sequential stored a bare list)."""
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner if isinstance(inner, list) else (inner or {}).get("layers", []) if isinstance(inner, dict) else []
    return [x for x in layers if isinstance(x, dict)]


def layer_name(layer: dict) -> str:
    config = layer.get("config")
    return str((config.get("name") if isinstance(config, dict) else None) or layer.get("name") or "?")


def walk_layers(config: dict, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """(path, layer entry) of every layer in a model config, nested models expanded (``outer/inner``)."""
    for layer in layer_list(config):
        name = layer_name(layer)
        yield f"{prefix}{name}", layer
        if layer.get("class_name") in MODELS:
            yield from walk_layers(layer, f"{prefix}{name}/")


def _entries(value: Any, path: str) -> Iterator[tuple[str, dict]]:
    """Every serialised object in a config (a dict with ``class_name``), wrapped layers included (TimeDistributed,
    Bidirectional), with a readable path."""
    if isinstance(value, dict):
        if "class_name" in value:
            name = value.get("config", {}).get("name") if isinstance(value.get("config"), dict) else None
            here = f"{path}/{name}" if name and path else (name or path)
            yield here or "?", value
            path = here
        for key, item in value.items():
            if key not in ("inbound_nodes", "build_config"):
                yield from _entries(item, path)
    elif isinstance(value, list):
        for item in value:
            yield from _entries(item, path)


# --------------------------------------------------------------------------- the refusals


def refuse_code(config: dict, source: Any, allowed_operation: Any = lambda layer: False) -> None:
    """Refuse, by name, a stored architecture whose loading would run code from the file: a ``Lambda`` layer (any
    format, any depth), or a Keras 2 operation layer unless ``allowed_operation(entry)`` says the rebuild knows it.

    ``source`` names the user's file in the message."""
    for path, entry in _entries([config.get("config"), config.get("nodes")], ""):
        cls = entry.get("class_name")
        if cls == "Lambda":
            raise ModelError(f"{source}: layer {path} is a Lambda layer: its code is never run (as Keras 3's safe mode does), so the "
                             "audit cannot rebuild it; replace it with built-in layers, or export a Keras 3 .keras file that "
                             "registers it as a layer class")
        if cls in OPERATION_LAYERS and not allowed_operation(entry):
            op = (entry.get("config") or {}).get("function") or (entry.get("config") or {}).get("name") or "?"
            raise ModelError(f"{source}: layer {path} is a Keras 2 record of the TensorFlow operation tf.{op} ({cls}), which the "
                             "audit does not rebuild in Keras 3 (only elementwise arithmetic and activations); write it with Keras "
                             "layers, or export a Keras 3 .keras file")


def refuse_unconvertible(config: dict, source: Any, known: Any) -> None:
    """Refuse, by name, a Keras 2 architecture Keras 3 cannot rebuild: a subclassed model, or a layer class that is
    neither a Keras 3 layer nor one ``known(class_name)`` maps (custom layers)."""
    def subclassed(kind: Any, where: str) -> ModelError:
        return ModelError(f"{source}: expected a Functional or Sequential Keras 2 model, found a subclassed model ({kind}){where}: its "
                          "layer graph is Python code the audit cannot rebuild; rebuild it as a Functional or Sequential model and save "
                          "it, or export a Keras 3 .keras file")

    if config.get("class_name") not in MODELS or not layer_list(config):
        raise subclassed(config.get("class_name"), "")
    for path, layer in walk_layers(config):
        cls = str(layer.get("class_name"))
        if cls in MODELS and not layer_list(layer):
            raise subclassed(cls, f" at layer {path}")
        if cls not in MODELS and not known(cls):
            raise ModelError(f"{source}: layer {path} is a custom layer ({cls}) that Keras 3 does not have; register it "
                             "(keras.saving.register_keras_serializable) and export a Keras 3 .keras file")

"""Models saved by Keras 2 (tf_keras, TensorFlow <= 2.15), DESIGN §14: a SavedModel folder, a ``.h5`` or a
``.keras`` file written by tf_keras is loaded with tf_keras, rebuilt in Keras 3 from its config (keys Keras 3
does not know dropped and listed, renamed arguments mapped), its weights copied layer by layer, and checked
equal on the evaluation images before any Grad-CAM. The converted ``.keras`` is cached by the source's sha256.

What cannot be converted is refused by name: custom layers, ``Lambda`` layers (their code is never run),
subclassed models, and SavedModels without Keras metadata.
"""

from __future__ import annotations

import inspect
import json
import os
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipeline.errors import ModelError

LEGACY_INSTALL = "pip install -e '.[legacy]' (make install does)"
MAX_DIFF = 1e-4  # max |Δ probability| allowed between the Keras 2 model and its Keras 3 rebuild
CHECK_IMAGES = 32
MODELS = ("Functional", "Sequential", "Model")
BASE_KEYS = {"name", "trainable", "dtype", "autocast"}  # every Keras 3 layer takes these
RENAMED = {"InputLayer": {"batch_input_shape": "batch_shape"}}  # Keras 2 key -> Keras 3 key, per class


@dataclass(frozen=True)
class Conversion:
    """A Keras 2 model as the audit uses it: ``converted`` the Keras 3 ``.keras`` (in the cache)."""

    source: Path
    format: str  # "savedmodel" | "h5" | "keras"
    sha256: str  # of the source (a SavedModel: its files)
    converted: Path
    dropped: tuple[str, ...] = ()  # "outer/layer.key" of every config key Keras 3 does not know
    max_diff: float | None = None  # max |Δ probability| on the check's images (None until checked)
    n_checked: int = 0
    from_cache: bool = False
    load_seconds: float = 0.0
    convert_seconds: float = 0.0
    tf_keras: str = ""

    def record(self) -> dict[str, Any]:
        """provenance's ``model_source``."""
        return {"format": self.format, "path": str(self.source), "sha256": self.sha256, "converted": str(self.converted),
                "dropped_keys": list(self.dropped), "max_probability_difference": self.max_diff, "checked_images": self.n_checked,
                "from_cache": self.from_cache, "load_seconds": round(self.load_seconds, 3), "convert_seconds": round(self.convert_seconds, 3),
                "tf_keras": self.tf_keras}

    def line(self) -> str:
        """"converted from a Keras 2 SavedModel (max |Δp| 3e-08 on 32 images)" for validate and the run line."""
        what = {"savedmodel": "SavedModel", "h5": ".h5 file", "keras": ".keras file"}[self.format]
        check = f"max |Δp| {self.max_diff:.1g} on {self.n_checked} images" if self.max_diff is not None else "not checked yet"
        return f"converted from a Keras 2 {what} ({check}{'; from the cache' if self.from_cache else ''})"


# --------------------------------------------------------------------------- what the file is


def legacy_format(path: Path) -> str | None:
    """"savedmodel", "h5" or "keras" when ``path`` holds a Keras 2 model; None for a Keras 3 file."""
    path = Path(path)
    if path.is_dir() or path.name == "saved_model.pb":
        return "savedmodel"
    if path.suffix == ".h5":
        import h5py

        try:
            with h5py.File(path, "r") as f:
                version = f.attrs.get("keras_version", b"")
        except OSError:
            return None  # not an HDF5 file: the Keras 3 loader says what is wrong
        version = version.decode() if isinstance(version, bytes) else str(version)
        return "h5" if version and not version.startswith("3.") else None
    if path.suffix == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                meta = json.loads(archive.read("metadata.json"))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None
        return "keras" if not str(meta.get("keras_version", "3")).startswith("3.") else None
    return None


def savedmodel_folder(path: Path) -> Path:
    return Path(path).parent if Path(path).name == "saved_model.pb" else Path(path)


def source_sha256(path: Path, fmt: str) -> str:
    """sha256 of the file, or of a SavedModel folder's files (relative names and bytes, in sorted order)."""
    import hashlib

    h = hashlib.sha256()
    if fmt != "savedmodel":
        with Path(path).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    root = savedmodel_folder(path)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- refusals before any code runs


def stored_config(path: Path, fmt: str) -> dict | None:
    """The model config a .h5 / tf_keras .keras file stores (read without loading anything); None for a SavedModel."""
    if fmt == "h5":
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
        if raw is None:
            raise ModelError(f"{path}: expected a Keras 2 .h5 model with its architecture (model_config), found weights only; "
                             "save the whole model (model.save) or export a Keras 3 .keras file")
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    if fmt == "keras":
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    return None


def walk_layers(config: dict, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """(path, layer entry) of every layer in a Keras 2 model config, nested models expanded."""
    for layer in (config.get("config") or {}).get("layers", []):
        name = (layer.get("config") or {}).get("name") or layer.get("name", "?")
        yield f"{prefix}{name}", layer
        if layer.get("class_name") in MODELS:
            yield from walk_layers(layer, f"{prefix}{name}/")


def refuse_unconvertible(config: dict, source: Path) -> None:
    """Refuse, by name, a model config Keras 3 cannot rebuild: a subclassed model, a Lambda or a custom layer."""
    import keras

    kind = config.get("class_name")
    if kind not in MODELS or "layers" not in (config.get("config") or {}):
        raise ModelError(f"{source}: expected a Functional or Sequential Keras 2 model, found a subclassed model ({kind}): its layer graph is "
                         "Python code the audit cannot rebuild; rebuild it as a Functional or Sequential model and save it, or export "
                         "a Keras 3 .keras file")
    for path, layer in walk_layers(config):
        cls = layer.get("class_name")
        if cls == "Lambda":
            raise ModelError(f"{source}: layer {path} is a Lambda layer: its code is not run (as Keras 3's safe mode does); replace it "
                             "with a built-in layer, or export a Keras 3 .keras file with it registered")
        if cls in MODELS:
            refuse_unconvertible(layer, source)
        elif not isinstance(getattr(keras.layers, str(cls), None), type):
            raise ModelError(f"{source}: layer {path} is a custom layer ({cls}) that Keras 3 does not have; register it "
                             "(keras.saving.register_keras_serializable) and export a Keras 3 .keras file")


# --------------------------------------------------------------------------- load with tf_keras


def tf_keras_module() -> Any:
    try:
        import tf_keras
    except ImportError:
        raise ModelError(f"this model was saved by Keras 2 (tf_keras); expected the tf-keras package to load it, found it not installed; "
                         f"install it with {LEGACY_INSTALL}") from None
    return tf_keras


def load_legacy(path: Path, fmt: str) -> Any:
    """The tf_keras model, after the refusals that need no loading (Lambda and custom layers in a stored config)."""
    config = stored_config(path, fmt)
    if config is not None:
        refuse_unconvertible(config, path)
    tk = tf_keras_module()
    folder = savedmodel_folder(path)
    if fmt == "savedmodel" and not (folder / "keras_metadata.pb").is_file():
        raise ModelError(f"{folder}: expected a Keras SavedModel (with keras_metadata.pb), found a SavedModel without Keras metadata, "
                         "written by tf.saved_model.save from a non-Keras module: there is no layer graph to explain; save the Keras "
                         "model itself (model.save) or export a Keras 3 .keras file")
    try:
        model = tk.models.load_model(str(folder if fmt == "savedmodel" else path), compile=False)
    except Exception as exc:  # tf_keras raises many types; the first line is what matters
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: expected a Keras 2 model that tf_keras loads, found an error: {text}") from None
    try:
        config = {"class_name": type(model).__name__, "config": model.get_config()}
    except NotImplementedError:
        config = {"class_name": type(model).__name__, "config": {}}
    refuse_unconvertible(config, path)
    return model


# --------------------------------------------------------------------------- rebuild in Keras 3


def clean_layer(layer: dict, dropped: list[str], prefix: str = "") -> dict:
    """A Keras 2 layer entry as Keras 3 builds it: keys its class does not take dropped (listed in ``dropped``),
    renamed keys mapped, nested models cleaned in turn; Keras 2's nested-model node indices moved down by one
    (Keras 2 counts the model's own construction as node 0, Keras 3 does not)."""
    import keras

    cls = layer["class_name"]
    config = dict(layer["config"])
    name = config.get("name", "?")
    out: dict[str, Any] = {}
    if cls in MODELS:
        config["layers"] = [clean_layer(x, dropped, f"{prefix}{name}/") for x in config["layers"]]
        nested = {x["config"]["name"] for x in config["layers"] if x["class_name"] in MODELS}
        for x in config["layers"]:
            if "inbound_nodes" in x:
                x["inbound_nodes"] = [[[n, i - 1 if n in nested and i > 0 else i, *rest] for n, i, *rest in node]
                                      for node in x["inbound_nodes"]]
        for key in ("input_layers", "output_layers"):
            if key in config:
                ends = [[n, i - 1 if n in nested and i > 0 else i, t] for n, i, t in config[key]]
                config[key] = ends[0] if len(ends) == 1 else ends  # one input: a tensor, not a list of one
        out = {"class_name": "Sequential" if cls == "Sequential" else "Functional", "config": config}
    else:
        target = getattr(keras.layers, cls)
        for old, new in RENAMED.get(cls, {}).items():
            if old in config:
                config[new] = config.pop(old)
        if cls == "BatchNormalization" and isinstance(config.get("axis"), list) and len(config["axis"]) == 1:
            config["axis"] = config["axis"][0]
        allowed = set(inspect.signature(target.__init__).parameters) | BASE_KEYS
        for key in sorted(k for k in config if k not in allowed):
            dropped.append(f"{prefix}{name}.{key}")
            config.pop(key)
        out = {"class_name": cls, "config": config, "module": "keras.layers", "registered_name": None}
    for key in ("inbound_nodes", "name"):
        if key in layer:
            out[key] = layer[key]
    return out


def rebuild(model: Any) -> tuple[Any, tuple[str, ...]]:
    """(the Keras 3 model with the tf_keras model's architecture and weights, the dropped keys)."""
    import keras

    dropped: list[str] = []
    top = clean_layer({"class_name": type(model).__name__, "config": model.get_config()}, dropped)
    try:
        built = (keras.Sequential if top["class_name"] == "Sequential" else keras.Model).from_config(top["config"])
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model {model.name}: Keras 3 could not rebuild the Keras 2 architecture: {text}") from None
    copy_weights(model, built)
    return built, tuple(dropped)


def leaf_layers(model: Any, prefix: str = "") -> dict[str, Any]:
    """path -> leaf layer, nested models expanded (Keras 2 and Keras 3 alike)."""
    out = {}
    for layer in model.layers:
        if type(layer).__name__ in MODELS and hasattr(layer, "layers"):
            out.update(leaf_layers(layer, f"{prefix}{layer.name}/"))
        else:
            out[f"{prefix}{layer.name}"] = layer
    return out


def copy_weights(source: Any, target: Any) -> None:
    """Every layer's weights by path, shapes checked."""
    mine = leaf_layers(target)
    for path, layer in leaf_layers(source).items():
        weights = layer.get_weights()
        if not weights:
            continue
        if path not in mine:
            raise ModelError(f"model {source.name}: layer {path} has weights but no counterpart in the Keras 3 rebuild")
        expected = [tuple(w.shape) for w in mine[path].get_weights()]
        found = [tuple(w.shape) for w in weights]
        if expected != found:
            raise ModelError(f"model {source.name}: layer {path}: expected weights of shapes {expected} in Keras 3, found {found} in Keras 2")
        mine[path].set_weights(weights)


# --------------------------------------------------------------------------- the check


def max_difference(legacy: Any, converted: Any, images: np.ndarray) -> float:
    """max |Δ output| of the two models on ``images`` (preprocessed, float32)."""
    a = np.asarray(legacy(images, training=False), np.float64)
    b = np.asarray(converted(images, training=False), np.float64)
    return float(np.abs(a - b).max()) if a.size else 0.0


def first_difference(legacy: Any, converted: Any, images: np.ndarray, tolerance: float = MAX_DIFF) -> str:
    """The first layer (graph order, nested expanded) whose outputs differ between the two models, for the refusal."""
    import keras
    import tf_keras as tk

    k2 = leaf_layers(legacy)
    k3 = leaf_layers(converted)
    for path, layer in k2.items():
        if path not in k3 or type(layer).__name__ == "InputLayer":
            continue
        try:
            a = tk.Model(legacy.inputs, layer.output)(images, training=False)
            b = keras.Model(converted.inputs, k3[path].output)(images, training=False)
        except Exception:  # a layer inside a nested model is not reachable from the outer inputs
            continue
        if np.shape(a) == np.shape(b) and float(np.abs(np.asarray(a) - np.asarray(b)).max()) > tolerance:
            return path
    return "none found layer by layer (the difference builds up)"


# --------------------------------------------------------------------------- the cache


def cache_dir(reports: Path) -> Path:
    return Path(reports) / ".converted"


def cached(source: Path, fmt: str, folder: Path) -> Conversion | None:
    """The checked conversion of this source (same sha256) in the cache, or None."""
    sha = source_sha256(source, fmt)
    model, meta = folder / f"{sha}.keras", folder / f"{sha}.json"
    if not (model.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text())
    except ValueError:
        return None
    return Conversion(source, fmt, sha, model, tuple(info.get("dropped_keys", [])), info.get("max_probability_difference"),
                      int(info.get("checked_images", 0)), True, tf_keras=str(info.get("tf_keras", "")))


def convert(source: Path, fmt: str, folder: Path) -> tuple[Conversion, Any]:
    """Load with tf_keras and rebuild in Keras 3 (saved, unchecked, beside the cache's entries); returns the
    conversion and the tf_keras model (for the check)."""
    t0 = time.perf_counter()
    legacy = load_legacy(source, fmt)
    t1 = time.perf_counter()
    built, dropped = rebuild(legacy)
    sha = source_sha256(source, fmt)
    folder.mkdir(parents=True, exist_ok=True)
    unchecked = folder / f"{sha}.unchecked-{os.getpid()}.keras"
    built.save(unchecked)
    import tf_keras

    return Conversion(source, fmt, sha, unchecked, dropped, load_seconds=t1 - t0, convert_seconds=time.perf_counter() - t1,
                      tf_keras=tf_keras.__version__), legacy


def accept(conversion: Conversion, max_diff: float, n: int) -> Conversion:
    """Move a checked conversion into the cache under the source's sha256, with its record beside it."""
    folder = conversion.converted.parent
    final = folder / f"{conversion.sha256}.keras"
    os.replace(conversion.converted, final)
    done = replace(conversion, converted=final, max_diff=max_diff, n_checked=n)
    tmp = folder / f".{conversion.sha256}.json.partial"
    tmp.write_text(json.dumps(done.record(), indent=2))
    os.replace(tmp, folder / f"{conversion.sha256}.json")
    return done


def discard(conversion: Conversion) -> None:
    if not conversion.from_cache and "unchecked" in conversion.converted.name:
        conversion.converted.unlink(missing_ok=True)

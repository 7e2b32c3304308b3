"""Models saved by Keras 2 (tf_keras, TensorFlow <= 2.15), DESIGN §14: a SavedModel folder, an HDF5 file or a
``.keras`` file written by tf_keras is inspected (:mod:`pipeline.model.stored`: nothing of the file's code
runs), loaded with tf_keras, rebuilt in Keras 3 from its config (:mod:`pipeline.model.rebuild`), its weights
copied layer by layer, and checked equal on the evaluation images before any Grad-CAM
(:mod:`pipeline.prepare.conversion_check`). Only a checked conversion is written, to the cache keyed by the source's
sha256; a failed one leaves the cache as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import ModelError, one_line
from pipeline.model.stored import MODELS, refuse_code, refuse_unconvertible, stored_config
from pipeline.model.rebuild import APPLICATION_LAYERS, LayerNames, Translation, allowed_operation, known_class, translate
from pipeline.model.source import ModelFile
from pipeline.records.plain import JsonObject

if TYPE_CHECKING:
    import keras
    import tf_keras

LEGACY_INSTALL = "pip install -e '.[legacy]' (make install does)"
MAX_DIFF = 1e-4  # max |Δ probability| allowed between the Keras 2 model and its Keras 3 rebuild
CHECK_IMAGES = 32


@dataclass(frozen=True)
class Conversion:
    """A Keras 2 model as the audit uses it: ``converted`` the cached Keras 3 ``.keras`` (None until checked)."""

    source: Path
    format: str  # "savedmodel" | "h5" | "keras"
    sha256: str  # of the source (a SavedModel: its files)
    converted: Path | None = None
    dropped: tuple[str, ...] = ()  # "outer/layer.key" of every config key Keras 3 does not know
    renamed: tuple[tuple[str, str], ...] = ()  # (Keras 3 path, original path) of layers renamed for Keras 3
    max_diff: float | None = None  # max |Δ probability| on the check's images (None until checked)
    n_checked: int = 0
    from_cache: bool = False
    load_seconds: float = 0.0
    convert_seconds: float = 0.0
    tf_keras: str = ""

    @property
    def names(self) -> LayerNames:
        return LayerNames(self.renamed)

    def record(self) -> JsonObject:
        """provenance's ``model_source``."""
        return {"format": self.format, "path": str(self.source), "sha256": self.sha256, "converted": str(self.converted),
                "dropped_keys": list(self.dropped), "renamed_layers": {theirs: mine for mine, theirs in self.renamed},
                "max_probability_difference": self.max_diff, "checked_images": self.n_checked, "from_cache": self.from_cache,
                "load_seconds": round(self.load_seconds, 3), "convert_seconds": round(self.convert_seconds, 3), "tf_keras": self.tf_keras}

    def line(self) -> str:
        """"converted from a Keras 2 SavedModel (max |Δp| 3e-08 on 32 images)" for validate and the run line."""
        what = {"savedmodel": "SavedModel", "h5": "HDF5 file", "keras": ".keras file"}[self.format]
        check = f"max |Δp| {self.max_diff:.1g} on {self.n_checked} images" if self.max_diff is not None else "not checked yet"
        return f"converted from a Keras 2 {what} ({check}{'; from the cache' if self.from_cache else ''})"


def source_sha256(file: ModelFile) -> str:
    """sha256 of the file, or of a SavedModel folder's files (relative names and bytes, in sorted order)."""
    import hashlib

    h = hashlib.sha256()
    if file.container != "savedmodel":
        with file.path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    for f in sorted(p for p in file.path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(file.path)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- inspect, then load with tf_keras


def inspect_keras2(file: ModelFile) -> None:
    """The refusals that need no loading, from the stored config read as data: code (Lambda, unknown operations),
    subclassed models, custom layers."""
    config = stored_config(file)
    refuse_code(config, file.path, allowed_operation)
    refuse_unconvertible(config, file.path, known_class)


def tf_keras_module() -> ModuleType:
    try:
        import tf_keras
    except ImportError:
        raise ModelError(f"this model was saved by Keras 2 (tf_keras); expected the tf-keras package to load it, found it not installed; "
                         f"install it with {LEGACY_INSTALL}") from None
    return tf_keras


def load_legacy(file: ModelFile) -> tf_keras.Model:
    """The tf_keras model, loaded only after :func:`inspect_keras2` passed."""
    inspect_keras2(file)
    tk = tf_keras_module()
    try:
        model = _from_config(file, tk)
        if model is None:  # an HDF5 file, or an archive or SavedModel whose parts the direct route cannot read
            model = tk.models.load_model(str(file.path), compile=False, custom_objects=application_layers(tk))
    except Exception as exc:  # tf_keras raises many types; its whole message is the reason
        raise ModelError(f"{file.path}: expected a Keras 2 model that tf_keras loads, found an error: {one_line(exc)}") from None
    try:  # what tf_keras built must be what the stored config said (a revived subclass has no layer graph)
        config = {"class_name": type(model).__name__, "config": model.get_config()}
    except NotImplementedError:
        config = {"class_name": type(model).__name__, "config": {}}
    refuse_unconvertible(config, file.path, known_class)
    return model


def _from_config(file: ModelFile, tk: ModuleType) -> tf_keras.Model | None:
    """The tf_keras model built from its stored config with its weights restored, the way tf_keras' own loader does,
    minus what that costs: a SavedModel's traced graph functions are never deserialised (its variables checkpoint is
    read directly), and a ``.keras`` archive's weights are read from a local copy rather than through TensorFlow's
    file layer (10x faster). None when the file is not of these forms (HDF5: tf_keras' loader is direct already)."""
    if file.container == "hdf5":
        return None
    custom = application_layers(tk)
    config = stored_config(file)
    if file.container == "savedmodel":
        variables = file.path / "variables" / "variables"
        if not config.get("config") or not (file.path / "variables" / "variables.index").is_file():
            return None
        model = (tk.Sequential if config["class_name"] == "Sequential" else tk.Model).from_config(config["config"], custom_objects=custom)
        model.load_weights(str(variables)).assert_existing_objects_matched().expect_partial()  # extras: the optimizer's slots
        return model
    with zipfile.ZipFile(file.path) as archive:
        if set(archive.namelist()) - {"config.json", "metadata.json", "model.weights.h5"}:
            return None  # assets: tf_keras' loader restores them
        with tempfile.TemporaryDirectory(prefix="gradcam-audit-keras2-") as tmp:
            archive.extract("model.weights.h5", tmp)
            model = tk.saving.deserialize_keras_object(config, custom_objects=custom, safe_mode=True)
            model.load_weights(str(Path(tmp) / "model.weights.h5"))
    return model


def application_layers(tk: ModuleType) -> dict[str, type]:
    """tf_keras' own classes for the ``keras.applications`` layers it defines outside ``tf_keras.layers``."""
    import importlib

    out = {}
    for cls, module in APPLICATION_LAYERS.items():
        found = getattr(importlib.import_module(module.replace("keras.src", f"{tk.__name__}.src")), cls, None)
        if isinstance(found, type):
            out[cls] = found
    return out


# --------------------------------------------------------------------------- rebuild in Keras 3


def rebuild(model: tf_keras.Model, source: Path) -> tuple[keras.Model, Translation]:
    """(the Keras 3 model with the tf_keras model's architecture and weights, what the translation changed)."""
    import keras

    record = Translation()
    try:
        top = translate({"class_name": type(model).__name__, "config": model.get_config()}, record)
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None
    try:
        built = (keras.Sequential if top["class_name"] == "Sequential" else keras.Model).from_config(top["config"])
    except Exception as exc:
        raise ModelError(f"{source}: Keras 3 could not rebuild the Keras 2 architecture: {one_line(exc)}") from None
    copy_weights(model, built, LayerNames(tuple(record.renamed)), source)
    return built, record


def leaf_layers(model: tf_keras.Model | keras.Model, prefix: str = "") -> dict[str, tf_keras.layers.Layer | keras.layers.Layer]:
    """path -> leaf layer, nested models expanded (Keras 2 and Keras 3 alike)."""
    out = {}
    for layer in model.layers:
        if type(layer).__name__ in MODELS and hasattr(layer, "layers"):
            out.update(leaf_layers(layer, f"{prefix}{layer.name}/"))
        else:
            out[f"{prefix}{layer.name}"] = layer
    return out


def copy_weights(source: tf_keras.Model, target: keras.Model, names: LayerNames, where: Path) -> None:
    """Every layer's weights by path (the original path mapped to the rebuild's), shapes checked."""
    mine = leaf_layers(target)
    for path, layer in leaf_layers(source).items():
        weights = layer.get_weights()
        if not weights:
            continue
        inner = names.internal(path)
        if inner not in mine:
            raise ModelError(f"{where}: layer {path} has weights but no counterpart in the Keras 3 rebuild")
        expected = [tuple(w.shape) for w in mine[inner].get_weights()]
        found = [tuple(w.shape) for w in weights]
        if expected != found:
            raise ModelError(f"{where}: layer {path}: expected weights of shapes {expected} in Keras 3, found {found} in Keras 2")
        mine[inner].set_weights(weights)


def convert(file: ModelFile) -> tuple[Conversion, keras.Model, tf_keras.Model]:
    """Load with tf_keras and rebuild in Keras 3, in memory: (the unchecked conversion, the Keras 3 model, the
    tf_keras model for the check)."""
    t0 = time.perf_counter()
    original = load_legacy(file)
    t1 = time.perf_counter()
    built, record = rebuild(original, file.path)
    tk = tf_keras_module()
    conversion = Conversion(file.path, file.format, source_sha256(file), None, tuple(record.dropped), tuple(record.renamed),
                            load_seconds=t1 - t0, convert_seconds=time.perf_counter() - t1, tf_keras=tk.__version__)
    return conversion, built, original


# --------------------------------------------------------------------------- the check's numbers


def max_difference(legacy: tf_keras.Model, converted: keras.Model, images: np.ndarray) -> float:
    """max |Δ output| of the two models on ``images`` (preprocessed, float32)."""
    a = np.asarray(legacy(images, training=False), np.float64)
    b = np.asarray(converted(images, training=False), np.float64)
    return float(np.abs(a - b).max()) if a.size else 0.0


def first_difference(legacy: tf_keras.Model, converted: keras.Model, images: np.ndarray, names: LayerNames, tolerance: float = MAX_DIFF) -> str:
    """The first layer (graph order, nested expanded; its original path) whose outputs differ between the two models."""
    import keras
    import tf_keras as tk

    k3 = leaf_layers(converted)
    for path, layer in leaf_layers(legacy).items():
        inner = names.internal(path)
        if inner not in k3 or type(layer).__name__ == "InputLayer":
            continue
        try:
            a = tk.Model(legacy.inputs, layer.output)(images, training=False)
            b = keras.Model(converted.inputs, k3[inner].output)(images, training=False)
        except Exception:  # a layer inside a nested model is not reachable from the outer inputs
            continue
        if np.shape(a) == np.shape(b) and float(np.abs(np.asarray(a) - np.asarray(b)).max()) > tolerance:
            return path
    return "none found layer by layer (the difference builds up)"


# --------------------------------------------------------------------------- the cache


def cache_dir(reports: Path) -> Path:
    return Path(reports) / ".converted"


def cached(file: ModelFile, folder: Path) -> Conversion | None:
    """The checked conversion of this source (same sha256) in the cache, or None."""
    sha = source_sha256(file)
    model, meta = folder / f"{sha}.keras", folder / f"{sha}.json"
    if not (model.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text())
    except ValueError:
        return None
    renamed = tuple((mine, theirs) for theirs, mine in (info.get("renamed_layers") or {}).items())
    return Conversion(file.path, file.format, sha, model, tuple(info.get("dropped_keys", [])), renamed, info.get("max_probability_difference"),
                      int(info.get("checked_images", 0)), True, tf_keras=str(info.get("tf_keras", "")))


def accept(conversion: Conversion, model: keras.Model, folder: Path, max_diff: float, n: int) -> Conversion:
    """Write a checked conversion into the cache under the source's sha256, with its record beside it (each file
    written under a temporary name and renamed, so a killed run leaves no half-written entry)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{conversion.sha256}.keras"
        fd, tmp_name = tempfile.mkstemp(prefix=f".{conversion.sha256}.", suffix=".partial.keras", dir=folder)
        os.close(fd)
        try:
            model.save(tmp_name)
            os.replace(tmp_name, final)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        done = replace(conversion, converted=final, max_diff=max_diff, n_checked=n)
        tmp = folder / f".{conversion.sha256}.json.partial"
        tmp.write_text(json.dumps(done.record(), indent=2))
        os.replace(tmp, folder / f"{conversion.sha256}.json")
    except OSError as exc:
        raise ModelError(f"{folder}: expected a folder the checked conversion of {conversion.source} can be cached in, found an error: "
                         f"{exc.strerror or exc}") from None
    return done

"""Load the user's model as a Keras 3 model, whatever wrote it (DESIGN §14): no code from the file ever runs.

A Keras 3 file (``.keras`` archive or HDF5) is inspected for Lambda layers and loaded with safe mode on; a
Keras 2 file is inspected, loaded with tf_keras and rebuilt in Keras 3 (:mod:`pipeline.model.legacy`), or
taken from the cache of checked conversions. KerasHub classes are registered serialisables of the installed
package, not code in the file: a model that names them needs ``keras_hub`` imported first.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import keras

from pipeline.errors import ModelError, one_line
from pipeline.model.stored import refuse_code, stored_config
from pipeline.model.rebuild import LayerNames
from pipeline.model.source import ModelFile, identify

if TYPE_CHECKING:
    import tf_keras
    from pipeline.model.legacy import Conversion

HUB_INSTALL = "pip install -e '.[hub]' (make install does)"
SUFFIXES = {"zip": ".keras", "hdf5": ".h5"}  # what Keras' loader dispatches on


@dataclass(frozen=True)
class LoadedModel:
    """The user's model in Keras 3. ``file`` the user's file as identified; ``conversion`` a Keras 2 file's (its
    ``converted`` None until checked); ``original`` the tf_keras model while the conversion is unchecked."""

    model: keras.Model
    file: ModelFile
    conversion: "Conversion | None" = None
    original: "tf_keras.Model | None" = None
    repairs: tuple[str, ...] = ()  # a Keras 3 file Keras could not reload, repaired (pipeline.model.repair), in words

    @property
    def names(self) -> LayerNames:
        """Layer paths as the user's model names them (a Keras 2 model's renamed layers mapped back)."""
        return self.conversion.names if self.conversion is not None else LayerNames()

    @property
    def keras_file(self) -> Path:
        """The Keras 3 file a fresh copy loads from: the user's, or a Keras 2 model's checked conversion."""
        if self.conversion is None:
            return self.file.path
        if self.conversion.converted is None:
            raise ModelError(f"{self.file.path}: the Keras 3 conversion is not checked yet; no file holds it")
        return self.conversion.converted

    def checked(self, conversion: "Conversion") -> "LoadedModel":
        return replace(self, conversion=conversion, original=None)

    def handle(self) -> "ModelHandle":
        """What another process needs to open the same model (a Ray actor): files and names, no model objects."""
        return ModelHandle(self.keras_file, self.file, self.conversion)


@dataclass(frozen=True)
class ModelHandle:
    """A loaded model's Keras 3 file with what it was loaded from (picklable)."""

    keras_file: Path
    file: ModelFile
    conversion: "Conversion | None" = None

    def open(self) -> LoadedModel:
        """A fresh copy of the model, named as the user's file names it."""
        return LoadedModel(load_keras_file(identify(self.keras_file), shown=self.file.path), self.file, self.conversion)


def open_model(path: Path, reports: Path) -> LoadedModel:
    """The model at ``path`` (a file or SavedModel folder) in Keras 3; a Keras 2 model's checked conversion comes
    from the cache under ``reports`` (``reports/.converted``), else it is converted in memory, unchecked."""
    file = identify(path)
    if file.keras == 3:
        model, repairs = read_keras_file(file)
        return LoadedModel(model, file, repairs=repairs)
    from pipeline.model import legacy

    found = legacy.cached(file, legacy.cache_dir(reports))
    if found is not None:
        return LoadedModel(load_keras_file(identify(found.converted), shown=file.path), file, found)
    conversion, model, original = legacy.convert(file)
    return LoadedModel(model, file, conversion, original)


def _needs_keras_hub(config: dict) -> bool:
    """True when a stored config names KerasHub classes (they register on ``import keras_hub``)."""
    return '"keras_hub' in __import__("json").dumps(config)


@contextlib.contextmanager
def _as_loadable(file: ModelFile) -> Iterator[Path]:
    """The file under a name Keras' loader dispatches on (``.keras``, ``.h5``): itself, or a link with that suffix."""
    suffix = SUFFIXES[file.container]
    if file.path.suffix == suffix or (file.container == "hdf5" and file.path.suffix == ".hdf5"):
        yield file.path
        return
    with tempfile.TemporaryDirectory(prefix="gradcam-audit-model-") as tmp:
        link = Path(tmp) / f"model{suffix}"
        link.symlink_to(file.path.resolve())
        yield link


def read_keras_file(file: ModelFile, *, shown: Path | None = None) -> tuple[keras.Model, tuple[str, ...]]:
    """Load a Keras 3 file with safe mode on, uncompiled, after refusing a Lambda layer found in its stored config;
    a file Keras cannot reload because of a config defect it shows is repaired (:mod:`pipeline.model.repair`).
    Returns (model, the repairs made, in words); messages name ``shown`` (default: the file)."""
    shown = shown or file.path
    config = stored_config(file)
    refuse_code(config, shown)
    if _needs_keras_hub(config):
        try:
            import keras_hub  # noqa: F401  (registers KerasHub's classes for safe-mode loading)
        except ImportError:
            raise ModelError(f"{shown}: this model was saved from KerasHub; expected the keras-hub package to load it, found it "
                             f"not installed; install it with {HUB_INSTALL}") from None
    with _as_loadable(file) as loadable:
        try:
            model = keras.models.load_model(loadable, compile=False, safe_mode=True)
            repairs: tuple[str, ...] = ()
        except Exception as exc:  # Keras raises many types here; the whole message is the reason
            text = one_line(exc).replace(str(loadable), str(shown))
            model, repairs = _repaired(file, config, shown, text)
    if not isinstance(model, keras.Model):
        raise ModelError(f"{shown}: expected a Keras Model, found {type(model).__name__}")
    return model, repairs


def _versions(file: ModelFile) -> str:
    return f"saved by Keras {file.version or 'of an unknown version'}, loaded by Keras {keras.__version__}"


def _repaired(file: ModelFile, config: dict, shown: Path, reason: str) -> tuple[keras.Model, tuple[str, ...]]:
    """The model loaded from a repaired copy of the file, checked to hold every stored weight exactly once; without a
    defect to repair, ModelError with Keras' whole reason and both Keras versions."""
    from pipeline.model import repair

    fixed, where = repair.repair_config(config)
    failed = (f"{shown}: expected a {file.describe()} that Keras 3 loads in safe mode, found an error: {reason} "
              f"({_versions(file)})")
    if not where:
        raise ModelError(failed)
    with tempfile.TemporaryDirectory(prefix="gradcam-audit-repair-") as tmp:
        target = Path(tmp) / f"model{SUFFIXES[file.container]}"
        repair.write_repaired(file.path, file.container, fixed, target)
        try:
            model = keras.models.load_model(target, compile=False, safe_mode=True)
        except Exception as exc:
            raise ModelError(f"{failed}; repairing {repair.NESTED_OUTPUT_LIST} at {', '.join(where)} did not help: "
                             f"{one_line(exc).replace(str(target), str(shown))}") from None
    misfit = repair.check_weights(file.path, file.container, lambda: [(w.path, keras.ops.convert_to_numpy(w)) for w in model.weights])
    if misfit is not None:
        raise ModelError(f"{failed}; repairing {repair.NESTED_OUTPUT_LIST} at {', '.join(where)} loads the model, but not every "
                         f"stored weight exactly once: {misfit}")
    return model, (f"repaired: {repair.NESTED_OUTPUT_LIST} at {', '.join(where)}; every stored weight loaded "
                   f"({_versions(file)})",)


def load_keras_file(file: ModelFile, *, shown: Path | None = None) -> keras.Model:
    """:func:`read_keras_file`'s model (a fresh copy: the Ray actors', the randomisation check's)."""
    return read_keras_file(file, shown=shown)[0]


def load_keras_model(path: Path) -> keras.Model:
    """A Keras 3 model file (``.keras``, HDF5) by path: :func:`load_keras_file` after identifying it."""
    file = identify(path)
    if file.keras != 3:
        raise ModelError(f"{path}: expected a Keras 3 model file, found a {file.describe()}")
    return load_keras_file(file)

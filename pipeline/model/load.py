"""Load a Keras 3 model file (``.keras`` / ``.h5``) with safe mode on: no code from the file runs.

KerasHub classes are registered serialisables of the installed package, not code in the file: a model that
names them needs ``keras_hub`` imported first.
"""

from __future__ import annotations

from pathlib import Path

import keras

from pipeline.errors import ModelError

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

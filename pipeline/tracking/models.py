"""Models from MLflow: ``model.path: models:/NAME/VERSION | models:/NAME@ALIAS | runs:/RUN_ID/PATH``.

The URI is resolved through MLflow's own client, the artifacts are downloaded once to a cache keyed by
the resolved version (a registered version's files never change) or run, and the Keras file that the
Keras flavour stores (``data/model.keras``) is handed to the audit's usual safe loader: never pyfunc,
because Grad-CAM needs the layers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config.uris import FORMS, MlflowUri, parse
from pipeline.errors import ModelError, one_line
from pipeline.records.plain import JsonObject
from pipeline.tracking.client import connect

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model URI led: the local Keras file and, for the registry, the version it resolved to."""

    uri: str
    tracking_uri: str
    path: Path
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None

    def provenance(self) -> JsonObject:
        return {"uri": self.uri, "tracking_uri": self.tracking_uri, "name": self.name, "version": self.version,
                "alias": self.alias, "run_id": self.run_id, "file": str(self.path)}


def cache_root() -> Path:
    """``GRADCAM_AUDIT_CACHE``, else ``~/.cache/gradcam-audit``."""
    return Path(os.environ.get("GRADCAM_AUDIT_CACHE") or Path.home() / ".cache" / "gradcam-audit")


def version_of(client: Any, uri: MlflowUri, tracking: str) -> Any:
    """The registered ModelVersion a ``models:/`` URI names (ModelError naming the URI when there is none)."""
    try:
        if uri.alias:
            return client.get_model_version_by_alias(uri.name, uri.alias)
        return client.get_model_version(uri.name, uri.version)
    except Exception as exc:  # MLflow raises MlflowException or a requests error; the message is what matters
        what = f"alias @{uri.alias}" if uri.alias else f"version {uri.version}"
        raise ModelError(f"{uri.text}: expected a registered model {uri.name!r} with {what} at {tracking}, found none: "
                         f"{one_line(exc, 300)}") from None


def download(client_uri: str, tracking: str, key: str, label: str) -> Path:
    """The artifacts at ``client_uri`` in the cache folder ``key`` (downloaded once; a partial download is discarded)."""
    import mlflow

    folder = cache_root() / "mlflow" / hashlib.sha256(tracking.encode()).hexdigest()[:12] / key
    done = folder / ".complete"
    if done.is_file():
        return Path(done.read_text().strip())
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=folder.parent))
    try:
        got = Path(mlflow.artifacts.download_artifacts(artifact_uri=client_uri, dst_path=str(tmp), tracking_uri=tracking))
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"{label}: expected its artifacts to download from {tracking}, found an error: {one_line(exc, 300)}") from None
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    local = folder / got.relative_to(tmp)
    done.write_text(str(local))
    return local


def keras_file(local: Path, label: str) -> Path:
    """The Keras file in a downloaded model: the Keras flavour's data folder, or the file itself."""
    from pipeline.config import parse_yaml

    if local.is_file():
        if local.suffix in KERAS_SUFFIXES:
            return local
        raise ModelError(f"{label}: expected a Keras model file (.keras, .h5 or .hdf5), found {local.name}")
    mlmodel = local / "MLmodel"
    if not mlmodel.is_file():
        found = sorted(p.name for p in local.rglob("*") if p.suffix in KERAS_SUFFIXES)
        if len(found) == 1:
            return next(local.rglob(found[0]))
        raise ModelError(f"{label}: expected an MLflow model (an MLmodel file) or one Keras file, found "
                         f"{', '.join(sorted(p.name for p in local.iterdir())[:8]) or 'nothing'}")
    doc = parse_yaml(mlmodel, mlmodel.read_bytes(), error=ModelError) or {}
    flavors = doc.get("flavors") or {}
    keras = flavors.get("keras") if isinstance(flavors.get("keras"), dict) else flavors.get("tensorflow")
    if not isinstance(keras, dict):
        raise ModelError(f"{label}: expected a model logged with the Keras flavour (mlflow.keras.log_model, or a Keras 2 model through "
                         "mlflow.tensorflow), whose Keras file the audit loads (pyfunc hides the layers Grad-CAM needs); found the "
                         f"flavours {', '.join(flavors) or 'none'}")
    if keras.get("save_exported_model"):
        raise ModelError(f"{label}: expected a Keras model file, found a TensorFlow export (save_exported_model: true), which "
                         "has no layers to explain; log the model with mlflow.keras.log_model(model, ..., save_exported_model=False)")
    data = local / str(keras.get("data") or keras.get("saved_model_dir") or "data")
    found = sorted(p for p in data.rglob("*") if p.suffix in KERAS_SUFFIXES) if data.is_dir() else []
    # a Keras 2 model (DESIGN §14): its SavedModel folder, whose Keras metadata the audit converts from
    saved = sorted(p.parent for p in data.rglob("saved_model.pb")) if data.is_dir() else []
    if not found and not saved:
        raise ModelError(f"{label}: expected a .keras or .h5 file, or a Keras 2 SavedModel folder, in the model's {data.name}/ folder, "
                         "found none")
    return found[0] if found else saved[0]


def resolve_model(text: str, tracking: str) -> ResolvedModel:
    """Resolve ``model.path``'s URI and download the model it names (ModelError naming the URI otherwise)."""
    uri = parse(text)
    if uri is None:
        raise ModelError(f"{text}: expected {FORMS}")
    client = connect(tracking, f"model.path {text}")
    if uri.registry:
        mv = version_of(client, uri, tracking)
        try:  # where the version's files are, through this client (download_artifacts alone would ask the global registry)
            where = client.get_model_version_download_uri(mv.name, mv.version)
        except Exception as exc:
            raise ModelError(f"{text}: expected the files of version {mv.version} of {mv.name!r} at {tracking}, found an error: "
                             f"{one_line(exc, 300)}") from None
        local = download(where, tracking, f"models/{mv.name}/{mv.version}", text)
        return ResolvedModel(text, tracking, keras_file(local, text), mv.name, str(mv.version), uri.alias, mv.run_id)
    try:
        client.get_run(uri.run_id)
    except Exception as exc:
        raise ModelError(f"{text}: expected a run {uri.run_id} at {tracking}, found none: {one_line(exc, 300)}") from None
    local = download(text, tracking, f"runs/{uri.run_id}/{uri.path or '_root'}", text)
    return ResolvedModel(text, tracking, keras_file(local, text), run_id=uri.run_id)

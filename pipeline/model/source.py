"""What a model file is, read from its content, not its name (DESIGN §14, §16 "File names").

An HDF5 file is recognised by its signature (``.h5``, ``.hdf5``, a ``.keras`` that Keras 2 wrote, any
name), a ``.keras`` archive by the zip signature and its ``config.json``; the Keras version that wrote it
(HDF5 attribute ``keras_version``, the archive's ``metadata.json``) tells a Keras 3 file from a Keras 2
one. A folder (or its ``saved_model.pb``) is a SavedModel, which only Keras 2 writes. Nothing here loads
a model: only bytes and attributes are read.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ModelError
from pipeline.model.foreign import FOREIGN_HEAD, WORDS, foreign, foreign_kind

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
KINDS = {"zip": ".keras file", "hdf5": "HDF5 file", "savedmodel": "SavedModel"}
EXPECTED = "a Keras model: a .keras file, an HDF5 file (.h5, .hdf5) or a Keras 2 SavedModel folder (with saved_model.pb)"


@dataclass(frozen=True)
class ModelFile:
    """A model file as identified: ``path`` the user's file (a SavedModel: its folder), ``container`` zip | hdf5 |
    savedmodel, ``keras`` the major version that wrote it (2 or 3), ``version`` as the file says it."""

    path: Path
    container: str
    keras: int
    version: str = ""

    @property
    def format(self) -> str:
        """"keras", "h5" or "savedmodel" (provenance's ``model_source.format``)."""
        return {"zip": "keras", "hdf5": "h5", "savedmodel": "savedmodel"}[self.container]

    def describe(self) -> str:
        """"Keras 2 HDF5 file" for messages."""
        return f"Keras {self.keras} {KINDS[self.container]}"


def _head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of a file (fewer when it is shorter)."""
    try:
        with path.open("rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise ModelError(f"{path}: expected {EXPECTED}, found a file that cannot be read ({exc.strerror or exc})") from None


def _signature(path: Path) -> bytes:
    return _head(path, 8)


def _keras_inside(path: Path, head: bytes) -> str:
    """A hint when a pickle's raw bytes hold a .keras archive (a pickled ``bytes`` object stores them verbatim): found
    by searching the bytes, nothing unpickled."""
    if not foreign_kind(head) == "pickle":
        return ""
    import mmap

    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            at = data.find(ZIP_SIGNATURE)
            holds = at >= 0 and data.find(b"config.json", at) >= 0 and data.find(b"model.weights.h5", at) >= 0
    except (OSError, ValueError):
        return ""
    return f" (its bytes hold a .keras archive, from byte {at})" if holds else ""


def _major(version: str) -> int:
    """3 for "3.4.1"; 2 for any other (tf_keras "2.21.0", Keras "2.0.5"; a file without a version is Keras 2's)."""
    return 3 if version.strip().startswith("3.") else 2


def _hdf5_version(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("keras_version", b"")
            has_config = "model_config" in f.attrs
    except OSError as exc:
        raise ModelError(f"{path}: expected {EXPECTED}, found an HDF5 file that h5py cannot open ({exc})") from None
    if not has_config:
        raise ModelError(f"{path}: expected a whole Keras model in this HDF5 file (its architecture, model_config), found weights only; "
                         "save the whole model (model.save) or export a Keras 3 .keras file")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _zip_version(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                pickles = sorted(n for n in names if n.endswith(".pkl"))
                if pickles:
                    raise ModelError(f"{path}: expected {EXPECTED}, found {_zip_of_pickles(pickles)}")
                raise ModelError(f"{path}: expected a .keras archive (a zip with config.json), found a zip holding "
                                 f"{', '.join(sorted(names)[:6]) or 'nothing'}")
            meta = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ModelError(f"{path}: expected {EXPECTED}, found a damaged zip archive ({exc})") from None
    return str(meta.get("keras_version", "")) if isinstance(meta, dict) else ""


def _zip_of_pickles(pickles: list[str]) -> str:
    """What a zip of ``.pkl`` members is: PyTorch's torch.save / TorchScript format, or pickles of something else."""
    torch = any(n.endswith("data.pkl") or n.endswith("constants.pkl") for n in pickles)
    what = "a PyTorch file (torch.save or TorchScript: a zip of Python pickles" if torch else f"a zip of Python pickles ({pickles[0]}"
    return (f"{what}): unpickling runs code, so it is never opened, and it holds no Keras layers to explain; audit the Keras "
            "model it came from, saved with model.save('model.keras')")


def identify(path: Path) -> ModelFile:
    """The model file at ``path``, identified by content; ModelError naming the file when it is none of the forms (a
    pickle, a frozen graph, ONNX, TFLite and other formats named for what they are; none is opened)."""
    path = Path(path)
    if path.name == "saved_model.pb" and path.is_file():
        path = path.parent
    if path.is_dir():
        pb = path / "saved_model.pb"
        if not pb.is_file():
            raise ModelError(f"{path}: expected {EXPECTED}, found a folder without saved_model.pb")
        kind = foreign_kind(_head(pb, FOREIGN_HEAD))
        if kind not in (None, "savedmodel proto"):  # a frozen graph renamed saved_model.pb, say
            raise ModelError(f"{pb}: expected a SavedModel's saved_model.pb, found {WORDS[kind]}")
        return ModelFile(path, "savedmodel", 2)
    if not path.is_file():
        raise ModelError(f"{path}: expected {EXPECTED}, found nothing there")
    head = _signature(path)
    if head.startswith(HDF5_SIGNATURE):
        version = _hdf5_version(path)
        return ModelFile(path, "hdf5", _major(version), version)
    if head.startswith(ZIP_SIGNATURE):
        version = _zip_version(path)
        return ModelFile(path, "zip", _major(version) if version else 3, version)
    if not head:
        raise ModelError(f"{path}: expected {EXPECTED}, found an empty file")
    first = _head(path, FOREIGN_HEAD)
    other = foreign(first)
    if other is not None:
        raise ModelError(f"{path}: expected {EXPECTED}, found {other}{_keras_inside(path, first)}")
    raise ModelError(f"{path}: expected {EXPECTED}, found a file starting with {head[:8]!r} (neither HDF5 nor zip, nor a "
                     "format this audit can name)")

"""Keras 3 files that Keras itself cannot reload (DESIGN §14): a defect the stored config shows is repaired as data,
the stored weights are loaded into the repaired model by Keras' own loader, and every stored weight must then be in
the model exactly once.

The one defect known: keras-team/keras#20084. A nested Functional model whose one output was stored as a list
(``"output_layers": [["top_activation", 0, 0]]`` where Keras expects ``["top_activation", 0, 0]``) reloads as a
layer with a list output, and the next layer of the outer model refuses it ('Layer "dense" expects 1 input(s), but
it received 2 input tensors'). Keras 3.4 to 3.8 wrote such files (a Sequential around an ``applications``
backbone, for one).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

NESTED_OUTPUT_LIST = "a nested model's output saved as a list (keras-team/keras#20084)"
MODELS = ("Functional", "Model")
OPTIMIZER_GROUPS = ("optimizer", "optimizer_weights")  # not part of the model; compile=False never reads them


def _is_one_node_list(value: Any) -> bool:
    """``[[name, node, tensor]]``: one output node wrapped in a list."""
    return (isinstance(value, list) and len(value) == 1 and isinstance(value[0], list) and len(value[0]) == 3
            and isinstance(value[0][0], str))


def _nested(config: dict, prefix: str) -> Iterator[tuple[str, dict]]:
    """(path, layer entry) of every model nested inside ``config`` (a model's ``{"class_name", "config"}``)."""
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    for entry in layers if isinstance(layers, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            continue
        name = entry["config"].get("name") or entry.get("name") or "?"
        path = f"{prefix}{name}"
        if isinstance(entry["config"].get("layers"), list):
            yield path, entry
            yield from _nested(entry, f"{path}/")


def repair_config(config: dict) -> tuple[dict, tuple[str, ...]]:
    """(repaired copy of the stored config, paths of the nested models repaired); no paths: nothing to repair. The
    outermost model's own outputs are left alone (a list there is what the user built)."""
    fixed = copy.deepcopy(config)
    where = []
    for path, entry in _nested(fixed, ""):
        inner = entry["config"]
        if entry.get("class_name") in MODELS and _is_one_node_list(inner.get("output_layers")):
            inner["output_layers"] = inner["output_layers"][0]
            where.append(path)
    return fixed, tuple(where)


def _arrays(group: Any, skip: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    """(path, array) of every dataset under an open h5py group, those under the top-level ``skip`` groups left out."""
    import h5py

    found: list[tuple[str, np.ndarray]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and name.split("/", 1)[0] not in skip:
            found.append((name, np.asarray(obj[()])))

    group.visititems(visit)
    return found


def stored_weights(path: Path, container: str) -> list[tuple[str, np.ndarray]]:
    """The model's weight arrays as the file stores them, (path in the file, array): a ``.keras`` archive's
    ``model.weights.h5`` or an HDF5 file's ``model_weights``; optimizer state left out."""
    import h5py

    if container == "zip":
        with zipfile.ZipFile(path) as archive:
            data = archive.read("model.weights.h5")
        with h5py.File(io.BytesIO(data), "r") as f:
            return _arrays(f, OPTIMIZER_GROUPS)
    with h5py.File(path, "r") as f:
        return _arrays(f["model_weights"] if "model_weights" in f else f, OPTIMIZER_GROUPS)


def _key(array: np.ndarray) -> tuple[tuple[int, ...], str]:
    a = np.ascontiguousarray(array, dtype=np.float64)
    return tuple(a.shape), hashlib.sha256(a.tobytes()).hexdigest()


def unmatched_weights(stored: list[tuple[str, np.ndarray]], loaded: list[tuple[str, np.ndarray]]) -> tuple[list[str], list[str]]:
    """(stored arrays no model weight equals, model weights no stored array equals), matched one to one by shape and
    value: every stored weight used exactly once leaves both lists empty. Equal arrays (two zero biases) are
    interchangeable, so a multiset match is exact where it matters: the model computes the same."""
    pool: dict[tuple, list[str]] = {}
    for name, a in stored:
        pool.setdefault(_key(a), []).append(name)
    extra = []
    for name, a in loaded:
        names = pool.get(_key(a))
        if names:
            names.pop()
        else:
            extra.append(name)
    return sorted(n for names in pool.values() for n in names), extra


def write_repaired(path: Path, container: str, config: dict, target: Path) -> None:
    """A copy of the model file at ``target`` with its stored config replaced by ``config`` (the weights' bytes as
    they were)."""
    if container == "zip":
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w") as out:
            for item in src.infolist():
                out.writestr(item, json.dumps(config) if item.filename == "config.json" else src.read(item.filename))
        return
    import shutil

    import h5py

    shutil.copyfile(path, target)
    with h5py.File(target, "r+") as f:
        f.attrs["model_config"] = json.dumps(config)


def check_weights(path: Path, container: str, model_weights: Callable[[], list[tuple[str, np.ndarray]]]) -> str | None:
    """None when every stored weight is in the model exactly once; else what did not fit, in words."""
    missing, extra = unmatched_weights(stored_weights(path, container), model_weights())
    if not missing and not extra:
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} stored weight(s) not in the repaired model ({', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''})")
    if extra:
        parts.append(f"{len(extra)} weight(s) of the repaired model not loaded from the file ({', '.join(extra[:4])}"
                     f"{' ...' if len(extra) > 4 else ''})")
    return "; ".join(parts)

"""Dataset labels vs model classes (DESIGN §4 "Label map"): pure, no TensorFlow.

A model has C output classes; a dataset has L labels. Each label owns a set of model classes:
the classes ``dataset.label_map`` lists for it, else the one class whose name (or WordNet id)
is the label. A label that owns no class is unknown (its samples are skipped). Every model
class belongs to at most one label (``class_label``, -1 = none), which is how a predicted
class is read as a dataset label and how the boxes of the explained class are found.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Sequence

import numpy as np

from pipeline.errors import ConfigError

IMAGENET = "imagenet"
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(names, WordNet ids) of the 1,000 ILSVRC-2012 classes in model-output order (package data)."""
    text = resources.files("pipeline.resources").joinpath("imagenet_classes.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    if [int(r[0]) for r in rows] != list(range(1000)):
        raise RuntimeError("pipeline/resources/imagenet_classes.tsv: expected indices 0-999 in order; reinstall the package")
    return tuple(r[2] for r in rows), tuple(r[1] for r in rows)


@dataclass(frozen=True, eq=False)
class LabelSpace:
    """How the dataset's labels relate to the model's classes.

    ``class_names`` (C) in model-output order; ``labels`` (L) the dataset's labels (its own
    order, then label-map keys it does not use; without a map or ImageNet classes: the class names,
    then any dataset label that is not one); ``sets`` (L, C) bool, the classes each label
    owns; ``class_label`` (C,) int, the label owning each class, -1 = none. ``mapped`` is True
    when labels and classes are not simply the same names (a label map or ImageNet classes).
    """

    class_names: tuple[str, ...]
    labels: tuple[str, ...]
    sets: np.ndarray
    class_label: np.ndarray
    source: str
    mapped: bool

    def index(self, label: str) -> int:
        """The label's index, -1 when the dataset never names it."""
        return self.labels.index(label) if label in self.labels else -1

    def known(self, label: str) -> bool:
        i = self.index(label)
        return i >= 0 and bool(self.sets[i].any())

    def explained_label(self, target: int, predicted_label: int = -1) -> int:
        """The dataset label a sample's CAM explains, from its ``Sample.target`` (-1 = none / use ``predicted_label``)."""
        if target >= len(self.labels):  # multi-label: one predicted class
            return int(self.class_label[target - len(self.labels)])
        return target if target >= 0 else predicted_label

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(lab for lab, row in zip(self.labels, self.sets) if not row.any())

    @property
    def unclaimed_classes(self) -> int:
        return int((self.class_label < 0).sum())


def _entry_classes(entry: str | int, key: str, names: Sequence[str], lookup: dict[str, int]) -> list[int]:
    n = len(names)
    if isinstance(entry, int):
        if not 0 <= entry < n:
            raise ConfigError(f"{key}: expected a class index within 0-{n - 1} (the model's outputs), found {entry}")
        return [entry]
    match = _RANGE_RE.match(entry)
    if match:
        lo, hi = int(match.group(1)), int(match.group(2))
        if not lo <= hi < n:
            raise ConfigError(f"{key}: expected an index range \"i-j\" with i <= j within 0-{n - 1} (the model's outputs), found {entry!r}")
        return list(range(lo, hi + 1))
    if entry in lookup:
        return [lookup[entry]]
    hint = difflib.get_close_matches(entry, list(names), n=3)
    raise ConfigError(f"{key}: expected a model class name, a WordNet id or an \"i-j\" index range, found {entry!r}"
                      + (f" (did you mean {', '.join(map(repr, hint))}?)" if hint else ""))


def label_space(
    class_names: Sequence[str],
    dataset_labels: Sequence[str],
    *,
    label_map: Sequence[tuple[str, Sequence[str | int]]] | None = None,
    aliases: Sequence[str] | None = None,
    source: str = "",
    prefix: str = "",
) -> LabelSpace:
    """Resolve labels against classes. ``aliases`` are alternative class names (WordNet ids), one
    per class; ``prefix`` starts every error message (the config file). Raises ConfigError naming
    the map key for an entry that is not a class, a range outside the outputs, or a class two
    labels claim."""
    n = len(class_names)
    lookup = {name: i for i, name in enumerate(class_names)}
    for i, alias in enumerate(aliases or ()):
        lookup.setdefault(alias, i)
    mapping = dict(label_map or ())
    plain = label_map is None and aliases is None  # labels are class names: every class is its own label
    labels = tuple(dict.fromkeys([*class_names, *dataset_labels] if plain else [*dataset_labels, *mapping]))
    sets = np.zeros((len(labels), n), bool)
    owner: dict[int, str] = {}
    for li, label in enumerate(labels):
        if label in mapping:
            name = f"dataset.label_map.{label}"
            for k, entry in enumerate(mapping[label]):
                key = f"{prefix}{name}[{k}]"
                for c in _entry_classes(entry, key, class_names, lookup):
                    if c in owner and owner[c] != name:
                        raise ConfigError(f"{key}: expected each model class in one label's set, found {class_names[c]!r} "
                                          f"(class {c}) already claimed by {owner[c]}")
                    owner[c] = name
                    sets[li, c] = True
        elif label in lookup:
            c = lookup[label]
            if c in owner:
                raise ConfigError(f"{prefix}{owner[c]}: expected each model class in one label's set, found {class_names[c]!r} "
                                  f"(class {c}) also named directly by the dataset label {label!r}")
            owner[c] = f"the dataset label {label!r}"
            sets[li, c] = True
    class_label = np.full(n, -1, np.int64)
    li, ci = np.nonzero(sets)
    class_label[ci] = li
    return LabelSpace(tuple(class_names), labels, sets, class_label, source, mapped=not plain)


def allowed_classes(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """(B,) class indices, -1 = any -> (B, C) bool: the classes each sample may explain."""
    targets = np.asarray(targets)
    return np.where(targets[:, None] >= 0, np.arange(n_classes)[None, :] == targets[:, None], True)

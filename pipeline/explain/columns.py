"""The per-sample columns, declared once (pure, no TensorFlow).

samples.csv's header, the per-batch result record, the collector's arrays and the CSV encoding
are all derived from :data:`COLUMNS`, so a new column is one edit here. Kinds:

* ``int``   — integer (``row``);
* ``text``  — a string (object array);
* ``class`` — a model class index, -1 = none (written as the class name, or empty);
* ``label`` — a dataset-label index, -1 = none (written as the label, or empty);
* ``float`` — float64, NaN written empty, 6 significant digits;
* ``bool``  — a tri-state float64: 1.0 true, 0.0 false, NaN undefined (written true/false/empty).

``group`` says when a column is present: ``base`` always, ``evidence`` with interventions on,
``compare`` with ``explain.compare_method``, ``mapped`` when model classes are not simply the
dataset's labels (a label map, ImageNet classes, a multi-label model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # int | text | class | label | float | bool
    group: str  # base | evidence | compare | mapped
    source: str = "computed"  # "static": from the sample table; "computed": from a batch result


COLUMNS: tuple[Column, ...] = (
    Column("row", "int", "base", "static"),
    Column("sample_id", "text", "base", "static"),
    Column("image", "text", "base", "static"),
    Column("label", "text", "base", "static"),
    Column("predicted", "label", "base"),
    Column("predicted_model_class", "class", "mapped"),
    Column("confidence", "float", "base"),
    Column("correct", "bool", "base"),
    Column("energy_in_box", "float", "base"),
    Column("box_area_fraction", "float", "base"),
    Column("energy_lift", "float", "base"),
    Column("focus_score", "float", "base"),
    Column("pointing_hit", "bool", "base"),
    Column("flag", "text", "base"),
    Column("skip_reason", "text", "base"),
    Column("removed_confidence", "float", "evidence"),
    Column("only_confidence", "float", "evidence"),
    Column("object_dependence", "float", "evidence"),
    Column("still_right_without_object", "bool", "evidence"),
    Column("right_from_object_alone", "bool", "evidence"),
    Column("blank_confidence", "float", "evidence"),
    Column("evidence_note", "text", "evidence"),
    Column("method_rank_correlation", "float", "compare"),
    Column("method_flag", "text", "compare"),
)

INTERNAL: tuple[Column, ...] = (
    Column("explained_confidence", "float", "base"),  # p_c of the explained class (object_dependence's denominator)
    Column("only_correct", "bool", "evidence"),  # object-only image classified as one of the labels
    Column("blank_right", "bool", "evidence"),  # blank control classified as one of the labels (NaN: not judged by removal)
)
"""Per-sample values the aggregates need that samples.csv does not carry."""

BY_NAME = {c.name: c for c in COLUMNS + INTERNAL}


def active(groups: Sequence[str]) -> tuple[Column, ...]:
    """The samples.csv columns for a run with these groups (``base`` is always on), in order."""
    return tuple(c for c in COLUMNS if c.group == "base" or c.group in groups)


def computed(groups: Sequence[str]) -> tuple[Column, ...]:
    """Every per-sample value a batch result carries for these groups (CSV and internal)."""
    return tuple(c for c in COLUMNS + INTERNAL if c.source == "computed" and (c.group == "base" or c.group in groups))


def empty(column: Column, n: int) -> np.ndarray:
    """The array a column starts as before any result arrives (skipped / not computed)."""
    if column.kind in ("float", "bool"):
        return np.full(n, np.nan)
    if column.kind in ("int", "class", "label"):
        return np.full(n, -1, np.int64)
    return np.full(n, "", dtype=object)


def encode(columns: Sequence[Column], values: Mapping[str, np.ndarray], class_names: Sequence[str],
           labels: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Column arrays -> what samples.csv shows (class names, labels, true/false/empty); floats stay floats.

    ``labels`` default to the class names (a run whose labels are its classes)."""
    lookup = {
        "class": np.array(list(class_names) + [""], dtype=object),
        "label": np.array(list(class_names if labels is None else labels) + [""], dtype=object),
    }
    out = {}
    for c in columns:
        v = values[c.name]
        if c.kind in lookup:
            names = lookup[c.kind]
            out[c.name] = names[np.where(v >= 0, v, len(names) - 1)]
        elif c.kind == "bool":
            out[c.name] = np.where(np.isnan(v), "", np.where(v > 0, "true", "false"))
        else:
            out[c.name] = v
    return out

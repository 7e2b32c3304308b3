"""Aggregates over samples, overall and per class (pure NumPy).

Counting conventions: accuracy and flag rates are over scored samples (not skipped);
localisation means and pointing accuracy are over judged samples (neither skipped nor
``no_signal``); ``skipped_rate`` is over all samples. Evidence aggregates (DESIGN §6) are over
the samples that got interventions: ``mean_object_dependence`` and
``still_right_without_object_rate`` over correct scored samples, ``object_only_accuracy`` over
scored samples, ``explanation_agreement`` over correct judged samples. Each aggregate is a statistic (mean or
median) of one per-sample quantity over its population (:func:`population`), which is also
what the report's bootstrap confidence intervals resample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline.config import AGGREGATES, FLAGS
from pipeline.evidence.checks import (
    agreement_cells,
    agreement_values,
    confirmation_values,
    kappa,
)


@dataclass(frozen=True)
class SampleTable:
    """Per-sample results, each array of shape (N,), row-aligned with samples.csv."""

    labels: Sequence[tuple[str, ...]]  # class names of each sample (several for multi-class images)
    correct: np.ndarray  # bool
    energy_in_box: np.ndarray  # float, NaN where undefined
    focus_score: np.ndarray
    energy_lift: np.ndarray
    pointing_hit: np.ndarray  # 1.0 / 0.0 / NaN
    box_area_fraction: np.ndarray
    flags: np.ndarray  # object array of FLAGS names
    object_dependence: np.ndarray | None = None  # float, NaN where no intervention ran
    still_right_without_object: np.ndarray | None = None  # tri-state float 1 / 0 / NaN
    only_correct: np.ndarray | None = None  # tri-state: object-only image classified as one of the labels
    dependence_min: float = 0.5

    def evidence_column(self, name: str) -> np.ndarray:
        column = getattr(self, name)
        return np.full(len(self.flags), np.nan) if column is None else np.asarray(column, np.float64)


def population(table: SampleTable, name: str, rows: np.ndarray) -> tuple[np.ndarray, str]:
    """(per-sample values, "mean" | "median") whose statistic is aggregate ``name`` over ``rows``."""
    flags = table.flags[rows]
    scored = flags != "skipped"
    judged = scored & (flags != "no_signal")
    if name == "accuracy":
        return table.correct[rows][scored].astype(np.float64), "mean"
    if name in ("balanced_accuracy", "majority_accuracy"):
        return _class_weighted(table, rows[scored], majority=name == "majority_accuracy"), "mean"
    if name in ("mean_energy_in_box", "median_energy_in_box", "mean_focus_score", "mean_energy_lift", "pointing_accuracy"):
        column = {"pointing_accuracy": "pointing_hit"}.get(name, name.split("_", 1)[1])
        values = np.asarray(getattr(table, column), dtype=np.float64)[rows][judged]
        return values[~np.isnan(values)], ("median" if name.startswith("median") else "mean")
    if name == "explanation_agreement":
        return agreement_values(flags, table.evidence_column("object_dependence")[rows], table.dependence_min), "mean"
    if name in ("on_target_confirmed_rate", "off_target_confirmed_rate"):
        return confirmation_values(flags, table.evidence_column("object_dependence")[rows], table.dependence_min, name[:name.index("_")]), "mean"
    if name == "explanation_kappa":
        return np.zeros(0), "kappa"  # not a statistic of per-sample values: see summarize
    if name in ("mean_object_dependence", "still_right_without_object_rate", "object_only_accuracy"):
        column = {"mean_object_dependence": "object_dependence", "still_right_without_object_rate": "still_right_without_object",
                  "object_only_accuracy": "only_correct"}[name]
        values = table.evidence_column(column)[rows]
        among = scored & table.correct[rows] if name != "object_only_accuracy" else scored
        values = values[among]
        return values[~np.isnan(values)], "mean"
    if name == "skipped_rate":
        return (~scored).astype(np.float64), "mean"
    if name.endswith("_rate") and name[: -len("_rate")] in FLAGS:
        return (flags[scored] == name[: -len("_rate")]).astype(np.float64), "mean"
    raise KeyError(name)


def _class_weighted(table: SampleTable, rows: np.ndarray, *, majority: bool) -> np.ndarray:
    """Per-sample values whose mean is the balanced accuracy (mean over the labels present of the recall,
    correct / samples with that label) or, with ``majority``, the share of the most common label.

    Balanced: v_i = n · correct_i · Σ_{c ∈ labels_i} 1 / (K · n_c), with K labels present and n_c samples of
    label c, so that mean(v) = (1/K) Σ_c recall_c; a sample of several labels counts once for each."""
    labels = [table.labels[i] for i in rows]
    counts: dict[str, int] = {}
    for labs in labels:
        for c in set(labs):
            counts[c] = counts.get(c, 0) + 1
    if not counts:
        return np.zeros(0)
    if majority:
        top = max(counts, key=lambda c: (counts[c], c))
        return np.array([float(top in labs) for labs in labels])
    n, k = len(rows), len(counts)
    weights = np.array([sum(1.0 / (k * counts[c]) for c in set(labs)) for labs in labels])
    return n * table.correct[rows].astype(np.float64) * weights


def explanation_kappa(table: SampleTable, rows: np.ndarray) -> tuple[float, str]:
    """Cohen's κ of the explanation-vs-behaviour 2x2 over ``rows``, with the reason when it is NaN."""
    return kappa(agreement_cells(table.flags[rows], table.evidence_column("object_dependence")[rows], table.dependence_min))


def _stat(values: np.ndarray, stat: str) -> float:
    if not values.size:
        return math.nan
    return float(np.median(values) if stat == "median" else values.mean())


def summarize(table: SampleTable, rows: np.ndarray | None = None) -> dict[str, float]:
    """Every AGGREGATES value over the given row indices (default: all samples)."""
    rows = np.arange(len(table.flags)) if rows is None else rows
    out = {"n_samples": float(len(rows)), "n_scored": float((table.flags[rows] != "skipped").sum())}
    for name in AGGREGATES:
        if name == "explanation_kappa":
            out[name] = explanation_kappa(table, rows)[0]
        elif name not in out:
            out[name] = _stat(*population(table, name, rows))
    return out


def class_rows(table: SampleTable, name: str) -> np.ndarray:
    """Indices of the samples whose labels include class ``name``."""
    return np.array([i for i, labels in enumerate(table.labels) if name in labels], dtype=np.int64)


def by_class(table: SampleTable, class_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Aggregates per class, over the samples whose labels include it (classes with no sample are left out)."""
    result = {}
    for name in class_names:
        rows = class_rows(table, name)
        if rows.size:
            result[name] = summarize(table, rows)
    return result


def flag_counts(flags: np.ndarray) -> dict[str, int]:
    return {flag: int((flags == flag).sum()) for flag in FLAGS}

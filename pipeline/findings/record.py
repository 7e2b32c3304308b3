"""The finding record: the severities, the metric families, the samples table as findings read it, evidence picks.
Words and numbers are in :mod:`.words`, the rules a set of findings obeys in :mod:`.accounting`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence, Union

import numpy as np

from pipeline.records.gate import RuleRecord
from pipeline.records.plain import Json, JsonObject, real, whole

if TYPE_CHECKING:
    import pandas as pd

Columns = Union["pd.DataFrame", Mapping[str, Sequence[object]]]
"""samples.csv as read (a DataFrame) or any mapping of equal-length columns."""


BLOCKER, WARNING, NOTE = "blocker", "warning", "note"


SEVERITIES = (BLOCKER, WARNING, NOTE)


MAX_EVIDENCE = 4



ATTRIBUTION_SHARE = 0.5  # a heatmap/behaviour rule is a shortcut's when its members are >= this share of the rule's rfwr samples


RFWR = "right_for_wrong_reason"


ACCURACY_METRICS = {"accuracy", "balanced_accuracy"}


BEHAVIOUR_METRICS = {"mean_object_dependence", "still_right_without_object_rate", "object_only_accuracy", "explanation_agreement",
                     "explanation_kappa", "on_target_confirmed_rate", "off_target_confirmed_rate"}


STRATEGY_METRICS = {"confirmed_shortcuts", "max_hotspot_dependence", "max_transplant_effect"}


PROBE_METRICS = {"probes_fooled", "max_probe_effect"}


DATA_METRICS = {"n_samples", "n_scored", "skipped_rate", "majority_accuracy"}


NO_SIGNAL_METRICS = {"no_signal_rate"}


CHANGE_KINDS = {"max_drop", "max_rise"}


KIND_WORDS = {"watermark": "A watermark", "stamp": "A date stamp", "noise": "A noise patch", "frame": "A dark frame"}


@dataclass(frozen=True)
class Finding:
    """One cause (DESIGN §13); :meth:`record` is its summary.json form."""

    id: str
    severity: str
    kind: str
    title: str
    sentence: str
    action: str
    labels: tuple[str, ...] = ()
    place: str | None = None  # in words
    rects: tuple[tuple[float, float, float, float], ...] = ()  # relative rectangles of the place
    rules: tuple[str, ...] = ()  # the gate's labels of the failing rules it accounts for ...
    rule_index: tuple[int, ...] = ()  # ... and their indices in summary["gate"]
    checks: tuple[str, ...] = ()  # failed trust checks it accounts for
    evidence: tuple[Mapping[str, Json], ...] = ()  # {sample_id, view: heat | crop | before_after, caption, ...}
    effect: float = 0.0  # orders findings of one severity, largest first
    since_baseline: str | None = None

    def record(self) -> JsonObject:
        rect = list(self.rects[0]) if len(self.rects) == 1 else None
        return {"id": self.id, "severity": self.severity, "kind": self.kind, "title": self.title, "sentence": self.sentence,
                "labels": list(self.labels), "place": None if self.place is None else {"words": self.place, "rect": rect,
                                                                                      "rects": [list(r) for r in self.rects]},
                "rules": list(self.rules), "rule_index": list(self.rule_index), "checks": list(self.checks),
                "evidence": [dict(e) for e in self.evidence], "action": self.action, "effect": self.effect,
                "since_baseline": self.since_baseline}


@dataclass(frozen=True)
class Samples:
    """The columns findings read, as arrays of shape (N,) in row order."""

    sample_id: np.ndarray
    labels: tuple[tuple[str, ...], ...]
    predicted: np.ndarray  # str, "" when none
    explained: np.ndarray  # str: the label the CAM was explained for
    confidence: np.ndarray
    flag: np.ndarray
    strategy: np.ndarray  # int, -1 when not clustered
    focus: np.ndarray
    object_dependence: np.ndarray | None = None
    box_area: np.ndarray | None = None  # box_area_fraction: the share of the input the scored region covers
    model_class: np.ndarray | None = None  # str: the model's class (label-mapped runs), "" when none

    @classmethod
    def of(cls, table: Columns, target: str = "predicted") -> "Samples":
        """From samples.csv as a DataFrame (or a mapping of columns); ``target``: explain.target."""
        def col(name: str) -> np.ndarray | None:
            if name not in table:
                return None
            return np.asarray(table[name])

        def text(values: Iterable[object]) -> np.ndarray:
            return np.array(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values], object)

        label = text(col("label"))
        predicted = text(col("predicted"))
        n = len(label)
        strategy = col("strategy")
        strategy = np.full(n, -1) if strategy is None else np.array([as_int(v) for v in strategy])
        dep = col("object_dependence")
        return cls(
            sample_id=text(col("sample_id")), labels=tuple(tuple(x for x in s.split("|") if x) for s in label), predicted=predicted,
            explained=predicted if target == "predicted" else label, confidence=as_floats(col("confidence"), n),
            flag=text(col("flag")), strategy=strategy, focus=as_floats(col("focus_score"), n),
            object_dependence=None if dep is None else as_floats(dep, n),
            box_area=as_floats(col("box_area_fraction"), n),
            model_class=None if col("predicted_model_class") is None else text(col("predicted_model_class")),
        )

    def in_scope(self, scope: str) -> np.ndarray:
        """(N,) bool: the samples a rule of ``scope`` ("overall" or a label) concerns."""
        if scope == "overall":
            return np.ones(len(self.flag), bool)
        return np.array([scope in labs for labs in self.labels], bool)

    def answer(self, row: int) -> str:
        """The model's answer in words: its label, or "a class outside the dataset's labels ('neutral')" for a model class
        that maps to no label of the dataset."""
        if self.predicted[row]:
            return str(self.predicted[row])
        model = self.model_class[row] if self.model_class is not None else ""
        return f"a class outside the dataset's labels ('{model}')" if model else "a class outside the dataset's labels"

    def caption(self, row: int) -> str:
        """"circle_0012.jpg: circle 0.98" — the sample and the model's answer with its confidence."""
        conf = self.confidence[row]
        return f"{self.sample_id[row]}: {self.answer(row)}" + ("" if math.isnan(conf) else f" {conf:.2f}")


as_int = whole  # -1 when missing
as_float = real  # NaN when missing


def as_floats(values: Iterable[object] | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return np.array([as_float(v) for v in values], np.float64)


def pick(s: Samples | None, mask: np.ndarray | None, order: np.ndarray | None = None) -> tuple[dict[str, Json], ...]:
    """Up to MAX_EVIDENCE heat views of the rows in ``mask``, in ``order`` (ascending key)."""
    if s is None or mask is None or not mask.any():
        return ()
    rows = np.flatnonzero(mask)
    if order is not None:
        rows = rows[np.argsort(order[rows], kind="stable")]
    return tuple({"sample_id": str(s.sample_id[r]), "view": "heat", "caption": s.caption(int(r))} for r in rows[:MAX_EVIDENCE])


def scope_mask(s: Samples, rules: Sequence[RuleRecord]) -> np.ndarray:
    out = np.zeros(len(s.flag), bool)
    for g in rules:
        out |= s.in_scope(g.scope)
    return out


def sortable(x: float) -> float:
    return -math.inf if math.isnan(x) else x

"""Intervals of the aggregates (DESIGN §6 "Intervals"): Wilson for rates and accuracy, a seeded
percentile bootstrap over samples for means and medians, and the interval of a change against a
baseline (paired over matched ``sample_id`` s, else unpaired). Pure NumPy; no TensorFlow."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.conclude.aggregates import SampleTable, population
from pipeline.config import AGGREGATES, FLAGS, NO_INTERVAL, StatisticsConfig
from pipeline.evidence.bootstrap import bootstrap_ci
from pipeline.evidence.checks import wilson

PROPORTIONS = frozenset(
    ["accuracy", "majority_accuracy", "pointing_accuracy", "object_only_accuracy", "explanation_agreement", "on_target_confirmed_rate",
     "off_target_confirmed_rate", "still_right_without_object_rate", "skipped_rate", *(f"{f}_rate" for f in FLAGS)])
"""Aggregates that are a share of 0/1 outcomes: their interval is Wilson's."""


@dataclass(frozen=True)
class Interval:
    """An aggregate's (or a change's) interval at the configured level, over ``n`` samples (pairs)."""

    n: int
    low: float
    high: float
    method: str  # "wilson" | "bootstrap" | "paired bootstrap" | "unpaired bootstrap" | "none"


NONE = Interval(0, math.nan, math.nan, "none")


def has_interval(name: str) -> bool:
    return name in AGGREGATES and name not in NO_INTERVAL


def aggregate_interval(table: SampleTable, name: str, rows: np.ndarray, stats: StatisticsConfig, seed: int) -> Interval:
    """The interval of aggregate ``name`` over ``rows`` (the samples its population is drawn from)."""
    if not has_interval(name):
        return NONE
    values, stat = population(table, name, rows)
    if name in PROPORTIONS:
        low, high = wilson(float(values.sum()), int(values.size), stats.interval)
        return Interval(int(values.size), low, high, "wilson")
    low, high = bootstrap_ci(values, stat, seed=seed, n_boot=stats.resamples, level=stats.interval)
    return Interval(int(values.size), low, high, "bootstrap")


def _stat(table: SampleTable, name: str, rows: np.ndarray) -> float:
    values, stat = population(table, name, rows)
    if not values.size:
        return math.nan
    return float(np.median(values) if stat == "median" else values.mean())


def change_interval(now: SampleTable, base: SampleTable, name: str, rows_now: np.ndarray, rows_base: np.ndarray, *,
                    paired: bool, stats: StatisticsConfig, seed: int) -> Interval:
    """Interval of (aggregate now − aggregate in the baseline). ``paired``: ``rows_now[i]`` and
    ``rows_base[i]`` are the same sample (matched ``sample_id``), resampled together; otherwise each
    audit's rows are resampled on their own."""
    if not has_interval(name) or not len(rows_now) or not len(rows_base):
        return NONE
    rng = np.random.default_rng(seed)
    diffs = np.empty(stats.resamples)
    for r in range(stats.resamples):
        pick = rng.integers(0, len(rows_now), len(rows_now))
        other = pick if paired else rng.integers(0, len(rows_base), len(rows_base))
        diffs[r] = _stat(now, name, rows_now[pick]) - _stat(base, name, rows_base[other])
    diffs = diffs[~np.isnan(diffs)]
    if not diffs.size:
        return NONE
    tail = (1 - stats.interval) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Interval(int(len(rows_now)), float(low), float(high), "paired bootstrap" if paired else "unpaired bootstrap")


def _tri(text: str) -> float:
    return 1.0 if text == "true" else 0.0 if text == "false" else math.nan


def _float(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan


def table_from_csv(path: Path, dependence_min: float) -> tuple[SampleTable, list[str]]:
    """A previous audit's samples.csv as a SampleTable (and its sample ids), for change intervals."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    col = lambda name, conv: np.array([conv(r.get(name, "")) for r in rows], np.float64)  # noqa: E731
    has_evidence = bool(rows) and "object_dependence" in rows[0]
    table = SampleTable(
        labels=[tuple(r["label"].split("|")) if r["label"] else () for r in rows],
        correct=col("correct", _tri) == 1.0,
        energy_in_box=col("energy_in_box", _float), focus_score=col("focus_score", _float), energy_lift=col("energy_lift", _float),
        pointing_hit=col("pointing_hit", _tri), box_area_fraction=col("box_area_fraction", _float),
        flags=np.array([r["flag"] for r in rows], dtype=object),
        object_dependence=col("object_dependence", _float) if has_evidence else None,
        still_right_without_object=col("still_right_without_object", _tri) if has_evidence else None,
        dependence_min=dependence_min,
    )
    return table, [r["sample_id"] for r in rows]


def matched_rows(ids_now: Sequence[str], ids_base: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(rows now, rows in the baseline) of the sample ids both audits have, in this audit's order."""
    where = {sid: i for i, sid in enumerate(ids_base)}
    pairs = [(i, where[sid]) for i, sid in enumerate(ids_now) if sid in where]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    now, base = zip(*pairs)
    return np.array(now, np.int64), np.array(base, np.int64)


def rule_intervals(rules: Sequence, table: SampleTable, scopes: Sequence[str], stats: StatisticsConfig, seed: int, *,
                   baseline: tuple[SampleTable, list[str]] | None = None, ids: Sequence[str] = (),
                   same_dataset: bool = True) -> dict[tuple[str, str, str], Interval]:
    """Every gate rule's interval, keyed ("level" | "change", scope, aggregate) as :func:`pipeline.conclude.gate.evaluate`
    reads them; ``scopes`` the classes ``class_`` rules run over. Change rules need ``baseline``
    (its table and sample ids); they are paired over matched ids unless ``same_dataset`` is False."""
    from pipeline.conclude.aggregates import class_rows

    out: dict[tuple[str, str, str], Interval] = {}
    for k, rule in enumerate(rules):
        for scope in (scopes if rule.per_class else ["overall"]):
            rows = np.arange(len(table.flags)) if scope == "overall" else class_rows(table, scope)
            key_seed = seed + 7 * k
            if not rule.needs_baseline:
                out[("level", scope, rule.aggregate)] = aggregate_interval(table, rule.aggregate, rows, stats, key_seed)
            elif baseline is not None:
                base_table, base_ids = baseline
                base_rows = np.arange(len(base_table.flags)) if scope == "overall" else class_rows(base_table, scope)
                if same_dataset:
                    now_m, base_m = matched_rows([ids[i] for i in rows], [base_ids[i] for i in base_rows])
                    now_rows, base_rows, paired = rows[now_m], base_rows[base_m], True
                else:
                    now_rows, paired = rows, False
                out[("change", scope, rule.aggregate)] = change_interval(table, base_table, rule.aggregate, now_rows, base_rows,
                                                                         paired=paired, stats=stats, seed=key_seed)
    return out

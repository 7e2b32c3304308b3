"""The trust stage (DESIGN §6, §13, §16): the trust checks (:mod:`pipeline.evidence.checks`) on the explain loop's
results, the randomisation check among them (it runs a copy of the model: TensorFlow, imported when it runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.conclude import aggregates
from pipeline.config import AuditConfig
from pipeline.evidence import checks
from pipeline.records.plain import JsonObject

if TYPE_CHECKING:
    from pipeline.console import Progress
    from pipeline.prepare.prepared import Prepared


def answer_words(space: Any, label: int, model_class: int) -> str:
    """The model's answer in words: its dataset label, or the model class outside the dataset's labels."""
    if label >= 0:
        return space.labels[label]
    return f"a class outside the dataset's labels ('{space.class_names[model_class]}')" if model_class >= 0 else \
        "a class outside the dataset's labels"


def trust_checks(cfg: AuditConfig, prep: Prepared, table: aggregates.SampleTable, cams: np.ndarray, target_class: np.ndarray,
                 predicted: np.ndarray, model_class: np.ndarray, rand_timing: JsonObject | None = None,
                 bar: "Progress | None" = None) -> list[checks.TrustCheck]:
    """The trust checks of DESIGN §6 and §13 (the randomisation one runs the model copy: TensorFlow); ``predicted`` (N,)
    label indices, ``model_class`` (N,) the model's classes (-1 where unknown); ``rand_timing`` receives the
    randomisation check's own timings."""
    values, _ = aggregates.population(table, "on_target_confirmed_rate", np.arange(len(table.flags)))
    agree = checks.confirmation_check(int(values.sum()), int(values.size), min_confirmed=cfg.trust.min_confirmed,
                                        min_claims=cfg.trust.min_claims, level=cfg.statistics.interval,
                                        enabled=cfg.evidence.interventions)
    median, n = float("nan"), 0
    if cfg.trust.randomisation:
        from pipeline.conclude.randomisation import randomisation_statistic

        median, n, _ = randomisation_statistic(cfg, prep.model, prep.samples, cams, target_class, timing=rand_timing,
                                              keras_file=prep.loaded.keras_file, sequential=cfg.statistics.sequential,
                                              start=bar.start if bar else None, tick=bar.tick if bar else (lambda n: None))
    rand = checks.randomisation_check(median, n, cfg.trust.max_randomised_similarity, enabled=cfg.trust.randomisation)
    scored = table.flags != "skipped"
    signal = checks.signal_check(int((table.flags == "no_signal").sum()), int(scored.sum()), cfg.trust.max_no_signal)
    answers = [answer_words(prep.space, int(p), int(m)) for p, m in zip(np.asarray(predicted)[scored], np.asarray(model_class)[scored])]
    spread = checks.spread_check(answers, [table.labels[i] for i in np.flatnonzero(scored)], cfg.trust.max_one_class)
    return [agree, rand, signal, spread, chance_check(cfg, table)]


def chance_check(cfg: AuditConfig, table: aggregates.SampleTable) -> checks.TrustCheck:
    """better_than_chance (DESIGN §16): balanced accuracy's interval (statistics.interval, bootstrap over the scored
    samples) must lie above 1/k, k the labels the scored samples hold."""
    from pipeline.conclude.intervals import aggregate_interval

    rows = np.flatnonzero(table.flags != "skipped")
    k = len({lab for i in rows for lab in table.labels[i]})
    values, _ = aggregates.population(table, "balanced_accuracy", rows)
    value = float(values.mean()) if values.size else float("nan")
    interval = aggregate_interval(table, "balanced_accuracy", rows, cfg.statistics, cfg.seed)
    return checks.chance_check(value, interval.low, interval.high, k, int(rows.size), cfg.statistics.interval,
                                 enabled=cfg.trust.better_than_chance)


def trust_stage(cfg: AuditConfig, prep: Prepared, table: aggregates.SampleTable, values: dict[str, np.ndarray], cams: np.ndarray,
                target_class: np.ndarray, bar: "Progress | None" = None) -> tuple[list[checks.TrustCheck], JsonObject | None]:
    """The trust checks on the explain loop's results, and the randomisation check's own timings (None when it did not run)."""
    rand: JsonObject = {}
    found = trust_checks(cfg, prep, table, cams, target_class, values["predicted"],
                         values.get("predicted_model_class", np.full(len(table.flags), -1)), rand, bar)
    return found, rand or None

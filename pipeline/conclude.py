"""What the audit concludes from the per-sample results: trust checks, strategies, probes, aggregates, gate."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import aggregates, evidence, gate
from pipeline.baseline import note
from pipeline.config import AuditConfig
from pipeline.errors import AuditError
from pipeline.intervals import rule_intervals, table_from_csv
from pipeline.console import notice, stage

if TYPE_CHECKING:
    from pipeline.geometry import InputSpec
    from pipeline.prepare import Prepared
    from pipeline.probe_stage import ProbesResult
    from pipeline.property_stage import PropertiesResult
    from pipeline.probes import Artifact
    from pipeline.strategy_stage import Classifier, Evidence, StrategiesResult

def sample_table(cfg: AuditConfig, prep: Prepared, values: dict[str, np.ndarray]) -> aggregates.SampleTable:
    has_evidence = "removed_confidence" in values
    space = prep.space
    # a multi-label sample is about one class: its per-class aggregates go to that class's label alone
    labels = [((space.labels[k],) if (k := space.explained_label(s.target)) >= 0 else ()) if prep.multi_label else s.labels
              for s in prep.samples]
    return aggregates.SampleTable(
        labels=labels, correct=values["correct"] == 1.0,
        energy_in_box=values["energy_in_box"], focus_score=values["focus_score"], energy_lift=values["energy_lift"],
        pointing_hit=values["pointing_hit"], box_area_fraction=values["box_area_fraction"], flags=values["flag"],
        object_dependence=values["object_dependence"] if has_evidence else None,
        still_right_without_object=values["still_right_without_object"] if has_evidence else None,
        only_correct=values["only_correct"] if has_evidence else None,
        dependence_min=cfg.evidence.dependence_min,
    )


def answer_words(space: Any, label: int, model_class: int) -> str:
    """The model's answer in words: its dataset label, or the model class outside the dataset's labels."""
    if label >= 0:
        return space.labels[label]
    return f"a class outside the dataset's labels ('{space.class_names[model_class]}')" if model_class >= 0 else \
        "a class outside the dataset's labels"


def trust_checks(cfg: AuditConfig, prep: Prepared, table: aggregates.SampleTable, cams: np.ndarray, target_class: np.ndarray,
                 predicted: np.ndarray, model_class: np.ndarray, rand_timing: dict[str, Any] | None = None) -> list[evidence.TrustCheck]:
    """The trust checks of DESIGN §6 and §13 (the randomisation one runs the model copy: TensorFlow); ``predicted`` (N,)
    label indices, ``model_class`` (N,) the model's classes (-1 where unknown); ``rand_timing`` receives the
    randomisation check's own timings."""
    values, _ = aggregates.population(table, "on_target_confirmed_rate", np.arange(len(table.flags)))
    agree = evidence.confirmation_check(int(values.sum()), int(values.size), min_confirmed=cfg.trust.min_confirmed,
                                        min_claims=cfg.trust.min_claims, level=cfg.statistics.interval,
                                        enabled=cfg.evidence.interventions)
    median, n = float("nan"), 0
    if cfg.trust.randomisation:
        from pipeline.randomisation import randomisation_statistic

        median, n, _ = randomisation_statistic(cfg, prep.model, prep.samples, cams, target_class, timing=rand_timing,
                                              keras_file=prep.loaded.keras_file)
    rand = evidence.randomisation_check(median, n, cfg.trust.max_randomised_similarity, enabled=cfg.trust.randomisation)
    scored = table.flags != "skipped"
    signal = evidence.signal_check(int((table.flags == "no_signal").sum()), int(scored.sum()), cfg.trust.max_no_signal)
    answers = [answer_words(prep.space, int(p), int(m)) for p, m in zip(np.asarray(predicted)[scored], np.asarray(model_class)[scored])]
    spread = evidence.spread_check(answers, [table.labels[i] for i in np.flatnonzero(scored)], cfg.trust.max_one_class)
    return [agree, rand, signal, spread, chance_check(cfg, table)]


def chance_check(cfg: AuditConfig, table: aggregates.SampleTable) -> evidence.TrustCheck:
    """better_than_chance (DESIGN §16): balanced accuracy's interval (statistics.interval, bootstrap over the scored
    samples) must lie above 1/k, k the labels the scored samples hold."""
    from pipeline.intervals import aggregate_interval

    rows = np.flatnonzero(table.flags != "skipped")
    k = len({lab for i in rows for lab in table.labels[i]})
    values, _ = aggregates.population(table, "balanced_accuracy", rows)
    value = float(values.mean()) if values.size else float("nan")
    interval = aggregate_interval(table, "balanced_accuracy", rows, cfg.statistics, cfg.seed)
    return evidence.chance_check(value, interval.low, interval.high, k, int(rows.size), cfg.statistics.interval,
                                 enabled=cfg.trust.better_than_chance)


def stage_inputs(cfg: AuditConfig, prep: Prepared, values: dict[str, np.ndarray], cams: np.ndarray,
                 target_class: np.ndarray) -> "tuple[Evidence, Classifier]":
    """What the strategies and probes stages read (the audit's maps and regions) and the model as they
    run it (the compiled forward path, decoding as the audit does)."""
    from pipeline.forward import classifier
    from pipeline.strategy_stage import Evidence

    space, size = prep.space, prep.model.input_size
    target_class = np.asarray(target_class)
    ev = Evidence(
        labels=space.labels, explained=np.where(target_class >= 0, space.class_label[np.maximum(target_class, 0)], -1),
        predicted=values["predicted"], correct=values["correct"] == 1.0, focus=values["focus_score"],
        confidence=values["explained_confidence"], flags=values["flag"], cams=cams,
        labels_of=[frozenset(space.index(lab) for lab in s.labels) for s in prep.samples],
        region_of=lambda row, label: prep.boxes.region(row, label, size), input_size=size,
    )
    return ev, classifier(cfg, prep.model, prep.samples, space, multi_label=prep.multi_label, target_class=target_class)


def strategies_stage(cfg: AuditConfig, ev: "Evidence", model: "Classifier") -> "StrategiesResult | None":
    """DESIGN §10 on the audit's own maps and regions; the hot spots' causal tests run the compiled forward path."""
    if not cfg.strategies.enabled:
        return None
    from pipeline.strategy_stage import run_strategies

    return run_strategies(cfg.strategies, ev, model, fill=cfg.evidence.fill, seed=cfg.seed)


def probe_artifacts(cfg: AuditConfig, spec: "InputSpec") -> "list[Artifact]":
    """The built-in artifacts and the user's overlays (read here: I/O at the stage's edge) at the input size, in the
    model's channel space."""
    from PIL import Image

    from pipeline import probes as pr

    size = spec.input_size
    out = [pr.builtin(kind, cfg.probes.size, size) for kind in cfg.probes.artifacts]
    for o in cfg.probes.overlays:
        with Image.open(o.path) as img:
            rgba = np.asarray(img.convert("RGBA"), np.float64)
        out.append(pr.overlay(o.name, rgba, o.size, size, o.at))
    return [a.in_channels(spec.channels, spec.gray) for a in out]


def probes_stage(cfg: AuditConfig, ev: "Evidence", model: "Classifier", cams: np.ndarray,
                 strategies: "StrategiesResult | None", spec: "InputSpec") -> "ProbesResult | None":
    """DESIGN §11: the artifacts at the corners, the centre and every strategy's hot spot (tested or not: every
    strategy whose off-object heat reaches strategies.min_off_object; one whose heat follows its objects has none
    to probe), and the background swap."""
    if not cfg.probes.enabled:
        return None
    from pipeline.probe_stage import run_probes

    spots = [(f"{s.label}/{s.id}", s.hot_spot.rect) for lab in (strategies.labels if strategies else ()) for s in lab.strategies
             if s.hot_spot is not None and s.hot_spot.off_object_share >= cfg.strategies.min_off_object]
    return run_probes(cfg.probes, ev, model, probe_artifacts(cfg, spec), cams=cams, hot_spots=spots, fill=cfg.evidence.fill,
                      seed=cfg.seed, level=cfg.statistics.interval, resamples=cfg.statistics.resamples)


def properties_stage(cfg: AuditConfig, ev: "Evidence", model: "Classifier", cams: np.ndarray, spec: "InputSpec") -> "PropertiesResult | None":
    """DESIGN §15: cues without a place, on the data and on the model (background-only edits of the probe samples)."""
    if not cfg.probes.enabled or not cfg.probes.properties:
        return None
    from pipeline.property_stage import run_properties

    return run_properties(cfg.probes, ev, model, cams=cams, gray=spec.gray or spec.channels == 1, seed=cfg.seed,
                          level=cfg.statistics.interval, resamples=cfg.statistics.resamples)


@dataclass(frozen=True)
class Conclusions:
    """What the audit concludes from the per-sample results: trust checks, strategies, aggregates, gate."""

    checks: list[evidence.TrustCheck]
    strategies: "StrategiesResult | None"
    probes: "ProbesResult | None"
    properties: "PropertiesResult | None"
    overall: dict[str, float]
    per_class: dict[str, dict[str, float]]
    results: list[gate.RuleResult]
    verdict: str


def conclude(cfg: AuditConfig, prep: Prepared, table: aggregates.SampleTable, values: dict[str, np.ndarray], cams: np.ndarray,
             target_class: np.ndarray, base: dict | None, compared: dict | None, timing: dict[str, Any],
             base_path: Path | None = None) -> Conclusions:
    """Trust checks -> strategies -> aggregates -> gate -> verdict (stage times are added to ``timing``)."""
    t = time.perf_counter()
    rand: dict[str, Any] = {}
    with stage("trust"):
        checks = trust_checks(cfg, prep, table, cams, target_class, values["predicted"],
                              values.get("predicted_model_class", np.full(len(table.flags), -1)), rand)
    timing["trust_seconds"] = round(time.perf_counter() - t, 3)
    timing["randomisation"] = rand or None
    t = time.perf_counter()
    with stage("strategies"):
        ev, model = stage_inputs(cfg, prep, values, cams, target_class)
        strat = strategies_stage(cfg, ev, model)
    timing["strategies_seconds"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    with stage("probes"):
        probed = probes_stage(cfg, ev, model, cams, strat, prep.model.input)
    timing["probes_seconds"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    with stage("properties"):
        props = properties_stage(cfg, ev, model, cams, prep.model.input)
    timing["properties_seconds"] = round(time.perf_counter() - t, 3)
    timing["properties_data_seconds"] = round(props.data_seconds, 3) if props is not None else None
    overall, per_class = aggregates.summarize(table), aggregates.by_class(table, prep.labels)
    for done in (s for s in (strat, probed) if s is not None):
        overall.update(done.overall)
        for name, agg in per_class.items():
            agg.update(done.per_label[name])
    if props is not None:
        from pipeline.property_stage import merge

        merge(overall, props.overall)
        for name, agg in per_class.items():
            merge(agg, props.per_label[name])
    ranges = rule_intervals(cfg.gate, table, list(per_class), cfg.statistics, cfg.seed, baseline=baseline_table(cfg, base_path),
                            ids=[s.sample_id for s in prep.samples], same_dataset=bool(compared and compared["dataset_matches"]))
    results = gate.evaluate(cfg.gate, overall, per_class, base["aggregates"] if base else None, baseline_note=note(compared),
                            intervals=ranges, min_samples=cfg.statistics.min_samples)
    for r in results:
        if r.warning:
            notice(r.warning)
    return Conclusions(checks, strat, probed, props, overall, per_class, results, gate.verdict(results, [c.status for c in checks]))


def baseline_table(cfg: AuditConfig, base_path: Path | None) -> "tuple[aggregates.SampleTable, list[str]] | None":
    """The baseline audit's samples.csv (beside its summary.json) for change rules with a bound; None without one."""
    if base_path is None or not any(r.needs_baseline and r.bound != "point" for r in cfg.gate):
        return None
    path = Path(base_path).parent / "samples.csv"
    if not path.is_file():
        raise AuditError(f"{base_path}: a change rule with bound needs the baseline's samples.csv beside its summary.json, found none at {path}")
    return table_from_csv(path, cfg.evidence.dependence_min)

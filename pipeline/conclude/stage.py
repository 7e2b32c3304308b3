"""What the audit concludes from the stages' results: the samples table, the aggregates (overall and per class, with each
stage's own), the gate's rules and the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.conclude import aggregates, gate
from pipeline.conclude.baseline import note
from pipeline.conclude.intervals import rule_intervals, table_from_csv
from pipeline.config import AuditConfig
from pipeline.console import notice
from pipeline.errors import AuditError
from pipeline.evidence import checks

if TYPE_CHECKING:
    from pipeline.evidence.checks import TrustCheck
    from pipeline.prepare.prepared import Prepared
    from pipeline.probes.stage import ProbesResult
    from pipeline.properties.stage import PropertiesResult
    from pipeline.strategies.stage import StrategiesResult


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


@dataclass(frozen=True)
class Conclusions:
    """What the audit concludes from the per-sample results: trust checks, strategies, aggregates, gate."""

    checks: list[checks.TrustCheck]
    strategies: "StrategiesResult | None"
    probes: "ProbesResult | None"
    properties: "PropertiesResult | None"
    overall: dict[str, float]
    per_class: dict[str, dict[str, float]]
    results: list[gate.RuleResult]
    verdict: str
    table: aggregates.SampleTable  # the per-sample values the aggregates were computed from


def conclude(cfg: AuditConfig, prep: Prepared, table: aggregates.SampleTable, checks: "list[TrustCheck]",
             stages: "tuple[StrategiesResult | None, ProbesResult | None, PropertiesResult | None]", base: dict | None,
             compared: dict | None, base_path: Path | None = None) -> Conclusions:
    """Aggregates (the samples' and each stage's) -> gate -> verdict, with the trust checks' statuses."""
    strat, probed, props = stages
    overall, per_class = aggregates.summarize(table), aggregates.by_class(table, prep.labels)
    for done in (s for s in (strat, probed) if s is not None):
        overall.update(done.overall)
        for name, agg in per_class.items():
            agg.update(done.per_label[name])
    if props is not None:
        from pipeline.properties.stage import merge

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
    return Conclusions(checks, strat, probed, props, overall, per_class, results, gate.verdict(results, [c.status for c in checks]),
                       table)


def baseline_table(cfg: AuditConfig, base_path: Path | None) -> "tuple[aggregates.SampleTable, list[str]] | None":
    """The baseline audit's samples.csv (beside its summary.json) for change rules with a bound; None without one."""
    if base_path is None or not any(r.needs_baseline and r.bound != "point" for r in cfg.gate):
        return None
    path = Path(base_path).parent / "samples.csv"
    if not path.is_file():
        raise AuditError(f"{base_path}: a change rule with bound needs the baseline's samples.csv beside its summary.json, found none at {path}")
    return table_from_csv(path, cfg.evidence.dependence_min)

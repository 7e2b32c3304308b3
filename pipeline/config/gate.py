"""``gate:`` the rules a FIT verdict needs, and the names they may use (DESIGN §3, §4)."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from pipeline.config.reader import Raw, Reader

FLAGS = ("ok", "right_for_wrong_reason", "confused_on_object", "distracted", "no_signal", "skipped")
"""Per-sample flags, in the order reports list them."""
AGGREGATES = (
    "n_samples",
    "n_scored",
    "accuracy",
    "balanced_accuracy",  # mean per-class recall
    "majority_accuracy",  # the share of the most common label: what a constant answer scores
    "mean_energy_in_box",
    "median_energy_in_box",
    "mean_focus_score",
    "mean_energy_lift",
    "pointing_accuracy",
    *(f"{flag}_rate" for flag in FLAGS),
    *("mean_object_dependence", "still_right_without_object_rate", "object_only_accuracy", "explanation_agreement",
      "explanation_kappa", "on_target_confirmed_rate", "off_target_confirmed_rate"),
)
"""Aggregate names a gate rule may use; ``class_<name>`` applies the rule to every class."""


STRATEGY_AGGREGATES = ("confirmed_shortcuts", "max_hotspot_dependence", "max_transplant_effect")
"""Aggregates of the strategies stage (DESIGN §10), gate-able like AGGREGATES (also ``class_``)."""
PROBE_AGGREGATES = ("probes_fooled", "max_probe_effect", "background_gap", "properties_fragile")
"""Aggregates of the probes stage (DESIGN §11), gate-able like AGGREGATES (also ``class_``)."""
EVIDENCE_AGGREGATES = AGGREGATES[-7:]
"""Aggregates that need ``evidence.interventions`` (DESIGN §6)."""
RULE_KINDS = ("min", "max", "max_drop", "max_rise")
BOUNDS = ("point", "lower", "upper")
NO_INTERVAL = ("n_samples", "n_scored", "explanation_kappa")
"""Aggregates without an interval (counts, κ), besides the strategies' (they carry their own effects' intervals)."""

@dataclass(frozen=True)
class GateRule:
    metric: str  # an AGGREGATES name, or "class_" + one
    kind: str  # "min" | "max" | "max_drop" | "max_rise"
    threshold: float
    index: int  # position in the config's gate list, for messages ("gate[2]")
    bound: str = "point"  # "point" | "lower" (min) | "upper" (max, max_drop, max_rise): which value is compared

    @property
    def per_class(self) -> bool:
        return self.metric.startswith("class_")

    @property
    def aggregate(self) -> str:
        """The aggregate the rule reads (without the ``class_`` prefix)."""
        return self.metric[len("class_"):] if self.per_class else self.metric

    @property
    def needs_baseline(self) -> bool:
        return self.kind in ("max_drop", "max_rise")

    def describe(self) -> str:
        op = {"min": ">=", "max": "<=", "max_drop": "drop <=", "max_rise": "rise <="}[self.kind]
        return f"{self.metric} {op} {self.threshold:g}" + (f" ({self.bound} bound)" if self.bound != "point" else "")


def read_gate(r: Reader, raw: object) -> tuple[GateRule, ...]:
    if not isinstance(raw, list) or not raw:
        raise r.fail("gate", "a non-empty list of rules like {metric: accuracy, min: 0.9}", raw)
    names = AGGREGATES + STRATEGY_AGGREGATES + PROBE_AGGREGATES
    known = list(names) + [f"class_{a}" for a in names]
    rules = []
    for i, item in enumerate(raw):
        key = f"gate[{i}]"
        allowed = {"metric": None, **{k: None for k in RULE_KINDS}, "bound": "point"}
        rule = r.mapping(item, key, allowed)
        metric = rule["metric"]
        if metric not in known:
            hint = difflib.get_close_matches(str(metric), known, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise r.fail(f"{key}.metric", f"an aggregate name{extra}, e.g. accuracy, mean_focus_score, class_accuracy", metric)
        kinds = [k for k in RULE_KINDS if rule[k] is not None]
        if len(kinds) != 1:
            raise r.fail(key, f"exactly one of {', '.join(RULE_KINDS)}", Raw(f"{len(kinds)} ({', '.join(kinds) or 'none'})"))
        kind = kinds[0]
        low = 0.0 if kind in ("max_drop", "max_rise") else -math.inf
        bound = r.choice(rule["bound"], f"{key}.bound", BOUNDS)
        side = "lower" if kind == "min" else "upper"
        if bound not in ("point", side):
            raise r.fail(f"{key}.bound", f"point or {side} (a {kind} rule compares the {side} bound)", bound)
        aggregate = metric[len("class_"):] if metric.startswith("class_") else metric
        if bound != "point" and (aggregate in NO_INTERVAL or aggregate in STRATEGY_AGGREGATES or aggregate in PROBE_AGGREGATES):
            raise r.fail(f"{key}.bound", f"point: {aggregate} has no interval", bound)
        rules.append(GateRule(metric=metric, kind=kind, threshold=r.number(rule[kind], f"{key}.{kind}", low=low), index=i, bound=bound))
    return tuple(rules)

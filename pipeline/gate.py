"""Gate rules -> verdict (pure). See DESIGN.md §2 (exit codes) and §3 (``gate``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from pipeline.config import GateRule

PASS, FAIL, NOT_EVALUATED = "pass", "fail", "not evaluated"
FIT, NOT_FIT, INCONCLUSIVE = "FIT TO DEPLOY", "NOT FIT", "INCONCLUSIVE"
EXIT_CODES = {FIT: 0, NOT_FIT: 1, INCONCLUSIVE: 3}


@dataclass(frozen=True)
class RuleResult:
    rule: GateRule
    scope: str  # "overall" or a class name
    value: float
    baseline: float | None  # the baseline audit's value, for change rules
    status: str  # PASS | FAIL | NOT_EVALUATED
    message: str  # plain words: "mean_focus_score 0.21 < 0.30"

    @property
    def label(self) -> str:
        return rule_label(self.rule.metric, self.scope)


def rule_label(metric: str, scope: str) -> str:
    """How a rule result is named everywhere: ``accuracy`` or ``class_accuracy[cat]``."""
    return metric if scope == "overall" else f"{metric}[{scope}]"


def _check(rule: GateRule, label: str, value: float, base: float | None) -> tuple[str, str]:
    if rule.needs_baseline:
        if base is None:
            return NOT_EVALUATED, f"{label}: not evaluated (no baseline)"
        if math.isnan(value) or math.isnan(base):
            return FAIL, f"{label}: undefined (no judged samples in this audit or the baseline)"
        change = base - value if rule.kind == "max_drop" else value - base
        word = "dropped" if rule.kind == "max_drop" else "rose"
        ok = change <= rule.threshold + 1e-12
        cmp = "<=" if ok else ">"
        return (PASS if ok else FAIL), f"{label} {word} by {change:.3f} ({base:.3f} -> {value:.3f}) {cmp} {rule.threshold:g}"
    if math.isnan(value):
        return FAIL, f"{label}: undefined (no samples to measure it on)"
    ok = value >= rule.threshold if rule.kind == "min" else value <= rule.threshold
    cmp = {("min", True): ">=", ("min", False): "<", ("max", True): "<=", ("max", False): ">"}[(rule.kind, ok)]
    return (PASS if ok else FAIL), f"{label} {value:.3f} {cmp} {rule.threshold:g}"


def evaluate(
    rules: Sequence[GateRule],
    overall: Mapping[str, float],
    per_class: Mapping[str, Mapping[str, float]],
    baseline: Mapping | None = None,
    baseline_note: str | None = None,
) -> list[RuleResult]:
    """One result per rule, or per (rule, class) for ``class_*`` rules.

    ``baseline`` is a previous summary's ``aggregates`` mapping ({"overall": {...}, "per_class": {...}});
    ``baseline_note`` (e.g. "baseline ran on a different evaluation set ...") is appended to every
    change rule's message.
    """
    results = []
    for rule in rules:
        scopes = list(per_class.items()) if rule.per_class else [("overall", overall)]
        for scope, values in scopes:
            value = float(values.get(rule.aggregate, math.nan))
            base = None
            if baseline is not None:
                source = baseline.get("overall", {}) if scope == "overall" else baseline.get("per_class", {}).get(scope, {})
                raw = source.get(rule.aggregate)
                base = math.nan if raw is None else float(raw)
            status, message = _check(rule, rule_label(rule.metric, scope), value, base)
            if rule.needs_baseline and baseline is not None and baseline_note:
                message = f"{message} ({baseline_note})"
            results.append(RuleResult(rule, scope, value, base, status, message))
    return results


def verdict(results: Sequence[RuleResult], trust_statuses: Sequence[str] = ()) -> str:
    """NOT FIT when a rule failed; else INCONCLUSIVE when a trust check failed; else FIT.

    Rules and checks not evaluated neither pass nor fail. A gate never turns FIT on evidence it
    could not trust, and a failing rule is never hidden behind INCONCLUSIVE.
    """
    if any(r.status == FAIL for r in results):
        return NOT_FIT
    return INCONCLUSIVE if any(s == FAIL for s in trust_statuses) else FIT

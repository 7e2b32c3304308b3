"""Gate rules -> verdict (pure). See DESIGN.md §2 (exit codes) and §3 (``gate``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from pipeline.config import GateRule
from pipeline.numbers import aggregate_text, fixed
from pipeline.status import (
    EXIT_CODES,
    FAIL,
    FIT,
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_FIT,
    PASS,
)

if TYPE_CHECKING:
    from pipeline.conclude.intervals import Interval

__all__ = ["EXIT_CODES", "FAIL", "FIT", "INCONCLUSIVE", "NOT_EVALUATED", "NOT_FIT", "PASS", "RuleResult", "evaluate", "verdict"]


@dataclass(frozen=True)
class RuleResult:
    rule: GateRule
    scope: str  # "overall" or a class name
    value: float
    baseline: float | None  # the baseline audit's value, for change rules
    status: str  # PASS | FAIL | NOT_EVALUATED
    message: str  # plain words: "mean_focus_score 0.21 < 0.30"
    interval: "Interval | None" = None  # of the value, or of the change (now - baseline) for change rules
    compared: float = math.nan  # what was compared with the threshold (the point value or the rule's bound)
    warning: str = ""  # e.g. the rule rests on fewer than statistics.min_samples samples

    @property
    def label(self) -> str:
        return rule_label(self.rule.metric, self.scope)


def rule_label(metric: str, scope: str) -> str:
    """How a rule result is named everywhere: ``accuracy`` or ``class_accuracy[cat]``."""
    return metric if scope == "overall" else f"{metric}[{scope}]"


def signed(value: float) -> str:
    """"+0.012" / "-0.034" (a change), never "-0.000"."""
    text = fixed(value)
    return text if text.startswith("-") or text == "—" else "+" + text


def _bound(rule: GateRule, value: float, interval: "Interval | None") -> tuple[float, str]:
    """(value compared, how it is described) for a level rule: the point value or the rule's bound."""
    if rule.bound == "point" or interval is None:
        return value, ""
    bound = interval.low if rule.bound == "lower" else interval.high
    return bound, f" ({interval.n} samples, interval {fixed(interval.low)} to {fixed(interval.high)}; {rule.bound} bound compared)"


def _check(rule: GateRule, label: str, value: float, base: float | None, interval: "Interval | None" = None) -> tuple[str, str, float]:
    """(status, message, value compared)."""
    def shown(v: float) -> str:
        return aggregate_text(rule.aggregate, v)

    if rule.needs_baseline:
        if base is None:
            return NOT_EVALUATED, f"{label}: not evaluated (no baseline)", math.nan
        if math.isnan(value) or math.isnan(base):
            return FAIL, f"{label}: undefined (no judged samples in this audit or the baseline)", math.nan
        change = base - value if rule.kind == "max_drop" else value - base
        word = "dropped" if rule.kind == "max_drop" else "rose"
        extra = ""
        if rule.bound == "upper" and interval is not None:
            change = -interval.low if rule.kind == "max_drop" else interval.high  # the bound of the drop (rise)
            extra = (f"; {interval.method} interval of the change {signed(interval.low)} to {signed(interval.high)} over {interval.n} samples, "
                     f"upper bound of the {'drop' if rule.kind == 'max_drop' else 'rise'} {fixed(change)} compared")
        if math.isnan(change):
            return FAIL, f"{label}: undefined interval of the change{extra}", math.nan
        ok = change <= rule.threshold + 1e-12
        cmp = "<=" if ok else ">"
        point = base - value if rule.kind == "max_drop" else value - base
        return (PASS if ok else FAIL), f"{label} {word} by {fixed(point)} ({fixed(base)} -> {fixed(value)}){extra} {cmp} {rule.threshold:g}", change
    if math.isnan(value):
        return FAIL, f"{label}: undefined (no samples to measure it on)", math.nan
    compared, text = _bound(rule, value, interval)
    if math.isnan(compared):
        return FAIL, f"{label} {shown(value)}: undefined {rule.bound} bound (no samples to draw an interval from)", compared
    ok = compared >= rule.threshold if rule.kind == "min" else compared <= rule.threshold
    cmp = {("min", True): ">=", ("min", False): "<", ("max", True): "<=", ("max", False): ">"}[(rule.kind, ok)]
    said = f"{label} {shown(value)}" + (f"{text}: {fixed(compared)}" if text else "")
    return (PASS if ok else FAIL), f"{said} {cmp} {rule.threshold:g}", compared


def evaluate(
    rules: Sequence[GateRule],
    overall: Mapping[str, float],
    per_class: Mapping[str, Mapping[str, float]],
    baseline: Mapping | None = None,
    baseline_note: str | None = None,
    intervals: Mapping[tuple[str, str, str], "Interval"] | None = None,
    min_samples: int = 0,
) -> list[RuleResult]:
    """One result per rule, or per (rule, class) for ``class_*`` rules.

    ``baseline`` is a previous summary's ``aggregates`` mapping ({"overall": {...}, "per_class": {...}});
    ``baseline_note`` (e.g. "baseline ran on a different evaluation set ...") is appended to every
    change rule's message. ``intervals`` maps ("level" | "change", scope, aggregate) to the
    aggregate's interval (of the change now − baseline for "change"); a rule whose interval is
    over fewer than ``min_samples`` samples carries a warning (its verdict is unchanged unless it
    compares a bound).
    """
    intervals = intervals or {}
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
            interval = intervals.get(("change" if rule.needs_baseline else "level", scope, rule.aggregate))
            label = rule_label(rule.metric, scope)
            status, message, compared = _check(rule, label, value, base, interval)
            if rule.needs_baseline and baseline is not None and baseline_note:
                message = f"{message} ({baseline_note})"
            warning = ""
            if interval is not None and interval.method != "none" and interval.n < min_samples and status != NOT_EVALUATED:
                warning = f"{label} rests on {interval.n} samples, fewer than statistics.min_samples ({min_samples})"
            results.append(RuleResult(rule, scope, value, base, status, message, interval, compared, warning))
    return results


def verdict(results: Sequence[RuleResult], trust_statuses: Sequence[str] = ()) -> str:
    """NOT FIT when a rule failed; else INCONCLUSIVE when a trust check failed; else FIT.

    Rules and checks not evaluated neither pass nor fail. A gate never turns FIT on evidence it
    could not trust, and a failing rule is never hidden behind INCONCLUSIVE.
    """
    if any(r.status == FAIL for r in results):
        return NOT_FIT
    return INCONCLUSIVE if any(s == FAIL for s in trust_statuses) else FIT

"""summary.json's ``gate`` rows and ``trust`` checks, typed (DESIGN §5, §9): what publish writes and findings route."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.records.plain import Record


@dataclass(frozen=True)
class RuleRecord(Record):
    """One gate rule's result. ``n`` and ``interval`` (low, high; None: none shown) are of the value (of the change for
    change rules); ``compared`` what met the threshold (the point value or the rule's ``bound``); ``scope`` "overall" or
    a label; ``status`` PASS | FAIL | NOT_EVALUATED."""

    metric: str
    label: str
    aggregate: str
    kind: str
    threshold: float
    bound: str | None
    scope: str
    value: float | None
    baseline: float | None
    compared: float | None
    n: int | None
    interval: tuple[float, ...] | None
    interval_method: str | None
    status: str
    message: str
    warning: str | None


@dataclass(frozen=True)
class CheckRecord(Record):
    """One trust check's outcome (DESIGN §9): its value against its threshold, on ``n`` samples; ``status`` PASS, FAIL or
    NOT_EVALUATED, ``message`` in plain words."""

    name: str
    value: float | None
    threshold: float | None
    status: str
    message: str
    n: int | None

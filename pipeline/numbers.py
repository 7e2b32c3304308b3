"""Numbers as people read them (pure, no imports of the pipeline): fixed decimals without "-0.000", counts as
integers, "—" for a value that is missing or undefined. Used by gate messages, CI outputs, findings and the report."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Mapping, Sequence

MISSING = "—"


def fixed(value: object, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; a negative number that rounds to zero loses its sign; "—" for None/NaN."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return MISSING
    if math.isnan(f):
        return MISSING
    text = f"{f:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def count(value: object) -> str:
    """A count as an integer ("12", not "12.000"); "—" for None/NaN."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return MISSING
    return MISSING if math.isnan(f) else str(int(round(f)))


COUNT_AGGREGATES = frozenset({"n_samples", "n_scored", "confirmed_shortcuts", "probes_fooled"})
"""Aggregates that are counts: shown as integers everywhere."""


def aggregate_text(name: str, value: object, digits: int = 3) -> str:
    """An aggregate's value as shown: a count as an integer, else fixed decimals."""
    return count(value) if name in COUNT_AGGREGATES else fixed(value, digits)


def format_value(value: object, digits: int = 3) -> str:
    """A number for people: fixed decimals (never "-0.000"), "—" for missing or NaN (report, summary.md)."""
    if value is None or (isinstance(value, Real) and not isinstance(value, Integral)):
        return fixed(value, digits)
    return str(value)


def rule_counts(gate: Sequence[Mapping[str, object]]) -> str:
    """"5 of 7 rules pass (1 not evaluated)"."""
    evaluated = [r for r in gate if r["status"] != "not evaluated"]
    idle = len(gate) - len(evaluated)
    text = f"{sum(r['status'] == 'pass' for r in evaluated)} of {len(evaluated)} rules pass"
    return text + (f" ({idle} not evaluated)" if idle else "")

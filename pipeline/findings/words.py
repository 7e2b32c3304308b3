"""Words and numbers as findings write them: titles of at most MAX_TITLE_WORDS words, lists joined with "and", numbers
with fixed decimals (never "-0.00"), intervals with their level."""

from __future__ import annotations

import math
from typing import Sequence

from pipeline.numbers import fixed
from pipeline.records.plain import real as as_float

MAX_TITLE_WORDS = 12


def and_join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def words(text: str, limit: int = MAX_TITLE_WORDS) -> str:
    """At most ``limit`` words (a title)."""
    parts = text.split()
    return text if len(parts) <= limit else " ".join(parts[:limit])


def num(value: object, digits: int = 2) -> str:
    """A number for a sentence: fixed decimals, never "-0.00"; "—" when missing."""
    return fixed(value, digits)


def interval_text(low: object, high: object, level: float) -> str:
    lo, hi = as_float(low), as_float(high)
    if math.isnan(lo) or math.isnan(hi):
        return "no interval: too few samples"
    return f"{level:.0%} interval {num(lo)}–{num(hi)}"

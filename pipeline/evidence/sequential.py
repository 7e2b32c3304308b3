"""Tests that stop when they are decided (DESIGN §18). Every rate or effect test after the explain loop runs on 16, 32,
64, ... units up to its configured count, now a maximum, and stops at the first look that decides it:

- **fools / confirmed** when the interval's lower bound reaches the threshold; the false-alarm error is split over the
  looks (Bonferroni), so the whole sequence's rate stays what ``statistics.interval`` gives one test (5% per side at 0.90);
- **not** when an honest upper bound lies below the threshold: for an effect that can only be as large as the share of
  units it moved up, the exact (Clopper–Pearson) upper bound of that share — never a bootstrap of identical values.

``statistics.sequential: false`` is one look at the maximum with the configured level: the fixed sizes of before.
Pure NumPy/SciPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

FIRST_LOOK = 16
FOOLS, NOT, OPEN = "fools", "not", "open"


def looks(maximum: int, sequential: bool = True) -> tuple[int, ...]:
    """The sample counts at which a test looks: 16, 32, 64, ... below ``maximum``, then ``maximum`` (one look when not
    sequential, or when the maximum is at most the first look)."""
    if maximum <= 0:
        return (0,)
    if not sequential or maximum <= FIRST_LOOK:
        return (maximum,)
    out, n = [], FIRST_LOOK
    while n < maximum:
        out.append(n)
        n *= 2
    return (*out, maximum)


@dataclass(frozen=True)
class Schedule:
    """The looks of one test and the two-sided level of its interval at each look (the false-alarm side split over the
    looks); ``level`` the configured one (the honest upper bound's, one-sided at (1 - level) / 2)."""

    looks: tuple[int, ...]
    look_level: float
    level: float

    @property
    def maximum(self) -> int:
        return self.looks[-1]


def schedule(maximum: int, level: float, sequential: bool = True) -> Schedule:
    sizes = looks(maximum, sequential)
    return Schedule(sizes, 1.0 - (1.0 - level) / len(sizes), level)


def upper_exact(positives: int, n: int, level: float) -> float:
    """Clopper–Pearson upper bound of a share ``positives / n``, one-sided at (1 - level) / 2 (1.0 without data)."""
    if n <= 0:
        return 1.0
    if positives >= n:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(1.0 - (1.0 - level) / 2.0, positives + 1, n - positives))


def lower_exact(positives: int, n: int, level: float) -> float:
    """Clopper–Pearson lower bound of a share, one-sided at (1 - level) / 2 (0.0 without data)."""
    if n <= 0 or positives <= 0:
        return 0.0
    from scipy.stats import beta

    return float(beta.ppf((1.0 - level) / 2.0, positives, n - positives + 1))


def effect_upper(differences: Sequence[float], level: float) -> float:
    """An honest upper bound of a mean paired difference in [-1, 1]: it is at most the share of units that moved up
    (each adds at most 1), bounded exactly."""
    d = np.asarray(differences, np.float64)
    return upper_exact(int((d > 0).sum()), int(d.size), level)


def decide(low: float, upper: float, threshold: float, *, final: bool) -> str:
    """``fools`` when ``low`` reaches ``threshold``, ``not`` when ``upper`` lies below it (or at the last look), else open."""
    if not math.isnan(low) and low >= threshold:
        return FOOLS
    if upper < threshold or final:
        return NOT
    return OPEN


@dataclass(frozen=True)
class Used:
    """How much of a test ran: ``n`` units at the look that decided it, of ``n_max`` at most; ``looks`` taken."""

    n: int
    n_max: int
    looks: int

    def words(self) -> str:
        """"decided at 16 of 64" ("" when it ran to its maximum)."""
        return f"decided at {self.n} of {self.n_max}" if self.n < self.n_max else ""

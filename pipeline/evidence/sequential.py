"""Tests that stop when they are decided (DESIGN §18). Every rate or effect test after the explain loop runs on 16, 32,
64, ... units up to its configured count, now a maximum, and stops at the first look that decides it:

- **fools / confirmed** when the interval's lower bound reaches the threshold; the false-alarm error is spent over the
  looks (a weighted Bonferroni rule: EARLY of it shared by the early looks, the rest at the last), so the whole
  sequence's rate stays what ``statistics.interval`` gives one test (5% per side at 0.90) while the last look's interval
  is nearly the fixed-size test's;
- **not** when an honest upper bound at the configured level lies below the threshold: the bootstrap's when the
  differences vary; with no event (every difference equal) the Wilson bound of the share of units that moved up
  (z² / (n + z²) for none) — never a bootstrap of identical values;
- **not** as well when it is unlikely to be proven by its maximum (futility): its predictive power — the chance the
  last look's lower bound reaches the threshold were the remaining units drawn like those seen — is below :data:`FUTILE`.
  This only ever stops a test unproven, so the false-alarm rate cannot rise; it costs a little power just above the
  threshold (measured in tests/unit/test_sequential.py).

``statistics.sequential: false`` is one look at the maximum with the configured level: the fixed sizes of before.
Pure NumPy/SciPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from pipeline.evidence.effects import Effect

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


EARLY = 0.1  # the share of the false-alarm error the early looks spend together (equal parts); the last look spends the rest


@dataclass(frozen=True)
class Schedule:
    """The looks of one test and the two-sided level of its interval at each look (its share of the false-alarm error,
    :data:`EARLY`); ``level`` the configured one (the honest upper bound's, one-sided at (1 - level) / 2)."""

    looks: tuple[int, ...]
    levels: tuple[float, ...]
    level: float

    @property
    def maximum(self) -> int:
        return self.looks[-1]

    @property
    def look_level(self) -> float:
        """The last look's level (the level a test that ran to its maximum is reported at)."""
        return self.levels[-1]

    def level_at(self, n: int) -> float:
        """The level of the look at ``n`` units."""
        return self.levels[self.looks.index(n)] if n in self.looks else self.levels[-1]


def schedule(maximum: int, level: float, sequential: bool = True) -> Schedule:
    sizes = looks(maximum, sequential)
    alpha = 1.0 - level
    if len(sizes) == 1:
        return Schedule(sizes, (level,), level)
    early = alpha * EARLY / (len(sizes) - 1)
    return Schedule(sizes, tuple([1.0 - early] * (len(sizes) - 1) + [1.0 - alpha * (1.0 - EARLY)]), level)


def upper_exact(positives: int, n: int, level: float) -> float:
    """The Wilson upper bound of a share ``positives / n``, one-sided at (1 - level) / 2 (1.0 without data); with no
    events it is z² / (n + z²), the bound DESIGN §18 asks for a rate with none."""
    if n <= 0:
        return 1.0
    from pipeline.evidence.checks import wilson

    return float(wilson(float(positives), int(n), level)[1])


def lower_exact(positives: int, n: int, level: float) -> float:
    """The Wilson lower bound of a share, one-sided at (1 - level) / 2 (0.0 without data)."""
    if n <= 0:
        return 0.0
    from pipeline.evidence.checks import wilson

    return float(wilson(float(positives), int(n), level)[0])


def effect_upper(differences: Sequence[float], level: float, *, seed: int = 0, resamples: int = 1000) -> float:
    """An honest upper bound of a mean paired difference in [-1, 1] at ``level``: the percentile bootstrap's when the
    differences vary; when they are all equal (no unit moved, or every unit the same way) the Wilson bound of the share
    that moved up, which is at least the mean (never a bootstrap of identical values)."""
    d = np.asarray(differences, np.float64)
    if d.size and np.ptp(d) > 0:
        from pipeline.evidence.bootstrap import bootstrap_ci

        return bootstrap_ci(d, "mean", seed=seed, n_boot=resamples, level=level)[1]
    return upper_exact(int((d > 0).sum()), int(d.size), level)


FUTILE = 0.10  # a test stops unproven when its chance of being proven by its maximum, at the rate it has shown, is below this


def effect_reachable(differences: Sequence[float], maximum: int, threshold: float, plan: Schedule) -> bool:
    """Whether a paired effect test could still be proven by its ``maximum`` units (DESIGN §18, futility): its predictive
    power — the chance that the last look's lower bound (at ``plan.look_level``, normal approximation) reaches
    ``threshold`` were the remaining units drawn like the ones seen (around a mean as uncertain as theirs; Spiegelhalter,
    Freedman & Blackburn 1986) — is at least :data:`FUTILE`.
    False stops the test unproven; it never declares one, so the false-alarm rate can only fall."""
    from statistics import NormalDist

    d = np.asarray(differences, np.float64)
    if d.size < 2 or maximum <= d.size:
        return True
    z = NormalDist().inv_cdf(0.5 + plan.look_level / 2)
    mean, sd, rest = float(d.mean()), float(d.std(ddof=1)), maximum - d.size
    need = threshold + z * sd / math.sqrt(maximum)  # the final mean whose lower bound reaches the threshold
    # the final mean's spread: the remaining units' own, and the uncertainty of the mean they are drawn around (predictive)
    spread = sd * math.sqrt(rest / (d.size * maximum))
    if spread == 0:
        return mean >= need
    return 1.0 - NormalDist().cdf((need - mean) / spread) >= FUTILE


def rate_reachable(positives: int, n: int, maximum: int, threshold: float, final_level: float) -> bool:
    """Whether a rate's claim "its Wilson lower bound at ``final_level`` over ``maximum`` units reaches ``threshold``"
    could still be made (DESIGN §18, futility): its predictive power — the chance of enough positives among the remaining
    units at a rate as uncertain as the one seen (beta-binomial, Jeffreys prior) — is at least :data:`FUTILE`. False stops
    the test unproven."""
    if n <= 0 or maximum <= n:
        return True
    from scipy.stats import betabinom

    from pipeline.evidence.checks import wilson

    rest = maximum - n
    need = next((x for x in range(positives, maximum + 1) if wilson(float(x), int(maximum), final_level)[0] >= threshold), None)
    if need is None:
        return False
    return float(betabinom.sf(need - positives - 1, rest, positives + 0.5, n - positives + 0.5)) >= FUTILE


def decide(low: float, upper: float, threshold: float, *, final: bool) -> str:
    """``fools`` when ``low`` reaches ``threshold``, ``not`` when ``upper`` lies below it (or at the last look), else open."""
    if not math.isnan(low) and low >= threshold:
        return FOOLS
    if upper < threshold or final:
        return NOT
    return OPEN


def judge(a: np.ndarray, b: np.ndarray, threshold: float, plan: Schedule, *, seed: int, resamples: int, look: int | None = None,
          final: bool = False, maximum: int | None = None, futility: bool = True) -> tuple["Effect", str]:
    """One look of a paired effect test on the units it has: the mean of ``a - b`` (either may be (n, k), averaged per unit)
    with its bootstrap interval at the level of the look at ``look`` units (default ``len(a)``; a test over a subset of
    a look's samples — the probe samples whose labels exclude its class — passes the look's own), and the decision:
    ``fools`` when the lower bound reaches ``threshold``, ``not`` when the honest upper bound (:func:`effect_upper`, at
    the configured level) lies below it, or when it is unlikely to be proven by ``maximum`` units (default the plan's;
    :func:`effect_reachable`)."""
    from pipeline.evidence.effects import paired_difference

    a, b = (np.asarray(x, np.float64) for x in (a, b))
    effect = paired_difference(a, b, level=plan.level_at(len(a) if look is None else look), seed=seed, resamples=resamples)
    d = (a.mean(axis=1) if a.ndim == 2 else a) - (b.mean(axis=1) if b.ndim == 2 else b)
    state = decide(effect.low, effect_upper(d, plan.level, seed=seed, resamples=resamples), threshold, final=final)
    if futility and state == OPEN and not effect_reachable(d, plan.maximum if maximum is None else maximum, threshold, plan):
        return effect, NOT
    return effect, state


def paired_looks(a: np.ndarray, b: np.ndarray, threshold: float, level: float, *, sequential: bool = True, seed: int = 0,
                 resamples: int = 1000, futility: bool = True) -> tuple["Effect", str, int]:
    """A whole paired test run look by look over its units in order (a simulation's, a unit test's): (effect at the
    deciding look, decision, units used)."""
    plan = schedule(len(a), level, sequential)
    for k, n in enumerate(plan.looks):
        effect, state = judge(a[:n], b[:n], threshold, plan, seed=seed, resamples=resamples, final=k == len(plan.looks) - 1,
                              futility=futility)
        if state != OPEN:
            return effect, state, n
    return effect, state, n


@dataclass(frozen=True)
class Used:
    """How much of a test ran: ``n`` units at the look that decided it, of ``n_max`` at most; ``looks`` taken."""

    n: int
    n_max: int
    looks: int

    def words(self) -> str:
        """"decided at 16 of 64" ("" when it ran to its maximum)."""
        return f"decided at {self.n} of {self.n_max}" if self.n < self.n_max else ""

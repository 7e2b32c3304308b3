"""Tests that stop when they are decided (issue 43, DESIGN §18), by seeded simulation of a paired cell (an edit's flips
against its control's over the same samples) run look by look exactly as the stages run it: the false-alarm rate stays
the configured one; a quiet cell stops at its first or second look; a large effect at its first."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from pipeline.evidence.sequential import FOOLS, NOT, looks, paired_looks, schedule, upper_exact

LEVEL, THRESHOLD = 0.90, 0.2


def _cell(rng: np.random.Generator, n: int, flip: float, control: float) -> tuple[np.ndarray, np.ndarray]:
    return (rng.random(n) < flip).astype(float), (rng.random(n) < control).astype(float)


def _wilson(k: float, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval written out (a second implementation, for the hand-worked cases)."""
    p = k / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_looks_double_from_16_up_to_the_maximum_and_one_look_when_not_sequential():
    assert looks(64) == (16, 32, 64) and looks(43) == (16, 32, 43) and looks(100) == (16, 32, 64, 100)
    assert looks(12) == (12,) and looks(64, sequential=False) == (64,)
    plan = schedule(64, LEVEL)
    # the false-alarm error (5% per side) spent over the looks: 10% of it shared by the early ones, the rest at the last
    assert plan.levels == pytest.approx((1 - 0.1 * 0.1 / 2, 1 - 0.1 * 0.1 / 2, 1 - 0.1 * 0.9))
    assert sum((1 - lv) / 2 for lv in plan.levels) == pytest.approx(0.05)
    assert schedule(64, LEVEL, sequential=False).levels == (LEVEL,)


def test_the_upper_bound_is_wilsons():
    """0 of n: z² / (n + z²) with z the one-sided 95% quantile (never a bootstrap of identical values); 3 of 20 by the
    Wilson formula written out here."""
    z = norm.ppf(0.95)
    assert upper_exact(0, 16, LEVEL) == pytest.approx(z * z / (16 + z * z))
    assert upper_exact(3, 20, LEVEL) == pytest.approx(_wilson(3, 20, z)[1])


def test_a_cell_with_no_effect_is_declared_fooling_at_most_at_the_configured_rate():
    rng = np.random.default_rng(0)
    fooled = [paired_looks(*_cell(rng, 64, 0.1, 0.1), THRESHOLD, LEVEL, seed=k, resamples=300)[1] == FOOLS for k in range(400)]
    assert np.mean(fooled) <= 0.05


def test_a_cell_exactly_at_the_threshold_fools_no_more_often_than_one_fixed_size_test():
    """True effect 0.2 (flip 0.3, control 0.1, independent), the worst case for a false alarm: over the same 1,000 cells,
    the looks declare "fools" no more often than one test at the maximum with the configured level does (DESIGN §18: the
    error split over the looks keeps that rate; the percentile bootstrap's own slack at n = 64 is the same for both)."""
    rng = np.random.default_rng(1)
    cells = [_cell(rng, 64, 0.3, 0.1) for _ in range(1000)]
    looked = np.mean([paired_looks(a, b, THRESHOLD, LEVEL, seed=k, resamples=300)[1] == FOOLS for k, (a, b) in enumerate(cells)])
    fixed = np.mean([paired_looks(a, b, THRESHOLD, LEVEL, sequential=False, seed=k, resamples=300)[1] == FOOLS
                     for k, (a, b) in enumerate(cells)])
    assert looked <= fixed + 0.01 and fixed <= 0.08, (looked, fixed)


@pytest.mark.parametrize("seed", range(20))
def test_a_cell_with_0_of_16_flips_stops_at_its_first_or_second_look(seed):
    rng = np.random.default_rng(seed)
    flip = np.zeros(64)
    control = (rng.random(64) < 0.05).astype(float)
    _, state, used = paired_looks(flip, control, THRESHOLD, LEVEL, seed=seed)
    assert state == NOT and used in (16, 32)


@pytest.mark.parametrize("seed", range(20))
def test_a_large_effect_stops_at_the_first_look(seed):
    """15 of 16 flip against a quiet control: fooled at 16, the rest never run."""
    rng = np.random.default_rng(seed)
    flip = np.ones(64)
    flip[rng.integers(0, 16)] = 0.0
    _, state, used = paired_looks(flip, np.zeros(64), THRESHOLD, LEVEL, seed=seed)
    assert state == FOOLS and used == 16


def test_not_sequential_is_one_look_at_the_maximum_with_the_configured_level():
    rng = np.random.default_rng(3)
    a, b = _cell(rng, 64, 0.9, 0.0)
    effect, state, used = paired_looks(a, b, THRESHOLD, LEVEL, sequential=False, seed=5)
    from pipeline.evidence.effects import paired_difference

    assert used == 64 and state == FOOLS and effect == paired_difference(a, b, level=LEVEL, seed=5)


def _beta_binomial_sf(k: int, n: int, a: float, b: float) -> float:
    """P(X > k) for X ~ BetaBinomial(n, a, b), summed term by term (a second implementation)."""
    from math import comb, lgamma, exp

    lbeta = lambda x, y: lgamma(x) + lgamma(y) - lgamma(x + y)  # noqa: E731
    return sum(comb(n, j) * exp(lbeta(j + a, n - j + b) - lbeta(a, b)) for j in range(k + 1, n + 1))


def test_a_rate_unlikely_to_reach_the_threshold_by_its_maximum_is_futile():
    """A read place's claim at 48 samples (a 99% Wilson lower bound reaching 0.2) needs 17 flips: 17/48 -> 0.204,
    16/48 -> 0.188. With 2 of 12 seen, 15 of the 36 left must flip; at a rate as uncertain as 2 of 12 (Beta(2.5, 10.5))
    that chance is 0.064, below 10%: futile. With 3 of 12 it is 0.22: kept. At its maximum a test decides on its own
    bounds."""
    from pipeline.evidence.sequential import FUTILE, rate_reachable

    z99 = norm.ppf(0.995)
    assert _wilson(17, 48, z99)[0] >= THRESHOLD > _wilson(16, 48, z99)[0]
    assert _beta_binomial_sf(14, 36, 2.5, 10.5) == pytest.approx(0.064, abs=0.001) and _beta_binomial_sf(14, 36, 2.5, 10.5) < FUTILE
    assert _beta_binomial_sf(13, 36, 3.5, 9.5) == pytest.approx(0.22, abs=0.01)
    assert not rate_reachable(2, 12, 48, THRESHOLD, 0.99)
    assert rate_reachable(3, 12, 48, THRESHOLD, 0.99)
    assert rate_reachable(0, 48, 48, THRESHOLD, 0.99)


def test_a_small_effect_stops_early_as_futile_and_costs_the_large_ones_nothing():
    """A cell whose true effect (0.05) is far below the threshold stops at its first look in most draws instead of
    running to 64; cells with a true effect of 0.45 fool as often with the futility rule as without it; a cell with no
    effect is never made to fool by it (the rule only stops a test unproven)."""
    rng = np.random.default_rng(7)
    small = [_cell(rng, 64, 0.15, 0.10) for _ in range(200)]
    used = np.array([paired_looks(a, b, THRESHOLD, LEVEL, seed=k, resamples=300)[2] for k, (a, b) in enumerate(small)])
    without = np.array([paired_looks(a, b, THRESHOLD, LEVEL, seed=k, resamples=300, futility=False)[2] for k, (a, b) in enumerate(small)])
    assert np.mean(used == 16) >= 0.6 and used.mean() < 0.75 * without.mean(), (np.mean(used == 16), used.mean(), without.mean())
    large = [_cell(rng, 64, 0.50, 0.05) for _ in range(200)]
    power = [np.mean([paired_looks(a, b, THRESHOLD, LEVEL, seed=k, resamples=300, futility=f)[1] == FOOLS for k, (a, b) in enumerate(large)])
             for f in (True, False)]
    assert power[0] >= power[1] - 0.02 and power[1] >= 0.9, power
    none = [_cell(rng, 64, 0.1, 0.1) for _ in range(200)]
    assert not any(paired_looks(a, b, THRESHOLD, LEVEL, seed=k, resamples=300)[1] == FOOLS and
                   paired_looks(a, b, THRESHOLD, LEVEL, seed=k, resamples=300, futility=False)[1] != FOOLS for k, (a, b) in enumerate(none))

"""Intervals in the gate (DESIGN §6 "Intervals"): bounds compared instead of point values, Wilson
intervals worked out independently, paired bootstrap change rules. No TensorFlow."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from pipeline.conclude import gate
from pipeline.conclude.aggregates import SampleTable
from pipeline.config import GateRule, StatisticsConfig
from pipeline.conclude.intervals import aggregate_interval, change_interval, matched_rows, rule_intervals

STATS = StatisticsConfig(interval=0.90, resamples=1000, min_samples=30)


def table(correct: list[bool], focus: list[float] | None = None) -> SampleTable:
    n = len(correct)
    f = np.array(focus if focus is not None else [0.5] * n, float)
    return SampleTable(labels=[("a",)] * n, correct=np.array(correct), energy_in_box=f, focus_score=f, energy_lift=f,
                       pointing_hit=np.ones(n), box_area_fraction=np.full(n, 0.1), flags=np.array(["ok"] * n, dtype=object))


def wilson_by_formula(k: int, n: int, level: float) -> tuple[float, float]:
    """An independent Wilson interval: the roots of (p̂ - p)² = z² p (1 - p) / n in p."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = k / n
    a = 1 + z * z / n
    b = -(2 * p + z * z / n)
    c = p * p
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize("k, n, passes", [(380, 400, True), (36, 40, False)])
def test_bound_lower_on_accuracy(k, n, passes):
    t = table([True] * k + [False] * (n - k))
    interval = aggregate_interval(t, "accuracy", np.arange(n), STATS, seed=0)
    low, high = wilson_by_formula(k, n, 0.90)
    assert interval.method == "wilson" and interval.n == n
    assert interval.low == pytest.approx(low, abs=1e-12) and interval.high == pytest.approx(high, abs=1e-12)
    rule = GateRule("accuracy", "min", 0.9, 0, bound="lower")
    (result,) = gate.evaluate([rule], {"accuracy": k / n}, {}, intervals={("level", "overall", "accuracy"): interval})
    assert (result.status == gate.PASS) == passes
    assert result.compared == interval.low and "lower bound compared" in result.message
    # the point rule passes both: 0.95 and 0.90 are >= 0.9
    (point,) = gate.evaluate([GateRule("accuracy", "min", 0.9, 0)], {"accuracy": k / n}, {},
                             intervals={("level", "overall", "accuracy"): interval}, min_samples=STATS.min_samples)
    assert point.status == gate.PASS and point.compared == k / n
    assert (point.warning == "") == (n >= 30)


def test_bound_upper_on_a_rate_and_bootstrap_on_a_mean():
    t = table([True] * 50, focus=list(np.linspace(0, 1, 50)))
    interval = aggregate_interval(t, "mean_focus_score", np.arange(50), STATS, seed=3)
    assert interval.method == "bootstrap" and interval.low < 0.5 < interval.high
    # the interval of a mean of 0..1 over 50 samples: roughly ±1.645 * sd / sqrt(n)
    sd = np.linspace(0, 1, 50).std() / math.sqrt(50)
    assert interval.high - interval.low == pytest.approx(2 * 1.645 * sd, rel=0.15)
    rule = GateRule("mean_focus_score", "max", 0.55, 0, bound="upper")
    (result,) = gate.evaluate([rule], {"mean_focus_score": 0.5}, {}, intervals={("level", "overall", "mean_focus_score"): interval})
    assert result.status == gate.FAIL and result.compared == interval.high


def test_paired_change_interval_identical_audits_contain_zero_and_pass():
    correct = [True] * 180 + [False] * 20
    now, base = table(correct), table(correct)
    rows = np.arange(200)
    change = change_interval(now, base, "accuracy", rows, rows, paired=True, stats=STATS, seed=0)
    assert change.low == 0.0 == change.high  # identical per-sample outcomes: every paired resample differs by 0
    rule = GateRule("accuracy", "max_drop", 0.02, 0, bound="upper")
    (result,) = gate.evaluate([rule], {"accuracy": 0.9}, {}, baseline={"overall": {"accuracy": 0.9}},
                              intervals={("change", "overall", "accuracy"): change})
    assert result.status == gate.PASS


def test_paired_change_interval_twenty_fewer_correct_of_two_hundred_fails():
    base = table([True] * 180 + [False] * 20)
    now = table([True] * 160 + [False] * 40)  # the first 160 stay right, 20 more are wrong
    rows = np.arange(200)
    change = change_interval(now, base, "accuracy", rows, rows, paired=True, stats=STATS, seed=0)
    # the paired difference is the mean of d_i in {0, -1}, 20 of them -1: -0.10, sd sqrt(0.1*0.9/200) = 0.0212
    assert change.low < -0.10 < change.high and change.high == pytest.approx(-0.10 + 1.645 * 0.0212, abs=0.012)
    rule = GateRule("accuracy", "max_drop", 0.05, 0, bound="upper")
    (result,) = gate.evaluate([rule], {"accuracy": 0.8}, {}, baseline={"overall": {"accuracy": 0.9}},
                              intervals={("change", "overall", "accuracy"): change})
    assert result.status == gate.FAIL and result.compared == pytest.approx(-change.low)
    unpaired = change_interval(now, base, "accuracy", rows, rows, paired=False, stats=STATS, seed=0)
    assert unpaired.high - unpaired.low > change.high - change.low  # pairing removes the shared variance


def test_rule_intervals_match_sample_ids_and_scope_classes():
    now = table([True] * 30 + [False] * 10)
    now = SampleTable(**{**now.__dict__, "labels": [("a",)] * 20 + [("b",)] * 20})
    base = table([True] * 40)
    ids_now = [f"s{i}" for i in range(40)]
    ids_base = [f"s{i}" for i in reversed(range(40))]  # another order: matched by id (s0..s19 are class a)
    base = SampleTable(**{**base.__dict__, "labels": [("b",)] * 20 + [("a",)] * 20})
    assert matched_rows(ids_now, ids_base)[1][:3].tolist() == [39, 38, 37]
    rules = [GateRule("class_accuracy", "max_drop", 0.1, 0, bound="upper"), GateRule("accuracy", "min", 0.5, 1, bound="lower")]
    got = rule_intervals(rules, now, ["a", "b"], STATS, 0, baseline=(base, ids_base), ids=ids_now)
    assert got[("change", "a", "accuracy")].low == 0.0 == got[("change", "a", "accuracy")].high  # class a unchanged
    assert got[("change", "b", "accuracy")].high < 0 and got[("change", "b", "accuracy")].method == "paired bootstrap"
    assert got[("level", "overall", "accuracy")].n == 40


def test_accuracy_091_on_40_fails_a_lower_bound_rule_the_point_rule_passes():
    """The reviewer's case: accuracy 0.91 on 40 samples (36.4 successes: Wilson takes a fractional count)."""
    from pipeline.evidence.checks import wilson
    from pipeline.conclude.intervals import Interval

    low, high = wilson(0.91 * 40, 40, 0.90)
    ref = wilson_by_formula(1, 1, 0.90)  # (sanity of the twin at p = 1: upper bound 1)
    assert ref[1] == pytest.approx(1.0)
    z = NormalDist().inv_cdf(0.95)
    centre = (0.91 + z * z / 80) / (1 + z * z / 40)
    half = z / (1 + z * z / 40) * math.sqrt(0.91 * 0.09 / 40 + z * z / 6400)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert low == pytest.approx(0.806, abs=0.002)  # the interval reaches 0.81, as the issue says
    interval = Interval(40, low, high, "wilson")
    lower = GateRule("accuracy", "min", 0.9, 0, bound="lower")
    point = GateRule("accuracy", "min", 0.9, 1)
    got = gate.evaluate([lower, point], {"accuracy": 0.91}, {}, intervals={("level", "overall", "accuracy"): interval})
    assert [r.status for r in got] == [gate.FAIL, gate.PASS]

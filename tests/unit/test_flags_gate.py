"""Flags and gate rules on hand-made inputs."""

from __future__ import annotations

import math

import numpy as np

from pipeline.conclude.aggregates import SampleTable, by_class, summarize
from pipeline.evidence.bootstrap import bootstrap_ci
from pipeline.config import GateRule
from pipeline.explain.flags import assign_flags
from pipeline.conclude.gate import FAIL, FIT, NOT_EVALUATED, NOT_FIT, PASS, evaluate, verdict


def test_flags_truth_table():
    flags = assign_flags(
        correct=np.array([True, True, False, False, True, True, False]),
        focus_value=np.array([0.5, 0.1, 0.5, -0.2, np.nan, 0.9, 0.9]),
        judged=np.array([True, True, True, True, False, False, True]),
        skipped=np.array([False, False, False, False, False, False, True]),
        focus_min=0.2,
    )
    assert list(flags) == ["ok", "right_for_wrong_reason", "confused_on_object", "distracted", "no_signal", "no_signal", "skipped"]


def test_flag_threshold_is_inclusive():
    flags = assign_flags(correct=np.array([True]), focus_value=np.array([0.2]), judged=np.array([True]), skipped=np.array([False]), focus_min=0.2)
    assert flags[0] == "ok"


def _table():
    # 5 samples: a (ok, e .8), a (rfwr, e .1), b (distracted, e .2), b (no_signal), a (skipped)
    return SampleTable(
        labels=[("a",), ("a",), ("b",), ("b",), ("a",)],
        correct=np.array([True, True, False, True, False]),
        energy_in_box=np.array([0.8, 0.1, 0.2, np.nan, np.nan]),
        focus_score=np.array([0.7, -0.1, 0.0, np.nan, np.nan]),
        energy_lift=np.array([3.0, 0.5, 1.0, np.nan, np.nan]),
        pointing_hit=np.array([1.0, 0.0, 0.0, np.nan, np.nan]),
        box_area_fraction=np.array([0.2, 0.2, 0.2, 0.3, np.nan]),
        flags=np.array(["ok", "right_for_wrong_reason", "distracted", "no_signal", "skipped"], dtype=object),
    )


def test_aggregates_by_hand():
    s = summarize(_table())
    assert s["n_samples"] == 5 and s["n_scored"] == 4
    assert s["accuracy"] == 3 / 4  # over scored samples; no_signal counts for accuracy
    assert math.isclose(s["mean_energy_in_box"], (0.8 + 0.1 + 0.2) / 3)  # over judged samples
    assert s["median_energy_in_box"] == 0.2
    assert math.isclose(s["mean_focus_score"], 0.6 / 3)
    assert s["pointing_accuracy"] == 1 / 3
    assert s["right_for_wrong_reason_rate"] == 1 / 4 and s["no_signal_rate"] == 1 / 4
    assert s["skipped_rate"] == 1 / 5
    per = by_class(_table(), ["a", "b", "c"])
    assert set(per) == {"a", "b"}
    assert per["a"]["accuracy"] == 1.0 and math.isclose(per["a"]["mean_energy_in_box"], 0.45)
    assert math.isnan(per["b"]["pointing_accuracy"]) is False and per["b"]["pointing_accuracy"] == 0.0


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    values = np.linspace(0, 1, 101)
    low, high = bootstrap_ci(values, "mean", seed=1)
    assert low < 0.5 < high and high - low < 0.25
    assert (low, high) == bootstrap_ci(values, "mean", seed=1)
    assert bootstrap_ci(np.full(10, 0.3), "median", seed=0) == (0.3, 0.3)


def _rule(metric, kind, threshold, i=0):
    return GateRule(metric=metric, kind=kind, threshold=threshold, index=i)


def test_gate_min_max_and_class_rules():
    overall = {"accuracy": 0.95, "right_for_wrong_reason_rate": 0.10}
    per_class = {"a": {"mean_energy_in_box": 0.5}, "b": {"mean_energy_in_box": 0.3}}
    results = evaluate(
        [_rule("accuracy", "min", 0.9), _rule("right_for_wrong_reason_rate", "max", 0.05), _rule("class_mean_energy_in_box", "min", 0.4)],
        overall, per_class,
    )
    assert [(r.label, r.status) for r in results] == [
        ("accuracy", PASS), ("right_for_wrong_reason_rate", FAIL),
        ("class_mean_energy_in_box[a]", PASS), ("class_mean_energy_in_box[b]", FAIL),
    ]
    assert results[1].message == "right_for_wrong_reason_rate 0.100 > 0.05"
    assert results[3].message == "class_mean_energy_in_box[b] 0.300 < 0.4"
    assert verdict(results) == NOT_FIT
    assert verdict(results[:1]) == FIT


def test_change_rules_without_and_with_baseline():
    rule = _rule("mean_focus_score", "max_drop", 0.05)
    (r,) = evaluate([rule], {"mean_focus_score": 0.40}, {}, None)
    assert r.status == NOT_EVALUATED and "not evaluated (no baseline)" in r.message
    assert verdict([r]) == FIT  # neither passes nor fails
    (r,) = evaluate([rule], {"mean_focus_score": 0.40}, {}, {"overall": {"mean_focus_score": 0.50}})
    assert r.status == FAIL and r.baseline == 0.5 and "dropped by 0.100" in r.message
    (r,) = evaluate([rule], {"mean_focus_score": 0.48}, {}, {"overall": {"mean_focus_score": 0.50}})
    assert r.status == PASS
    (r,) = evaluate([_rule("distracted_rate", "max_rise", 0.01)], {"distracted_rate": 0.05}, {}, {"overall": {"distracted_rate": 0.05}})
    assert r.status == PASS


def test_undefined_value_fails_with_a_reason():
    (r,) = evaluate([_rule("mean_focus_score", "min", 0.3)], {"mean_focus_score": math.nan}, {})
    assert r.status == FAIL and "undefined" in r.message

"""Evidence and trust (DESIGN §6), pure parts: values worked out by hand in each test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.conclude import aggregates
from pipeline.evidence import interventions
from pipeline.evidence import checks
from pipeline.conclude import gate
from pipeline.config import GateRule


def test_region_is_the_pixel_centre_union_of_the_boxes():
    # pixel intervals (c0, r0, c1, r1), half-open: columns 1..2 of rows 0..1, and column 3 of row 3
    region = interventions.region_from_boxes(np.array([[1, 0, 3, 2], [3, 3, 4, 4]]), (4, 5))
    expected = np.zeros((4, 5), bool)
    expected[0, 1] = expected[0, 2] = expected[1, 1] = expected[1, 2] = expected[3, 3] = True
    assert (region == expected).all()


def test_mean_fill_uses_only_the_kept_pixels():
    image = np.zeros((2, 2, 3))
    image[0, 0] = (200, 100, 0)  # the object: this pixel is removed
    image[0, 1] = (10, 20, 30)
    image[1, 0] = (20, 40, 60)
    image[1, 1] = (30, 60, 90)
    region = np.array([[True, False], [False, False]])
    removed, only = interventions.intervene(image, region, "mean")
    # removed: the object pixel becomes the mean of the three kept pixels, (20, 40, 60); the rest is untouched
    assert removed[0, 0].tolist() == [20, 40, 60] and (removed[~region] == image[~region]).all()
    # only: everything outside the object becomes the object's own mean colour, the object is untouched
    assert (only[~region] == [200, 100, 0]).all() and only[0, 0].tolist() == [200, 100, 0]
    removed_gray, _ = interventions.intervene(image, region, "gray")
    assert removed_gray[0, 0].tolist() == [127.5] * 3


def test_object_dependence_by_hand():
    p = np.array([0.8, 0.8, 0.5, 0.0, 0.1])
    removed = np.array([0.2, 0.8, 1.0, 0.3, 0.9])
    # (0.8-0.2)/0.8 = 0.75; 0; (0.5-1)/0.5 = -1; undefined; (0.1-0.9)/0.1 = -8 -> clipped to -1
    got = interventions.object_dependence(p, removed)
    assert got[:3] == pytest.approx([0.75, 0.0, -1.0]) and math.isnan(got[3]) and got[4] == -1.0


def test_agreement_cells_and_value_by_hand():
    flags = np.array(["ok", "ok", "right_for_wrong_reason", "right_for_wrong_reason", "ok", "distracted", "no_signal", "skipped"], dtype=object)
    dep = np.array([0.9, 0.1, 0.7, 0.0, np.nan, 0.9, 0.9, 0.9])
    cells = checks.agreement_cells(flags, dep, 0.5)
    assert {k: v.tolist() for k, v in cells.items()} == {"on_needed": [0], "on_not_needed": [1], "off_needed": [2], "off_not_needed": [3]}
    assert checks.agreement_values(flags, dep, 0.5).mean() == 0.5  # rows 0 and 3 agree, 1 and 2 do not


def _table(flags, correct, dep, still, only_correct, labels=None):
    n = len(flags)
    nan = np.full(n, np.nan)
    return aggregates.SampleTable(
        labels=labels or [("a",)] * n, correct=np.array(correct), energy_in_box=nan, focus_score=nan, energy_lift=nan,
        pointing_hit=nan, box_area_fraction=nan, flags=np.array(flags, dtype=object), object_dependence=np.array(dep, float),
        still_right_without_object=np.array(still, float), only_correct=np.array(only_correct, float), dependence_min=0.5,
    )


def test_evidence_aggregates_by_hand():
    table = _table(
        flags=["ok", "right_for_wrong_reason", "distracted", "ok", "skipped"],
        correct=[True, True, False, True, False],
        dep=[0.8, 0.2, 0.6, np.nan, np.nan],  # row 3 had no intervention (max_samples)
        still=[0.0, 1.0, 0.0, np.nan, np.nan],
        only_correct=[1.0, 0.0, 1.0, np.nan, np.nan],
    )
    out = aggregates.summarize(table)
    assert out["mean_object_dependence"] == pytest.approx((0.8 + 0.2) / 2)  # correct scored rows 0 and 1
    assert out["still_right_without_object_rate"] == pytest.approx(0.5)  # rows 0, 1
    assert out["object_only_accuracy"] == pytest.approx(2 / 3)  # scored rows 0, 1, 2
    assert out["explanation_agreement"] == pytest.approx(1.0)  # row 0: on & needed; row 1: off & not needed


def test_verdict_order_not_fit_beats_inconclusive_beats_fit():
    rule = GateRule("accuracy", "min", 0.9, 0)
    passing = gate.evaluate([rule], {"accuracy": 0.95}, {})
    failing = gate.evaluate([rule], {"accuracy": 0.5}, {})
    assert gate.verdict(passing, []) == gate.FIT
    assert gate.verdict(passing, [gate.PASS, gate.NOT_EVALUATED]) == gate.FIT
    assert gate.verdict(passing, [gate.PASS, gate.FAIL]) == gate.INCONCLUSIVE
    assert gate.verdict(failing, [gate.FAIL]) == gate.NOT_FIT
    assert gate.EXIT_CODES[gate.INCONCLUSIVE] == 3


def test_trust_check_statuses():
    check = checks.confirmation_check
    assert check(5, 40, min_confirmed=0.5, min_claims=20, level=0.9, enabled=False).status == gate.NOT_EVALUATED
    assert checks.randomisation_check(0.5, 64, 0.5, enabled=True).status == gate.FAIL  # ">= max" fails
    assert checks.randomisation_check(0.49, 64, 0.5, enabled=True).status == gate.PASS


def test_rank_correlation_against_a_plain_spearman():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    a = rng.random((4, 3, 3))
    b = a + rng.normal(0, 0.3, a.shape)
    b[1] = -a[1]  # perfectly reversed order
    a[2] = 0.0  # constant: excluded
    b[3] = np.round(b[3], 1)  # ties
    got = checks.rank_correlation(a, b)
    assert got[1] == pytest.approx(-1.0) and math.isnan(got[2])
    for i in (0, 3):
        assert got[i] == pytest.approx(spearmanr(a[i].ravel(), b[i].ravel()).statistic, abs=1e-12)


def test_seeded_subset_is_reproducible_and_sorted():
    first = interventions.seeded_subset(range(100), 10, seed=4)
    assert first.tolist() == sorted(first.tolist()) and len(set(first.tolist())) == 10
    assert (first == interventions.seeded_subset(range(100), 10, seed=4)).all()
    assert interventions.seeded_subset([3, 5], None, seed=0).tolist() == [3, 5]


def test_wilson_interval_by_hand():
    # 8 of 10 at 90%: z = 1.6449; centre = (0.8 + z²/20) / (1 + z²/10) = 0.93529 / 1.27055 = 0.73613;
    # half = z / 1.27055 * sqrt(0.016 + z²/400) = 1.29463 * 0.150877 = 0.19533 -> [0.5408, 0.9315]
    low, high = checks.wilson(8, 10, 0.90)
    assert low == pytest.approx(0.5408, abs=2e-4) and high == pytest.approx(0.9315, abs=2e-4)
    # 0 of 24 at 90%: low 0, high = z²/n / (1 + z²/n) = 0.11274 / 1.11274 = 0.10132
    assert checks.wilson(0, 24, 0.90) == pytest.approx((0.0, 0.10132), abs=1e-4)
    assert all(math.isnan(v) for v in checks.wilson(0, 0, 0.9))


def test_confirmation_rates_kappa_and_chance_by_hand():
    # 2x2: on & needed 6, on & not needed 2, off & needed 1, off & not needed 3 (12 correct, judged samples)
    flags = np.array(["ok"] * 8 + ["right_for_wrong_reason"] * 4 + ["distracted", "skipped"], dtype=object)
    dep = np.array([0.9] * 6 + [0.1] * 2 + [0.7] + [0.0] * 3 + [0.9, np.nan])
    t = aggregates.SampleTable(labels=[("a",)] * 14, correct=np.array([True] * 12 + [False] * 2), energy_in_box=np.zeros(14),
                               focus_score=np.zeros(14), energy_lift=np.zeros(14), pointing_hit=np.zeros(14),
                               box_area_fraction=np.zeros(14), flags=flags, object_dependence=dep, dependence_min=0.5)
    out = aggregates.summarize(t)
    assert out["on_target_confirmed_rate"] == pytest.approx(6 / 8)
    assert out["off_target_confirmed_rate"] == pytest.approx(3 / 4)
    assert out["explanation_agreement"] == pytest.approx(9 / 12)
    # p_o = 9/12; p_e = (8*7 + 4*5) / 144 = 76/144; κ = (0.75 - 0.52778) / (1 - 0.52778) = 0.47059
    assert out["explanation_kappa"] == pytest.approx((9 / 12 - 76 / 144) / (1 - 76 / 144))
    cells = checks.agreement_cells(flags, dep, 0.5)
    assert checks.chance_agreement(cells) == pytest.approx(76 / 144)


def test_kappa_is_nan_with_the_reason_when_a_margin_is_empty():
    # every correct sample on target: agreement is just the share that needs the object, κ undefined
    flags = np.array(["ok"] * 5, dtype=object)
    value, reason = checks.kappa(checks.agreement_cells(flags, np.array([0.9, 0.9, 0.1, 0.9, 0.1]), 0.5))
    assert math.isnan(value) and "every correct sample has its heat on target" in reason
    value, reason = checks.kappa(checks.agreement_cells(flags, np.full(5, 0.9), 0.5))
    assert math.isnan(value) and "empty" in reason


@pytest.mark.parametrize("needed, n, status", [
    (0.3, 100, gate.FAIL),  # all on target, 30% needed: upper bound 0.38 < 0.5
    (0.8, 100, gate.PASS),  # 80% needed
    (0.3, 10, gate.NOT_EVALUATED),  # 10 on-target claims < min_claims 20: never a flip-flop
    (0.45, 100, gate.PASS),  # 45/100: upper bound 0.53 >= 0.5, not significantly below
])
def test_heatmap_confirmation_on_constructed_cases(needed, n, status):
    confirmed = round(needed * n)
    check = checks.confirmation_check(confirmed, n, min_confirmed=0.5, min_claims=20, level=0.9, enabled=True)
    assert check.status == status
    high = checks.wilson(confirmed, n, 0.9)[1]
    if status != gate.NOT_EVALUATED:
        assert (high >= 0.5) == (status == gate.PASS)
    else:
        assert "n too small" in check.message

"""A model that gives every image the same answer never passes (issue: no silent FIT): balanced and majority
accuracy, and the prediction_spread trust check, against hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.aggregates import SampleTable, summarize
from pipeline.evidence import spread_check


def table(labels, correct, flags=None):
    n = len(labels)
    nan = np.full(n, np.nan)
    return SampleTable(labels=[tuple(x) for x in labels], correct=np.array(correct, bool), energy_in_box=nan, focus_score=nan,
                       energy_lift=nan, pointing_hit=nan, box_area_fraction=nan,
                       flags=np.array(flags or ["ok"] * n, dtype=object))


def test_balanced_and_majority_accuracy_on_unbalanced_labels():
    # a x6 (5 right), b x3 (1 right), c x1 (wrong), one skipped sample of b that counts nowhere
    labels = [("a",)] * 6 + [("b",)] * 3 + [("c",)] + [("b",)]
    correct = [1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 1]
    agg = summarize(table(labels, correct, ["ok"] * 10 + ["skipped"]))
    assert agg["accuracy"] == pytest.approx(6 / 10)
    assert agg["balanced_accuracy"] == pytest.approx((5 / 6 + 1 / 3 + 0 / 1) / 3)  # 0.3889: recalls averaged
    assert agg["majority_accuracy"] == pytest.approx(6 / 10)  # answering "a" always scores this


def test_a_sample_of_two_labels_counts_for_both_recalls():
    # (a, b) right, a wrong, b right: recall a = 1/2, recall b = 2/2
    agg = summarize(table([("a", "b"), ("a",), ("b",)], [1, 0, 1]))
    assert agg["balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert agg["majority_accuracy"] == pytest.approx(2 / 3)  # a and b tie at 2 of 3; either scores 2/3


def test_prediction_spread_fails_a_constant_answer_on_two_class_labels():
    labels = [("apple",)] * 19 + [("banana",)] * 5
    check = spread_check(["apple"] * 24, labels, 0.95)
    assert check.status == "fail" and check.value == 1.0
    assert "answers 'apple' for 24 of 24 scored samples (100%) > trust.max_one_class 95%" in check.message
    assert "the labels hold 2 classes (apple 19, banana 5)" in check.message
    assert spread_check(["apple"] * 23 + ["banana"], labels, 0.95).status == "fail"  # 23/24 = 0.958 > 0.95
    assert spread_check(["apple"] * 22 + ["banana"] * 2, labels, 0.95).status == "pass"  # 22/24 = 0.917


def test_prediction_spread_is_not_evaluated_when_one_label_holds_nearly_every_sample():
    labels = [("apple",)] * 99 + [("banana",)]  # banana: 1% < 5%
    check = spread_check(["apple"] * 100, labels, 0.95)
    assert check.status == "not evaluated" and "1 class with at least 5%" in check.message


def _sorted_by_class(sizes):
    """A folder sorted by class, as a file listing is: every apple, then every banana, ..."""
    from pipeline.data.records import Annotations, Box, ImageRecord

    images = tuple(ImageRecord(f"{lab}_{i:03d}.jpg", (Box(lab, 0, 0, 5, 5),)) for lab, n in sizes.items() for i in range(n))
    return Annotations(images, tuple(sizes), ())


def test_limit_takes_a_seeded_label_stratified_sample_from_a_folder_sorted_by_class():
    from pipeline.data.records import stratified

    ann = _sorted_by_class({"apple": 60, "banana": 30, "orange": 10})
    got = stratified(ann, 24, seed=0)
    labels = [r.labels[0] for r in got.images]
    # shares of 24 by largest remainder: 14.4 -> 14, 7.2 -> 7, 2.4 -> 2; the one left goes to the largest remainder,
    # apple and orange tie at .4 and apple comes first
    assert {lab: labels.count(lab) for lab in set(labels)} == {"apple": 15, "banana": 7, "orange": 2}
    assert [r.image for r in got.images] == sorted(r.image for r in got.images)  # the images keep their order
    assert stratified(ann, 24, seed=0).images == got.images and stratified(ann, 24, seed=1).images != got.images
    assert got.notes == ("--limit 24: a seeded, label-stratified sample of 24 of 100 images (apple 15, banana 7, orange 2)",)
    assert stratified(ann, None, seed=0) is ann and stratified(ann, 100, seed=0) is ann


def test_limit_below_the_number_of_labels_says_which_label_has_no_sample():
    from pipeline.data.records import stratified

    ann = _sorted_by_class({"apple": 60, "banana": 30, "orange": 10})
    got = stratified(ann, 2, seed=0)
    assert sorted(r.labels[0] for r in got.images) == ["apple", "banana"]
    assert got.notes[0].endswith("(apple 1, banana 1); no image of orange (raise --limit to at least 3)")
    # a rare label still gets one image while the limit allows
    small = stratified(_sorted_by_class({"apple": 97, "banana": 2, "orange": 1}), 5, seed=0)
    assert sorted(r.labels[0] for r in small.images) == ["apple", "apple", "apple", "banana", "orange"]


def test_the_preprocessing_check_refuses_only_a_clearly_worse_configured_preprocessing():
    from pipeline.model.preprocessing import Outcome, judge

    constant = Outcome(0.33, "apple", 62 / 64)
    right = {"scale_0_1": constant, "none": Outcome(0.92, "apple", 0.40), "scale_-1_1": Outcome(0.40, "banana", 0.7)}
    message = judge("scale_0_1", right, ("Rescaling efficientnetb0/rescaling: scale 0.003922, offset 0",))
    assert message == ("model.preprocessing: scale_0_1 gives accuracy 0.33 and answers 'apple' for 62 of 64 images; with "
                       "preprocessing: none accuracy is 0.92 — the model has its own Rescaling efficientnetb0/rescaling: scale 0.003922, "
                       "offset 0, so it may expect raw 0–255 pixels. Set model.preprocessing: none (or model.check_preprocessing: false "
                       "if scale_0_1 is right).")
    # 0.24 better is not enough on its own ...
    assert judge("a", {"a": Outcome(0.60, "x", 0.5), "b": Outcome(0.84, "x", 0.5)}) is None
    assert judge("a", {"a": Outcome(0.60, "x", 0.5), "b": Outcome(0.85, "x", 0.5)}) is not None
    # ... unless the configured one answers one class for 90% of the batch and the other does not (and is 0.1 better)
    assert judge("a", {"a": Outcome(0.50, "x", 0.9), "b": Outcome(0.60, "x", 0.5)}) is not None
    assert judge("a", {"a": Outcome(0.50, "x", 0.9), "b": Outcome(0.55, "x", 0.5)}) is None  # a random model's noise
    assert judge("a", {"a": Outcome(0.50, "x", 0.9), "b": Outcome(0.70, "y", 0.95)}) is None  # constant too

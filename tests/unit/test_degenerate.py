"""A model that gives every image the same answer never passes (issue: no silent FIT): balanced and majority
accuracy, and the prediction_spread trust check, against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.conclude.aggregates import SampleTable, summarize
from pipeline.evidence.checks import spread_check


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


def _vectors(n: int, right: int, gained: int, lost: int = 0) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    """Correctness of the configured setting (``right`` of ``n`` images) and of another on the same images: ``gained``
    images it gets right that the configured one does not, ``lost`` the other way round."""
    mine = [True] * right + [False] * (n - right)
    other = list(mine)
    for i in range(gained):
        other[right + i] = True
    for i in range(lost):
        other[i] = False
    return tuple(mine), tuple(other)


def test_the_paired_interval_of_two_accuracies_on_the_same_images_by_hand():
    """Agresti & Min's adjusted Wald interval, worked out by hand: with b images lost and c gained of n, add 1/2 to each
    cell: centre (c - b) / (n + 2), half-width z · sqrt((b + c + 1) - (c - b)² / (n + 2)) / (n + 2), z = 1.644854 (90%)."""
    from pipeline.evidence.checks import paired_difference

    diff, low, high = paired_difference(*_vectors(64, 40, 16), 0.90)
    assert diff == 0.25 and abs(low - 0.152148) < 1e-6 and abs(high - 0.332700) < 1e-6  # 16/66 ± 0.090276
    diff, low, _ = paired_difference(*_vectors(64, 40, 15), 0.90)
    assert abs(diff - 15 / 64) < 1e-12 and abs(low - 0.138840) < 1e-6  # 15/66 - 0.088433
    diff, low, _ = paired_difference(*_vectors(64, 40, 17, lost=1), 0.90)
    assert diff == 0.25 and abs(low - 0.145513) < 1e-6  # the same net gain, more discordance: 16/66 - 0.096911
    assert all(math.isnan(v) for v in paired_difference([], [], 0.90))


def test_the_preprocessing_check_refuses_only_when_the_gain_is_sure():
    from pipeline.prepare.preprocessing_check import Outcome, judge

    def outcome(correct, top="x", share=0.5):
        return Outcome(sum(correct) / len(correct), top, share, correct)

    # the lower bound of the paired gain decides, not the gain: 16 more of 64 right refuses, 15 does not, and 17 more
    # right with 1 lost (the same 0.25 gain) does not either
    for gained, lost, refused in ((16, 0, True), (15, 0, False), (17, 1, False)):
        mine, other = _vectors(64, 40, gained, lost)
        assert (judge("a", {"a": outcome(mine), "b": outcome(other)}) is not None) == refused, (gained, lost)
    mine, other = _vectors(64, 21, 38)
    message = judge("scale_0_1", {"scale_0_1": outcome(mine, "apple", 62 / 64), "none": outcome(other, "apple", 0.40)},
                    ("Rescaling efficientnetb0/rescaling: scale 0.003922, offset 0",))
    assert message.startswith("model.preprocessing: scale_0_1 gives accuracy 0.33 and answers 'apple' for 62 of 64 images; with "
                              "preprocessing: none accuracy is 0.92 on the same 64 images (gain 0.59, 90% interval ")
    assert message.endswith("— the model has its own Rescaling efficientnetb0/rescaling: scale 0.003922, offset 0, so it may expect "
                            "raw 0–255 pixels. Set model.preprocessing: none (or model.check_preprocessing: false if scale_0_1 is right).")
    # the one-class rule: a configured setting answering one class for 90% of the batch, beaten by 0.1 by one that does not
    mine, other = _vectors(60, 30, 6)
    assert judge("a", {"a": outcome(mine, share=0.9), "b": outcome(other)}) is not None
    mine, other = _vectors(60, 30, 5)  # 0.083: a random model's noise
    assert judge("a", {"a": outcome(mine, share=0.9), "b": outcome(other)}) is None
    mine, other = _vectors(60, 30, 12)  # constant too
    assert judge("a", {"a": outcome(mine, share=0.9), "b": outcome(other, "y", 0.95)}) is None


def test_the_other_resize_convention_warns_at_five_points_with_its_interval_above_zero():
    from pipeline.records.preprocessing import resize_verdict

    assert resize_verdict(4 / 64, 0.01) and not resize_verdict(3 / 64, 0.01)  # 0.0625 and 0.047
    assert resize_verdict(0.05, 1e-6) and not resize_verdict(0.05, 0.0) and not resize_verdict(0.30, -0.02)
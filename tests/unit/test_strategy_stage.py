"""The strategies stage end to end on a hand-built world (no TensorFlow): a NumPy "model" that reads
a red patch in the top-right corner is caught and confirmed; one that reads the object is not."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import box_evidence
from pipeline.config import StrategiesConfig
from pipeline.strategies.stage import CSV_COLUMNS, record, run_strategies, section
from pipeline.explain.explained import Classifier, Evidence

SIZE, GRID, N = 32, 4, 40  # input 32x32, CAM grid 4x4 (8 px cells), 40 samples per label


def world(seed: int = 0):
    """Label 0 ("marked") images carry a red 8x8 patch in the top-right cell; every image has one
    object (a 8x8 white square) somewhere in the left half. Returns images, object boxes, labels."""
    rng = np.random.default_rng(seed)
    images, boxes, labels = [], [], []
    for i in range(2 * N):
        label = i % 2
        img = rng.uniform(60, 120, (SIZE, SIZE, 3)).astype(np.float32)
        r, c = int(rng.integers(8, 24)), int(rng.integers(0, 8))
        img[r:r + 8, c:c + 8] = 250.0 if label == 0 else 180.0  # the object: bright for label 0, dimmer for 1
        if label == 0:
            img[0:8, 24:32] = (255.0, 0.0, 0.0)
        images.append(img)
        boxes.append((c, r, c + 8, r + 8))
        labels.append(label)
    return images, boxes, np.array(labels)


def reads_patch(batch: np.ndarray) -> np.ndarray:
    red = (batch[:, 0:8, 24:32, 0] - batch[:, 0:8, 24:32, 1]).mean(axis=(1, 2)) > 100
    return np.stack([red, ~red], axis=1).astype(float) * 0.9 + 0.05


def reads_object(batch: np.ndarray) -> np.ndarray:
    bright = batch.min(axis=3).reshape(len(batch), -1).max(axis=1) > 220  # a white (250) object anywhere
    return np.stack([bright, ~bright], axis=1).astype(float) * 0.9 + 0.05


def evidence(images, boxes, labels, probs, heat_on_patch: bool) -> Evidence:
    cams = np.zeros((len(images), GRID, GRID), np.float32)
    for i, (c0, r0, _, _) in enumerate(boxes):
        cams[i, r0 // 8, c0 // 8] += 1.0
        if heat_on_patch and labels[i] == 0:
            cams[i, 0, 3] += 3.0
    return box_evidence(("marked", "plain"), boxes, labels, probs, cams, SIZE)


def classifier(images, model) -> Classifier:
    probs = model(np.stack(images))
    return Classifier(images=lambda rows: {r: images[r] for r in rows}, probabilities=model,
                      is_label=lambda p, label: p.argmax(axis=1) == label, target_class=probs.argmax(axis=1), batch_size=7)


CFG = StrategiesConfig(min_samples=20, min_test_samples=10, test_samples=30, controls=4)


def test_a_model_that_reads_a_corner_patch_is_a_confirmed_shortcut_there():
    images, boxes, labels = world()
    model = reads_patch
    result = run_strategies(CFG, evidence(images, boxes, labels, model(np.stack(images)), True), classifier(images, model), fill="mean", seed=0)
    marked = result.labels[0]
    assert marked.label == "marked" and marked.strategies  # (the object's few positions may split it further)
    for s in marked.strategies:
        assert s.hot_spot.rect == (0.75, 0.0, 1.0, 0.25)  # the top-right cell, where the patch is
        assert s.hot_spot.off_object_share == pytest.approx(1.0)
        # blank the patch: every tested sample turns "plain"; blank an equal rectangle elsewhere: none does
        assert s.tests.hotspot_accuracy == 0.0 and s.tests.control_accuracy == 1.0
        assert s.tests.dependence.value == 1.0 and s.tests.dependence.low == 1.0
        # paste it onto "plain" images: every one flips; paste a patch from elsewhere in the donor: none does
        assert s.tests.transplant_flip == 1.0 and s.tests.control_flip == 0.0
        assert s.tests.n_tested == min(s.rows.size, 30) and s.tests.n_recipients == 30
        assert s.confirmed
    assert result.overall["confirmed_shortcuts"] == len(marked.strategies)
    assert result.per_label["plain"]["confirmed_shortcuts"] == 0.0
    assert (result.strategy[labels == 0] >= 0).all()
    s = marked.strategies[0]
    assert sum(sum(x.flag_mix.values()) for x in marked.strategies) == 40 and set(s.flag_mix) == {"ok"}
    rec = record(marked, s, CFG.interval)
    assert set(CSV_COLUMNS) <= set(rec) and rec["confirmed"] is True
    assert "top-right corner" in rec["sentence"] and "Confirmed shortcut" in rec["sentence"]
    # what the hot spot holds: the same red pixels in every member, filling the corner cell up to the image edges
    assert s.content.kind == "border" and s.content.colour == "red" and s.content.flatness == 1.0
    assert s.content.n == s.rows.size and s.content.n_varied == 0  # flat patches: no correlation is defined
    assert rec["hotspot_kind"] == "border" and rec["hotspot_colour"] == "red" and not rec["watched_unused"]
    assert f"where the same flat red area appears on {s.rows.size} of {s.rows.size} images" in rec["sentence"]
    assert len(s.crops) == 4 and s.crops[0].shape == (8, 8, 3) and (s.crops[0] == (255, 0, 0)).all()
    assert section(result)["labels"][0]["strategies"][0]["hotspot_x0"] == 0.75


def test_a_model_that_reads_the_object_confirms_nothing():
    images, boxes, labels = world(1)
    model = reads_object
    result = run_strategies(CFG, evidence(images, boxes, labels, model(np.stack(images)), False), classifier(images, model), fill="mean", seed=0)
    assert result.overall["confirmed_shortcuts"] == 0.0
    for lab in result.labels:
        for s in lab.strategies:
            assert not s.confirmed
            if s.tests is not None:  # a coarse cell around the object may read as off-object; testing clears it
                assert s.tests.dependence.value == 0.0 and s.tests.transplant.value == 0.0
                assert s.watched_unused and "Watched, but unused in this data" in record(lab, s, CFG.interval)["sentence"]


def test_too_few_samples_give_an_atlas_only_and_no_model_means_no_tests():
    images, boxes, labels = world()
    ev = evidence(images, boxes, labels, reads_patch(np.stack(images)), True)
    small = StrategiesConfig(min_test_samples=50, min_samples=60)
    result = run_strategies(small, ev, None, fill="mean", seed=0)
    assert all(not lab.strategies and "atlas only" in lab.note for lab in result.labels)
    assert (result.strategy == -1).all()
    untested = run_strategies(CFG, ev, None, fill="mean", seed=0)
    assert untested.labels[0].strategies[0].not_tested == "no model to test with"


def _label(mean_map: np.ndarray, cover: np.ndarray, on: float, area: float):
    from pipeline.strategies.analysis import Atlas
    from pipeline.strategies.stage import LabelStrategies

    return LabelStrategies("a", Atlas(mean_map, cover, 10, on, area), (), False, float("nan"), ())


def test_atlas_reading_heat_follows_the_objects():
    from pipeline.report.strategies_view import reading

    follows = np.zeros((4, 4))
    follows[1:3, 1:3] = 0.25
    cover = np.zeros((4, 4))
    cover[1:3, 1:3] = 1.0  # all of the heat on the objects: no off-object hot spot to name
    assert reading(_label(follows, cover, 0.5, 0.125)) == (
        "50% of the heat lies on the objects, which cover 12% of the image on average (4.0× their share): heat follows the objects.")


def test_atlas_reading_heat_barely_follows_the_objects_with_the_numbers_that_showed_the_fault():
    from pipeline.report.strategies_view import reading

    corner = np.full((4, 4), 0.5 / 15)
    corner[3, 3] = 0.5
    cover = np.full((4, 4), 0.52)
    text = reading(_label(corner, cover, 0.58, 0.52))  # apple on the real photos: 58% on, objects 52% of the image
    assert text == ("58% of the heat lies on the objects, which cover 52% of the image on average (1.1× their share): heat barely "
                    "follows the objects; strongest off the objects at the bottom-right corner.")
    assert "most" not in text


def test_atlas_reading_heat_avoids_the_objects():
    from pipeline.report.strategies_view import reading

    corner = np.zeros((4, 4))
    corner[3, 3] = 1.0
    cover = np.zeros((4, 4))
    cover[1:3, 1:3] = 0.5
    assert reading(_label(corner, cover, 0.01, 0.125)) == (
        "1% of the heat lies on the objects, which cover 12% of the image on average (0.1× their share): heat avoids the objects; "
        "strongest off the objects at the bottom-right corner.")


def _tests(dep: tuple[float, float], eff: tuple[float, float]):
    from pipeline.evidence.effects import Effect
    from pipeline.strategies.stage import Tests

    return Tests(20, 1.0, 1.0, Effect(sum(dep) / 2, *dep, 20), 0.0, 20, 0.0, 0.0, Effect(sum(eff) / 2, *eff, 20))


@pytest.mark.parametrize("dep, eff, watched", [
    ((-0.05, 0.10), (-0.02, 0.15), True),   # both intervals hold 0, both upper bounds under min_effect (0.2)
    ((0.0, 0.0), (0.0, 0.0), True),         # nothing moved at all
    ((-0.05, 0.10), (-0.02, 0.25), False),  # the transplant's upper bound reaches 0.2: an effect is not ruled out
    ((0.05, 0.15), (-0.02, 0.15), False),   # the dependence interval leaves out 0: the hot spot does something
])
def test_watched_but_unused_needs_both_intervals_on_zero_and_under_min_effect(dep, eff, watched):
    from pipeline.strategies.stage import is_watched_unused

    assert is_watched_unused(CFG, _tests(dep, eff)) is watched
    assert is_watched_unused(CFG, None) is False

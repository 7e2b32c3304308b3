"""The strategies stage end to end on a hand-built world (no TensorFlow): a NumPy "model" that reads
a red patch in the top-right corner is caught and confirmed; one that reads the object is not."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import StrategiesConfig
from pipeline.strategy_stage import CSV_COLUMNS, Classifier, Evidence, record, run_strategies, section

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
    predicted = probs.argmax(axis=1)

    def region_of(row: int, label: int) -> np.ndarray:
        c0, r0, c1, r1 = boxes[row]
        out = np.zeros((SIZE, SIZE), bool)
        out[r0:r1, c0:c1] = True
        return out

    return Evidence(labels=("marked", "plain"), explained=predicted.copy(), predicted=predicted, correct=predicted == labels,
                    focus=np.zeros(len(images)), confidence=probs[np.arange(len(images)), predicted],
                    flags=np.where(predicted == labels, "ok", "distracted").astype(object), cams=cams,
                    labels_of=[frozenset([int(lab)]) for lab in labels], region_of=region_of, input_size=(SIZE, SIZE))


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


def test_too_few_samples_give_an_atlas_only_and_no_model_means_no_tests():
    images, boxes, labels = world()
    ev = evidence(images, boxes, labels, reads_patch(np.stack(images)), True)
    small = StrategiesConfig(min_test_samples=50, min_samples=60)
    result = run_strategies(small, ev, None, fill="mean", seed=0)
    assert all(not lab.strategies and "atlas only" in lab.note for lab in result.labels)
    assert (result.strategy == -1).all()
    untested = run_strategies(CFG, ev, None, fill="mean", seed=0)
    assert untested.labels[0].strategies[0].not_tested == "no model to test with"


def test_atlas_reading_says_whether_the_heat_follows_the_objects():
    from pipeline.report.strategies_view import reading
    from pipeline.strategies import Atlas
    from pipeline.strategy_stage import LabelStrategies

    follows = np.zeros((4, 4))
    follows[1:3, 1:3] = 0.25
    cover = np.zeros((4, 4))
    cover[1:3, 1:3] = 0.5  # objects cover 12.5% on average; 50% of the heat on them is 4x their share
    lab = LabelStrategies("a", Atlas(follows, cover, 10, 0.5, 0.125), (), False, float("nan"), ())
    assert reading(lab).endswith("(4.0× their share): heat follows the objects.")
    corner = np.zeros((4, 4))
    corner[3, 3] = 1.0
    lab = LabelStrategies("a", Atlas(corner, cover, 10, 0.01, 0.125), (), False, float("nan"), ())
    assert reading(lab).endswith("most of the heat lies off the objects, strongest at the bottom-right corner.")

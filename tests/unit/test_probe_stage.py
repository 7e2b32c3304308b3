"""The probes stage end to end with NumPy "models" (no TensorFlow): one that answers a class whenever a
given overlay sits in the bottom-right corner is fooled there and only there; one that reads only the
object is fooled by nothing and keeps its accuracy on another class's background; one that reads the
background loses it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import box_evidence
from pipeline.probes import artifacts as pr
from pipeline.config import ProbesConfig
from pipeline.probes.stage import CSV_COLUMNS, aggregates, probe_samples, record, run_probes, section, sentence, HEAT_IMAGES
from pipeline.explain.explained import Classifier, Evidence

SIZE, GRID, N = 32, 4, 40  # 32x32 inputs, a 4x4 CAM grid, 40 images per label
BACKGROUND = ((70.0, 70.0, 140.0), (140.0, 70.0, 70.0))  # label 0 ("a") on blue, label 1 ("b") on red
LOGO = np.zeros((8, 8, 4))
LOGO[..., :3] = (255, 255, 0)
LOGO[..., 3] = 255  # an opaque yellow 8x8 logo


def world(seed: int = 0):
    """Each image: its label's background colour (with noise) and one 8x8 object in the top-left 20x20,
    white (250) for label a, dim gray (150) for label b. Returns images, object boxes, labels."""
    rng = np.random.default_rng(seed)
    images, boxes, labels = [], [], []
    for i in range(2 * N):
        label = i % 2
        img = (np.array(BACKGROUND[label]) + rng.normal(0, 6, (SIZE, SIZE, 3))).astype(np.float32)
        r, c = int(rng.integers(2, 12)), int(rng.integers(2, 12))
        img[r:r + 8, c:c + 8] = 250.0 if label == 0 else 150.0
        images.append(img)
        boxes.append((c, r, c + 8, r + 8))
        labels.append(label)
    return images, boxes, np.array(labels)


def _object_bright(batch: np.ndarray) -> np.ndarray:
    """A white object: at least 40 white pixels in the top-left 20x20 (a few bright noise pixels are not one)."""
    return (batch[:, :20, :20].min(axis=3) > 200).sum(axis=(1, 2)) >= 40


def logo_at_bottom_right(batch: np.ndarray) -> np.ndarray:
    corner = batch[:, 24:32, 24:32]
    return ((corner[..., 0] > 200) & (corner[..., 1] > 200) & (corner[..., 2] < 80)).mean(axis=(1, 2)) > 0.5


def _probs(is_a: np.ndarray) -> np.ndarray:
    return np.stack([is_a, ~is_a], axis=1).astype(float) * 0.9 + 0.05


def reads_logo_else_object(batch):
    return _probs(logo_at_bottom_right(batch) | _object_bright(batch))


def reads_object(batch):
    return _probs(_object_bright(batch))


def reads_background(batch):
    return _probs(np.median(batch[..., 2] - batch[..., 0], axis=(1, 2)) > 0)  # bluish background: a


def explain_logo(batch: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """All of the heat in the bottom-right cell when the logo is there, else on the object's cell."""
    cams = np.zeros((len(batch), GRID, GRID), np.float32)
    for i, img in enumerate(batch):
        if logo_at_bottom_right(img[None])[0]:
            cams[i, 3, 3] = 1.0
        else:
            cams[i, 1, 1] = 1.0
    return cams


def evidence(images, boxes, labels, model) -> Evidence:
    return box_evidence(("a", "b"), boxes, labels, model(np.stack(images)), np.ones((len(images), GRID, GRID)), SIZE)


def run(model, cfg: ProbesConfig, explain=None, seed: int = 0):
    images, boxes, labels = world(seed)
    ev = evidence(images, boxes, labels, model)
    clf = Classifier(images=lambda rows: {r: images[r] for r in rows}, probabilities=model,
                     is_label=lambda p, label: p.argmax(axis=1) == label, target_class=model(np.stack(images)).argmax(axis=1),
                     batch_size=16, explain=explain)
    artifacts = [pr.builtin(k, cfg.size, (SIZE, SIZE)) for k in cfg.artifacts]
    artifacts += [pr.overlay(o.name, LOGO, o.size, (SIZE, SIZE), o.at) for o in cfg.overlays]
    return run_probes(cfg, ev, clf, artifacts, cams=ev.cams, fill="mean", seed=seed, level=0.9, resamples=500), ev


def logo_config(at):
    from pipeline.config import OverlayConfig

    return ProbesConfig(samples=40, artifacts=("noise", "stamp"), overlays=(OverlayConfig("logo", __file__, 0.25, at),),
                        places=("corners", "centre"), background_swap=True)


def test_a_model_that_answers_a_class_for_an_overlay_in_a_corner_is_fooled_there():
    result, ev = run(reads_logo_else_object, logo_config(None), explain_logo)
    by = {(r.probe, r.place, r.label): r for r in result.rows}
    hit = by[("logo", "bottom-right", "a")]
    # the 20 probe samples of label b all turn into a; filling the same pixels turns none
    assert hit.n == 20 and hit.flip == 1.0 and hit.control_flip == 0.0
    assert hit.effect.value == 1.0 and hit.effect.low == 1.0 and hit.fools
    # heat where its map says: all of it in the bottom-right cell, upsampled bilinearly; the logo's rectangle
    # is that cell inset by the margin (columns/rows 23-31 of 32)
    assert hit.artifact_heat == pytest.approx(expected_heat(hit.rect), abs=1e-9)
    assert hit.n_flipped == 20 and len(hit.exemplars) == 4
    assert (hit.exemplars[0].after[29, 29] == (255, 255, 0)).all() and hit.exemplars[0].after_cam[3, 3] == 1.0
    # elsewhere, and into b, nothing: the model reads the logo only in that corner
    others = [r for r in result.rows if (r.probe, r.place, r.label) != ("logo", "bottom-right", "a")]
    assert not any(r.fools for r in others)
    assert all(r.flip == 0.0 for r in others if r.label == "a" and r.probe == "logo")
    assert result.overall["probes_fooled"] == 1.0 and result.overall["max_probe_effect"] == 1.0
    assert result.per_label["a"]["probes_fooled"] == 1.0 and result.per_label["b"]["probes_fooled"] == 0.0
    rec = record(hit).to_json()
    assert tuple(k for k in CSV_COLUMNS if k in rec) == CSV_COLUMNS and rec["fools"] is True
    assert hit.heat_area == pytest.approx(64 / 1024)  # the logo's 8x8 rectangle of the 32x32 input
    assert sentence(hit) == ("the overlay 'logo' at the bottom-right corner turns 100% of b images into a (the same area filled: 0%); "
                             f"{hit.artifact_heat:.0%} of their heat lies on it ({hit.artifact_heat * 16:.1f}× its share of the image)")
    summary = section(result)
    assert summary["fooling"] == [sentence(hit)] and summary["passes"]["gradcam"] == sum(min(r.n_flipped, HEAT_IMAGES) for r in result.rows if r.fools)


def expected_heat(rect) -> float:
    """A second implementation: upsample a 4x4 map with one hot cell to 32x32 by half-pixel bilinear
    interpolation, pixel by pixel, and sum the rectangle's share."""
    def taps(i):
        src = (i + 0.5) * GRID / SIZE - 0.5
        lo = math.floor(src)
        t = src - lo
        return [(min(max(lo, 0), GRID - 1), 1 - t), (min(max(lo + 1, 0), GRID - 1), t)]

    up = np.zeros((SIZE, SIZE))
    for y in range(SIZE):
        for x in range(SIZE):
            up[y, x] = sum(wy * wx for cy, wy in taps(y) for cx, wx in taps(x) if (cy, cx) == (3, 3))
    x0, y0, x1, y1 = (int(round(v * SIZE)) for v in rect)
    return up[y0:y1, x0:x1].sum() / up.sum()


def test_an_overlay_with_its_own_place_is_probed_only_there():
    result, _ = run(reads_logo_else_object, logo_config((0.75, 0.75)), explain_logo)
    logo = [r for r in result.rows if r.probe == "logo"]
    assert {r.place for r in logo} == {"at"} and len(logo) == 2
    at = next(r for r in logo if r.label == "a")
    assert at.rect == (0.75, 0.75, 1.0, 1.0) and at.fools and at.effect.value == 1.0


def test_a_model_that_reads_only_the_object_is_fooled_by_nothing():
    cfg = ProbesConfig(samples=40, places=("corners", "centre"))  # every built-in kind
    result, _ = run(reads_object, cfg)
    assert result.rows and not any(r.fools for r in result.rows)
    assert result.overall["probes_fooled"] == 0.0
    # drawn over the object (the centre, the frame), an artifact can hide it: then its control hides it too
    for r in result.rows:
        assert r.effect.value <= 0.0 + 1e-12 or r.effect.low < cfg.min_effect
    swap = result.swap
    assert swap.n == 40 and swap.accuracy_same == 1.0 and swap.accuracy_other == 1.0
    assert swap.gap.value == pytest.approx(0.0) and swap.flip == 0.0
    assert result.overall["background_gap"] == pytest.approx(0.0)
    assert math.isnan(result.rows[0].artifact_heat) or result.rows[0].n_flipped  # no explain: no heat


def test_a_model_that_reads_the_background_has_a_gap_of_one():
    result, _ = run(reads_background, ProbesConfig(samples=40, artifacts=(), places=()))
    swap = result.swap
    assert swap.accuracy_same == 1.0 and swap.accuracy_other == 0.0
    assert swap.gap.value == 1.0 and swap.gap.low == 1.0 and swap.flip == 1.0
    assert result.overall["background_gap"] == 1.0
    assert result.per_label["a"]["background_gap"] == 1.0 and result.per_label["b"]["background_gap"] == 1.0
    assert section(result)["background_swap"]["sentence"] == (
        "on another class's background, accuracy falls from 1.00 to 0.00; 100% answer the background's class")


def test_probe_samples_are_correct_seeded_and_stratified():
    images, boxes, labels = world()
    ev = evidence(images, boxes, labels, reads_object)
    rows = probe_samples(ev, 10, seed=3)
    assert rows.size == 10 and ev.correct[rows].all()
    assert (labels[rows] == 0).sum() == 5 and (labels[rows] == 1).sum() == 5
    assert np.array_equal(rows, probe_samples(ev, 10, seed=3)) and not np.array_equal(rows, probe_samples(ev, 10, seed=4))


def test_aggregates_without_rows_or_swap_are_nan():
    overall, per = aggregates([], None, ("a",))
    assert overall["probes_fooled"] == 0.0 and math.isnan(overall["max_probe_effect"]) and math.isnan(overall["background_gap"])
    assert math.isnan(per["a"]["background_gap"])


def test_without_a_correct_sample_nothing_is_probed_and_it_says_why():
    images, boxes, labels = world()
    ev = evidence(images, boxes, labels, reads_object)
    from dataclasses import replace

    ev = replace(ev, correct=np.zeros(len(images), bool))
    clf = Classifier(images=lambda rows: {r: images[r] for r in rows}, probabilities=reads_object,
                     is_label=lambda p, label: p.argmax(axis=1) == label, target_class=np.zeros(len(images), int), batch_size=16)
    cfg = ProbesConfig(samples=10, artifacts=("noise",), places=("centre",))
    result = run_probes(cfg, ev, clf, [pr.builtin("noise", 0.4, (SIZE, SIZE))], cams=ev.cams, fill="mean", seed=0)
    assert result.n_samples == 0 and result.passes["edits"] == 0 and "no correctly classified" in result.note
    assert all(r.n == 0 and math.isnan(r.flip) and not r.fools for r in result.rows)
    assert result.overall["probes_fooled"] == 0.0 and math.isnan(result.overall["max_probe_effect"])
    assert section(result)["note"] == result.note


def test_a_read_place_is_withdrawn_when_another_edit_of_it_clearly_leaves_the_class_alone():
    """The gray demo at seed 1: the noise patch's flat-filled control at the centre turned 17 of 43 circle and triangle
    images into square (a flat gray rectangle is a square there), while the noise patch itself turned 4 of 43 and the
    stamp's smaller flat fill 0 of 21. Wilson upper bounds (one-sided 95%, z = 1.645), by hand: 4/43 -> 0.192 and
    0/21 -> z^2 / (21 + z^2) = 0.114, both below min_effect 0.2: the place is not read "whatever is there"."""
    from pipeline.probes.stage import _without_contradicted_reads

    def row(probe, flips, ctrl, n, reads, place="centre", label="square"):
        """A found row: its edit turned ``flips`` of ``n`` images into the label, its control ``ctrl`` (their positions)."""
        return (0, 0, np.arange(flips), np.arange(ctrl), {"probe": probe, "place": place, "label": label, "n": n, "reads": reads})

    found = _without_contradicted_reads([row("noise", 4, 17, 43, True), row("stamp", 0, 0, 21, False)], 0.2, 0.9)
    assert [f["reads"] for *_, f in found] == [False, False]
    # every edit of the border fools (the frame itself 30 of 40): the flat fill's read place stands
    found = _without_contradicted_reads([row("frame", 30, 20, 40, True, place="border")], 0.2, 0.9)
    assert found[0][4]["reads"]
    # the other edit flips 10 of 40 (upper bound 0.38): it does not contradict; nor does a row of another class or place
    found = _without_contradicted_reads([row("noise", 10, 17, 43, True), row("stamp", 10, 10, 40, False),
                                         row("stamp", 0, 0, 40, False, label="circle"),
                                         row("stamp", 0, 0, 40, False, place="top-left")], 0.2, 0.9)
    assert found[0][4]["reads"]

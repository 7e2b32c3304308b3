"""The property stage end to end with NumPy "models" (no TensorFlow), in a world whose values can be worked out by hand.

Label a's pictures are warm (background 150, 120, 90), label b's neutral (126, 126, 126: the same luma within 0.4), each
with noise and one 8x8 object in the top-left 20x20, white for a, gray for b. The model answers a when the picture is warm
(mean R - B over the whole image above 25), bright (mean luma above 170) or holds a white object, else b.

By hand: a red or yellow background (gains 1, 0.55, 0.55 or 1, 1, 0.55) gives b's pictures R - B = 57 on the background,
so every b turns into a; the opposite push (cyan, blue) gives -57: none does. a's backgrounds are redder and yellower than
b's with no overlap (chromaticity along red and yellow 0.10 against 0): colour-red and colour-yellow are **shortcuts**. A
brighter background (x1.4: luma 176) turns every b into a, its control (x0.6) none, but the two labels' brightness is the
same: **fragile**. a's backgrounds are more saturated (60 against 0) but a gray background stays gray under x2: **data
only**. Nothing turns a into b (its white object decides).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import box_evidence
from pipeline.config import ProbesConfig
from pipeline.properties.stage import FRAGILE, SHORTCUT, CSV_COLUMNS, record, run_properties
from pipeline.explain.explained import Classifier

SIZE, GRID, N = 32, 4, 40
WARM, NEUTRAL = (150.0, 120.0, 90.0), (126.0, 126.0, 126.0)


def world(seed: int = 0):
    rng = np.random.default_rng(seed)
    images, boxes, labels = [], [], []
    for i in range(2 * N):
        label = i % 2
        img = np.array(WARM if label == 0 else NEUTRAL) + rng.normal(0, 4, (SIZE, SIZE, 3))
        r, c = int(rng.integers(2, 12)), int(rng.integers(2, 12))
        img[r:r + 8, c:c + 8] = 250.0 if label == 0 else 150.0
        images.append(np.clip(img, 0, 255).astype(np.float32))
        boxes.append((c, r, c + 8, r + 8))
        labels.append(label)
    return images, boxes, np.array(labels)


def reads_warmth_light_or_object(batch: np.ndarray) -> np.ndarray:
    x = np.asarray(batch, np.float64)
    warm = (x[..., 0] - x[..., 2]).mean(axis=(1, 2)) > 25
    bright = (x @ np.array([0.299, 0.587, 0.114])).mean(axis=(1, 2)) > 170
    white = (x[:, :20, :20].min(axis=3) > 200).sum(axis=(1, 2)) >= 40
    is_a = warm | bright | white
    return np.stack([is_a, ~is_a], axis=1).astype(float) * 0.9 + 0.05


def heat_in_the_corner(batch: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every map's heat in the bottom-right cell: upsampled, it starts at pixel 20, past every object (rows/cols <= 18)."""
    cams = np.zeros((len(batch), GRID, GRID), np.float32)
    cams[:, 3, 3] = 1.0
    return cams


def run(properties=("colour", "brightness", "contrast", "saturation", "sharpness", "noise", "jpeg"), gray: bool = False):
    images, boxes, labels = world()
    model = reads_warmth_light_or_object
    probs = model(np.stack(images))
    ev = box_evidence(("a", "b"), boxes, labels, probs, np.ones((len(images), GRID, GRID)), SIZE)
    assert ev.correct.all()  # the world is built so that the model is right on every clean picture
    clf = Classifier(images=lambda rows: {r: images[r] for r in rows}, probabilities=model,
                     is_label=lambda p, label: p.argmax(axis=1) == label, target_class=probs.argmax(axis=1), batch_size=16,
                     explain=heat_in_the_corner)
    cfg = ProbesConfig(samples=40, properties=tuple(properties))
    return run_properties(cfg, ev, clf, cams=ev.cams, gray=gray, seed=0, level=0.9, resamples=300)


def test_a_warm_class_is_a_shortcut_a_bright_edit_fragile_and_saturation_data_only():
    result = run()
    by = {(r.label, r.property, r.direction): r for r in result.rows}
    for hue in ("red", "yellow"):
        r = by[("a", "colour", hue)]
        assert r.verdict == SHORTCUT, hue
        assert r.auc == 1.0 and r.auc_lo == 1.0  # no overlap between the classes' chromaticities
        assert r.n == 20 and r.from_labels == ("b",) and r.flip == 1.0 and r.control_flip == 0.0
        assert r.effect.value == 1.0 and r.effect.low == 1.0 and r.n_flipped == 20
        assert r.heat_off_region == pytest.approx(1.0)  # all of the heat past the objects
        assert len(r.exemplars) == 4 and all((x.before == np.clip(x.before, 0, 255)).all() for x in r.exemplars)
    bright = by[("a", "brightness", "up")]
    assert bright.verdict == FRAGILE and bright.flip == 1.0 and bright.control_flip == 0.0 and bright.auc_lo < 0.8
    sat = by[("a", "saturation", "up")]
    assert sat.verdict == "data" and sat.auc == 1.0 and sat.flip == 0.0 and not sat.fools
    # the mirror: b's backgrounds are less red (AUC 0), and nothing turns a into b
    assert by[("b", "colour", "cyan")].auc == 1.0 and by[("b", "colour", "red")].auc == 0.0
    assert all(r.flip == 0.0 for r in result.rows if r.label == "b")
    verdicts = {(r.label, r.property, r.direction) for r in result.rows if r.verdict in (SHORTCUT, FRAGILE)}
    assert verdicts == {("a", "colour", "red"), ("a", "colour", "yellow"), ("a", "brightness", "up")}
    assert [r.verdict for r in result.rows][:3] == [SHORTCUT, SHORTCUT, FRAGILE]  # shortcuts first
    assert result.overall == {"properties_fooled": 2.0, "max_property_effect": 1.0, "properties_fragile": 1.0}
    assert result.per_label["b"]["properties_fooled"] == 0.0
    # the cost, counted: 16 distinct pushes (a control that is another edit's push shares its pass) x 40 probe samples;
    # a Grad-CAM pass per flipped image of the three fooling rows, up to HEAT_IMAGES (8) each
    assert result.n_samples == 40 and result.n_data == 80
    assert result.passes == {"edits": 16 * 40, "gradcam": 3 * 8}
    rec = record(by[("a", "colour", "red")]).to_json()
    assert tuple(k for k in CSV_COLUMNS if k in rec) == CSV_COLUMNS and rec["verdict"] == SHORTCUT


def test_a_grayscale_model_is_not_edited_in_colour_and_says_why():
    result = run(gray=True)
    assert result.skipped == ("colour: the model takes one channel (its luma)", "saturation: the model takes one channel (its luma)")
    assert {r.property for r in result.rows} == {"brightness", "contrast", "sharpness", "noise", "jpeg"}
    assert result.passes["edits"] == 8 * 40  # brightness, contrast, sharpness both ways, noise and jpeg once


def test_only_the_properties_asked_for_run():
    result = run(properties=("jpeg",))
    assert {(r.property, r.direction) for r in result.rows} == {("jpeg", "up")} and len(result.rows) == 2
    assert result.passes["edits"] == 40 and not result.skipped

"""Cues without a place (DESIGN §15) on the demos: the cast demo's property shortcut is its blocker, the good demo is FIT
with its fragility a warning (at five seeds), the shortcut and dormant demos keep their own causes, and an evaluation set
without colour skips the colour edits and says so."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import ROOT
from pipeline.cli import main

SHAPES = ROOT / "data_samples" / "shapes"


def _summary(folder):
    return json.loads((folder / "summary.json").read_text())


def test_the_cast_demo_is_not_fit_with_one_property_blocker_naming_the_class_and_colour(demo_runs):
    code, folder = demo_runs["demo_cast"]
    summary = _summary(folder)
    assert code == 1 and summary["verdict"] == "NOT FIT"
    blockers = [f for f in summary["findings"] if f["severity"] == "blocker"]
    props = [f for f in blockers if f["kind"] == "property"]
    assert len(props) == 1, [f["id"] for f in blockers]
    cast = props[0]
    assert cast["id"] == "property:circle:cue@background"
    assert "colour cast" in cast["title"] and "circle" in cast["title"] and blockers[0] is cast  # the first screen's first card
    assert "probes_fooled" in cast["rules"] and "white balance" in cast["action"]
    assert [e["view"] for e in cast["evidence"]][:2] == ["heat", "before_after"]
    rows = {(r["class"], r["property"], r["direction"]): r for r in summary["probes"]["properties"]["rows"]}
    shortcut = [r for r in rows.values() if r["verdict"] == "shortcut"]
    # the cast's gains (1, 0.7, 0.4) darken the luma to 0.756 too: its brightness is the same cue; blur is not (sharpness
    # is a share of detail, which a gain keeps)
    assert all(r["class"] == "circle" for r in shortcut) and {r["property"] for r in shortcut} <= {"colour", "brightness"}
    assert {r["direction"] for r in shortcut if r["property"] == "colour"} & {"red", "yellow"}
    for r in shortcut:  # both facts, each with its interval: the data tells circle apart, the model answers from it
        assert r["auc_lo"] >= 0.8 and r["effect_lo"] >= 0.2 and r["control_flip"] < r["flip"]
    # properties.csv holds every class x edit, summary.json the rows that say something
    with (folder / "properties.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 3 * 16 and {r["verdict"] for r in table} <= {"shortcut", "fragile", "data", "none"}
    assert summary["aggregates"]["overall"]["probes_fooled"] >= len(shortcut)


def test_the_good_demo_is_fit_and_its_background_fragility_is_a_warning(demo_runs):
    code, folder = demo_runs["demo"]
    summary = _summary(folder)
    assert code == 0 and summary["verdict"] == "FIT TO DEPLOY"
    props = summary["probes"]["properties"]
    assert props["aggregates"]["overall"]["properties_fooled"] == 0 and props["aggregates"]["overall"]["properties_fragile"] >= 1
    fragile = [f for f in summary["findings"] if f["kind"] == "property"]
    assert [f["severity"] for f in fragile] == ["warning"] * len(fragile) and fragile
    assert all(f["id"].endswith(":fragile@background") and not f["rules"] for f in fragile)
    assert any("nothing in the evaluation set" in r["sentence"] for r in props["rows"])


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_good_demos_fragility_holds_at_other_seeds(demo_runs, seed):
    """The property stage again on the good demo's own results, other seeds (other probe samples, other resamples): still
    fragile, never a shortcut (its object colours are random by construction)."""
    import pandas as pd

    from pipeline.explain.forward import stage_inputs
    from pipeline.config import load_config
    from pipeline.prepare.stage import prepare
    from pipeline.properties.stage import run_properties

    _, folder = demo_runs["demo"]
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    prep = prepare(cfg, reports=folder.parent)
    table = pd.read_csv(folder / "samples.csv", keep_default_na=True)
    names = list(prep.space.labels)
    predicted = np.array([names.index(p) for p in table["predicted"]])
    values = {"predicted": predicted, "correct": (table["correct"] == True).astype(float).to_numpy(),  # noqa: E712
              "focus_score": table["focus_score"].to_numpy(), "explained_confidence": table["confidence"].to_numpy(),
              "flag": table["flag"].to_numpy(dtype=object)}
    cams = np.load(folder / "heatmaps.npz")["cams"]
    ev, clf = stage_inputs(cfg, prep, values, cams, predicted)
    result = run_properties(cfg.probes, ev, clf, cams=cams, gray=False, seed=seed, resamples=200)
    verdicts = [r.verdict for r in result.rows]
    assert "shortcut" not in verdicts and "fragile" in verdicts, seed


def test_the_shortcut_and_dormant_demos_keep_their_own_causes(demo_runs):
    shortcut = _summary(demo_runs["demo_shortcut"][1])
    dormant = _summary(demo_runs["demo_dormant"][1])
    for summary in (shortcut, dormant):
        assert not [f for f in summary["findings"] if f["kind"] == "property" and f["severity"] == "blocker"]
    assert shortcut["findings"][0]["kind"] == "shortcut" and shortcut["findings"][0]["severity"] == "blocker"
    assert dormant["findings"][0]["id"] == "probe:triangle:vendor-logo@at" and dormant["findings"][0]["severity"] == "blocker"


def test_an_evaluation_set_without_colour_skips_the_colour_edits_and_says_so(tmp_path):
    """The shapes in gray (R = G = B), audited by the colour model: colour and saturation are not edited, and the section says
    why; the grayscale model's demo says its own reason."""
    from PIL import Image

    doc = json.loads((SHAPES / "annotations.json").read_text())
    keep = doc["images"][:60]
    (tmp_path / "images").mkdir()
    for im in keep:
        Image.open(SHAPES / "images" / im["file_name"]).convert("L").convert("RGB").save(tmp_path / "images" / im["file_name"], quality=95)
    ids = {im["id"] for im in keep}
    doc = {**doc, "images": keep, "annotations": [a for a in doc["annotations"] if a["image_id"] in ids]}
    (tmp_path / "annotations.json").write_text(json.dumps(doc))
    (tmp_path / "gray.yaml").write_text(f"""name: gray-set
model: {{path: {SHAPES / 'model_good.keras'}, check_preprocessing: false}}
dataset: {{format: coco, annotations: {tmp_path / 'annotations.json'}, images: {tmp_path / 'images'}}}
strategies: {{enabled: false}}
probes: {{artifacts: [], background_swap: false, samples: 24}}
trust: {{randomisation: false}}
gate:
  - {{metric: accuracy, min: 0.0}}
""")
    assert main(["audit", str(tmp_path / "gray.yaml"), "--output", str(tmp_path / "out"), "--no-progress"]) in (0, 1, 3)
    props = _summary(tmp_path / "out")["probes"]["properties"]
    assert props["skipped"] == ["colour: the evaluation images carry no colour", "saturation: the evaluation images carry no colour"]
    with (tmp_path / "out" / "properties.csv").open() as fh:
        edited = {r["property"] for r in csv.DictReader(fh)}
    assert edited == {"brightness", "contrast", "sharpness", "noise", "jpeg"}
    assert "Not run: colour: the evaluation images carry no colour" in (tmp_path / "out" / "report.html").read_text()

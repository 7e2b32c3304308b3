"""Probes on the bundled demos (DESIGN §11): the dormant-cue model passes every heatmap rule on clean
data and is caught by the probes; the good model is fooled by nothing; the shortcut model, which reads
its corner marker, follows the background it is pasted on."""

from __future__ import annotations

import csv
import json

from pipeline.probes.stage import CSV_COLUMNS


def _summary(demo_runs, name):
    code, out = demo_runs[name]
    return code, out, json.loads((out / "summary.json").read_text())


def test_the_dormant_demo_is_not_fit_through_the_probes_alone(demo_runs):
    code, out, summary = _summary(demo_runs, "demo_dormant")
    assert code == 1 and summary["verdict"] == "NOT FIT"
    failed = [r["metric"] for r in summary["gate"] if r["status"] == "fail"]
    assert failed == ["probes_fooled"]  # every heatmap, evidence and strategies rule passes on the clean evaluation set
    with (out / "probes.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    fooling = [r for r in rows if r["fools"] == "True"]
    assert fooling and summary["aggregates"]["overall"]["probes_fooled"] == len(fooling)
    # the vendor's logo, where the vendor puts it, turns circles and squares into the class it marked in training
    logo = next(r for r in fooling if r["probe"] == "vendor-logo")
    assert logo["place"] == "at" and logo["class"] == "triangle" and logo["kind"] == "overlay"
    assert float(logo["flip"]) >= 0.5 and float(logo["control_flip"]) <= 0.1 and float(logo["effect_lo"]) >= 0.2
    area = (float(logo["x1"]) - float(logo["x0"])) * (float(logo["y1"]) - float(logo["y0"]))
    assert float(logo["artifact_heat"]) >= 5 * area  # the flipped images' heat moved onto the logo
    assert {r["class"] for r in fooling} == {"triangle"}
    record = next(r for r in summary["probes"]["rows"] if r["probe"] == "vendor-logo" and r["class"] == "triangle")
    assert record["from_labels"] == ["circle", "square"]
    assert record["sentence"].startswith("the overlay 'vendor-logo' where the config puts it") and "into triangle" in record["sentence"]
    junit = (out / "junit.xml").read_text()
    assert junit.count("fooled by ") == len(fooling)


def test_the_good_demo_is_fooled_by_nothing(demo_runs):
    code, out, summary = _summary(demo_runs, "demo")
    assert code == 0
    assert summary["aggregates"]["overall"]["probes_fooled"] == 0
    assert summary["probes"]["settings"]["artifacts"] == ["stamp", "noise"]
    assert summary["probes"]["n_samples"] == 64 and sum(summary["probes"]["samples_per_label"].values()) == 64
    assert summary["aggregates"]["overall"]["background_gap"] < 0.3  # it reads the shape, not what is around it


def test_the_shortcut_demo_follows_the_background(demo_runs):
    _, _, summary = _summary(demo_runs, "demo_shortcut")
    swap = summary["probes"]["background_swap"]
    # its class lives in the corner marker, which stays with the donor's background
    assert swap["background_gap"] >= 0.5 and swap["background_flip"] >= 0.5
    assert summary["aggregates"]["overall"]["background_gap"] == swap["background_gap"]
    assert swap["sentence"].startswith("on another class's background, accuracy falls from")

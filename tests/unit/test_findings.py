"""Findings (DESIGN §13) on hand-built summaries and samples tables: accounting, attribution, grouping, ids,
since_baseline, and the text faults the report used to show. No TensorFlow."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipeline import findings
from pipeline.numbers import count, fixed

LEVEL = {"config_resolved": {"statistics": {"interval": 0.9}}, "target": "predicted", "target_layer": "conv3",
         "target_layer_shape": [4, 4, 8], "target_layer_candidates": [{"name": "conv1", "shape": [16, 16, 8]},
                                                                       {"name": "conv2", "shape": [8, 8, 8]},
                                                                       {"name": "conv3", "shape": [4, 4, 8]}]}


def rule(metric, kind="min", threshold=0.5, scope="overall", status="pass", value=0.6):
    aggregate = metric[len("class_"):] if metric.startswith("class_") else metric
    label = metric if scope == "overall" else f"{metric}[{scope}]"
    return {"metric": metric, "label": label, "aggregate": aggregate, "kind": kind, "threshold": threshold, "bound": "point",
            "scope": scope, "value": value, "baseline": None, "compared": value, "n": 100, "interval": [value - 0.05, value + 0.05],
            "status": status, "message": f"{label} {value:.3f} {'<' if status == 'fail' else '>='} {threshold:g}", "warning": None}


def strategy(label, sid, rect, kind="patch", colour="red", dep=0.8, lo=0.6, rows=(0,)):
    return {"label": label, "strategy": sid, "confirmed": True, "hotspot_x0": rect[0], "hotspot_y0": rect[1], "hotspot_x1": rect[2],
            "hotspot_y1": rect[3], "hotspot_kind": kind, "hotspot_colour": colour, "hotspot_dependence": dep, "hotspot_dependence_lo": lo,
            "hotspot_dependence_hi": min(dep + 0.1, 1.0), "transplant_effect": 0.5, "transplant_effect_lo": 0.3,
            "transplant_effect_hi": 0.7, "exemplar_rows": list(rows)}


def summary(gate, *, strategies=(), probes=(), checks=(), verdict="NOT FIT", **extra):
    labels = sorted({s["label"] for s in strategies})
    out = {"name": "t", "verdict": verdict, "exit_code": 1, "gate": list(gate), "provenance": dict(LEVEL),
           "trust": {"checks": list(checks)}, "flag_counts": {"ok": 10, "right_for_wrong_reason": 90, "no_signal": 0, "skipped": 0},
           "strategies": {"settings": {"hotspot_threshold": 0.5},
                          "labels": [{"label": lab, "strategies": [s for s in strategies if s["label"] == lab],
                                      "atlas": {"mean_map": [[0.0]], "mean_coverage": [[0.0]]}} for lab in labels]},
           "probes": {"rows": list(probes), "settings": {"min_effect": 0.2, "overlays": []}}, "skipped": [], "dataset_problems": []}
    out.update(extra)
    return out


def samples(n, *, labels, flags, strategies, predicted=None, confidence=None):
    """A samples.csv-like table (columns as read by pandas)."""
    return {"row": np.arange(n), "sample_id": [f"s{i}.jpg" for i in range(n)], "label": labels,
            "predicted": predicted if predicted is not None else labels, "confidence": confidence if confidence is not None else [0.9] * n,
            "flag": flags, "strategy": strategies, "focus_score": [0.0] * n}


TL, TR, BL, CENTRE = (0.0, 0.0, 0.2, 0.2), (0.8, 0.0, 1.0, 0.2), (0.0, 0.8, 0.2, 1.0), (0.4, 0.4, 0.6, 0.6)


def assert_accounted(out, s):
    assert findings.accounts(out, s) == ([], [], [], []), out
    # a blocker is exactly a finding that accounts for a failing rule
    assert all((f["severity"] == "blocker") == bool(f["rules"]) for f in out)


# --------------------------------------------------------------------------- accounting


FAMILY = [("accuracy", {}), ("mean_focus_score", {}), ("right_for_wrong_reason_rate", {"kind": "max"}),
          ("class_mean_energy_in_box", {"scope": "a"}), ("still_right_without_object_rate", {"kind": "max"}),
          ("confirmed_shortcuts", {"kind": "max", "threshold": 0}), ("probes_fooled", {"kind": "max", "threshold": 0}),
          ("mean_focus_score", {"kind": "max_drop", "threshold": 0.05}), ("no_signal_rate", {"kind": "max"}),
          ("n_scored", {"threshold": 50}), ("background_gap", {"kind": "max", "threshold": 0.1})]


@pytest.mark.parametrize("with_causes", [False, True, "stories"])
def test_every_failing_rule_is_in_exactly_one_finding_over_every_combination(with_causes):
    """All 2^11 fail/pass combinations of one rule per family, with and without confirmed shortcuts and a fooling probe; and
    with every story kind of DESIGN §17 at once (places read all around b, a place read for a, property shortcut and
    fragility, per-class background gaps, a collapsed object-only accuracy)."""
    strategies = [strategy("a", 0, TL, rows=(0, 1)), strategy("b", 0, TR, colour="green", rows=(2,))] if with_causes else []
    probes = [{"probe": "logo", "kind": "overlay", "place": "at", "x0": 0.7, "y0": 0.8, "x1": 0.9, "y1": 0.9, "class": "b", "effect": 0.9,
               "effect_lo": 0.8, "effect_hi": 1.0, "fools": True, "from_labels": ["a"], "sentence": "the overlay turns a into b",
               "exemplar_rows": [3]}] if with_causes else [{"probe": "stamp", "kind": "stamp", "place": "top-left", "x0": 0, "y0": 0,
                                                            "x1": 0.3, "y1": 0.1, "class": "a", "effect": 0.1, "effect_lo": 0.0,
                                                            "effect_hi": 0.2, "fools": False, "from_labels": ["b"], "sentence": "s"}]
    table = samples(6, labels=["a", "a", "b", "a", "b", "a"], flags=["right_for_wrong_reason"] * 4 + ["ok", "distracted"],
                    strategies=[0, 0, 0, -1, -1, -1])
    checks = [{"name": "randomisation", "status": "fail", "message": "randomisation: 0.9 >= 0.5"},
              {"name": "heatmap_signal", "status": "fail", "message": "heatmap_signal: 60% > 50%"}]
    swap = {"background_gap": 0.4, "background_gap_lo": 0.3, "background_gap_hi": 0.5, "accuracy_same": 1.0, "accuracy_other": 0.6,
            "background_flip": 0.3, "note": None, "per_class": {"a": {"n": 3, "background_gap": 0.5}, "b": {"n": 3, "background_gap": 0.1}}}
    props = []
    if with_causes == "stories":
        strategies = []
        probes = [probe_row("frame", "border", "b", (0, 0, 1, 1), flip=1.0, control=0.9, control_lo=0.78, reads=True, fools=False, froms=("a",)),
                  probe_row("noise", "bottom-right", "b", (0.8, 0.8, 1, 1), flip=0.6, control=0.45, control_lo=0.3, reads=True, fools=False,
                            froms=("a",)),
                  probe_row("watermark", "top-left", "a", TL, flip=0.7, control=0.4, control_lo=0.3, reads=True, fools=True, froms=("b",))]
        props = [prop_row("a", "colour", "yellow", "shortcut"), prop_row("b", "sharpness", "down", "fragile", froms=("a",)),
                 prop_row("a", "contrast", "up", "data", effect=0.05)]
    for failing in itertools.product((False, True), repeat=len(FAMILY)):
        gate = [rule(m, status="fail" if f else "pass", **kw) for (m, kw), f in zip(FAMILY, failing)]
        s = summary(gate, strategies=strategies, probes=probes, checks=checks if sum(failing) % 2 else ())
        s["probes"]["background_swap"] = swap
        if with_causes == "stories":
            with_properties(s, props)
            s["aggregates"] = {"per_class": {"a": {"object_only_accuracy": 0.1, "n_scored": 20.0}, "b": {"object_only_accuracy": 0.9, "n_scored": 20.0}}}
        out = findings.build(s, table)
        assert_accounted(out, s)


def test_no_rule_or_check_failing_gives_no_blocker_or_warning():
    s = summary([rule("accuracy"), rule("mean_focus_score", kind="max_drop", status="not evaluated")], verdict="FIT TO DEPLOY")
    out = findings.build(s, samples(2, labels=["a", "b"], flags=["ok", "ok"], strategies=[-1, -1]))
    assert [f["severity"] for f in out] == ["note"] and out[0]["id"] == "not_evaluated:*:*"


# --------------------------------------------------------------------------- attribution at the 50% boundary


@pytest.mark.parametrize("members, owner", [(49, "heatmap"), (50, "shortcut"), (51, "shortcut")])
def test_a_heatmap_rule_is_the_shortcuts_when_its_members_are_half_of_the_rfwr_samples(members, owner):
    """100 right-for-wrong-reason samples of class a; ``members`` of them in a's confirmed strategy 0 (hand-counted share)."""
    n = 100
    table = samples(n + 10, labels=["a"] * (n + 10), flags=["right_for_wrong_reason"] * n + ["ok"] * 10,
                    strategies=[0] * members + [1] * (n - members) + [0] * 10)
    s = summary([rule("class_mean_focus_score", scope="a", status="fail", value=0.1)], strategies=[strategy("a", 0, TL)])
    out = findings.build(s, table)
    assert_accounted(out, s)
    holder = next(f for f in out if f["rules"])
    assert holder["kind"] == owner
    shortcut = next(f for f in out if f["kind"] == "shortcut")
    assert f"{members} of the {n} right-for-wrong-reason samples are in these strategies" in shortcut["sentence"]
    assert shortcut["severity"] == ("blocker" if owner == "shortcut" else "warning")  # found, but no rule then looks at it


def test_an_overall_rule_is_attributed_over_every_class_and_a_class_rule_only_to_that_class():
    # class a: 10 rfwr all in a's strategy; class b: 10 rfwr, none in a strategy
    table = samples(20, labels=["a"] * 10 + ["b"] * 10, flags=["right_for_wrong_reason"] * 20, strategies=[0] * 10 + [-1] * 10)
    gate = [rule("mean_focus_score", status="fail"), rule("class_mean_focus_score", scope="a", status="fail"),
            rule("class_mean_focus_score", scope="b", status="fail")]
    s = summary(gate, strategies=[strategy("a", 0, TL)])
    out = findings.build(s, table)
    assert_accounted(out, s)
    by_kind = {f["kind"]: f for f in out}
    assert by_kind["shortcut"]["rules"] == ["mean_focus_score", "class_mean_focus_score[a]"]  # 10 of 20 overall: half
    assert by_kind["heatmap"]["rules"] == ["class_mean_focus_score[b]"]


# --------------------------------------------------------------------------- grouping


def test_two_classes_same_kind_overlapping_places_are_one_finding_naming_each_colour():
    s = summary([rule("confirmed_shortcuts", kind="max", threshold=0, status="fail", value=4.0)],
                strategies=[strategy("circle", 0, TL), strategy("circle", 1, TR), strategy("square", 0, TR, colour="green"),
                            strategy("square", 1, TL, colour="green", dep=0.9, lo=0.7)])
    out = findings.build(s, samples(1, labels=["circle"], flags=["right_for_wrong_reason"], strategies=[0]))
    shortcuts = [f for f in out if f["kind"] == "shortcut"]
    assert len(shortcuts) == 1
    f = shortcuts[0]
    assert f["id"] == "shortcut:circle+square:corners" and f["labels"] == ["circle", "square"]
    assert "red → circle" in f["sentence"] and "green → square" in f["sentence"]
    assert len(f["title"].split()) <= 12 and f["rules"] == ["confirmed_shortcuts"]


def test_different_kinds_or_places_apart_are_separate_findings():
    s = summary([], strategies=[strategy("circle", 0, TL), strategy("square", 0, TL, kind="overlay", colour=""),
                                strategy("triangle", 0, CENTRE, colour="blue")], verdict="FIT TO DEPLOY")
    out = findings.build(s, None)
    ids = sorted(f["id"] for f in out if f["kind"] == "shortcut")
    # circle's red patch and triangle's blue patch do not overlap; square's overlay is another kind
    assert ids == ["shortcut:circle:top-left", "shortcut:square:top-left", "shortcut:triangle:centre"]
    assert all(f["severity"] == "warning" for f in out if f["kind"] == "shortcut")  # found, no rule on it


def test_fooling_probes_of_one_artifact_and_class_at_several_places_are_one_finding():
    def row(place, effect, cls="b"):
        return {"probe": "noise", "kind": "noise", "place": place, "x0": 0, "y0": 0, "x1": 0.3, "y1": 0.1, "class": cls,
                "effect": effect, "effect_lo": effect - 0.1, "effect_hi": effect + 0.1, "fools": True, "from_labels": ["a"],
                "sentence": f"noise at {place}"}
    s = summary([rule("probes_fooled", kind="max", threshold=0, status="fail", value=3.0)],
                probes=[row("top-left", 0.5), row("bottom-right", 0.7), row("top-left", 0.4, cls="c")])
    out = findings.build(s, None)
    probes = [f for f in out if f["kind"] == "probe"]
    # the id names the artifact, the class and its strongest place: the places that pass come and go with the sample draw
    assert [f["id"] for f in probes] == ["probe:b:noise@bottom-right", "probe:c:noise@top-left"]
    assert probes[0]["rules"] == ["probes_fooled"] and probes[0]["severity"] == "blocker" and probes[1]["severity"] == "warning"
    assert probes[0]["effect"] == 0.7  # the strongest place leads
    assert "top-left effect 0.5" in probes[0]["sentence"]  # every place stays in the sentence
    alone = findings.build(summary([rule("probes_fooled", kind="max", threshold=0, status="fail", value=1.0)],
                                   probes=[row("bottom-right", 0.7)]), None)
    assert [f["id"] for f in alone if f["kind"] == "probe"] == ["probe:b:noise@bottom-right"]  # one place fewer: the same finding


# --------------------------------------------------------------------------- other kinds


def test_no_signal_check_and_rule_are_one_finding_that_suggests_an_earlier_layer():
    checks = [{"name": "heatmap_signal", "status": "fail", "message": "heatmap_signal: 160 of 160 scored samples have no signal"}]
    s = summary([rule("accuracy")], checks=checks, verdict="INCONCLUSIVE")
    s["flag_counts"] = {"ok": 0, "no_signal": 160, "skipped": 0}
    out = findings.build(s, samples(2, labels=["a", "b"], flags=["no_signal"] * 2, strategies=[-1, -1]))
    f = out[0]
    assert f["id"] == "no_signal:*:*" and f["severity"] == "warning" and f["checks"] == ["heatmap_signal"]
    assert "160 of 160 scored samples have an all-zero heatmap at conv3 (4×4)" in f["sentence"]
    assert "model.target_layer: conv2" in f["action"] and "conv1 (16×16)" in f["sentence"]


def test_accuracy_finding_names_the_most_common_confusion_with_evidence_most_confident_first():
    table = samples(5, labels=["a", "a", "a", "b", "b"], predicted=["b", "b", "a", "a", "b"], confidence=[0.6, 0.9, 0.8, 0.7, 0.9],
                    flags=["distracted", "confused_on_object", "ok", "distracted", "ok"], strategies=[-1] * 5)
    s = summary([rule("accuracy", status="fail", value=0.4, threshold=0.9)])
    f = findings.build(s, table)[0]
    assert f["id"] == "accuracy:*:*" and f["title"] == "Accuracy 0.40 is below the required 0.9"
    assert "3 wrong answers; the most common: a answered as b (2)" in f["sentence"]
    assert [e["sample_id"] for e in f["evidence"]] == ["s1.jpg", "s3.jpg", "s0.jpg"]
    assert f["evidence"][0]["caption"] == "s1.jpg: b 0.90"


def test_an_answer_outside_the_datasets_labels_is_named_not_no_class():
    """A label-mapped run whose model answers a class no dataset label owns ('neutral'): samples.csv's predicted is
    empty and predicted_model_class names it."""
    table = samples(4, labels=["happy", "happy", "sad", "sad"], predicted=["", "", "sad", "happy"], confidence=[0.8, 0.7, 0.9, 0.6],
                    flags=["distracted", "distracted", "ok", "confused_on_object"], strategies=[-1] * 4)
    table["predicted_model_class"] = ["neutral", "neutral", "sad", "happy"]
    f = findings.build(summary([rule("accuracy", status="fail", value=0.25, threshold=0.9)]), table)[0]
    assert "the most common: happy answered as a class outside the dataset's labels ('neutral') (2)" in f["sentence"]
    assert f["evidence"][0]["caption"] == "s0.jpg: a class outside the dataset's labels ('neutral') 0.80"
    assert "no class" not in str(f)


def test_spread_check_names_an_answer_outside_the_labels():
    from pipeline.evidence.checks import spread_check

    outside = "a class outside the dataset's labels ('neutral')"
    check = spread_check([outside] * 19 + ["sad"], [("happy",)] * 10 + [("sad",)] * 10, 0.9)
    assert check.status == "fail" and f"the model answers {outside} for 19 of 20" in check.message


@pytest.mark.parametrize("grid, coarse", [([22, 22, 64], False), ([10, 10, 8], False), ([9, 12, 8], True), ([7, 7, 512], True),
                                          ([2, 2, 1], True), ([None, None, 4], False), ([], False)])
def test_the_coarse_grid_advice_needs_a_cell_wider_than_a_tenth_of_the_input(grid, coarse):
    from pipeline.findings.rules import coarse_grid

    assert coarse_grid(grid) is coarse


def test_a_heatmap_finding_advises_a_finer_layer_only_for_a_coarse_grid():
    table = samples(4, labels=["a"] * 4, flags=["right_for_wrong_reason"] * 4, strategies=[-1] * 4)
    for grid, advised in (([22, 22, 64], False), ([7, 7, 64], True)):
        s = summary([rule("mean_focus_score", status="fail", value=0.1, threshold=0.3)])
        s["provenance"] = {**s["provenance"], "target_layer_shape": grid}
        f = findings.build(s, table)[0]
        assert f["kind"] == "heatmap" and ("finer model.target_layer" in f["action"]) is advised, f["action"]


def test_trust_checks_are_warnings_each_in_its_own_finding():
    checks = [{"name": "heatmap_confirmation", "status": "fail", "message": "heatmap_confirmation: 0 of 37 confirmed"},
              {"name": "randomisation", "status": "pass", "message": "ok"}]
    out = findings.build(summary([rule("accuracy")], checks=checks, verdict="INCONCLUSIVE"), None)
    assert [(f["id"], f["severity"], f["checks"]) for f in out] == [("trust:heatmap_confirmation:*", "warning", ["heatmap_confirmation"])]
    assert "finer target layer" in out[0]["action"]


def test_since_baseline_marks_new_persisting_and_lists_resolved_ones():
    now = summary([rule("probes_fooled", kind="max", threshold=0, status="fail", value=1.0)],
                  strategies=[strategy("a", 0, TL)],
                  probes=[{"probe": "logo", "kind": "overlay", "place": "at", "x0": 0.7, "y0": 0.8, "x1": 0.9, "y1": 0.9, "class": "b",
                           "effect": 0.9, "effect_lo": 0.8, "effect_hi": 1.0, "fools": True, "from_labels": ["a"], "sentence": "s"}])
    base = {"findings": [{"id": "shortcut:a:top-left", "kind": "shortcut", "title": "old", "sentence": "was there", "labels": ["a"],
                          "since_baseline": None},
                         {"id": "accuracy:*:*", "kind": "accuracy", "title": "Accuracy 0.50 is below 0.9", "sentence": "fixed since",
                          "labels": [], "since_baseline": None},
                         {"id": "gone:*:*", "kind": "data", "title": "resolved before", "sentence": "x", "since_baseline": "resolved"}]}
    out = findings.build(now, None, base)
    state = {f["id"]: (f["since_baseline"], f["severity"]) for f in out}
    assert state == {"probe:b:logo@at": ("new", "blocker"), "shortcut:a:top-left": ("persisting", "warning"),
                     "accuracy:*:*": ("resolved", "note")}  # a finding already resolved in the baseline is not carried on
    assert findings.build(now, None, {"verdict": "FIT TO DEPLOY"})[0]["since_baseline"] is None  # a baseline from before findings


# --------------------------------------------------------------------------- places and numbers


def test_place_tokens_and_words():
    assert findings.place_token([TL]) == "top-left" and findings.rects_words([TL]) == "the top-left corner"
    assert findings.place_token([TL, TR, BL, (0.8, 0.8, 1, 1)]) == "corners" and findings.rects_words([TL, TR, BL, (0.8, 0.8, 1, 1)]) == "the four corners"
    assert findings.place_token([(0.4, 0.85, 0.6, 1.0), CENTRE]) == "bottom+centre"
    assert findings.rects_words([(0.4, 0.85, 0.6, 1.0)]) == "the bottom edge"
    assert findings.overlaps(TL, (0.1, 0.1, 0.3, 0.3)) and not findings.overlaps(TL, (0.2, 0.0, 0.4, 0.2))  # touching is not overlapping


def test_numbers_never_show_minus_zero_nan_or_counts_as_rates():
    assert fixed(-0.0004) == "0.000" and fixed(-0.0004, 2) == "0.00" and fixed(-0.0051, 2) == "-0.01"
    assert fixed(float("nan")) == "—" and fixed(None) == "—"
    assert count(12.0) == "12" and count(None) == "—"
    assert findings.interval_text(float("nan"), 0.5, 0.9) == "no interval: too few samples"


def test_gate_messages_say_counts_as_integers_and_never_minus_zero():
    from pipeline.conclude import gate
    from pipeline.config import GateRule

    rules = [GateRule("confirmed_shortcuts", "max", 0, 0), GateRule("mean_focus_score", "min", 0.25, 1),
             GateRule("mean_focus_score", "max_drop", 0.05, 2)]
    results = gate.evaluate(rules, {"confirmed_shortcuts": 12.0, "mean_focus_score": -0.0002}, {},
                            baseline={"overall": {"mean_focus_score": 0.0001}})
    assert [r.message for r in results] == ["confirmed_shortcuts 12 > 0", "mean_focus_score 0.000 < 0.25",
                                            "mean_focus_score dropped by 0.000 (0.000 -> 0.000) <= 0.05"]


def test_coarse_maps_over_large_boxes_are_a_note_with_the_chance_level_and_finer_layers():
    table = samples(3, labels=["a", "b", "a"], flags=["ok", "ok", "skipped"], strategies=[-1] * 3)
    table["box_area_fraction"] = [0.5, 0.6, np.nan]  # mean over scored: 0.55 > 1/3
    s = summary([rule("accuracy")], verdict="FIT TO DEPLOY")  # conv3 is 4x4
    (f,) = [f for f in findings.build(s, table) if f["id"] == "heatmap:*:coarse"]
    assert f["severity"] == "note" and "a uniform map already scores energy in box 0.55" in f["sentence"]
    assert "Finer layers: conv1 (16×16), conv2 (8×8)." in f["sentence"] and "conv2" in f["action"]
    table["box_area_fraction"] = [0.3, 0.3, np.nan]  # small boxes: no note
    assert not [f for f in findings.build(s, table) if f["id"] == "heatmap:*:coarse"]
    s["provenance"] = {**LEVEL, "target_layer_shape": [8, 8, 8]}  # a finer grid: no note
    table["box_area_fraction"] = [0.5, 0.6, np.nan]
    assert not [f for f in findings.build(s, table) if f["id"] == "heatmap:*:coarse"]


# --------------------------------------------------------------------------- cues without a place (DESIGN §15)


EDITS = {("colour", "yellow"): ("a yellow background", "yellower"), ("colour", "red"): ("a red background", "redder"),
         ("brightness", "up"): ("a brighter background", "brighter"), ("sharpness", "down"): ("a blurred background", "blurrier"),
         ("jpeg", "up"): ("a heavily compressed (JPEG) background", "more compressed"),
         ("contrast", "up"): ("a higher-contrast background", "higher in contrast"), ("colour", "green"): ("a green background", "greener")}
"""The words the properties stage writes into each row (summary.json), for the rows built here."""


def prop_row(label, prop, direction, verdict, *, effect=0.8, auc=0.97, froms=("b",), rows=(1,)):
    lo = effect - 0.1
    ties = verdict in ("shortcut", "data")
    return {"edit_words": EDITS[(prop, direction)][0], "data_words": EDITS[(prop, direction)][1],
            "data_state": "ties" if ties else "none","class": label, "property": prop, "direction": direction, "auc": auc, "auc_lo": auc - 0.05, "auc_hi": min(auc + 0.02, 1.0),
            "flip": effect + 0.02, "control_flip": 0.02, "effect": effect, "effect_lo": lo, "effect_hi": effect + 0.05,
            "heat_off_region": 0.7, "verdict": verdict, "n": 40, "n_data": 200, "from_labels": list(froms),
            "exemplar_rows": list(rows), "exemplar_after_confidence": [0.9] * len(rows), "marked_row": 0, "marked_value": 0.2,
            "others_value": 0.01, "tells_apart": verdict in ("shortcut", "data"), "fools": verdict in ("shortcut", "fragile")}


def with_properties(s, rows):
    s["probes"]["properties"] = {"rows": list(rows)}
    return s


def test_a_classs_property_shortcuts_are_one_finding_and_gate_through_probes_fooled():
    """One look of a class's pictures is one cause: its colour directions and other properties together, its fragile edits a
    clause of it; fragility alone is one warning per class; the data side alone a note."""
    rows = [prop_row("a", "colour", "yellow", "shortcut", effect=0.8, rows=(1, 2)), prop_row("a", "colour", "red", "shortcut", effect=0.6, rows=(1, 3)),
            prop_row("a", "brightness", "up", "shortcut", effect=0.4, auc=0.9), prop_row("a", "sharpness", "down", "fragile", effect=0.5),
            prop_row("b", "jpeg", "up", "fragile", effect=0.3, froms=("a",)), prop_row("b", "contrast", "up", "data", effect=0.05)]
    gate = [rule("probes_fooled", kind="max", threshold=0, status="fail", value=3)]
    s = samples(4, labels=["a", "b", "b", "a"], flags=["ok"] * 4, strategies=[""] * 4)
    out = findings.build(with_properties(summary(gate), rows), s)
    assert_accounted(out, s)
    cast = out[0]
    assert cast["id"] == "property:a:cue@background" and cast["kind"] == "property"
    assert cast["severity"] == "blocker" and cast["rules"] == ["probes_fooled"]
    assert cast["title"] == "A warm colour cast turns b images into a" and len(cast["title"].split()) <= 12  # red and yellow: warm
    assert cast["sentence"].startswith("Only the a images carry it: their backgrounds are yellower (AUC 0.97), redder (AUC 0.97) and "
                                       "brighter (AUC 0.90) than the others' (")
    assert "a yellow background turns 82% of b images into a" in cast["sentence"] and "a red background" in cast["sentence"]
    assert "It also answers a to edits its images do not carry: a blurred background 52%." in cast["sentence"]
    assert "white balance" in cast["action"]
    # the class's image that carries the cast most, then one pair per edit, each of another image
    assert [e["view"] for e in cast["evidence"]] == ["heat", "before_after", "before_after", "before_after"]
    assert [(e["direction"], e["sample_id"]) for e in cast["evidence"][1:]] == [("yellow", "s1.jpg"), ("red", "s3.jpg"), ("yellow", "s2.jpg")]
    fragile = [f for f in out if f["id"].endswith("fragile@background")]
    assert [f["id"] for f in fragile] == ["property:b:fragile@background"]  # a's fragile edit joined a's cause
    assert fragile[0]["severity"] == "warning" and not fragile[0]["rules"] and "properties_fragile" in fragile[0]["action"]
    assert fragile[0]["title"] == "A heavily compressed (JPEG) background turns a images into b"  # names the edit, never "Background edits"
    # every row of a class in one finding: b's data-only row is a sentence of b's story, not a note that it is ignored
    assert "the b images' backgrounds are higher in contrast than the others' (AUC 0.97" in fragile[0]["sentence"]
    assert not [f for f in out if f["severity"] == "note" and f["kind"] == "property"]
    alone = findings.build(with_properties(summary(gate), [prop_row("c", "contrast", "up", "data", effect=0.05)]), s)
    note = next(f for f in alone if f["id"] == "property:c:cue@background")
    assert note["severity"] == "note" and "no background edit that way fools the model" in note["sentence"]
    # the class's cue has one id, proven (a warning) or seen in the data alone (a note), whichever edits the draw proves
    proven = findings.build(with_properties(summary(gate), [prop_row("c", "contrast", "up", "shortcut", effect=0.4),
                                                            prop_row("c", "jpeg", "up", "data", effect=0.05)]), s)
    assert [(f["id"], f["severity"]) for f in proven if f["kind"] == "property"] == [("property:c:cue@background", "blocker")]


@pytest.mark.parametrize("share,attributed", [(0.49, False), (0.50, True), (0.51, True)])
def test_a_heatmap_rule_is_the_property_shortcuts_when_half_its_rfwr_samples_are_answered_as_its_class(share, attributed):
    """100 right-for-wrong-reason samples of scope overall; round(100 * share) of them predicted as the shortcut's class a."""
    n = 100
    k = int(round(n * share))
    predicted = ["a"] * k + ["b"] * (n - k)
    s = samples(n, labels=predicted, predicted=predicted, flags=["right_for_wrong_reason"] * n, strategies=[""] * n)
    gate = [rule("mean_focus_score", status="fail", value=0.1)]
    out = findings.build(with_properties(summary(gate), [prop_row("a", "colour", "yellow", "shortcut")]), s)
    assert_accounted(out, s)
    owner = next(f for f in out if f["rules"])
    assert (owner["id"] == "property:a:cue@background") == attributed
    assert owner["kind"] == ("property" if attributed else "heatmap")


def test_a_colour_that_echoes_a_spatial_shortcut_joins_its_finding():
    """A red marker of class a also makes a's backgrounds redder: one cause, one finding, the property a sentence of it."""
    strategies = [strategy("a", 0, TL, colour="red", rows=(0,))]
    rows = [prop_row("a", "colour", "red", "shortcut"), prop_row("b", "colour", "green", "shortcut", froms=("a",))]
    gate = [rule("probes_fooled", kind="max", threshold=0, status="fail", value=2),
            rule("confirmed_shortcuts", kind="max", threshold=0, status="fail", value=1)]
    s = samples(4, labels=["a", "b", "b", "a"], flags=["right_for_wrong_reason"] * 4, strategies=["0", "", "", "0"])
    out = findings.build(with_properties(summary(gate, strategies=strategies), rows), s)
    assert_accounted(out, s)
    ids = [f["id"] for f in out]
    assert not any(i.startswith("property:a:") for i in ids)  # the echo is no finding of its own ...
    spatial = next(f for f in out if f["kind"] == "shortcut")
    assert "the marker's echo, not a second cause" in spatial["sentence"] and "redder" in spatial["sentence"]
    assert "property:b:cue@background" in ids  # ... a colour with no marker of its class is


# --------------------------------------------------------------------------- one class, one story (DESIGN §17)


def probe_row(probe, place, label, rect, *, flip, control, control_lo, reads, fools, froms=("other",), rows=(0, 1)):
    words = {"border": "around the image", "top-left": "at the top-left corner", "bottom-right": "at the bottom-right corner"}[place]
    what = {"frame": "a dark frame", "watermark": "a stock-photo watermark", "noise": "a patch of random noise"}[probe]
    return {"probe": probe, "kind": probe, "place": place, "x0": rect[0], "y0": rect[1], "x1": rect[2], "y1": rect[3], "class": label,
            "n": 50, "flip": flip, "control_flip": control, "effect": flip - control, "effect_lo": flip - control - 0.15,
            "effect_hi": flip - control + 0.1, "accuracy": 1 - flip, "artifact_heat": 0.5, "fools": fools, "n_flipped": 20,
            "heat_area": 0.2, "from_labels": list(froms), "control_lo": control_lo, "control_hi": control + 0.1, "object_overlap": 0.02,
            "reads": reads, "place_words": words, "what": what, "exemplar_rows": list(rows), "exemplar_after_confidence": [0.9] * len(rows),
            "sentence": f"{what} {words} turns {flip:.0%} of {' and '.join(froms)} images into {label} (the same area filled: {control:.0%})"}


def xray(gate):
    """The chest X-ray case of DESIGN §17: 'other' recognised from its surroundings; every edit around the lungs turns it into
    covid (a flat border 90%, flat corners 45-50%), a watermark at a corner fools beyond its read control."""
    rows = [probe_row("frame", "border", "covid", (0, 0, 1, 1), flip=1.0, control=0.9, control_lo=0.78, reads=True, fools=False),
            probe_row("watermark", "top-left", "covid", TL, flip=0.9, control=0.5, control_lo=0.34, reads=True, fools=True),
            probe_row("noise", "bottom-right", "covid", (0.8, 0.8, 1, 1), flip=0.6, control=0.45, control_lo=0.3, reads=True, fools=False),
            probe_row("noise", "bottom-right", "other", (0.8, 0.8, 1, 1), flip=0.02, control=0.0, control_lo=0.0, reads=False,
                      fools=False, froms=("covid",))]
    s = summary(gate, probes=rows)
    s["aggregates"] = {"per_class": {"other": {"object_only_accuracy": 0.10, "n_scored": 50.0},
                                     "covid": {"object_only_accuracy": 0.95, "n_scored": 50.0}}}
    return s


def test_places_all_around_the_objects_are_one_story_titled_by_the_surroundings():
    gate = [rule("probes_fooled", kind="max", threshold=0, status="fail", value=3),
            rule("class_mean_energy_in_box", scope="other", status="fail", value=0.1, threshold=0.4)]
    n = 10
    table = samples(n, labels=["other"] * 5 + ["covid"] * 5, flags=["right_for_wrong_reason"] * 5 + ["ok"] * 5, strategies=[-1] * n)
    out = findings.build(xray(gate), table)
    assert_accounted(out, table)
    story = out[0]
    assert story["id"] == "context:covid:surroundings" and story["severity"] == "blocker" and story["rules"] == ["probes_fooled"]
    assert story["title"] == "'other' is recognised from its surroundings, not its objects"
    assert "any edit around the image turns 90% of other images into covid" in story["sentence"].lower()
    assert "with only the objects kept, 10% of other images stay other" in story["sentence"]
    # the watermark whose corner the model reads is not a cause of its own
    assert not [f for f in out if f["kind"] == "probe"] and "watermark" in story["sentence"]
    # the heat of 'other' lies off its lungs: its finding names the story as the likely cause, never "no tested cause"
    heat = next(f for f in out if f["kind"] == "heatmap")
    assert heat["rules"] == ["class_mean_energy_in_box[other]"]
    assert "no tested cause" not in heat["sentence"] + heat["action"] and story["id"] in heat["sentence"]


def test_one_place_any_edit_fools_is_a_place_finding():
    rows = [probe_row("frame", "border", "covid", (0, 0, 1, 1), flip=1.0, control=0.9, control_lo=0.78, reads=True, fools=False)]
    s = summary([rule("probes_fooled", kind="max", threshold=0, status="fail", value=1)], probes=rows)
    table = samples(2, labels=["other", "covid"], flags=["ok", "ok"], strategies=[-1, -1])
    (f,) = [f for f in findings.build(s, table) if f["severity"] != "note"]
    assert f["id"] == "place:covid:border" and f["kind"] == "place" and f["severity"] == "blocker"
    assert f["title"] == "Any edit of the image border turns other images into covid"
    assert [e["view"] for e in f["evidence"]] == ["before_after"] and "flat fill around the image" in f["evidence"][0]["caption"]

"""Plain view data for the HTML report, computed before any rendering (no TensorFlow)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.conclude.aggregates import SampleTable
from pipeline.conclude.baseline import note
from pipeline.conclude.gate import signed
from pipeline.config import AGGREGATES, FLAGS, resolved_yaml
from pipeline.data.geometry import box_in_window, crop_window
from pipeline.data.images import ImageProblem, decode_rgb
from pipeline.evidence import interventions
from pipeline.evidence.checks import agreement_cells
from pipeline.numbers import aggregate_text, fixed
from pipeline.numbers import format_value
from pipeline.records.plain import Json, JsonObject
from pipeline.report import charts
from pipeline.report.findings_view import (
    GLOSSES,
    EvidenceImages,
    build_first_screen,
    gallery_split,
    open_attr,
)
from pipeline.report.pictures import (
    intervention_thumbnails,
    legend_gradient_css,
    overlay,
)
from pipeline.report.probes_view import build_probes_view
from pipeline.report.properties_view import build_properties_view
from pipeline.report.strategies_view import build_strategies_view
from pipeline.status import NOT_EVALUATED

GALLERY_SHOWN = 8  # gallery cards a finding concerns shown unfolded; the rest are one click away
SEVERITY = ("right_for_wrong_reason", "distracted", "confused_on_object", "no_signal", "ok")
FLAG_TEXT = {
    "ok": "correct, evidence on the object",
    "right_for_wrong_reason": "correct, but the evidence lies off the object (shortcut)",
    "confused_on_object": "wrong, though the evidence is on the object",
    "distracted": "wrong, and the evidence lies off the object",
    "no_signal": "localisation cannot be judged (empty map or box covers the input)",
    "skipped": "sample could not be used",
}
COLORS = {"correct": "#2b8a3e", "incorrect": "#c92a2a"}
NEXT_STEPS = {
    "heatmap_confirmation": "the heatmap's on-target claims are not backed by behaviour: try a finer target layer (an earlier, "
                             "higher-resolution feature map), another CAM method (explain.method / compare_method), "
                             "and check that the boxes really enclose the objects",
    "randomisation": "the maps barely change when the weights they should depend on are destroyed, so they show the "
                     "image, not the model: try a finer target layer or another CAM method before trusting the audit",
}


def _baseline_flags(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    csv_path = Path(path).parent / "samples.csv"
    if not csv_path.is_file():
        return {}
    with csv_path.open(newline="", encoding="utf-8") as fh:
        return {row["sample_id"]: row["flag"] for row in csv.DictReader(fh)}


def gallery_rows(flags: np.ndarray, energy: np.ndarray, size: int) -> list[int]:
    """Up to ``size`` rows: each flag gets a share, most serious flag first, lowest energy first within a flag."""
    groups = {}
    for flag in SEVERITY:
        rows = np.flatnonzero(flags == flag)
        if rows.size:
            e = np.where(np.isnan(energy[rows]), -1.0, energy[rows])
            groups[flag] = rows[np.lexsort((rows, e))]
    chosen: dict[str, list[int]] = {f: [] for f in groups}
    remaining = size
    while remaining > 0 and any(len(chosen[f]) < len(groups[f]) for f in groups):
        open_flags = [f for f in groups if len(chosen[f]) < len(groups[f])]
        share = max(1, remaining // len(open_flags))
        for f in open_flags:
            take = groups[f][len(chosen[f]): len(chosen[f]) + min(share, remaining)]
            chosen[f].extend(int(r) for r in take)
            remaining -= len(take)
            if remaining <= 0:
                break
    return [r for f in groups for r in chosen[f]]


def build_view(
    summary: Mapping[str, Json],
    prep: Any,
    table: SampleTable,
    *,
    values: Mapping[str, np.ndarray],
    cams: np.ndarray,
    baseline: Mapping[str, Json] | None,
    baseline_path: Path | None,
    strategies: Any = None,
    probes: Any = None,
    properties: Any = None,
) -> JsonObject:
    """``strategies``, ``probes``, ``properties``: the strategies, probes and property stages' results (None when off)."""
    cfg, samples = prep.cfg, prep.samples
    flags = table.flags

    cards_of = _Cards(prep, table, values, cams)
    card, thumbnail = cards_of.card, cards_of.thumbnail

    cards = [c for c in (card(r) for r in gallery_rows(flags, table.energy_in_box, cfg.report.gallery_size)) if c is not None]

    view_baseline = _baseline_view(summary, samples, flags, baseline, baseline_path)

    prov = summary["provenance"]
    images = EvidenceImages({s.sample_id: s.row for s in samples}, thumbnail, lambda row: (got := thumbnail(row)) and got[0], probes,
                            properties)
    screen = build_first_screen(summary, images)
    shown, folded = gallery_split(cards, screen.gallery_flags, GALLERY_SHOWN) if screen.gallery_flags else (cards, [])
    return {
        "screen": screen,
        "glosses": GLOSSES,
        "open_attr": lambda section: open_attr(section, screen),
        "model_file": Path(str((prov.get("model_source") or {}).get("path") or prov["model"])).name,  # a Keras 2 model: its source
        "cards_shown": shown,
        "cards_folded": folded,
        "evidence": _evidence_view(summary, cfg, table, values, card),
        "methods": _methods_view(summary, cfg, samples, flags, values),
        "strategies": build_strategies_view(strategies, lambda row: (got := thumbnail(row)) and got[1]),
        "probes": build_probes_view(probes, cfg.statistics.interval, caption=lambda row: answer(values, prep.space, row)),
        "properties": build_properties_view(properties, caption=lambda row: answer(values, prep.space, row)),
        "summary": summary,
        "verdict_class": {"FIT TO DEPLOY": "fit", "NOT FIT": "notfit"}.get(summary["verdict"], "inconclusive"),
        "overall": {k: aggregate_text(k, v) for k, v in summary["aggregates"]["overall"].items()},
        "gate_rows": _gate_rows(summary),
        "gate_warnings": [r["warning"] for r in summary["gate"] if r.get("warning")],
        "stats_level": f"{cfg.statistics.interval:.0%}", "stats_resamples": cfg.statistics.resamples,
        **_overview(summary, table),
        "flag_text": FLAG_TEXT,
        "per_class": _per_class_rows(summary),
        "gallery_flags": [f for f in SEVERITY if any(c["flag"] == f for c in cards)],
        "class_names": list(prep.labels),
        "skipped": summary["skipped"],
        "provenance": prov,
        "config_text": cfg.text,
        "config_resolved": resolved_yaml(cfg),
        "legend_gradient": legend_gradient_css(),
        "baseline": view_baseline,
        "passes_line": passes_line(prov),
    }


def _overview(summary: Mapping[str, Json], table: SampleTable) -> JsonObject:
    """The flags' quadrant (count and rate of the scored samples), energy in box by correctness (histogram) and against
    the box's share of the input (scatter); skipped and no-signal samples are not drawn."""
    counts = summary["flag_counts"]
    n_scored = max(1, sum(v for k, v in counts.items() if k != "skipped"))
    quad = {k: {"count": counts[k], "rate": f"{counts[k] / n_scored:.1%}"} for k in ("ok", "right_for_wrong_reason", "confused_on_object", "distracted")}
    flags = table.flags
    judged = (flags != "skipped") & (flags != "no_signal")
    groups = {"correct": np.where(judged & table.correct, table.energy_in_box, np.nan), "incorrect": np.where(judged & ~table.correct, table.energy_in_box, np.nan)}
    color_key = np.where(table.correct, "correct", "incorrect")
    return {"quad": quad, "counts": counts, "hist": charts.histogram(groups, COLORS, title="energy_in_box by correctness"),
            "scatter": charts.scatter(np.where(judged, table.box_area_fraction, np.nan), np.where(judged, table.energy_in_box, np.nan),
                                      color_key, COLORS, title="energy_in_box against box_area_fraction")}


STAGE_WORDS = {"preprocessing_check": "check", "explain": "explain", "trust": "trust", "strategies": "strategies", "probes": "probes",
               "properties": "properties"}


def passes_line(prov: Mapping[str, Json]) -> str:
    """"forward passes: check 256, explain 1,200, strategies 480 (+ 40 Grad-CAM), ... — 3,376 in all" (DESIGN §18), from
    provenance's ``passes``; "" when it has none."""
    passes = prov.get("passes") or {}
    parts, total = [], 0
    for stage, words in STAGE_WORDS.items():
        got = passes.get(stage) or {}
        forward, gradcam = int(got.get("forward") or 0), int(got.get("gradcam") or 0)
        if forward or gradcam:
            seconds = ((prov.get("preprocessing_check") or {}).get("seconds") if stage == "preprocessing_check"
                       else prov.get("explain_seconds" if stage == "explain" else f"{stage}_seconds"))
            parts.append(f"{words} {forward:,}" + (f" + {gradcam:,} Grad-CAM" if gradcam else "")
                         + (f" ({float(seconds):.1f} s)" if isinstance(seconds, (int, float)) else ""))
            total += forward + gradcam
    return f"passes by stage: {', '.join(parts)}; {total:,} in all" if parts else ""




class _Cards:
    """Gallery cards and thumbnails of single samples (the overlay as the model saw the image, and
    its intervention images)."""

    def __init__(self, prep: Any, table: SampleTable, values: Mapping[str, np.ndarray], cams: np.ndarray):
        self.prep, self.table, self.values, self.cams = prep, table, values, cams

    def scored_region(self, row: int, explained: int) -> np.ndarray | None:
        """(H, W) bool region a sample was scored against under ``region: mask`` (None for boxes)."""
        prep = self.prep
        return prep.boxes.region(row, explained, prep.model.input_size) if prep.boxes.masks is not None else None

    def removal_region(self, row: int, explained: int, region: np.ndarray) -> np.ndarray:
        """What the step removed (``evidence.removal_region``): the objects' boxes, their masks, or the masks dilated."""
        prep, cfg = self.prep, self.prep.cfg
        kind = cfg.evidence.removal_region
        if kind == "box":
            return prep.boxes.region(row, explained, prep.model.input_size, masks=False)
        if kind == "dilated":
            return interventions.dilate(region, interventions.dilation_px(cfg.evidence.dilation_px, prep.model.input_size, prep.model.layer_shape[:2]))
        return region

    def thumbnail(self, row: int) -> tuple[np.ndarray, str, int] | None:
        """(decoded image, overlay data URI, explained label) of a sample; None when its image cannot be read."""
        samples, space, predicted, cams = self.prep.samples, self.prep.space, self.values["predicted"], self.cams
        s = samples[row]
        # draw the boxes the sample was scored against: those of the explained class's label, else every box
        explained = space.explained_label(s.target, int(predicted[row]))
        scored_boxes = [b for b in s.boxes if explained >= 0 and b.label == space.labels[explained]] or list(s.boxes)
        try:
            image = crop_window(decode_rgb(s.path), s.window, self.prep.model.input.pad_value) if s.window else decode_rgb(s.path)
        except ImageProblem:
            return None
        # the window the model saw (centre crop / letterbox), boxes in its pixels
        seen = [got for b in scored_boxes if (got := box_in_window(b.as_tuple(), s.window or (0, 0, *s.size))) is not None]
        return image, overlay(image, np.asarray(cams[row]), seen, region=self.scored_region(row, explained)), explained

    def card(self, row: int) -> JsonObject | None:
        prep, values, table, space = self.prep, self.values, self.table, self.prep.space
        predicted, confidence, flags = values["predicted"], values["confidence"], table.flags
        model_class = values.get("predicted_model_class")
        s = prep.samples[row]
        got = self.thumbnail(row)
        if got is None:
            return None
        image, uri, explained = got
        out = {
            "row": row, "sample_id": s.sample_id, "flag": flags[row], "labels": list(s.labels),
            "label": " | ".join(s.labels), "predicted": shown_prediction(int(predicted[row]), None if model_class is None else int(model_class[row]), space),
            "confidence": format_value(float(confidence[row]), 2), "energy": format_value(float(table.energy_in_box[row])),
            "focus": format_value(float(table.focus_score[row])),
            "image": uri,
            "evidence": None, "method_flag": values["method_flag"][row] if "method_flag" in values else None,
        }
        if "object_dependence" in values and not np.isnan(values["object_dependence"][row]):
            region = prep.boxes.region(row, explained, prep.model.input_size)
            removed_uri, only_uri = intervention_thumbnails(image, prep.model.input_size, region, prep.cfg.evidence.fill,
                                                            removal=self.removal_region(row, explained, region))
            out["evidence"] = {
                "class": space.labels[explained] if explained >= 0 else "—", "removed": removed_uri, "only": only_uri,
                "removed_confidence": format_value(float(values["removed_confidence"][row]), 2),
                "only_confidence": format_value(float(values["only_confidence"][row]), 2),
                "dependence": format_value(float(values["object_dependence"][row]), 2),
                "still_right": values["still_right_without_object"][row] == 1.0,
                "blank_too": bool(values["blank_right"][row] == 1.0) and values["still_right_without_object"][row] == 0.0
                and "blank image" in str(values["evidence_note"][row]),
            }
        return out


def _gate_rows(summary: Mapping[str, Json]) -> list[JsonObject]:
    """The gate table's rows: each rule's result with its interval (from summary.json) and baseline change."""
    out = []
    for r in summary["gate"]:
        ci = r.get("interval") or [None, None]
        change = None if r["baseline"] is None or r["value"] is None else r["value"] - r["baseline"]
        change_rule = r["kind"] in ("max_drop", "max_rise")
        out.append({
            **r,
            "value_text": aggregate_text(r.get("aggregate", r["metric"]), r["value"]),
            "n_text": "—" if r.get("n") is None else str(r["n"]),
            "ci_text": "—" if ci[0] is None else (f"{signed(ci[0])} – {signed(ci[1])}" if change_rule else f"{fixed(ci[0])} – {fixed(ci[1])}"),
            "compared_text": aggregate_text(r.get("aggregate", r["metric"]), r.get("compared")),
            "baseline_text": aggregate_text(r.get("aggregate", r["metric"]), r["baseline"]),
            "change_text": "—" if change is None or math.isnan(change) else signed(change),
        })
    return out


def _per_class_rows(summary: Mapping[str, Json]) -> list[JsonObject]:
    """The per-class table: each label's main aggregates and the gate messages that failed for it."""
    rows = []
    for name, agg in summary["aggregates"]["per_class"].items():
        failing = [r["message"] for r in summary["gate"] if r["scope"] == name and r["status"] == "fail"]
        rows.append({
            "name": name, "n": int(agg["n_samples"]), "accuracy": format_value(agg["accuracy"]),
            "energy": format_value(agg["mean_energy_in_box"]), "focus": format_value(agg["mean_focus_score"]),
            "pointing": format_value(agg["pointing_accuracy"]),
            "rates": {f: format_value(agg[f"{f}_rate"]) for f in FLAGS},
            "status": "fail" if failing else "pass", "failing": failing,
        })
    return rows


def _baseline_view(summary: Mapping[str, Json], samples: Any, flags: np.ndarray, baseline: Mapping[str, Json] | None,
                   baseline_path: Path | None) -> JsonObject | None:
    """"Against the baseline": every aggregate's change, and the samples that left or came back to ``ok``."""
    if baseline is None:
        return None
    base_agg = baseline.get("aggregates", {})
    deltas = []
    scopes = [("overall", summary["aggregates"]["overall"], base_agg.get("overall", {}))]
    scopes += [(c, v, base_agg.get("per_class", {}).get(c, {})) for c, v in summary["aggregates"]["per_class"].items()]
    for scope, now, before in scopes:
        for name in AGGREGATES:
            a, b = now.get(name), before.get(name)
            if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
                continue
            deltas.append({"scope": scope, "name": name, "now": format_value(a), "before": format_value(float(b)), "delta": signed(a - float(b))})
    before_flags = _baseline_flags(baseline_path)
    ids = {s.sample_id for s in samples}
    unmatched_now = sum(s.sample_id not in before_flags for s in samples) if before_flags else 0
    unmatched_before = sum(i not in ids for i in before_flags)
    transitions = []
    for s in samples:
        old, new = before_flags.get(s.sample_id), flags[s.row]
        if old is not None and (old == "ok") != (new == "ok") and "skipped" not in (old, new):
            transitions.append({"sample_id": s.sample_id, "before": old, "now": new, "direction": "regressed" if old == "ok" else "recovered"})
    return {
        "name": baseline.get("name", "baseline"), "verdict": baseline.get("verdict", "?"), "deltas": deltas,
        "transitions": transitions, "n_regressed": sum(t["direction"] == "regressed" for t in transitions),
        "n_recovered": sum(t["direction"] == "recovered" for t in transitions), "has_samples": bool(before_flags),
        "unmatched_now": unmatched_now, "unmatched_before": unmatched_before,
        "note": note(summary.get("baseline")), "comparability": summary.get("baseline"),
    }


def answer(values: Mapping[str, np.ndarray], space: Any, row: int) -> str:
    """The model's answer on a sample with its confidence: "circle 0.98" (the mapped model class when labels are mapped)."""
    model_class = values.get("predicted_model_class")
    shown = shown_prediction(int(values["predicted"][row]), None if model_class is None else int(model_class[row]), space)
    return f"{shown} {format_value(float(values['confidence'][row]), 2)}"


def shown_prediction(label: int, model_class: int | None, space: Any) -> str:
    """"dog (beagle)" when labels are mapped from model classes, else the label; "—" when none."""
    if model_class is None:
        return space.labels[label] if label >= 0 else "—"
    if model_class < 0:
        return "—"
    name = space.class_names[model_class]
    return f"{space.labels[label]} ({name})" if label >= 0 else f"({name}: no dataset label)"


def _evidence_view(summary: Mapping[str, Json], cfg: Any, table: SampleTable, values: Mapping[str, np.ndarray], card: Any) -> JsonObject:
    """"Does the model need the object?": the 2x2, its disagreeing examples, the scatter, the trust checks."""
    trust = summary["trust"]
    checks = [{**c, "value_text": format_value(c["value"]), "next": NEXT_STEPS.get(c["name"], "")} for c in trust["checks"]]
    out: JsonObject = {"enabled": "object_dependence" in values, "checks": checks,
                           "failed": [c for c in checks if c["status"] == "fail"], "fill": cfg.evidence.fill,
                           "removal_region": cfg.evidence.removal_region,
                           "dependence_min": cfg.evidence.dependence_min}
    if not out["enabled"]:
        return out
    dep = values["object_dependence"]
    cells = agreement_cells(table.flags, dep, cfg.evidence.dependence_min)
    examples = 6
    out["cells"] = {k: int(v.size) for k, v in cells.items()}
    out["n_defined"] = int(sum(v.size for v in cells.values()))
    out["examples"] = {k: [c for c in (card(int(r)) for r in cells[k][np.argsort(-np.nan_to_num(table.focus_score[cells[k]]))][:examples]) if c]
                       for k in ("on_not_needed", "off_needed")}
    confirmation = next((c for c in trust["checks"] if c["name"] == "heatmap_confirmation"), None)
    idle = confirmation is not None and confirmation["status"] == NOT_EVALUATED
    out["claims"] = _claims_view(summary.get("explanation"), idle)
    agg = summary["aggregates"]["overall"]
    out["aggregates"] = {k: format_value(agg.get(k)) for k in ("mean_object_dependence", "still_right_without_object_rate", "object_only_accuracy", "explanation_agreement")}
    if idle:  # the check that reads these numbers was not evaluated: they are not shown as results
        out["aggregates"]["explanation_agreement"] = "not evaluated"
    judged = np.isin(table.flags, ("ok", "right_for_wrong_reason", "confused_on_object", "distracted"))
    out["scatter"] = charts.scatter(
        np.where(judged, table.focus_score, np.nan), np.where(judged, dep, np.nan), np.where(table.correct, "correct", "incorrect"), COLORS,
        title="object_dependence against focus_score", xlabel="focus_score", ylabel="object_dependence",
        xlim=(-1.0, 1.0), ylim=(-1.0, 1.0),
        guides=(((cfg.scoring.focus_min, -1.0, cfg.scoring.focus_min, 1.0), "on-target threshold (scoring.focus_min)", "focus_min"),
                ((-1.0, cfg.evidence.dependence_min, 1.0, cfg.evidence.dependence_min), "evidence.dependence_min", "dependence_min")),
    ) if cfg.scoring.focus_metric == "focus_score" else None
    return out


def _claims_view(ex: Mapping[str, Json] | None, idle: bool = False) -> JsonObject | None:
    """Claim confirmation, chance agreement and κ beside the 2x2 (summary.json's ``explanation``); ``idle``: the
    heatmap_confirmation check was not evaluated, so the on-target rate is said so rather than shown as a result."""
    if not ex:
        return None

    def interval(pair: list) -> str:
        low, high = fixed(pair[0], 2), fixed(pair[1], 2)
        return "none (no sample)" if "—" in (low, high) else f"{low}–{high}"

    on, off = ex["on_target_confirmed_rate"], ex["off_target_confirmed_rate"]
    return {
        "on": "not evaluated" if idle else format_value(on["value"]), "on_interval": interval(on["interval"]), "on_n": on["n"],
        "off": format_value(off["value"]), "off_interval": interval(off["interval"]), "off_n": off["n"],
        "chance": format_value(ex["chance_agreement"]), "kappa": format_value(ex["kappa"]), "kappa_reason": ex["kappa_reason"],
        "level": f"{ex['interval_level']:.0%}", "large": ex["not_judged_large_region"], "blank": ex["blank_also_right"],
        "removal_region": ex["removal_region"], "max_region": f"{ex['max_region_fraction']:.0%}",
    }


def _methods_view(summary: Mapping[str, Json], cfg: Any, samples: Any, flags: np.ndarray, values: Mapping[str, np.ndarray]) -> JsonObject | None:
    """Where the compare method's flag differs from the main method's, with the maps' rank correlation."""
    if "method_flag" not in values:
        return None
    other = values["method_flag"]
    scored = flags != "skipped"
    differ = np.flatnonzero(scored & (other != flags))
    corr = values["method_rank_correlation"][scored]
    corr = corr[~np.isnan(corr)]
    return {
        "main": cfg.explain.method, "other": cfg.explain.compare_method, "n_scored": int(scored.sum()), "n_differ": int(differ.size),
        "median_correlation": format_value(float(np.median(corr)) if corr.size else None),
        "rows": [{"row": int(r), "sample_id": samples[r].sample_id, "main": flags[r], "other": other[r],
                  "correlation": format_value(float(values["method_rank_correlation"][r]))} for r in differ[:200]],
    }

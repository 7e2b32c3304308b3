"""Failed trust checks as findings (heatmap_confirmation, randomisation, prediction_spread, better_than_chance) and the no-signal finding."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from pipeline.findings.record import BLOCKER, WARNING, Finding, Samples, pick
from pipeline.findings.rules import rule_text
from pipeline.findings.words import words
from pipeline.records.gate import CheckRecord, RuleRecord
from pipeline.records.plain import Json
from pipeline.records.summary import LayerRecord, SummaryRecord


def no_signal_finding(rules: Sequence[RuleRecord], s: Samples | None, level: float, summary: SummaryRecord) -> Finding:
    prov = summary.provenance
    layer = prov.target_layer or "the target layer"
    grid = prov.target_layer_shape
    counts = summary.flag_counts
    n_scored = sum(v for k, v in counts.items() if k != "skipped")
    parts = [f"{counts.get('no_signal', 0)} of {n_scored} scored samples have an all-zero heatmap at {layer}"
             + (f" ({grid[0]}×{grid[1]})" if len(grid) >= 2 else "") + ", so where the model looks cannot be judged"]
    parts += [rule_text(g, level) for g in rules]
    candidates = [c for c in prov.candidates if c.name != layer]
    suggestion = suggest_layer(prov.candidates, layer)
    sentence = "; ".join(parts) + "."
    if candidates:
        sentence += " Candidate layers: " + ", ".join(f"{c.name} ({'×'.join(str(v) for v in c.shape[:2])})"
                                                     for c in candidates[-6:]) + "."
    action = (f"Name another target layer: model.target_layer: {suggestion}" if suggestion else "Name another model.target_layer")
    action += (" (an earlier layer whose map still reaches the class score), check it with python -m pipeline validate CONFIG, "
               "and re-audit; the verdict cannot be FIT while the heatmaps are empty.")
    evidence = pick(s, s.flag == "no_signal") if s is not None else ()
    return Finding(id="no_signal:*:*", severity=BLOCKER if rules else WARNING, kind="no_signal",
                   title=words(f"Heatmaps are empty at the target layer {layer}"), sentence=sentence, action=action,
                   evidence=evidence)


def suggest_layer(candidates: Sequence[LayerRecord], layer: str) -> str | None:
    """The candidate just before ``layer`` in graph order (else the last candidate that is not it)."""
    names = [c.name for c in candidates]
    if layer in names:
        i = names.index(layer)
        return names[i - 1] if i > 0 else (names[i + 1] if i + 1 < len(names) else None)
    return names[-1] if names else None


TRUST_TEXT = {
    "heatmap_confirmation": (
        "Heatmaps' on-target claims are not backed by behaviour",
        "The heatmap says 'on the object' where removing the object changes nothing: try a finer target layer (an earlier, "
        "higher-resolution feature map) or another CAM method (explain.method, explain.compare_method), check that the boxes "
        "enclose the objects, and re-audit."),
    "randomisation": (
        "Heatmaps barely change when the model's weights are destroyed",
        "The maps show the image, not the model: name a finer model.target_layer or another explain.method, and re-audit before "
        "trusting any heatmap number."),
    "better_than_chance": (
        "The model does no better than chance: its heatmaps explain noise",
        "A model no better than guessing has nothing to explain: check that model.path is the trained model (not an untrained or "
        "re-initialised one), that model.preprocessing and model.class_names match its training, and that the labels are its "
        "classes; then re-audit."),
    "prediction_spread": (
        "The model gives almost every image the same answer",
        "A constant answer usually means the wrong preprocessing: keep model.check_preprocessing on (or set model.preprocessing to "
        "what the model was trained with; python -m pipeline validate names the model's own Rescaling layers), then re-audit."),
}


def trust_finding(check: CheckRecord, s: Samples | None) -> Finding:
    name = check.name
    title, action = TRUST_TEXT.get(name, (f"Trust check {name} failed", "Fix what the check names and re-audit."))
    evidence: tuple[Mapping[str, Json], ...] = ()
    if s is not None and name == "heatmap_confirmation" and s.object_dependence is not None:
        evidence = pick(s, (s.flag == "ok") & (s.object_dependence < 0.5), s.object_dependence)
    if s is not None and name == "prediction_spread" and len(s.predicted):
        values, counts = np.unique(s.predicted[s.flag != "skipped"], return_counts=True)
        if values.size:
            top = values[np.argmax(counts)]
            title = f"The model answers '{top}' for almost every image"
            evidence = pick(s, (s.predicted == top) & np.array([top not in labs for labs in s.labels]), -s.confidence)
    message = check.message
    return Finding(id=f"trust:{name}:*", severity=WARNING, kind="trust", title=words(title),
                   sentence=message[:1].upper() + message[1:] + ("" if message.endswith(".") else "."), action=action,
                   checks=(name,), evidence=evidence)

"""Data findings and notes: too few usable samples, rules not evaluated, coarse maps, the resize convention (DESIGN §16)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.findings.record import (
    BLOCKER,
    CHANGE_KINDS,
    NOTE,
    WARNING,
    Finding,
    Samples,
)
from pipeline.findings.rules import id_labels, rule_text, scopes
from pipeline.findings.words import plural, words
from pipeline.records.gate import RuleRecord
from pipeline.records.summary import SummaryRecord
from pipeline.status import NOT_EVALUATED


def data_finding(rules: Sequence[RuleRecord], level: float, summary: SummaryRecord) -> Finding:
    n_skipped = len(summary.skipped)
    title = f"Too few usable samples: {n_skipped} skipped" if n_skipped else "Too few samples for the gate"
    return Finding(id=f"data:{id_labels(rules)}:*", severity=BLOCKER, kind="data", title=words(title),
                   sentence="; ".join(rule_text(g, level) for g in rules) + ".", labels=scopes(rules),
                   action="Fix the skipped samples (each reason is in samples.csv and the report's 'Skipped samples': missing or corrupt "
                          "images, boxes outside the image, unknown labels) or add samples, then re-audit.")


COARSE_GRID = 4  # a CAM grid of at most 4 x 4 cells ...


COARSE_AREA = 1 / 3  # ... over boxes that cover more than this of the input on average: energy in box says little


def coarse_note(summary: SummaryRecord, s: Samples | None) -> list[Finding]:
    """A note when the maps are too coarse for the boxes: its chance level and the finer candidate layers."""
    prov = summary.provenance
    grid = prov.target_layer_shape
    if s is None or s.box_area is None or len(grid) < 2 or max(grid[0] or 0, grid[1] or 0) > COARSE_GRID:
        return []
    area = s.box_area[(s.flag != "skipped") & ~np.isnan(s.box_area)]
    if not area.size or area.mean() <= COARSE_AREA:
        return []
    finer = [c for c in prov.candidates if len(c.shape) >= 2 and c.shape[0] > grid[0]]
    sentence = (f"The heatmaps are {grid[0]}×{grid[1]} cells at {prov.target_layer}, and the boxes cover {area.mean():.0%} of the "
                f"input on average: a uniform map already scores energy in box {area.mean():.2f}, so energy in box says little here "
                "(the focus score corrects for it).")
    if finer:
        sentence += " Finer layers: " + ", ".join(f"{c.name} ({c.shape[0]}×{c.shape[1]})" for c in finer[-4:]) + "."
    action = (f"Name a finer layer in model.target_layer ({finer[-1].name} is the last one finer than this grid) and re-audit, "
              "or gate on the focus score rather than energy in box." if finer else
              "Gate on the focus score rather than energy in box, or audit at a larger input size for a finer map.")
    return [Finding(id="heatmap:*:coarse", severity=NOTE, kind="heatmap", title=words(f"Coarse {grid[0]}×{grid[1]} heatmaps over large boxes"),
                    sentence=sentence, action=action)]


def resize_warning(summary: SummaryRecord) -> list[Finding]:
    """A warning when the preprocessing check found the other resize convention clearly more accurate (DESIGN §16)."""
    r = summary.provenance.resize
    if r is None or not r.other_better:
        return []
    mine, other = ("antialiased", "plain") if r.antialias else ("plain", "antialiased")
    sentence = (f"On the preprocessing check's {r.images} images the model is more accurate after an {other} resize: accuracy "
                f"{r.other_accuracy:.2f} against {r.accuracy:.2f} with the configured {mine} one (gain {r.difference:.2f}, "
                f"{r.level:.0%} interval {r.low:.2f} to {r.high:.2f}). The model was likely trained on pixels shrunk that "
                "way, so this audit's numbers may describe pixels it never saw.")
    action = (f"Set model.antialias: {str(not r.antialias).lower()} if the training shrank its images that way (PIL's Image.resize, "
              "keras.utils.load_img and ImageDataGenerator antialias; tf.image.resize, Resizing and image_dataset_from_directory do "
              "not), and re-audit.")
    return [Finding(id="data:*:resize", severity=WARNING, kind="data", title=words(f"The model reads {other}-resized images better"),
                    sentence=sentence, action=action)]


def notes(summary: SummaryRecord) -> list[Finding]:
    out = []
    idle = [g for g in summary.gate if g.status == NOT_EVALUATED]
    if idle:
        why = sorted({g.message.split("not evaluated", 1)[-1].strip(" ()") or "no reason" for g in idle})
        out.append(Finding(id="not_evaluated:*:*", severity=NOTE, kind="not_evaluated",
                           title=words(f"{plural(len(idle), 'rule')} not evaluated: {why[0]}"),
                           sentence="; ".join(g.message for g in idle) + ".",
                           action="Change rules need --baseline with an earlier audit's summary.json (or an MLflow models:/ URI)."
                           if any(g.kind in CHANGE_KINDS for g in idle) else "See each rule's reason in the gate table."))
    skipped = summary.skipped
    if skipped:
        first = skipped[0]
        out.append(Finding(id="data:*:skipped", severity=NOTE, kind="data", title=words(f"{plural(len(skipped), 'sample')} skipped"),
                           sentence=f"{plural(len(skipped), 'sample')} could not be used; the first, {first.sample_id}: {first.reason}.",
                           action="Each reason is in samples.csv and the report's 'Skipped samples': fix the images or annotations and re-audit."))
    problems = summary.dataset_problems
    if problems:
        out.append(Finding(id="data:*:problems", severity=NOTE, kind="data",
                           title=words(f"{plural(len(problems), 'dataset problem')} touched no usable sample"),
                           sentence=f"The first: {problems[0]}.",
                           action="Fix the annotation file so every annotation names a listed image and every image has annotations."))
    return out

"""Failing gate rules without a confirmed cause: accuracy, heatmap, behaviour and regression findings, and the routing of every failing rule to exactly one finding (attribution to shortcuts)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np

from pipeline.findings.background import background_cause
from pipeline.findings.places import place_token, rects_words
from pipeline.findings.probe import strongest_probe
from pipeline.findings.record import (
    ACCURACY_METRICS,
    ATTRIBUTION_SHARE,
    BEHAVIOUR_METRICS,
    BLOCKER,
    CHANGE_KINDS,
    DATA_METRICS,
    NO_SIGNAL_METRICS,
    PROBE_METRICS,
    RFWR,
    STRATEGY_METRICS,
    Finding,
    Samples,
    as_float,
    pick,
    scope_mask,
)
from pipeline.findings.shortcut import Cause, members_mask
from pipeline.findings.story import FOOLING
from pipeline.findings.words import and_join, interval_text, num, words
from pipeline.numbers import COUNT_AGGREGATES, aggregate_text, count
from pipeline.records.gate import RuleRecord
from pipeline.records.summary import SummaryRecord


def rule_text(g: RuleRecord, level: float) -> str:
    """"mean_focus_score -0.09 (90% interval -0.10–-0.08, 300 samples) is below 0.25"."""
    if g.kind in CHANGE_KINDS:
        return g.message
    ci = g.interval
    within = f" ({interval_text(ci[0], ci[1], level)}, {g.n} samples)" if ci and g.n else ""
    shown = aggregate_text(g.aggregate, g.value, 2)
    if math.isnan(as_float(g.value)):
        return f"{g.label} is undefined (no samples to measure it on)"
    side = "below the required" if g.kind == "min" else "above the allowed"
    bound = f" (its {g.bound} bound {num(g.compared)})" if g.bound not in (None, "point") else ""
    return f"{g.label} {shown}{within}{bound} is {side} {threshold_of(g)}"


def threshold_of(g: RuleRecord) -> str:
    return count(g.threshold) if g.aggregate in COUNT_AGGREGATES else f"{g.threshold:g}"


def scopes(rules: Sequence[RuleRecord]) -> tuple[str, ...]:
    return tuple(sorted({g.scope for g in rules if g.scope != "overall"}))


def id_labels(rules: Sequence[RuleRecord]) -> str:
    if any(g.scope == "overall" for g in rules):
        return "*"
    return "+".join(scopes(rules)) or "*"


def accuracy_finding(rules: Sequence[RuleRecord], s: Samples | None, level: float) -> Finding:
    labels = scopes(rules)
    first = rules[0]
    if len(rules) == 1:
        who = f"{first.scope} accuracy" if first.scope != "overall" else first.label.replace("_", " ").capitalize()
        title = f"{who[0].upper()}{who[1:]} {num(first.value)} is below the required {threshold_of(first)}"
    else:
        title = f"Accuracy is below the gate's minimum for {and_join(labels) if labels else 'the whole set'}"
    sentence = "; ".join(rule_text(g, level) for g in rules) + "."
    confusion, evidence = "", ()
    if s is not None:
        wrong = np.isin(s.flag, ("confused_on_object", "distracted")) & scope_mask(s, rules)
        pairs: dict[tuple[str, str], int] = {}
        for r in np.flatnonzero(wrong):
            pair = ("|".join(s.labels[r]), s.answer(r))
            pairs[pair] = pairs.get(pair, 0) + 1
        if pairs:
            (true, said), k = max(pairs.items(), key=lambda kv: kv[1])
            confusion = f"{true} answered as {said}"
            sentence += f" {int(wrong.sum())} wrong answers; the most common: {confusion} ({k})."
        evidence = pick(s, wrong, -s.confidence)
    action = ((f"Most errors are {confusion}: check those images' labels and add training images that tell them apart; "
               if confusion else "Add training images of the failing classes; ")
              + "if every class fails, first check model.preprocessing and the class_names order (python -m pipeline validate "
                "prints both). Retrain and re-audit with --baseline this audit's summary.json.")
    return Finding(id=f"accuracy:{id_labels(rules)}:*", severity=BLOCKER, kind="accuracy", title=words(title), sentence=sentence,
                   action=action, labels=labels, evidence=evidence)


def off_object_place(summary: SummaryRecord, labels: Sequence[str]) -> tuple[str, tuple[float, ...], float, str] | None:
    """The strongest off-object place among ``labels``' atlases, as the strategies stage found it: (words, rect, share of
    that label's heat, label)."""
    best = None
    for lab in summary.strategies.labels:
        if (labels and lab.label not in labels) or lab.off_object is None:
            continue
        rect, share = lab.off_object.rect, lab.off_object.share
        if best is None or share > best[2]:
            best = (rects_words([rect]), rect, share, lab.label)
    return best


COARSE_CELL = 0.1  # a heatmap cell wider (or taller) than this share of the input spreads heat past small objects


def coarse_grid(grid: Sequence[int]) -> bool:
    """True when one cell of the (h, w, ...) target-layer grid spans more than COARSE_CELL of the input's width or height
    (a 22×22 map on a 96-pixel input is fine; 7×7 is coarse)."""
    if len(grid) < 2 or not grid[0] or not grid[1]:
        return False
    return min(int(grid[0]), int(grid[1])) * COARSE_CELL < 1


def heatmap_finding(rules: Sequence[RuleRecord], s: Samples | None, level: float, summary: SummaryRecord,
             causes: Sequence[Cause]) -> Finding:
    labels = scopes(rules)
    where = off_object_place(summary, labels)
    title = f"Heat lies off the objects, strongest at {where[0]}" if where else "Heat lies off the objects"
    sentence = "; ".join(rule_text(g, level) for g in rules) + "."
    if where:
        sentence += f" The strongest off-object heat is at {where[0]}: {where[2]:.0%} of the heat of '{where[3]}' images, off their objects."
    evidence = ()
    if s is not None:
        rf = (s.flag == RFWR) & scope_mask(s, rules)
        members = frozenset().union(*(c.members for c in causes)) if causes else frozenset()
        k = int((rf & members_mask(s, members)).sum()) if members else 0
        found = suspect(rules, causes, s, rf) if rf.any() else None
        if found is not None:
            sentence += (f" {int(rf.sum())} samples are right for the wrong reason; the likely cause is what fooled the model off "
                         f"the objects: \"{found.finding.title}\" (finding {found.finding.id}).")
        elif rf.any():
            sentence += (f" {int(rf.sum())} samples are right for the wrong reason; {k} of them are in confirmed shortcut strategies, "
                         "so no tested cause accounts for this.")
        evidence = pick(s, rf, s.focus)
    else:
        found = None
    grid = summary.provenance.target_layer_shape
    look = where[0] if where else "the heat"
    if found is not None:
        action = (f"Start with the likely cause, \"{found.finding.title}\": its finding says what to do; then re-audit and see "
                  f"whether the heat comes back to the objects. Open the right-for-wrong-reason samples in the gallery to check "
                  f"that their heat sits where that finding says.")
    else:
        action = (f"No tested cause explains it: open the right-for-wrong-reason samples in the gallery and look at {look}. If "
                  f"something sits there (text, a marker, a border), test it as a probe overlay with 'at' (probes.overlays)"
                  + (f"; if the heat is only spread by the coarse {grid[0]}×{grid[1]} grid, name an earlier, finer model.target_layer "
                     "and re-audit." if coarse_grid(grid) else "."))
    return Finding(id=f"heatmap:{id_labels(rules)}:{place_token([where[1]]) if where else '*'}", severity=BLOCKER, kind="heatmap",
                   title=words(title), sentence=sentence, action=action, labels=labels, place=where[0] if where else None,
                   rects=(tuple(where[1]),) if where else (), evidence=evidence)


def behaviour_finding(rules: Sequence[RuleRecord], s: Samples | None, level: float) -> Finding:
    labels = scopes(rules)
    sentence = "; ".join(rule_text(g, level) for g in rules) + "."
    evidence = ()
    if s is not None and s.object_dependence is not None:
        right = np.isin(s.flag, ("ok", RFWR)) & scope_mask(s, rules) & ~np.isnan(s.object_dependence)
        evidence = pick(s, right, s.object_dependence)
    action = ("The model still answers the same with the object removed, so it decides from what surrounds it: add training images "
              "of each class on varied backgrounds (and backgrounds without the class), retrain, and re-audit with --baseline this "
              "audit's summary.json; 'Does the model need the object?' lists the samples.")
    return Finding(id=f"behaviour:{id_labels(rules)}:*", severity=BLOCKER, kind="behaviour",
                   title="Predictions do not need the object", sentence=sentence, action=action, labels=labels, evidence=evidence)


def regression_finding(rules: Sequence[RuleRecord], level: float) -> Finding:
    first = rules[0]
    title = (f"Worse than the baseline on {first.label}" if len(rules) == 1 else f"Worse than the baseline on {len(rules)} rules")
    metrics = "+".join(sorted({g.metric for g in rules}))
    return Finding(id=f"regression:{id_labels(rules)}:{metrics}", severity=BLOCKER, kind="regression", title=words(title),
                   sentence="; ".join(rule_text(g, level) for g in rules) + ".", labels=scopes(rules),
                   action="Open 'Against the baseline' in the report: it lists the samples that left ok. Find what changed between the "
                          "two models' training data or code, fix it, and re-audit with the same --baseline.")


def scoped(c: Cause, scope: str) -> bool:
    """A cause concerns a rule of ``scope`` ("overall" or a label) when the label is one of its labels or subjects."""
    return scope == "overall" or scope in c.finding.labels or scope in c.subjects


def attribute(scope: str, causes: Sequence[Cause], s: Samples | None) -> Cause | None:
    """The story of a heatmap/behaviour rule of ``scope`` (DESIGN §13, §17): its confirmed strategies' members and the
    samples answered as one of its classes are at least half of the scope's right-for-wrong-reason samples; the story
    holding most of them."""
    if s is None:
        return None
    stories = [c for c in causes if (c.members or c.classes) and scoped(c, scope)]
    if not stories:
        return None
    rf = (s.flag == RFWR) & s.in_scope(scope)
    if not rf.any():
        return None
    masks = [(members_mask(s, c.members) | np.isin(s.predicted, sorted(c.classes))) & rf for c in stories]
    union = np.logical_or.reduce(masks)
    if union.sum() < ATTRIBUTION_SHARE * rf.sum():
        return None
    return stories[int(np.argmax([m.sum() for m in masks]))]


def route(g: RuleRecord, causes: list[Cause], s: Samples | None, summary: SummaryRecord, level: float) -> str:
    """The finding id (a story's) or rule group ("accuracy", "heatmap", ...) a failing rule belongs to."""
    agg, scope = g.aggregate, g.scope
    if g.kind in CHANGE_KINDS:
        return "regression"
    if agg in STRATEGY_METRICS:
        mine = [c for c in causes if "shortcut" in c.kinds and scoped(c, scope)]
        return mine[0].finding.id if mine else "heatmap"
    if agg == "properties_fragile":
        mine = [c for c in causes if c.kinds & {"fragile", "property"} and scoped(c, scope)]
        return mine[0].finding.id if mine else "heatmap"
    if agg in PROBE_METRICS:
        mine = sorted((c for c in causes if c.kinds & FOOLING and scoped(c, scope)), key=lambda c: -c.finding.effect)
        if mine:
            return mine[0].finding.id
        extra = strongest_probe(summary.probes, scope, s, level)
        if extra is None:
            return "heatmap"
        causes.append(replace(extra, kinds=frozenset(["probe"]), subjects=frozenset(extra.finding.labels)))
        return extra.finding.id
    if agg == "background_gap":
        found = next((c for c in causes if "background" in c.kinds), None) or background_cause(summary.probes.background_swap, level)
        if found is None:
            return "heatmap"
        if found not in causes:
            causes.append(replace(found, kinds=frozenset(["background"])))
        return found.finding.id
    for group, metrics in (("accuracy", ACCURACY_METRICS), ("no_signal", NO_SIGNAL_METRICS), ("data", DATA_METRICS)):
        if agg in metrics:
            return group
    cause = attribute(scope, causes, s)
    if cause is not None:
        return cause.finding.id
    return "behaviour" if agg in BEHAVIOUR_METRICS else "heatmap"


def suspect(rules: Sequence[RuleRecord], causes: Sequence[Cause], s: Samples, rf: np.ndarray) -> Cause | None:
    """A story that fooled the model with edits off the objects and concerns the rules' classes, as the class images turn
    into or as the class whose images turn (DESIGN §17 "Heat with a suspect"): the one whose classes answer most of the
    right-for-wrong-reason samples."""
    def classes(c: Cause) -> set[str]:
        return set(c.finding.labels) | c.subjects | c.turned

    edits = [c for c in causes if c.kinds & {"probe", "place", "context", "property", "fragile", "shortcut"}
             and any(g.scope == "overall" or g.scope in classes(c) for g in rules)]
    if not edits:
        return None
    answered = [int((rf & np.isin(s.predicted, sorted(classes(c)))).sum()) for c in edits]
    best = int(np.argmax(answered))
    return edits[best] if answered[best] > 0 else None

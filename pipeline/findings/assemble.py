"""The findings of one audit, assembled: causes first, every failing rule routed to one finding, then trust, data and notes, ordered blockers -> warnings -> notes and by effect size."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping, Sequence


from pipeline.status import FAIL
from pipeline.findings.background import background_cause
from pipeline.findings.dataset import coarse_note, data_finding, notes, resize_warning
from pipeline.findings.background import background_pieces
from pipeline.findings.probe import min_effect, probe_pieces
from pipeline.findings.record import BLOCKER, Finding, SEVERITIES, Samples, WARNING, as_float, since_baseline, sortable, unique_ids
from pipeline.findings.property import data_clauses, data_notes, property_pieces
from pipeline.findings.shortcut import Cause
from pipeline.findings.story import Piece, object_only_clauses, tell
from pipeline.findings.rules import accuracy_finding, behaviour_finding, heatmap_finding, regression_finding, route
from pipeline.findings.shortcut import confirmed, groups, shortcut_cause
from pipeline.findings.trust import no_signal_finding, trust_finding


def build(summary: Mapping[str, Any], samples: Any = None, baseline: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """summary.json's ``findings`` (DESIGN §13, §17) from its other sections, samples.csv (a DataFrame or a mapping of
    columns; None: no attribution and no evidence) and the baseline audit's summary (for ``since_baseline``)."""
    prov = summary.get("provenance") or {}
    level = float(((prov.get("config_resolved") or {}).get("statistics") or {}).get("interval", 0.9))
    s = Samples.of(samples, prov.get("target", "predicted")) if samples is not None else None
    causes, data, told = stories(summary, s, level)
    gate = summary.get("gate", [])
    routed: dict[str, list[int]] = {}
    for i, g in enumerate(gate):
        if g["status"] == FAIL:
            routed.setdefault(route(g, causes, s, summary, level), []).append(i)
    checks = [c for c in (summary.get("trust") or {}).get("checks", []) if c["status"] == FAIL]
    signal = [c for c in checks if c["name"] == "heatmap_signal"]
    findings = [with_rules(c.finding, routed.pop(c.finding.id, []), gate) for c in causes]
    swap = (summary.get("probes") or {}).get("background_swap")
    if not any("shortcut" in c.kinds or "background" in c.kinds for c in causes):
        bg = background_cause(summary, level)
        if bg is not None and bg.finding.id not in {c.finding.id for c in causes} and as_float(swap.get("background_gap_lo")) >= min_effect(summary):
            findings.append(bg.finding)
    builders = {
        "accuracy": lambda r: accuracy_finding(r, s, level, summary), "heatmap": lambda r: heatmap_finding(r, s, level, summary, causes),
        "behaviour": lambda r: behaviour_finding(r, s, level), "regression": lambda r: regression_finding(r, level),
        "data": lambda r: data_finding(r, level, summary), "no_signal": lambda r: no_signal_finding(r, signal, s, level, summary),
    }
    for group, build_one in builders.items():
        idx = routed.pop(group, [])
        if idx or (group == "no_signal" and signal):
            found = build_one([gate[i] for i in idx])
            findings.append(with_rules(found, idx, gate, tuple(c["name"] for c in signal) if group == "no_signal" else ()))
    findings += [trust_finding(c, s) for c in checks if c["name"] != "heatmap_signal"]
    findings += notes(summary) + coarse_note(summary, s) + resize_warning(summary) + data_notes(data, told)
    findings = unique_ids(sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), -sortable(f.effect), f.id)))
    return [f.record() for f in since_baseline(findings, baseline)]


def stories(summary: Mapping[str, Any], s: Samples | None, level: float) -> tuple[list[Cause], dict[str, list], set[str]]:
    """(one cause per story, DESIGN §17: the confirmed shortcuts, fooling artifacts, read places, property shortcuts and
    fragility, and the background swap's classes, joined by the classes they explain; the data side's rows by class;
    the classes told of)."""
    collapsed = collapsed_classes(summary)
    strategies = confirmed(summary)
    swap = (summary.get("probes") or {}).get("background_swap")
    pieces = [Piece(c, "shortcut", frozenset(c.finding.labels), c.finding.title[0].lower() + c.finding.title[1:])
              for c in (shortcut_cause(g, s, level, swap) for g in groups(strategies))]
    pieces += probe_pieces(summary, s, level)
    props, data = property_pieces(summary, s, level, strategies)
    pieces += props + background_pieces(summary, level, min_effect(summary))
    per_class = (summary.get("aggregates") or {}).get("per_class") or {}
    # object-only accuracy is said where the story is about places around the objects (a flat fill can hide a lone object
    # too, so alone it proves nothing); the data side's ties wherever their class has a story
    surroundings = {c for story in tell(pieces, collapsed=collapsed) if story.kinds & {"context", "place"}
                    for c in story.subjects | story.sources}
    alone = object_only_clauses(per_class, sorted(set(collapsed) & surroundings))
    causes = tell(pieces, data_clauses(data, level), collapsed, alone)
    return causes, data, set().union(*(c.subjects for c in causes))


COLLAPSE = 0.5  # a class's object-only accuracy below this (over at least COLLAPSE_N samples): its objects alone fail it
COLLAPSE_N = 10


def collapsed_classes(summary: Mapping[str, Any]) -> list[str]:
    """The classes whose object-only accuracy collapsed (DESIGN §17: with only the objects kept, they are not recognised)."""
    per_class = (summary.get("aggregates") or {}).get("per_class") or {}
    return sorted(c for c, a in per_class.items()
                  if as_float(a.get("object_only_accuracy")) < COLLAPSE and as_float(a.get("n_scored")) >= COLLAPSE_N)


STORY_KINDS = ("shortcut", "probe", "place", "context", "property", "background")


def with_rules(f: Finding, idx: Sequence[int], gate: Sequence[Mapping[str, Any]], checks: tuple[str, ...] = ()) -> Finding:
    """The finding with the rules (and checks) it accounts for, and the severity they give it."""
    severity = BLOCKER if idx else WARNING if (checks or f.kind in STORY_KINDS + ("trust", "no_signal")) else f.severity
    effect = f.effect
    if idx and f.kind not in STORY_KINDS:
        effect = max(gap(gate[i]) for i in idx)
    return replace(f, rules=tuple(gate[i]["label"] for i in idx), rule_index=tuple(idx), checks=f.checks + checks, severity=severity,
                   effect=effect)


def gap(g: Mapping[str, Any]) -> float:
    """How far a failing rule's compared value lies beyond its threshold (0 when undefined)."""
    v = as_float(g.get("compared") if g.get("compared") is not None else g.get("value"))
    return 0.0 if math.isnan(v) else abs(v - as_float(g["threshold"]))

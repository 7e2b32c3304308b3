"""The findings of one audit, assembled: causes first, every failing rule routed to one finding, then trust, data and notes, ordered blockers -> warnings -> notes and by effect size."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Mapping, Sequence

from pipeline.findings.accounting import since_baseline, unique_ids
from pipeline.findings.background import background_cause, background_pieces
from pipeline.findings.dataset import coarse_note, data_finding, notes, resize_warning
from pipeline.findings.probe import probe_pieces
from pipeline.findings.property import data_clauses, data_notes, property_pieces
from pipeline.findings.record import (
    BLOCKER,
    SEVERITIES,
    WARNING,
    Columns,
    Finding,
    Samples,
    as_float,
    sortable,
)
from pipeline.findings.rules import (
    accuracy_finding,
    behaviour_finding,
    heatmap_finding,
    regression_finding,
    route,
)
from pipeline.findings.shortcut import Cause, groups, shortcut_cause
from pipeline.findings.story import Piece, object_only_clauses, tell
from pipeline.findings.trust import no_signal_finding, trust_finding
from pipeline.records.gate import RuleRecord
from pipeline.records.plain import Json, JsonObject
from pipeline.records.probes import PropertyRecord
from pipeline.records.summary import SummaryRecord
from pipeline.status import FAIL


def build(summary: Mapping[str, Json], samples: Columns | None = None, baseline: Mapping[str, Json] | None = None) -> list[JsonObject]:
    """summary.json's ``findings`` (DESIGN §13, §17) from its other sections, samples.csv (a DataFrame or a mapping of
    columns; None: no attribution and no evidence) and the baseline audit's summary (for ``since_baseline``)."""
    record = SummaryRecord.of(summary)
    found = assemble(record, Samples.of(samples, record.provenance.target) if samples is not None else None)
    return [f.record() for f in since_baseline(found, SummaryRecord.of(baseline) if baseline is not None else None)]


def assemble(summary: SummaryRecord, s: Samples | None) -> list[Finding]:
    """The findings in order: blockers, warnings, notes, each by effect size (largest first), then id."""
    level = summary.provenance.level
    causes, data, told = stories(summary, s, level)
    gate = summary.gate
    routed: dict[str, list[int]] = {}
    for i, g in enumerate(gate):
        if g.status == FAIL:
            routed.setdefault(route(g, causes, s, summary, level), []).append(i)
    checks = [c for c in summary.checks if c.status == FAIL]
    signal = [c for c in checks if c.name == "heatmap_signal"]
    findings = [with_rules(c.finding, routed.pop(c.finding.id, []), gate) for c in causes]
    swap = summary.probes.background_swap
    if not any("shortcut" in c.kinds or "background" in c.kinds for c in causes):
        bg = background_cause(swap, level)
        if bg is not None and swap is not None and bg.finding.id not in {c.finding.id for c in causes} \
                and swap.background_gap_lo >= summary.probes.min_effect:
            findings.append(bg.finding)
    builders = {
        "accuracy": lambda r: accuracy_finding(r, s, level), "heatmap": lambda r: heatmap_finding(r, s, level, summary, causes),
        "behaviour": lambda r: behaviour_finding(r, s, level), "regression": lambda r: regression_finding(r, level),
        "data": lambda r: data_finding(r, level, summary), "no_signal": lambda r: no_signal_finding(r, s, level, summary),
    }
    for group, build_one in builders.items():
        idx = routed.pop(group, [])
        if idx or (group == "no_signal" and signal):
            found = build_one([gate[i] for i in idx])
            findings.append(with_rules(found, idx, gate, tuple(c.name for c in signal) if group == "no_signal" else ()))
    findings += [trust_finding(c, s) for c in checks if c.name != "heatmap_signal"]
    findings += notes(summary) + coarse_note(summary, s) + resize_warning(summary) + data_notes(data, told)
    return unique_ids(sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), -sortable(f.effect), f.id)))


def stories(summary: SummaryRecord, s: Samples | None, level: float) -> tuple[list[Cause], dict[str, list[PropertyRecord]], set[str]]:
    """(one cause per story, DESIGN §17: the confirmed shortcuts, fooling artifacts, read places, property shortcuts and
    fragility, and the background swap's classes, joined by the classes they explain; the data side's rows by class;
    the classes told of)."""
    collapsed = collapsed_classes(summary)
    strategies = summary.strategies.confirmed()
    swap = summary.probes.background_swap
    pieces = [Piece(c, "shortcut", frozenset(c.finding.labels), c.finding.title[0].lower() + c.finding.title[1:])
              for c in (shortcut_cause(g, s, level, swap) for g in groups(strategies))]
    pieces += probe_pieces(summary, s, level)
    props, data = property_pieces(summary.probes.properties, s, level, strategies)
    pieces += props + background_pieces(swap, level, summary.probes.min_effect)
    per_class = summary.per_class
    # object-only accuracy is said where the story is about places around the objects (a flat fill can hide a lone object
    # too, so alone it proves nothing); the data side's ties wherever their class has a story
    surroundings = {c for story in tell(pieces, collapsed=collapsed) if story.kinds & {"context", "place"}
                    for c in story.subjects | story.sources}
    alone = object_only_clauses(per_class, sorted(set(collapsed) & surroundings))
    causes = tell(pieces, data_clauses(data, level), collapsed, alone)
    return causes, data, set().union(*(c.subjects for c in causes))


COLLAPSE = 0.5  # a class's object-only accuracy below this (over at least COLLAPSE_N samples): its objects alone fail it
COLLAPSE_N = 10


def collapsed_classes(summary: SummaryRecord) -> list[str]:
    """The classes whose object-only accuracy collapsed (DESIGN §17: with only the objects kept, they are not recognised)."""
    return sorted(c for c, a in summary.per_class.items()
                  if as_float(a.get("object_only_accuracy")) < COLLAPSE and as_float(a.get("n_scored")) >= COLLAPSE_N)


STORY_KINDS = ("shortcut", "probe", "place", "context", "property", "background")


def with_rules(f: Finding, idx: Sequence[int], gate: Sequence[RuleRecord], checks: tuple[str, ...] = ()) -> Finding:
    """The finding with the rules (and checks) it accounts for, and the severity they give it."""
    severity = BLOCKER if idx else WARNING if (checks or f.kind in STORY_KINDS + ("trust", "no_signal")) else f.severity
    effect = f.effect
    if idx and f.kind not in STORY_KINDS:
        effect = max(gap(gate[i]) for i in idx)
    return replace(f, rules=tuple(gate[i].label for i in idx), rule_index=tuple(idx), checks=f.checks + checks, severity=severity,
                   effect=effect)


def gap(g: RuleRecord) -> float:
    """How far a failing rule's compared value lies beyond its threshold (0 when undefined)."""
    v = as_float(g.compared if g.compared is not None else g.value)
    return 0.0 if math.isnan(v) else abs(v - g.threshold)

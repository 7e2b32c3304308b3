"""The rules a set of findings obeys (DESIGN §13): unique ids, every failing rule and failed check in exactly one
finding (:func:`accounts`), and each finding ``new`` / ``persisting`` / ``resolved`` against a baseline."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

from pipeline.findings.record import NOTE, Finding
from pipeline.records.plain import Json
from pipeline.records.summary import SummaryRecord
from pipeline.status import FAIL


def unique_ids(findings: list[Finding]) -> list[Finding]:
    """Ids are unique: a second finding with the same id gets "#2" (two causes that look alike)."""
    seen: dict[str, int] = {}
    out = []
    for f in findings:
        seen[f.id] = seen.get(f.id, 0) + 1
        out.append(f if seen[f.id] == 1 else replace(f, id=f"{f.id}#{seen[f.id]}"))
    return out


def since_baseline(findings: list[Finding], baseline: SummaryRecord | None) -> list[Finding]:
    """``new`` / ``persisting`` against the baseline's findings; its findings that are gone follow as ``resolved``
    notes. Unchanged (null) without a baseline or when the baseline predates findings."""
    if baseline is None or baseline.findings is None:
        return findings
    before = {f.id: f for f in baseline.findings if f.since_baseline != "resolved"}
    now = [replace(f, since_baseline="persisting" if f.id in before else "new") for f in findings]
    ids = {f.id for f in findings}
    gone = [Finding(id=i, severity=NOTE, kind=f.kind, title=f.title, sentence=f"Resolved since the baseline: {f.sentence}",
                    action="Nothing to do: the baseline's finding is no longer found.", labels=f.labels,
                    since_baseline="resolved") for i, f in before.items() if i not in ids]
    return now + gone


def accounts(findings: Sequence[Mapping[str, Json]], summary: Mapping[str, Json]) -> tuple[list[int], list[int], list[str], list[str]]:
    """The accounting rule's misses: (failing rules in no finding, rules in more than one, failed checks in none,
    checks in more than one) — all empty when the rule holds (tests, and a guard in the run)."""
    counts: dict[int, int] = {}
    for f in findings:
        for i in f.get("rule_index") or []:  # type: ignore[union-attr]
            counts[int(i)] = counts.get(int(i), 0) + 1  # type: ignore[arg-type]
    record = SummaryRecord.of(summary)
    failing = [i for i, g in enumerate(record.gate) if g.status == FAIL]
    check_counts: dict[str, int] = {}
    for f in findings:
        for c in f.get("checks") or []:  # type: ignore[union-attr]
            check_counts[str(c)] = check_counts.get(str(c), 0) + 1
    failed = [c.name for c in record.checks if c.status == FAIL]
    return ([i for i in failing if counts.get(i, 0) == 0], [i for i, k in counts.items() if k > 1],
            [c for c in failed if check_counts.get(c, 0) == 0], [c for c, k in check_counts.items() if k > 1])

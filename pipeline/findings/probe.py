"""Fooling probes (DESIGN §11) and the places the model reads (§17) as story pieces: one artifact and class at several places
is one piece; the places whose flat-filled control alone turns images into a class are one piece per class: one place, or
the surroundings when they lie all around the objects."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from pipeline.findings.places import zone
from pipeline.findings.record import (
    KIND_WORDS,
    MAX_EVIDENCE,
    WARNING,
    Finding,
    Samples,
    as_float,
)
from pipeline.findings.shortcut import Cause
from pipeline.findings.story import Piece, context_finding
from pipeline.findings.words import MAX_TITLE_WORDS, and_join, interval_text, num, words
from pipeline.records.probes import ProbeRecord, ProbesRecord
from pipeline.records.summary import SummaryRecord


def probe_what(row: ProbeRecord) -> str:
    return f"The '{row.probe}' overlay" if row.kind == "overlay" else KIND_WORDS.get(row.kind, f"The '{row.probe}' probe")


def probe_cause(rows: Sequence[ProbeRecord], s: Samples | None, level: float, overlays: Mapping[str, str]) -> Cause:
    """One finding for one artifact and class at one or more places (``rows`` strongest first)."""
    top = rows[0]
    label, what = top.label, probe_what(top)
    froms = sorted({f for r in rows for f in r.from_labels})
    title = f"{what} turns {and_join(froms)} images into {label}"
    if len(title.split()) > MAX_TITLE_WORDS:
        title = f"{what} turns other classes' images into {label}"
    text = top.sentence
    sentence = (text[:1].upper() + text[1:] + f" (effect {num(top.effect)}, {interval_text(top.effect_lo, top.effect_hi, level)}).")
    if len(rows) > 1:
        sentence += f" It fools the model at {len(rows)} places: " + "; ".join(
            f"{r.place} effect {num(r.effect)}" for r in rows) + "."
    if top.kind == "overlay":
        source = f" ({overlays[top.probe]})" if top.probe in overlays else ""
        action = (f"Find the training images that carry '{top.probe}'{source} — most will be labelled {label} — and relabel them "
                  f"by what they show or mask the overlay out; retrain, then re-audit with --baseline this audit's summary.json.")
    else:
        action = (f"The model reads {what.lower()} as {label}: look for it in the training images labelled {label} and remove it, or "
                  f"add it as augmentation to every class; retrain and re-audit with --baseline this audit's summary.json.")
    evidence: list[dict[str, str]] = []
    if s is not None:
        confs = top.exemplar_after_confidence
        for k, row in enumerate(r for r in top.exemplar_rows if 0 <= r < len(s.sample_id)):
            after = f"{label}" + (f" {num(confs[k])}" if k < len(confs) else "")
            evidence.append({"sample_id": str(s.sample_id[row]), "view": "before_after", "probe": top.probe, "place": top.place,
                             "label": label, "caption": f"{s.caption(row)} → {after}"})
    finding = Finding(id=f"probe:{label}:{top.probe}@{place_token_of(top)}", severity=WARNING, kind="probe", title=words(title),
                      sentence=sentence, action=action, labels=(label,), place=and_join([place_words_of_probe(r) for r in rows]),
                      rects=tuple(r.rect for r in rows), evidence=tuple(evidence[:MAX_EVIDENCE]),
                      effect=as_float(top.effect))
    return Cause(finding)


def place_token_of(r: ProbeRecord) -> str:
    """A finding id's place: its strongest row's place ("centre", "hotspot-circle/0"), not the set of places that passed,
    which comes and goes with the probe sample's draw while the finding stays the same (DESIGN §13: ids stable across
    audits of the same task)."""
    return r.place.replace(":", "-")


def place_words_of_probe(r: ProbeRecord) -> str:
    """A probe row's place in words ("at the top-left corner", "where the config puts it (...)"), as the stage wrote it."""
    return r.place_words or r.place


def probe_causes(probes: ProbesRecord, s: Samples | None, level: float) -> list[Cause]:
    """One cause per (artifact, class) whose fooling rows lie at places the model does not read (there the artifact's
    own cue fools, not the edit)."""
    read = read_keys(probes.rows)
    groups: dict[tuple[str, str], list[ProbeRecord]] = {}
    for r in probes.rows:
        if r.fools and (r.place, r.label) not in read:
            groups.setdefault((r.probe, r.label), []).append(r)
    causes = [probe_cause(sorted(g, key=lambda r: -r.effect), s, level, probes.overlays) for g in groups.values()]
    return sorted(causes, key=lambda c: -c.finding.effect)


def read_keys(rows: Sequence[ProbeRecord]) -> set[tuple[str, str]]:
    """(place, class) of every place whose control alone fools the model off the object (§17)."""
    return {(r.place, r.label) for r in rows if r.reads}


def probe_pieces(summary: SummaryRecord, s: Samples | None, level: float) -> list[Piece]:
    """The fooling artifacts (kind ``probe``) and the read places (kind ``place``, or ``context`` all around the objects) as
    story pieces, each about the class it turns images into."""
    pieces = []
    for c in probe_causes(summary.probes, s, level):
        top = top_row(summary.probes, c)
        pieces.append(Piece(c, "probe", frozenset(c.finding.labels), _probe_clause(top, level), around=at_border(top),
                            turned=frozenset(top.from_labels)))
    return pieces + read_pieces(summary.probes, s)


def top_row(probes: ProbesRecord, cause: Cause) -> ProbeRecord:
    probe, _, _ = cause.finding.id.split(":", 2)[2].partition("@")
    rows = [r for r in probes.rows if r.probe == probe and r.label in cause.finding.labels and r.fools]
    return max(rows, key=lambda r: r.effect)


def _probe_clause(r: ProbeRecord, level: float) -> str:
    return f"{r.sentence} (effect {num(r.effect)}, {interval_text(r.effect_lo, r.effect_hi, level)})"


def _read_clause(r: ProbeRecord) -> str:
    what = r.what or r.probe
    return (f"any edit {place_words_of_probe(r)} turns {pct(r.control_flip)} of {and_join(list(r.from_labels))} images "
            f"into {r.label} (flat-filled; {what}: {pct(r.flip)})")


def at_border(r: ProbeRecord) -> bool:
    """The row's edit covers the image's border (the frame artifact, placed around the image)."""
    return r.kind == "frame" or r.place == "border"


def pct(v: float) -> str:
    return f"{num(v * 100, 0)}%"


def read_pieces(probes: ProbesRecord, s: Samples | None) -> list[Piece]:
    """One piece per class the read places turn images into: ``place`` for one place, ``context`` (the surroundings) for
    places all around the objects (two zones or more)."""
    by: dict[str, list[ProbeRecord]] = {}
    for r in probes.rows:
        if r.reads:
            by.setdefault(r.label, []).append(r)
    out = []
    for target, group in sorted(by.items()):
        best: dict[str, ProbeRecord] = {}
        for r in sorted(group, key=lambda r: -r.control_flip):
            best.setdefault(r.place, r)
        out.append(_read_piece(target, sorted(best.values(), key=lambda r: -r.control_flip), s))
    return out


def _read_piece(target: str, rows: Sequence[ProbeRecord], s: Samples | None) -> Piece:
    top = rows[0]
    froms = sorted({f for r in rows for f in r.from_labels})
    clauses = [_read_clause(r) for r in rows]
    sentence = clauses[0][0].upper() + clauses[0][1:] + (f"; {'; '.join(clauses[1:4])}" if len(rows) > 1 else "") + (
        f"; and {len(rows) - 4} more places" if len(rows) > 4 else "") + (
        f". A flat fill carries no cue of its own: the model reads {'these places' if len(rows) > 1 else 'this place'}, whatever is there.")
    effect = top.control_flip
    rects = tuple(r.rect for r in rows)
    evidence = tuple(_read_evidence(rows, s, target))
    subjects, sources = frozenset([target]), frozenset(froms)
    zones = {"border" if at_border(r) else zone(r.rect) for r in rows}
    if len(zones) >= 2:  # places all around the objects: the surroundings (DESIGN §17)
        finding = context_finding(froms, sentence, rects, evidence, effect, labels=[target], key=target)
        return Piece(Cause(finding), "context", subjects, "; ".join(clauses[:3]), around=True, sources=sources)
    where = "the image border" if at_border(top) else place_words_of_probe(top).removeprefix("at ").removeprefix("around ")
    title = f"Any edit of {where} turns {and_join(froms)} images into {target}"
    if len(title.split()) > MAX_TITLE_WORDS:
        title = f"Any edit of {where} turns other classes' images into {target}"
    action = (f"The model answers {target} to whatever covers {where}: look at what the {target} training images carry there "
              f"(a border, a corner mark, a flat area) and the others do not; crop, pad or augment every class alike, retrain and "
              f"re-audit with --baseline this audit's summary.json.")
    finding = Finding(id=f"place:{target}:{place_token_of(top)}", severity=WARNING, kind="place", title=words(title), sentence=sentence,
                      action=action, labels=(target,), place=and_join([place_words_of_probe(r) for r in rows]), rects=rects,
                      evidence=evidence, effect=effect)
    return Piece(Cause(finding), "place", subjects, "; ".join(clauses[:3]), around=at_border(top), sources=sources)


def _read_evidence(rows: Sequence[ProbeRecord], s: Samples | None, target: str) -> list[dict[str, str]]:
    """Before -> after pairs of the flat-filled controls that turned images into ``target``."""
    if s is None:
        return []
    out: list[dict[str, str]] = []
    for r in rows:
        confs = r.exemplar_after_confidence
        for k, row in enumerate(x for x in r.exemplar_rows if 0 <= x < len(s.sample_id)):
            if len(out) >= MAX_EVIDENCE:
                return out
            after = f"{target}" + (f" {num(confs[k])}" if k < len(confs) else "")
            out.append({"sample_id": str(s.sample_id[row]), "view": "before_after", "probe": r.probe, "place": r.place,
                        "label": target, "caption": f"{s.caption(row)} → {after} (flat fill {place_words_of_probe(r)})"})
            break
    return out


def strongest_probe(probes: ProbesRecord, scope: str, s: Samples | None, level: float) -> Cause | None:
    """For a failing probe rule with no fooling probe: the row with the largest effect (of the rule's class)."""
    rows = [r for r in probes.rows if (scope == "overall" or r.label == scope) and not math.isnan(r.effect)]
    if not rows:
        return None
    return probe_cause([max(rows, key=lambda r: r.effect)], s, level, probes.overlays)

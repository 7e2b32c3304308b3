"""One class, one story (DESIGN §17): every test that shows images turning into a class, or a class's own answers failing
without its surroundings, is one finding, titled by the most specific cause the evidence supports; the other tests are its
sentences, each with its number.

A :class:`Piece` is one test's evidence as it would stand alone (a :class:`~pipeline.findings.shortcut.Cause`), with the
classes whose recognition it explains (``subjects``) and the clause it adds to another lead's story. Pieces that share a
subject are one story (:func:`tell`); the lead is the most specific kind (:data:`LEADS`), then the largest effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

from pipeline.findings.record import MAX_EVIDENCE, Finding
from pipeline.findings.shortcut import Cause
from pipeline.findings.words import MAX_TITLE_WORDS, and_join, num, words

LEADS = ("shortcut", "probe", "place", "context", "property", "fragile", "background")
"""Piece kinds, most specific cause first: a cue at a place (a confirmed hot spot; an artifact that fools where its control
does not), a place any edit fools, the surroundings, a whole-picture property, fragility, the background swap."""
ATTRIBUTABLE = {"shortcut", "probe", "place", "context", "property"}
"""Story kinds whose subjects a heatmap or intervention rule may be attributed to (DESIGN §13, §17)."""
FOOLING = {"probe", "place", "context", "property"}
"""Piece kinds counted by probes_fooled (DESIGN §11, §15, §17)."""
MAX_CLAUSES = 5


@dataclass(frozen=True)
class Piece:
    """One test's evidence: ``cause`` the finding it would be alone; ``kind`` one of :data:`LEADS`; ``subjects`` the
    classes whose recognition it explains; ``clause`` its sentence part in another lead's story, with its number."""

    cause: Cause
    kind: str
    subjects: frozenset[str]
    clause: str
    around: bool = False  # the edit covers the image's border (the frame probe, a read border): the surroundings, not one place
    sources: frozenset[str] = frozenset()  # the classes whose images turn at a read place: its story says their object-only accuracy
    turned: frozenset[str] = frozenset()  # the classes whose images the test turned (a heatmap finding's suspect, §17)

    @property
    def effect(self) -> float:
        e = self.cause.finding.effect
        return -1.0 if e is None or math.isnan(e) else e


def _groups(pieces: Sequence[Piece]) -> list[list[Piece]]:
    """Pieces joined when they share a subject (union-find), each group in the pieces' order."""
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, p in enumerate(pieces):
        for c in sorted(p.subjects):
            if c in owner:
                parent[root(i)] = root(owner[c])
            else:
                owner[c] = i
    out: dict[int, list[Piece]] = {}
    for i, p in enumerate(pieces):
        out.setdefault(root(i), []).append(p)
    return list(out.values())


def lead_of(group: Sequence[Piece]) -> Piece:
    """The most specific piece (:data:`LEADS` order), then the largest effect, then the id (stable across seeds)."""
    return min(group, key=lambda p: (LEADS.index(p.kind), -p.effect, p.cause.finding.id))


def _evidence(lead: Piece, others: Sequence[Piece]) -> tuple[dict, ...]:
    """The lead's evidence, then the strongest before -> after pairs of the other tests in the places left (two per test,
    strongest test first), at most MAX_EVIDENCE."""
    own = list(lead.cause.finding.evidence)
    pairs = [e for p in sorted(others, key=lambda p: -p.effect)
             for e in [x for x in p.cause.finding.evidence if x.get("view") == "before_after"][:2]]
    keep = own[:MAX_EVIDENCE]
    seen = {(e.get("sample_id"), e.get("view"), e.get("probe"), e.get("property")) for e in keep}
    for e in pairs:
        key = (e.get("sample_id"), e.get("view"), e.get("probe"), e.get("property"))
        if key not in seen and len(keep) < MAX_EVIDENCE:
            keep.append(e)
            seen.add(key)
    return tuple(keep)


def compose(group: Sequence[Piece], extra: Mapping[str, Sequence[str]] | None = None, collapsed: frozenset[str] = frozenset(),
            alone: Mapping[str, Sequence[str]] | None = None) -> Cause:
    """One story from a group of pieces: the lead's finding, its sentence followed by the other tests' clauses (the
    ``extra`` clauses of its subjects: the data side; the ``alone`` clauses of its subjects and sources: object-only
    accuracy), their rules' members and classes joined. A story whose evidence lies all around its objects
    (:func:`about_surroundings`) is told as the surroundings."""
    lead = lead_of(group)
    others = sorted((p for p in group if p is not lead), key=lambda p: (-p.effect, p.cause.finding.id))
    subjects = frozenset().union(*(p.subjects for p in group))
    sources = frozenset().union(*(p.sources for p in group))
    turned = frozenset().union(*(p.turned | p.sources for p in group))
    f = lead.cause.finding
    clauses = [p.clause.rstrip(". ") for p in others if p.clause]
    for c in sorted(subjects | sources):
        clauses += [x for x in (alone or {}).get(c, ()) if x not in f.sentence]
    for c in sorted(subjects):
        clauses += [x for x in (extra or {}).get(c, ()) if x not in f.sentence]
    labels = tuple(sorted(set(f.labels).union(*(p.cause.finding.labels for p in others))))
    effect = max([p.effect for p in group] + [f.effect if f.effect == f.effect else -1.0])
    if lead.kind != "context" and about_surroundings(group, (subjects | sources) & collapsed):
        everything = [lead.clause.rstrip(". ")] + clauses
        sentence = (f"{subjects_words(sorted(subjects))} {'is' if len(subjects) == 1 else 'are'} recognised from "
                    f"{'its' if len(subjects) == 1 else 'their'} surroundings: " + "; ".join(everything[:MAX_CLAUSES + 1])
                    + (f"; and {len(everything) - MAX_CLAUSES - 1} more" if len(everything) > MAX_CLAUSES + 1 else "") + ".")
        around = [p for p in group if p.around] + [lead]
        f = context_finding(sorted(subjects), sentence, around[0].cause.finding.rects, (), effect, labels)
        lead = Piece(Cause(f), "context", subjects, "", True)
        evidence = _evidence(lead, group)
    else:
        sentence = f.sentence
        if clauses:
            shown = clauses[:MAX_CLAUSES]
            more = len(clauses) - len(shown)
            sentence = (sentence.rstrip() + " The same story, test by test: " + "; ".join(shown)
                        + (f"; and {more} more" if more else "") + ".")
        evidence = _evidence(lead, others)
    finding = replace(f, sentence=sentence, labels=labels, evidence=evidence, effect=effect)
    kinds = frozenset(p.kind for p in group) | {lead.kind}
    members = frozenset().union(*(p.cause.members for p in group))
    classes = frozenset().union(*(p.cause.classes for p in group))
    # a confirmed shortcut is attributed by its strategies' members (§13); the other tests by the answers (§17)
    classes |= frozenset().union(*(p.subjects for p in group if p.kind in ATTRIBUTABLE - {"shortcut"}))
    return Cause(finding, members, classes, kinds=kinds, subjects=subjects, sources=sources, turned=turned,
                 absorbed=tuple(p.cause.finding.id for p in group))


def about_surroundings(group: Sequence[Piece], collapsed: frozenset[str]) -> bool:
    """The story is the surroundings (DESIGN §17): no cue at one place (a confirmed hot spot, an artifact away from the
    border), an edit of the border that fools, and at least one more kind of evidence around the objects (the background
    swap, a whole-picture property, the subjects' object-only accuracy collapsing)."""
    if any(p.kind == "shortcut" or (p.kind == "probe" and not p.around) for p in group):
        return False
    if not any(p.around for p in group):
        return False
    return len({p.kind for p in group if p.kind in ("background", "property")}) + bool(collapsed) >= 1


def tell(pieces: Sequence[Piece], extra: Mapping[str, Sequence[str]] | None = None, collapsed: Sequence[str] = (),
         alone: Mapping[str, Sequence[str]] | None = None) -> list[Cause]:
    """Every story: pieces that share a subject composed into one cause each, largest effect first (``collapsed``: the
    classes whose object-only accuracy collapsed; ``extra``, ``alone``: see :func:`compose`)."""
    # the swap's per-class gaps are point estimates: they join a class's story, never make one (the whole swap's gap,
    # with its interval, is the background's own finding)
    stories = [compose(g, extra, frozenset(collapsed), alone) for g in _groups(pieces) if {p.kind for p in g} != {"background"}]
    return sorted(stories, key=lambda c: (-c.finding.effect, c.finding.id))


def subjects_words(subjects: Sequence[str]) -> str:
    return and_join([f"'{c}'" for c in sorted(subjects)])


def context_finding(subjects: Sequence[str], sentence: str, rects: tuple, evidence: tuple, effect: float, labels: Sequence[str],
                    key: str | None = None) -> Finding:
    """The surroundings as the cause: "'other' is recognised from its surroundings, not its objects" (``subjects`` the
    classes recognised so; ``key`` the id's class, default the subjects)."""
    who = subjects_words(subjects)
    verb, their = ("is", "its") if len(subjects) == 1 else ("are", "their")
    title = f"{who} {verb} recognised from {their} surroundings, not {their} objects"
    if len(title.split()) > MAX_TITLE_WORDS:
        title = "Classes recognised from their surroundings, not their objects"
    action = (f"{who} images carry something around their objects that the others do not (a source's border, background, "
              f"lighting): find where those training images came from, add images of {who} from other sources (or crop and "
              f"re-photograph them alike), or augment every class's surroundings; retrain and re-audit with --baseline this "
              f"audit's summary.json.")
    return Finding(id=f"context:{key or '+'.join(sorted(subjects))}:surroundings", severity="warning", kind="context", title=words(title),
                   sentence=sentence, action=action, labels=tuple(sorted(labels)), place="the surroundings", rects=rects,
                   evidence=evidence, effect=effect)


def object_only_clauses(per_class: Mapping[str, Mapping[str, float]], collapsed: Sequence[str]) -> dict[str, list[str]]:
    """Subject -> "with only the objects kept, 10% of other images stay other" for each class whose object-only accuracy
    collapsed."""
    return {c: [f"with only the objects kept, {num(float(per_class[c]['object_only_accuracy']) * 100, 0)}% of {c} images stay {c}"]
            for c in collapsed}

"""Confirmed spatial shortcuts (DESIGN §10, §12) as causes: grouped by what their hot spots hold, with evidence and actions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from pipeline.findings.places import overlaps, place_token, rects_words, zone
from pipeline.findings.record import MAX_EVIDENCE, RFWR, WARNING, Finding, Samples
from pipeline.findings.words import interval_text, num, words
from pipeline.records.plain import Json
from pipeline.records.probes import SwapRecord
from pipeline.records.strategies import StrategyRecord


@dataclass(frozen=True)
class Cause:
    """A finding the stages found (a shortcut, a fooling probe, a place, a property, the background, or a story of
    several), before the gate's rules are routed to it; ``members`` (label, strategy id) of a shortcut's confirmed
    strategies; ``classes`` the classes whose answers it explains (DESIGN §15, §17 attribution); a story's piece
    ``kinds``, ``subjects`` and the ids of the pieces it ``absorbed``."""

    finding: Finding
    members: frozenset[tuple[str, int]] = frozenset()
    classes: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    subjects: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()  # the classes whose images turn, where a read place says so
    turned: frozenset[str] = frozenset()  # the classes whose images any of its tests turned
    absorbed: tuple[str, ...] = ()


def strength(s: StrategyRecord) -> float:
    """A confirmed strategy's effect: the larger lower bound of its two tests."""
    return max(s.hotspot_dependence_lo if s.hotspot_dependence_lo is not None else -1.0,
               s.transplant_effect_lo if s.transplant_effect_lo is not None else -1.0)


def groups(confirmed: Sequence[StrategyRecord]) -> list[list[StrategyRecord]]:
    """Confirmed strategies grouped into causes: one class's strategies whose hot spots hold the same
    kind and colour are one; groups of different classes with the same kind and overlapping places merge."""
    by_key: dict[tuple[str, str, str], list[StrategyRecord]] = {}
    for s in confirmed:
        by_key.setdefault((s.label, s.hotspot_kind or "unknown", s.hotspot_colour), []).append(s)
    groups = list(by_key.items())
    parent = list(range(len(groups)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, (ki, gi) in enumerate(groups):
        for j in range(i + 1, len(groups)):
            kj, gj = groups[j]
            if ki[1] == kj[1] and ki[0] != kj[0] and any(overlaps(a.rect, b.rect) for a in gi for b in gj):
                parent[root(j)] = root(i)
    merged: dict[int, list[StrategyRecord]] = {}
    for i, (_, g) in enumerate(groups):
        merged.setdefault(root(i), []).extend(g)
    return sorted((sorted(g, key=lambda s: -strength(s)) for g in merged.values()), key=lambda g: -strength(g[0]))


def content(s: StrategyRecord) -> str:
    """What a hot spot holds, in a few words: "red", "an overlay", "background"."""
    kind, colour = s.hotspot_kind or "unknown", s.hotspot_colour
    if kind in ("patch", "border"):
        return colour or f"a {kind}"
    return {"overlay": "an overlay", "background": "background"}.get(kind, "an area off the objects")


def holds(s: StrategyRecord) -> str:
    """What a hot spot holds, as a caption: "a red marker", "a black border", "an overlay", "background"."""
    kind = s.hotspot_kind or "unknown"
    return thing(kind, [s.hotspot_colour], False) if kind != "background" else "background"


THINGS = {  # kind -> (short, long) words for the cause's object; {c} is the colour when every hot spot has one
    "patch": ("a {c} marker", "a flat {c} marker"), "border": ("a {c} border", "a flat {c} border"),
    "overlay": ("an overlay", "the same pattern on most images (an overlay such as a watermark or logo)"),
    "background": ("the background", "the background"), "unknown": ("something off the objects", "an area off the objects"),
}


def thing(kind: str, colours: Sequence[str], long: bool) -> str:
    """The cause's object: "a red marker" / "a flat red marker" (long); "a coloured marker" when the colours differ."""
    one = colours[0] if len(set(colours)) == 1 else ""
    text = THINGS.get(kind, THINGS["unknown"])[long]
    return text.format(c=one) if one else text.replace(" {c}", "" if long or kind != "patch" else " coloured")


SHORTCUT_ACTIONS = {
    "patch": "The marker's colour gives the class away: remove or randomise such markers in the training images (or put them on "
             "every class alike), retrain, and re-audit with --baseline this audit's summary.json.",
    "border": "The border gives the class away: crop or pad every training image the same way (so no class has its own border), "
              "retrain, and re-audit with --baseline this audit's summary.json.",
    "overlay": "Find the training images that carry this overlay (watermark, logo, stamp): remove or crop it, or spread it over "
               "every class; retrain and re-audit with --baseline this audit's summary.json.",
    "background": "The class is read from the background at this place: add training images of the class on varied backgrounds "
                  "(or paste the objects onto other classes' backgrounds), retrain and re-audit with --baseline this audit's summary.json.",
    "unknown": "Look at the hot spot's crops in the strategies section to see what sits there; remove that cue from the training "
               "images or spread it over every class, retrain, and re-audit with --baseline this audit's summary.json.",
}


def shortcut_cause(group: Sequence[StrategyRecord], s: Samples | None, level: float, swap: SwapRecord | None) -> Cause:
    """One shortcut finding from a group of confirmed strategies (strongest first)."""
    labels = sorted({g.label for g in group})
    kind = group[0].hotspot_kind or "unknown"
    rects = tuple(g.rect for g in group)
    where = rects_words(rects)
    by_label = {lab: [g for g in group if g.label == lab] for lab in dict.fromkeys(g.label for g in group)}
    colours = [content(g) for g in group]
    if len(labels) == 1:
        title = f"Reads {thing(kind, colours, False)} in {where}, not the {labels[0]}"
        what = f"'{labels[0]}' is read from {thing(kind, colours, True)} in {where}, off the objects."
    else:
        title = f"Reads {thing(kind, colours, False)} in {where}, not the objects"
        gives = ", ".join(f"{content(gs[0])} → {lab}" for lab, gs in by_label.items())
        noun = thing(kind, [""], True)
        what = (f"A flat marker in {where} whose colour gives the class away: {gives}." if kind == "patch" else
                f"{noun[0].upper()}{noun[1:]} in {where} gives the class away: {gives}.")
    top = group[0]
    tests = (f" Covering it at the {zone(top.rect)} of '{top.label}' images costs {num(top.hotspot_dependence)} of their "
             f"accuracy beyond covering an equal area elsewhere "
             f"({interval_text(top.hotspot_dependence_lo, top.hotspot_dependence_hi, level)}); pasting it onto "
             f"other classes' images turns {num(top.transplant_effect)} more of them into '{top.label}' than a patch from "
             f"elsewhere ({interval_text(top.transplant_effect_lo, top.transplant_effect_hi, level)}).")
    if len(group) > 1:
        deps = [g.hotspot_dependence if g.hotspot_dependence is not None else float("nan") for g in group]
        tests += (f" {len(group)} confirmed strategies in all; their accuracy lost to covering ranges "
                  f"{num(min(deps))}–{num(max(deps))}.")
    if swap and swap.background_gap_lo >= 0.2:
        tests += (f" It travels with the background: on another class's background accuracy falls from "
                  f"{num(swap.accuracy_same)} to {num(swap.accuracy_other)}.")
    members = frozenset((g.label, g.strategy) for g in group)
    sentence = what + tests + (members_text(s, members) if s is not None else "")
    evidence = shortcut_evidence(by_label, s, where)
    finding = Finding(id=f"shortcut:{'+'.join(labels)}:{place_token(rects)}", severity=WARNING, kind="shortcut", title=words(title),
                      sentence=sentence, action=SHORTCUT_ACTIONS.get(kind, SHORTCUT_ACTIONS["unknown"]), labels=tuple(labels),
                      place=where, rects=rects, evidence=evidence, effect=strength(top))
    return Cause(finding, members)


def members_mask(s: Samples, members: frozenset[tuple[str, int]]) -> np.ndarray:
    return np.array([(e, k) in members for e, k in zip(s.explained, s.strategy)], bool)


def members_text(s: Samples, members: frozenset[tuple[str, int]]) -> str:
    rf = s.flag == RFWR
    if not rf.any():
        return ""
    k = int((rf & members_mask(s, members)).sum())
    return f" {k} of the {int(rf.sum())} right-for-wrong-reason samples are in these strategies."


def shortcut_evidence(by_label: Mapping[str, Sequence[StrategyRecord]], s: Samples | None, where: str) -> tuple[dict[str, Json], ...]:
    """Per class its strongest strategy's first exemplar with its heatmap, then that exemplar's hot spot cropped."""
    if s is None:
        return ()
    out: list[dict[str, Json]] = []
    crops: list[dict[str, Json]] = []
    for lab, strategies in by_label.items():
        top = strategies[0]
        rows = [r for r in top.exemplar_rows if 0 <= r < len(s.sample_id)]
        if not rows:
            continue
        out.append({"sample_id": str(s.sample_id[rows[0]]), "view": "heat", "caption": s.caption(rows[0])})
        crops.append({"sample_id": str(s.sample_id[rows[0]]), "view": "crop", "rect": list(top.rect),
                      "caption": f"the hot spot of {s.sample_id[rows[0]]} ({zone(top.rect)}): {holds(top)}"})
    return tuple((out + crops)[:MAX_EVIDENCE]) if len(out) < MAX_EVIDENCE else tuple(out[:MAX_EVIDENCE])

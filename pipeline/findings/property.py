"""Cues without a place (DESIGN §15) as findings: a ``property`` shortcut (the data lets the property tell the class apart
and the model answers from it) is a cause, one per class with every property and direction it moves together (a warm
cast moves red, yellow and brightness at once: one look of the class's pictures, one finding); the model side alone
is fragility, one warning per class; the data side alone is a note. A property whose colour a confirmed spatial shortcut
of the same class already holds (a red marker makes the circles' backgrounds redder too) is that shortcut's echo: a
sentence of the shortcut's finding, never a finding of its own."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from pipeline.findings.record import MAX_EVIDENCE, NOTE, WARNING, Finding, Samples
from pipeline.findings.shortcut import Cause
from pipeline.findings.story import Piece
from pipeline.findings.words import and_join, interval_text, num, words
from pipeline.records.plain import Json
from pipeline.records.probes import PropertyRecord
from pipeline.records.strategies import StrategyRecord

SHORTCUT, FRAGILE, DATA = "shortcut", "fragile", "data"
HUE_OF_COLOUR = {"red": ("red",), "orange": ("red", "yellow"), "brown": ("red", "yellow"), "yellow": ("yellow",), "green": ("green",),
                 "cyan": ("cyan",), "blue": ("blue",), "purple": ("blue", "magenta"), "magenta": ("magenta",), "pink": ("red", "magenta")}
"""The hue directions a hot spot's colour name pushes a background's chromaticity along (pipeline.strategies.hotspots.colour_name)."""
ACTIONS = {
    "look": "Balance how the {c} images were taken — camera, light, white balance — across classes, or augment every class's "
            "training images with the same {what} jitter; retrain and re-audit with --baseline this audit's summary.json.",
    "quality": "Match the image quality across classes: the {c} images are {adj} than the rest; re-encode or augment every class "
               "alike ({what}), retrain and re-audit with --baseline this audit's summary.json.",
}
KIND_OF = {"colour": ("look", "colour"), "brightness": ("look", "brightness"), "contrast": ("look", "contrast"),
           "saturation": ("look", "saturation"), "sharpness": ("quality", "blur and sharpening"), "noise": ("quality", "noise"),
           "jpeg": ("quality", "JPEG compression")}


def edit_text(row: PropertyRecord) -> str:
    """"a red background", "a blurred background": the edit in words, as the stage wrote it."""
    return row.edit_words or f"a {row.direction} {row.property} background"


def _adj(row: PropertyRecord) -> str:
    """"redder", "blurrier": how a class's backgrounds differ, as the stage wrote it."""
    return row.data_words or f"{row.direction} in {row.property}"


def data_clause(row: PropertyRecord, level: float) -> str:
    """The data side in words that follow its state (DESIGN §15): "nothing ties" only when the AUC's interval holds 0.5."""
    state, label = row.data_state, row.label
    auc = f"AUC {num(row.auc)}, {interval_text(row.auc_lo, row.auc_hi, level)}"
    if state == "ties":
        return f"the {label} images' backgrounds are {_adj(row)} than the others' ({auc})"
    if state == "weak":
        return f"the {label} images' backgrounds are {_adj(row)} than the others' ({auc}), too few images to be sure"
    if state == "opposite":
        return f"the {label} images' backgrounds lean the other way ({auc})"
    return f"nothing in the evaluation set ties {edit_text(row)} to {label} ({auc})"


def cue_id(label: str) -> str:
    """The id of a class's own background cue, proven to move the model (a warning) or seen in the data alone (a note): one
    id whichever properties and directions the draw of edited samples proves, so an audit and its rerun name one story."""
    return f"property:{label}:cue@background"


def _evidence(rows: Sequence[PropertyRecord], s: Samples | None, label: str, marked: bool) -> tuple[dict[str, Json], ...]:
    """Before -> after pairs of the strongest edits, one per edit before a second of any, each of another image (the model's
    answers), and with ``marked`` first one image of the class that carries the property most (its measure against the
    others')."""
    if s is None:
        return ()
    out: list[dict[str, Json]] = []
    top = rows[0]
    if marked and 0 <= top.marked_row < len(s.sample_id):
        row = top.marked_row
        out.append({"sample_id": str(s.sample_id[row]), "view": "heat",
                    "caption": f"{s.sample_id[row]}: {label}, its background {_adj(top)} than most "
                               f"({num(top.marked_value, 3)}; others' median {num(top.others_value, 3)})"})
    used: set[int] = set()
    for rank in range(MAX_EVIDENCE):  # every edit's first unused sample, then its second ...: different edits, different images
        for r in rows:
            confs = r.exemplar_after_confidence
            fresh = [(k, x) for k, x in enumerate(r.exemplar_rows) if 0 <= x < len(s.sample_id) and x not in used]
            if len(out) < MAX_EVIDENCE and fresh:
                k, row = fresh[0]
                used.add(row)
                after = f"{label}" + (f" {num(confs[k])}" if k < len(confs) else "")
                out.append({"sample_id": str(s.sample_id[row]), "view": "before_after", "property": r.property,
                            "direction": r.direction, "label": label, "caption": f"{s.caption(row)} → {after} ({edit_text(r)})"})
    return tuple(out[:MAX_EVIDENCE])


def _effect_text(r: PropertyRecord, level: float) -> str:
    control = "unedited" if r.property in ("noise", "jpeg") else "the opposite push"
    return (f"{edit_text(r)} turns {num(r.flip * 100, 0)}% of {and_join(list(r.from_labels))} images into "
            f"{r.label} ({control}: {num(r.control_flip * 100, 0)}%; effect {num(r.effect)}, "
            f"{interval_text(r.effect_lo, r.effect_hi, level)})")


def _heat_text(rows: Sequence[PropertyRecord]) -> str:
    """" 100% of the flipped images' heat lies off their objects." over ``rows`` (a range when they differ; "" without heat)."""
    heat = [h for h in (r.heat_off_region for r in rows) if h == h]
    if not heat:
        return ""
    low, high = num(min(heat) * 100, 0), num(max(heat) * 100, 0)
    return f" {low if low == high else f'{low}–{high}'}% of the flipped images' heat lies off their objects."


def _colour_words(rows: Sequence[PropertyRecord]) -> str:
    """"warm" for a cast toward red and yellow, "cool" toward cyan and blue, else the strongest hue."""
    hues = {r.direction for r in rows if r.property == "colour"}
    return "warm" if {"red", "yellow"} <= hues else "cool" if {"cyan", "blue"} <= hues else next(
        r.direction for r in rows if r.property == "colour")


def shortcut_cause(rows: Sequence[PropertyRecord], s: Samples | None, level: float, fragile: Sequence[PropertyRecord] = ()) -> Cause:
    """One class's property shortcuts, every property and direction together — one look of the class's pictures (a cast
    darkens and flattens them too) is one cause (``rows`` strongest first); the class's fragile edits join as a clause."""
    top = rows[0]
    label = top.label
    froms = sorted({f for r in rows for f in r.from_labels})
    colour = [r for r in rows if r.property == "colour"]
    lead = colour[0] if colour else top
    title = (f"A {_colour_words(colour)} colour cast turns {and_join(froms)} images into {label}" if colour else
             f"A {edit_text(top)[2:]} turns {and_join(froms)} images into {label}")
    by_auc = sorted(rows, key=lambda r: -r.auc)
    sentence = (f"Only the {label} images carry it: their backgrounds are "
                + and_join([f"{_adj(r)} (AUC {num(r.auc)})" for r in by_auc]) + " than the others' "
                f"({interval_text(by_auc[0].auc_lo, by_auc[0].auc_hi, level)} for the first), and the model answers from "
                f"it: " + "; ".join(_effect_text(r, level) for r in rows[:3])
                + (f"; and {len(rows) - 3} more" if len(rows) > 3 else "") + "." + _heat_text(rows[:3]))
    if fragile:
        sentence += (f" It also answers {label} to edits its images do not carry: "
                     + "; ".join(f"{edit_text(r)} {num(r.flip * 100, 0)}%" for r in fragile[:3]) + ".")
    kind, jitter = KIND_OF[lead.property]
    action = ACTIONS[kind].format(c=label, what=jitter, adj=_adj(lead))
    finding = Finding(id=cue_id(label), severity=WARNING, kind="property",
                      title=words(title if len(title.split()) <= 12 else f"A property of the {label} pictures turns other classes' images into {label}"),
                      sentence=sentence, action=action, labels=(label,), place="the background",
                      evidence=_evidence([lead] + [r for r in rows if r is not lead], s, label, marked=True),
                      effect=max(r.effect for r in rows))
    return Cause(finding, classes=frozenset([label]))


def fragility_cause(rows: Sequence[PropertyRecord], s: Samples | None, level: float) -> Cause:
    """The model side alone, one class: background edits turn other classes into it though the evaluation set does not
    tie the property to it (``rows`` strongest first); the data side said as its state allows."""
    label = rows[0].label
    froms = sorted({f for r in rows for f in r.from_labels})
    top, rest = rows[0], rows[1:4]
    sentence = (f"Pushed on the background only, {_effect_text(top, level)}"
                + ("; " + "; ".join(f"{edit_text(r)} {num(r.flip * 100, 0)}%" for r in rest) if rest else "")
                + (f"; and {len(rows) - 1 - len(rest)} more" if len(rows) > 1 + len(rest) else "") + "."
                + (f" {data_clause(top, level)[0].upper()}{data_clause(top, level)[1:]}." if not math.isnan(top.auc) else "")
                + _heat_text(rows[:4]))
    names = and_join(sorted({r.property if r.property != "sharpness" else "blur" for r in rows}))
    action = (f"Nothing in this evaluation set depends on it, but images from another camera, light or encoder could: augment every "
              f"class's training images with {names} changes so that no class becomes the answer for unusual backgrounds, retrain "
              f"and re-audit; gate it with {{metric: properties_fragile, max: 0}} where such images are expected.")
    what = edit_text(top)
    title = f"{what[0].upper()}{what[1:]} turns {and_join(froms)} images into {label}"
    finding = Finding(id=f"property:{label}:fragile@background", severity=WARNING, kind="property",
                      title=words(title if len(title.split()) <= 12 else f"{what[0].upper()}{what[1:]} turns other images into {label}"),
                      sentence=sentence, action=action, labels=(label,), place="the background", evidence=_evidence(rows, s, label, marked=False),
                      effect=max(r.effect for r in rows))
    return Cause(finding)


def data_note(rows: Sequence[PropertyRecord]) -> Finding:
    """The data side alone, one class with no story (no test fools the model into it): said, not acted on (``rows`` by AUC)."""
    label = rows[0].label
    sentence = (f"The {label} images' backgrounds are " + and_join([f"{_adj(r)} (AUC {num(r.auc)})" for r in rows[:3]])
                + " than the others'; no background edit that way fools the model: "
                + "; ".join(f"{edit_text(r)} turns {num(r.flip * 100, 0)}% of other images into {label}" for r in rows[:3]) + ".")
    return Finding(id=cue_id(label), severity=NOTE, kind="property",
                   title=words(f"The {label} images' backgrounds differ; the model does not answer from it"), sentence=sentence,
                   action="Nothing to do now: keep the property in mind when the model or its data change.", labels=(label,))


def property_pieces(rows: Sequence[PropertyRecord], s: Samples | None, level: float,
                    confirmed: Sequence[StrategyRecord]) -> tuple[list[Piece], dict[str, list[PropertyRecord]]]:
    """(pieces: per class its property shortcuts with its fragile edits joined (kind ``property``), or its fragile edits
    alone (kind ``fragile``); the data side's rows that tie or weakly tie a property to a class, by class: sentences of
    the class's story, or its note when it has none)."""
    strongest = lambda rs: sorted(rs, key=lambda r: (-r.effect, r.property, r.direction))  # noqa: E731
    by_class: dict[str, dict[str, list[PropertyRecord]]] = {}
    data: dict[str, list[PropertyRecord]] = {}
    for r in rows:
        if r.verdict in (SHORTCUT, FRAGILE, DATA):
            by_class.setdefault(r.label, {}).setdefault(r.verdict, []).append(r)
        if r.verdict in (FRAGILE, DATA, "none") and r.data_state in ("ties", "weak"):
            data.setdefault(r.label, []).append(r)
    pieces: list[Piece] = []
    for label, found in by_class.items():
        fragile = strongest(found.get(FRAGILE, []))
        if found.get(SHORTCUT):
            moved = strongest(found[SHORTCUT])
            clause = (echo_sentence(moved, level).strip() if echoes_colour(moved, confirmed)
                      else "; ".join(_effect_text(r, level) for r in moved[:2]))
            pieces.append(Piece(shortcut_cause(moved, s, level, fragile), "property", frozenset([label]), clause,
                                turned=frozenset(f for r in moved for f in r.from_labels)))
        elif fragile:
            pieces.append(Piece(fragility_cause(fragile, s, level), "fragile", frozenset([label]),
                                "; ".join(_effect_text(r, level) for r in fragile[:2]),
                                turned=frozenset(f for r in fragile for f in r.from_labels)))
    return pieces, {c: sorted(rs, key=lambda r: -r.auc) for c, rs in data.items()}


def echoes_colour(rows: Sequence[PropertyRecord], confirmed: Sequence[StrategyRecord]) -> bool:
    """A class's property shortcuts push toward a colour a confirmed strategy of the class holds at its hot spot (a red
    marker reddens the background): the marker's echo, said as such in the marker's story."""
    hues = {r.direction for r in rows if r.property == "colour"}
    label = rows[0].label
    return any(strat.label == label and hues & set(HUE_OF_COLOUR.get(strat.hotspot_colour, ()))
               for strat in confirmed)


def data_notes(data: Mapping[str, Sequence[PropertyRecord]], told: set[str]) -> list[Finding]:
    """One note per class whose data side ties a property to it and that has no story of its own."""
    return [data_note(rows) for label, rows in sorted(data.items()) if label not in told and any(r.data_state == "ties" for r in rows)]


def data_clauses(data: Mapping[str, Sequence[PropertyRecord]], level: float) -> dict[str, list[str]]:
    """Class -> the data side's clauses for its story (at most two, strongest AUC first)."""
    return {c: [data_clause(r, level) for r in rows[:2]] for c, rows in data.items()}


def echo_sentence(rows: Sequence[PropertyRecord], level: float) -> str:
    """The sentence a class's echoing property shortcuts add to its spatial shortcut's finding."""
    rows = sorted(rows, key=lambda r: -r.effect)
    r = rows[0]
    return (f" The marker shows as a property of the whole picture too: the {r.label} images' backgrounds are "
            + and_join([f"{_adj(x)} (AUC {num(x.auc)})" for x in rows[:3]]) + f" than the others', and {_effect_text(r, level)}"
            " — the marker's echo, not a second cause.")

"""Findings (DESIGN §13): the audit's conclusions, one cause each, built from the summary alone.

A pure function of summary.json's content and the samples table (samples.csv as read, or any
mapping of equal-length columns: ``row, sample_id, label, predicted, confidence, flag`` and, when
present, ``strategy``, ``object_dependence``, ``still_right_without_object``). No TensorFlow, no I/O.

The one hard rule: every failing gate rule is in exactly one finding's ``rules`` (its index into
``summary["gate"]`` in ``rule_index``), every failed trust check in exactly one finding's ``checks``.

Conventions: a place is a relative rectangle ``(x0, y0, x1, y1)`` in [0, 1] of the model's input;
ids are ``kind:labels:place``, labels joined with ``+`` in sorted order, ``*`` for "every" / "none".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pipeline.numbers import COUNT_AGGREGATES, aggregate_text, count, fixed
from pipeline.status import FAIL, NOT_EVALUATED

BLOCKER, WARNING, NOTE = "blocker", "warning", "note"
SEVERITIES = (BLOCKER, WARNING, NOTE)
MAX_EVIDENCE = 4
MAX_TITLE_WORDS = 12
ATTRIBUTION_SHARE = 0.5  # a heatmap/behaviour rule is a shortcut's when its members are >= this share of the rule's rfwr samples
RFWR = "right_for_wrong_reason"

ACCURACY_METRICS = {"accuracy", "balanced_accuracy"}
BEHAVIOUR_METRICS = {"mean_object_dependence", "still_right_without_object_rate", "object_only_accuracy", "explanation_agreement",
                     "explanation_kappa", "on_target_confirmed_rate", "off_target_confirmed_rate"}
STRATEGY_METRICS = {"confirmed_shortcuts", "max_hotspot_dependence", "max_transplant_effect"}
PROBE_METRICS = {"probes_fooled", "max_probe_effect"}
DATA_METRICS = {"n_samples", "n_scored", "skipped_rate", "majority_accuracy"}
NO_SIGNAL_METRICS = {"no_signal_rate"}
CHANGE_KINDS = {"max_drop", "max_rise"}

KIND_WORDS = {"watermark": "A watermark", "stamp": "A date stamp", "noise": "A noise patch", "frame": "A dark frame"}


@dataclass(frozen=True)
class Finding:
    """One cause (DESIGN §13); :meth:`record` is its summary.json form."""

    id: str
    severity: str
    kind: str
    title: str
    sentence: str
    action: str
    labels: tuple[str, ...] = ()
    place: str | None = None  # in words
    rects: tuple[tuple[float, float, float, float], ...] = ()  # relative rectangles of the place
    rules: tuple[str, ...] = ()  # the gate's labels of the failing rules it accounts for ...
    rule_index: tuple[int, ...] = ()  # ... and their indices in summary["gate"]
    checks: tuple[str, ...] = ()  # failed trust checks it accounts for
    evidence: tuple[dict[str, Any], ...] = ()  # {sample_id, view: heat | crop | before_after, caption, ...}
    effect: float = 0.0  # orders findings of one severity, largest first
    since_baseline: str | None = None

    def record(self) -> dict[str, Any]:
        rect = list(self.rects[0]) if len(self.rects) == 1 else None
        return {"id": self.id, "severity": self.severity, "kind": self.kind, "title": self.title, "sentence": self.sentence,
                "labels": list(self.labels), "place": None if self.place is None else {"words": self.place, "rect": rect,
                                                                                      "rects": [list(r) for r in self.rects]},
                "rules": list(self.rules), "rule_index": list(self.rule_index), "checks": list(self.checks),
                "evidence": [dict(e) for e in self.evidence], "action": self.action, "effect": self.effect,
                "since_baseline": self.since_baseline}


# --------------------------------------------------------------------------- the samples table


@dataclass(frozen=True)
class Samples:
    """The columns findings read, as arrays of shape (N,) in row order."""

    sample_id: np.ndarray
    labels: tuple[tuple[str, ...], ...]
    predicted: np.ndarray  # str, "" when none
    explained: np.ndarray  # str: the label the CAM was explained for
    confidence: np.ndarray
    flag: np.ndarray
    strategy: np.ndarray  # int, -1 when not clustered
    focus: np.ndarray
    object_dependence: np.ndarray | None = None
    box_area: np.ndarray | None = None  # box_area_fraction: the share of the input the scored region covers

    @classmethod
    def of(cls, table: Any, target: str = "predicted") -> "Samples":
        """From samples.csv as a DataFrame (or a mapping of columns); ``target``: explain.target."""
        def col(name: str, default: Any = None) -> np.ndarray | None:
            if name not in table:
                return default
            return np.asarray(table[name])

        def text(values: Iterable[Any]) -> np.ndarray:
            return np.array(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values], object)

        label = text(col("label"))
        predicted = text(col("predicted"))
        n = len(label)
        strategy = col("strategy")
        strategy = np.full(n, -1) if strategy is None else np.array([_int(v) for v in strategy])
        dep = col("object_dependence")
        return cls(
            sample_id=text(col("sample_id")), labels=tuple(tuple(x for x in s.split("|") if x) for s in label), predicted=predicted,
            explained=predicted if target == "predicted" else label, confidence=_floats(col("confidence"), n),
            flag=text(col("flag")), strategy=strategy, focus=_floats(col("focus_score"), n),
            object_dependence=None if dep is None else _floats(dep, n),
            box_area=_floats(col("box_area_fraction"), n),
        )

    def in_scope(self, scope: str) -> np.ndarray:
        """(N,) bool: the samples a rule of ``scope`` ("overall" or a label) concerns."""
        if scope == "overall":
            return np.ones(len(self.flag), bool)
        return np.array([scope in labs for labs in self.labels], bool)

    def caption(self, row: int) -> str:
        """"circle_0012.jpg: circle 0.98" — the sample and the model's answer with its confidence."""
        answer = self.predicted[row] or "no class"
        conf = self.confidence[row]
        return f"{self.sample_id[row]}: {answer}" + ("" if math.isnan(conf) else f" {conf:.2f}")


def _int(v: Any) -> int:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return -1
    return -1 if math.isnan(f) else int(f)


def _floats(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return np.array([_float(v) for v in values], np.float64)


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------- places


def zone(rect: Sequence[float]) -> str:
    """The rectangle's zone of a 3×3 grid by its centre: "top-left", "top", ..., "centre"."""
    cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else ""
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else ""
    return f"{row}-{col}" if row and col else row or col or "centre"


CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def place_token(rects: Sequence[Sequence[float]]) -> str:
    """A stable id part for a set of places: one zone's name, "corners" for several corners, else zones joined by "+"."""
    zones = sorted({zone(r) for r in rects})
    if not zones:
        return "*"
    if len(zones) > 1 and all(z in CORNERS for z in zones):
        return "corners"
    return "+".join(zones)


def rects_words(rects: Sequence[Sequence[float]]) -> str:
    """"the top-left corner", "the corners", "the bottom edge and the centre"."""
    zones = sorted({zone(r) for r in rects}, key=lambda z: (z not in CORNERS, z))
    if len(zones) > 1 and all(z in CORNERS for z in zones):
        return "the four corners" if len(zones) == 4 else "the " + _and([z + " corner" for z in zones]).replace(" corner and ", " and ")
    return _and([_zone_words(z) for z in zones])


def _zone_words(z: str) -> str:
    return f"the {z} corner" if z in CORNERS else "the centre" if z == "centre" else f"the {z} edge"


def overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    """Two relative rectangles share some area."""
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _and(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _words(text: str, limit: int = MAX_TITLE_WORDS) -> str:
    """At most ``limit`` words (a title)."""
    parts = text.split()
    return text if len(parts) <= limit else " ".join(parts[:limit])


def num(value: Any, digits: int = 2) -> str:
    """A number for a sentence: fixed decimals, never "-0.00"; "—" when missing."""
    return fixed(value, digits)


def interval_text(low: Any, high: Any, level: float) -> str:
    lo, hi = _float(low), _float(high)
    if math.isnan(lo) or math.isnan(hi):
        return "no interval: too few samples"
    return f"{level:.0%} interval {num(lo)}–{num(hi)}"


# --------------------------------------------------------------------------- causes the stages found


@dataclass(frozen=True)
class _Cause:
    """A finding the stages found (a shortcut, a fooling probe, the background), before the gate's
    rules are routed to it; ``members`` (label, strategy id) of a shortcut's confirmed strategies."""

    finding: Finding
    members: frozenset[tuple[str, int]] = frozenset()


def _confirmed(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for lab in (summary.get("strategies") or {}).get("labels", []) for s in lab["strategies"] if s.get("confirmed")]


def _rect(s: Mapping[str, Any], keys: Sequence[str] = ("hotspot_x0", "hotspot_y0", "hotspot_x1", "hotspot_y1")) -> tuple[float, ...]:
    return tuple(float(s[k]) for k in keys)


def _strength(s: Mapping[str, Any]) -> float:
    """A confirmed strategy's effect: the larger lower bound of its two tests."""
    return max(_float(s.get("hotspot_dependence_lo")) if s.get("hotspot_dependence_lo") is not None else -1.0,
               _float(s.get("transplant_effect_lo")) if s.get("transplant_effect_lo") is not None else -1.0)


def _groups(confirmed: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Confirmed strategies grouped into causes: one class's strategies whose hot spots hold the same
    kind and colour are one; groups of different classes with the same kind and overlapping places merge."""
    by_key: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for s in confirmed:
        by_key.setdefault((s["label"], s.get("hotspot_kind") or "unknown", s.get("hotspot_colour") or ""), []).append(s)
    groups = list(by_key.items())
    parent = list(range(len(groups)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, (ki, gi) in enumerate(groups):
        for j in range(i + 1, len(groups)):
            kj, gj = groups[j]
            if ki[1] == kj[1] and ki[0] != kj[0] and any(overlaps(_rect(a), _rect(b)) for a in gi for b in gj):
                parent[root(j)] = root(i)
    merged: dict[int, list[Mapping[str, Any]]] = {}
    for i, (_, g) in enumerate(groups):
        merged.setdefault(root(i), []).extend(g)
    return sorted((sorted(g, key=lambda s: -_strength(s)) for g in merged.values()), key=lambda g: -_strength(g[0]))


def _content(s: Mapping[str, Any]) -> str:
    """What a hot spot holds, in a few words: "red", "an overlay", "background"."""
    kind, colour = s.get("hotspot_kind") or "unknown", s.get("hotspot_colour") or ""
    if kind in ("patch", "border"):
        return colour or f"a {kind}"
    return {"overlay": "an overlay", "background": "background"}.get(kind, "an area off the objects")


def _holds(s: Mapping[str, Any]) -> str:
    """What a hot spot holds, as a caption: "a red marker", "a black border", "an overlay", "background"."""
    kind = s.get("hotspot_kind") or "unknown"
    return _thing(kind, [s.get("hotspot_colour") or ""], False) if kind != "background" else "background"


THINGS = {  # kind -> (short, long) words for the cause's object; {c} is the colour when every hot spot has one
    "patch": ("a {c} marker", "a flat {c} marker"), "border": ("a {c} border", "a flat {c} border"),
    "overlay": ("an overlay", "the same pattern on most images (an overlay such as a watermark or logo)"),
    "background": ("the background", "the background"), "unknown": ("something off the objects", "an area off the objects"),
}


def _thing(kind: str, colours: Sequence[str], long: bool) -> str:
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


def _shortcut_cause(group: Sequence[Mapping[str, Any]], s: Samples | None, level: float, swap: Mapping[str, Any] | None) -> _Cause:
    """One shortcut finding from a group of confirmed strategies (strongest first)."""
    labels = sorted({g["label"] for g in group})
    kind = group[0].get("hotspot_kind") or "unknown"
    rects = tuple(_rect(g) for g in group)
    where = rects_words(rects)
    by_label = {lab: [g for g in group if g["label"] == lab] for lab in dict.fromkeys(g["label"] for g in group)}
    colours = [_content(g) for g in group]
    if len(labels) == 1:
        title = f"Reads {_thing(kind, colours, False)} in {where}, not the {labels[0]}"
        what = f"'{labels[0]}' is read from {_thing(kind, colours, True)} in {where}, off the objects."
    else:
        title = f"Reads {_thing(kind, colours, False)} in {where}, not the objects"
        gives = ", ".join(f"{_content(gs[0])} → {lab}" for lab, gs in by_label.items())
        thing = _thing(kind, [""], True)
        what = (f"A flat marker in {where} whose colour gives the class away: {gives}." if kind == "patch" else
                f"{thing[0].upper()}{thing[1:]} in {where} gives the class away: {gives}.")
    top = group[0]
    tests = (f" Covering it at the {zone(_rect(top))} of '{top['label']}' images costs {num(top.get('hotspot_dependence'))} of their "
             f"accuracy beyond covering an equal area elsewhere "
             f"({interval_text(top.get('hotspot_dependence_lo'), top.get('hotspot_dependence_hi'), level)}); pasting it onto "
             f"other classes' images turns {num(top.get('transplant_effect'))} more of them into '{top['label']}' than a patch from "
             f"elsewhere ({interval_text(top.get('transplant_effect_lo'), top.get('transplant_effect_hi'), level)}).")
    if len(group) > 1:
        deps = [_float(g.get("hotspot_dependence")) for g in group]
        tests += (f" {len(group)} confirmed strategies in all; their accuracy lost to covering ranges "
                  f"{num(min(deps))}–{num(max(deps))}.")
    if swap and _float(swap.get("background_gap_lo")) >= 0.2:
        tests += (f" It travels with the background: on another class's background accuracy falls from "
                  f"{num(swap.get('accuracy_same'))} to {num(swap.get('accuracy_other'))}.")
    members = frozenset((g["label"], int(g["strategy"])) for g in group)
    sentence = what + tests + (_members_text(s, members) if s is not None else "")
    evidence = _shortcut_evidence(by_label, s, where)
    finding = Finding(id=f"shortcut:{'+'.join(labels)}:{place_token(rects)}", severity=WARNING, kind="shortcut", title=_words(title),
                      sentence=sentence, action=SHORTCUT_ACTIONS.get(kind, SHORTCUT_ACTIONS["unknown"]), labels=tuple(labels),
                      place=where, rects=rects, evidence=evidence, effect=_strength(top))
    return _Cause(finding, members)


def _members_mask(s: Samples, members: frozenset[tuple[str, int]]) -> np.ndarray:
    return np.array([(e, k) in members for e, k in zip(s.explained, s.strategy)], bool)


def _members_text(s: Samples, members: frozenset[tuple[str, int]]) -> str:
    rf = s.flag == RFWR
    if not rf.any():
        return ""
    k = int((rf & _members_mask(s, members)).sum())
    return f" {k} of the {int(rf.sum())} right-for-wrong-reason samples are in these strategies."


def _shortcut_evidence(by_label: Mapping[str, Sequence[Mapping[str, Any]]], s: Samples | None, where: str) -> tuple[dict[str, Any], ...]:
    """Per class its strongest strategy's first exemplar with its heatmap, then that exemplar's hot spot cropped."""
    if s is None:
        return ()
    out: list[dict[str, Any]] = []
    crops: list[dict[str, Any]] = []
    for lab, strategies in by_label.items():
        top = strategies[0]
        rows = [r for r in top.get("exemplar_rows", []) if 0 <= r < len(s.sample_id)]
        if not rows:
            continue
        out.append({"sample_id": str(s.sample_id[rows[0]]), "view": "heat", "caption": s.caption(rows[0])})
        crops.append({"sample_id": str(s.sample_id[rows[0]]), "view": "crop", "rect": list(_rect(top)),
                      "caption": f"the hot spot of {s.sample_id[rows[0]]} ({zone(_rect(top))}): {_holds(top)}"})
    return tuple((out + crops)[:MAX_EVIDENCE]) if len(out) < MAX_EVIDENCE else tuple(out[:MAX_EVIDENCE])


def _probe_rect(r: Mapping[str, Any]) -> tuple[float, ...]:
    return _rect(r, ("x0", "y0", "x1", "y1"))


def _probe_what(row: Mapping[str, Any]) -> str:
    return f"The '{row['probe']}' overlay" if row["kind"] == "overlay" else KIND_WORDS.get(row["kind"], f"The '{row['probe']}' probe")


def _probe_cause(rows: Sequence[Mapping[str, Any]], s: Samples | None, level: float, overlays: Mapping[str, str]) -> _Cause:
    """One finding for one artifact and class at one or more places (``rows`` strongest first)."""
    top = rows[0]
    label, what = top["class"], _probe_what(top)
    froms = sorted({f for r in rows for f in r.get("from_labels", [])})
    title = f"{what} turns {_and(froms)} images into {label}"
    if len(title.split()) > MAX_TITLE_WORDS:
        title = f"{what} turns other classes' images into {label}"
    places = sorted({str(r["place"]).replace(":", "-") for r in rows})
    text = str(top.get("sentence") or "")
    sentence = (text[:1].upper() + text[1:] + f" (effect {num(top['effect'])}, {interval_text(top.get('effect_lo'), top.get('effect_hi'), level)}).")
    if len(rows) > 1:
        sentence += f" It fools the model at {len(rows)} places: " + "; ".join(
            f"{r['place']} effect {num(r['effect'])}" for r in rows) + "."
    if top["kind"] == "overlay":
        source = f" ({overlays[top['probe']]})" if top["probe"] in overlays else ""
        action = (f"Find the training images that carry '{top['probe']}'{source} — most will be labelled {label} — and relabel them "
                  f"by what they show or mask the overlay out; retrain, then re-audit with --baseline this audit's summary.json.")
    else:
        action = (f"The model reads {what.lower()} as {label}: look for it in the training images labelled {label} and remove it, or "
                  f"add it as augmentation to every class; retrain and re-audit with --baseline this audit's summary.json.")
    evidence: list[dict[str, Any]] = []
    if s is not None:
        confs = top.get("exemplar_after_confidence") or []
        for k, row in enumerate(r for r in top.get("exemplar_rows", []) if 0 <= r < len(s.sample_id)):
            after = f"{label}" + (f" {num(confs[k])}" if k < len(confs) else "")
            evidence.append({"sample_id": str(s.sample_id[row]), "view": "before_after", "probe": top["probe"], "place": top["place"],
                             "label": label, "caption": f"{s.caption(row)} → {after}"})
    finding = Finding(id=f"probe:{label}:{top['probe']}@{'+'.join(places)}", severity=WARNING, kind="probe", title=_words(title),
                      sentence=sentence, action=action, labels=(label,), place=_and([place_words_of_probe(r) for r in rows]),
                      rects=tuple(_probe_rect(r) for r in rows), evidence=tuple(evidence[:MAX_EVIDENCE]),
                      effect=_float(top.get("effect")))
    return _Cause(finding)


def place_words_of_probe(r: Mapping[str, Any]) -> str:
    """A probe row's place in words ("at the top-left corner", "where the config puts it (...)")."""
    from pipeline.probe_stage import place_words as probe_place

    return probe_place(str(r["place"]), _probe_rect(r))


def _overlay_files(probes: Mapping[str, Any]) -> dict[str, str]:
    """Overlay name -> its image's file name (for the action: the file to look for)."""
    return {o["name"]: str(o.get("path", "")).rsplit("/", 1)[-1] for o in (probes.get("settings") or {}).get("overlays", [])}


def _probe_causes(summary: Mapping[str, Any], s: Samples | None, level: float) -> list[_Cause]:
    probes = summary.get("probes") or {}
    overlays = _overlay_files(probes)
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in probes.get("rows", []):
        if r.get("fools"):
            groups.setdefault((r["probe"], r["class"]), []).append(r)
    causes = [_probe_cause(sorted(g, key=lambda r: -_float(r["effect"])), s, level, overlays) for g in groups.values()]
    return sorted(causes, key=lambda c: -c.finding.effect)


def _strongest_probe(summary: Mapping[str, Any], scope: str, s: Samples | None, level: float) -> _Cause | None:
    """For a failing probe rule with no fooling probe: the row with the largest effect (of the rule's class)."""
    probes = summary.get("probes") or {}
    rows = [r for r in probes.get("rows", []) if (scope == "overall" or r["class"] == scope) and not math.isnan(_float(r.get("effect")))]
    if not rows:
        return None
    return _probe_cause([max(rows, key=lambda r: _float(r["effect"]))], s, level, _overlay_files(probes))


def _background_cause(summary: Mapping[str, Any], level: float) -> _Cause | None:
    swap = (summary.get("probes") or {}).get("background_swap")
    if not swap or swap.get("note") or swap.get("background_gap") is None:
        return None
    gap = _float(swap["background_gap"])
    sentence = (f"Each object pasted onto another class's background: accuracy falls from {num(swap['accuracy_same'])} (same class's "
                f"background) to {num(swap['accuracy_other'])}, a background gap of {num(gap)} "
                f"({interval_text(swap.get('background_gap_lo'), swap.get('background_gap_hi'), level)}); "
                f"{_float(swap.get('background_flip')):.0%} answer the background's class.")
    finding = Finding(id="background:*:*", severity=WARNING, kind="background", title="Answers from the background, not the object",
                      sentence=sentence, action=SHORTCUT_ACTIONS["background"], effect=gap)
    return _Cause(finding)


# --------------------------------------------------------------------------- failing rules no stage explains


def _rule_text(g: Mapping[str, Any], level: float) -> str:
    """"mean_focus_score -0.09 (90% interval -0.10–-0.08, 300 samples) is below 0.25"."""
    value = g.get("value")
    if g["kind"] in CHANGE_KINDS:
        return str(g["message"])
    ci = g.get("interval") or [None, None]
    within = f" ({interval_text(ci[0], ci[1], level)}, {g['n']} samples)" if ci[0] is not None and g.get("n") else ""
    shown = aggregate_text(g["aggregate"], value, 2)
    if math.isnan(_float(value)):
        return f"{g['label']} is undefined (no samples to measure it on)"
    side = "below the required" if g["kind"] == "min" else "above the allowed"
    bound = f" (its {g['bound']} bound {num(g.get('compared'))})" if g.get("bound") not in (None, "point") else ""
    return f"{g['label']} {shown}{within}{bound} is {side} {_threshold(g)}"


def _threshold(g: Mapping[str, Any]) -> str:
    return count(g["threshold"]) if g["aggregate"] in COUNT_AGGREGATES else f"{_float(g['threshold']):g}"


def _scopes(rules: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(sorted({g["scope"] for g in rules if g["scope"] != "overall"}))


def _id_labels(rules: Sequence[Mapping[str, Any]]) -> str:
    if any(g["scope"] == "overall" for g in rules):
        return "*"
    return "+".join(_scopes(rules)) or "*"


def _pick(s: Samples | None, mask: np.ndarray | None, order: np.ndarray | None = None) -> tuple[dict[str, Any], ...]:
    """Up to MAX_EVIDENCE heat views of the rows in ``mask``, in ``order`` (ascending key)."""
    if s is None or mask is None or not mask.any():
        return ()
    rows = np.flatnonzero(mask)
    if order is not None:
        rows = rows[np.argsort(order[rows], kind="stable")]
    return tuple({"sample_id": str(s.sample_id[r]), "view": "heat", "caption": s.caption(int(r))} for r in rows[:MAX_EVIDENCE])


def _scope_mask(s: Samples, rules: Sequence[Mapping[str, Any]]) -> np.ndarray:
    out = np.zeros(len(s.flag), bool)
    for g in rules:
        out |= s.in_scope(g["scope"])
    return out


def _accuracy(rules: Sequence[Mapping[str, Any]], s: Samples | None, level: float, summary: Mapping[str, Any]) -> Finding:
    labels = _scopes(rules)
    first = rules[0]
    if len(rules) == 1:
        who = f"{first['scope']} accuracy" if first["scope"] != "overall" else first["label"].replace("_", " ").capitalize()
        title = f"{who[0].upper()}{who[1:]} {num(first['value'])} is below the required {_threshold(first)}"
    else:
        title = f"Accuracy is below the gate's minimum for {_and(labels) if labels else 'the whole set'}"
    sentence = "; ".join(_rule_text(g, level) for g in rules) + "."
    confusion, evidence = "", ()
    if s is not None:
        wrong = np.isin(s.flag, ("confused_on_object", "distracted")) & _scope_mask(s, rules)
        pairs: dict[tuple[str, str], int] = {}
        for r in np.flatnonzero(wrong):
            pairs[("|".join(s.labels[r]), s.predicted[r] or "no class")] = pairs.get(("|".join(s.labels[r]), s.predicted[r] or "no class"), 0) + 1
        if pairs:
            (true, said), k = max(pairs.items(), key=lambda kv: kv[1])
            confusion = f"{true} answered as {said}"
            sentence += f" {int(wrong.sum())} wrong answers; the most common: {confusion} ({k})."
        evidence = _pick(s, wrong, -s.confidence)
    action = ((f"Most errors are {confusion}: check those images' labels and add training images that tell them apart; "
               if confusion else "Add training images of the failing classes; ")
              + "if every class fails, first check model.preprocessing and the class_names order (python -m pipeline validate "
                "prints both). Retrain and re-audit with --baseline this audit's summary.json.")
    return Finding(id=f"accuracy:{_id_labels(rules)}:*", severity=BLOCKER, kind="accuracy", title=_words(title), sentence=sentence,
                   action=action, labels=labels, evidence=evidence)


def _off_object_place(summary: Mapping[str, Any], labels: Sequence[str]) -> tuple[str, tuple[float, ...], float, str] | None:
    """The atlas's strongest off-object place among ``labels``' atlases: (words, rect, share of that label's heat, label)."""
    from pipeline import strategies as st

    section = summary.get("strategies") or {}
    threshold = float((section.get("settings") or {}).get("hotspot_threshold", 0.5))
    best = None
    for lab in section.get("labels", []):
        if labels and lab["label"] not in labels:
            continue
        m, c = np.asarray(lab["atlas"]["mean_map"], float), np.asarray(lab["atlas"]["mean_coverage"], float)
        if m.ndim != 2 or not m.size:
            continue
        cells = st.hot_spot_cells(m, c, threshold)
        if cells is None:
            continue
        r0, c0, r1, c1 = cells
        off = m * (1 - c)
        share = float(off[r0:r1, c0:c1].sum() / m.sum()) if m.sum() > 0 else 0.0
        rect = st.rect_relative(cells, m.shape)
        if best is None or share > best[2]:
            best = (rects_words([rect]), rect, share, lab["label"])
    return best


def _heatmap(rules: Sequence[Mapping[str, Any]], s: Samples | None, level: float, summary: Mapping[str, Any],
             causes: Sequence[_Cause]) -> Finding:
    labels = _scopes(rules)
    where = _off_object_place(summary, labels)
    title = f"Heat lies off the objects, strongest at {where[0]}" if where else "Heat lies off the objects"
    sentence = "; ".join(_rule_text(g, level) for g in rules) + "."
    if where:
        sentence += f" The strongest off-object heat is at {where[0]}: {where[2]:.0%} of the heat of '{where[3]}' images, off their objects."
    evidence = ()
    if s is not None:
        rf = (s.flag == RFWR) & _scope_mask(s, rules)
        members = frozenset().union(*(c.members for c in causes)) if causes else frozenset()
        k = int((rf & _members_mask(s, members)).sum()) if members else 0
        if rf.any():
            sentence += (f" {int(rf.sum())} samples are right for the wrong reason; {k} of them are in confirmed shortcut strategies, "
                         "so no tested cause accounts for this.")
        evidence = _pick(s, rf, s.focus)
    grid = (summary.get("provenance") or {}).get("target_layer_shape") or []
    coarse = f"the coarse {grid[0]}×{grid[1]} grid" if len(grid) >= 2 else "a coarse grid"
    look = where[0] if where else "the heat"
    action = (f"No tested cause explains it: open the right-for-wrong-reason samples in the gallery and look at {look}. If something "
              f"sits there (text, a marker, a border), test it as a probe overlay with 'at' (probes.overlays); if the heat is only "
              f"spread by {coarse}, name an earlier, finer model.target_layer and re-audit.")
    return Finding(id=f"heatmap:{_id_labels(rules)}:{place_token([where[1]]) if where else '*'}", severity=BLOCKER, kind="heatmap",
                   title=_words(title), sentence=sentence, action=action, labels=labels, place=where[0] if where else None,
                   rects=(tuple(where[1]),) if where else (), evidence=evidence)


def _behaviour(rules: Sequence[Mapping[str, Any]], s: Samples | None, level: float) -> Finding:
    labels = _scopes(rules)
    sentence = "; ".join(_rule_text(g, level) for g in rules) + "."
    evidence = ()
    if s is not None and s.object_dependence is not None:
        right = np.isin(s.flag, ("ok", RFWR)) & _scope_mask(s, rules) & ~np.isnan(s.object_dependence)
        evidence = _pick(s, right, s.object_dependence)
    action = ("The model still answers the same with the object removed, so it decides from what surrounds it: add training images "
              "of each class on varied backgrounds (and backgrounds without the class), retrain, and re-audit with --baseline this "
              "audit's summary.json; 'Does the model need the object?' lists the samples.")
    return Finding(id=f"behaviour:{_id_labels(rules)}:*", severity=BLOCKER, kind="behaviour",
                   title="Predictions do not need the object", sentence=sentence, action=action, labels=labels, evidence=evidence)


def _regression(rules: Sequence[Mapping[str, Any]], level: float) -> Finding:
    first = rules[0]
    title = (f"Worse than the baseline on {first['label']}" if len(rules) == 1 else f"Worse than the baseline on {len(rules)} rules")
    metrics = "+".join(sorted({g["metric"] for g in rules}))
    return Finding(id=f"regression:{_id_labels(rules)}:{metrics}", severity=BLOCKER, kind="regression", title=_words(title),
                   sentence="; ".join(_rule_text(g, level) for g in rules) + ".", labels=_scopes(rules),
                   action="Open 'Against the baseline' in the report: it lists the samples that left ok. Find what changed between the "
                          "two models' training data or code, fix it, and re-audit with the same --baseline.")


def _data(rules: Sequence[Mapping[str, Any]], level: float, summary: Mapping[str, Any]) -> Finding:
    n_skipped = len(summary.get("skipped") or [])
    title = f"Too few usable samples: {n_skipped} skipped" if n_skipped else "Too few samples for the gate"
    return Finding(id=f"data:{_id_labels(rules)}:*", severity=BLOCKER, kind="data", title=_words(title),
                   sentence="; ".join(_rule_text(g, level) for g in rules) + ".", labels=_scopes(rules),
                   action="Fix the skipped samples (each reason is in samples.csv and the report's 'Skipped samples': missing or corrupt "
                          "images, boxes outside the image, unknown labels) or add samples, then re-audit.")


def _no_signal(rules: Sequence[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]], s: Samples | None, level: float,
               summary: Mapping[str, Any]) -> Finding:
    prov = summary.get("provenance") or {}
    layer = prov.get("target_layer") or "the target layer"
    grid = prov.get("target_layer_shape") or []
    counts = summary.get("flag_counts") or {}
    n_scored = sum(v for k, v in counts.items() if k != "skipped")
    parts = [f"{counts.get('no_signal', 0)} of {n_scored} scored samples have an all-zero heatmap at {layer}"
             + (f" ({grid[0]}×{grid[1]})" if len(grid) >= 2 else "") + ", so where the model looks cannot be judged"]
    parts += [_rule_text(g, level) for g in rules]
    candidates = [c for c in prov.get("target_layer_candidates") or [] if c.get("name") != layer]
    suggestion = _suggest_layer(prov.get("target_layer_candidates") or [], layer)
    sentence = "; ".join(parts) + "."
    if candidates:
        sentence += " Candidate layers: " + ", ".join(f"{c['name']} ({'×'.join(str(v) for v in c.get('shape', [])[:2])})"
                                                     for c in candidates[-6:]) + "."
    action = (f"Name another target layer: model.target_layer: {suggestion}" if suggestion else "Name another model.target_layer")
    action += (" (an earlier layer whose map still reaches the class score), check it with python -m pipeline validate CONFIG, "
               "and re-audit; the verdict cannot be FIT while the heatmaps are empty.")
    evidence = _pick(s, s.flag == "no_signal") if s is not None else ()
    return Finding(id="no_signal:*:*", severity=BLOCKER if rules else WARNING, kind="no_signal",
                   title=_words(f"Heatmaps are empty at the target layer {layer}"), sentence=sentence, action=action,
                   evidence=evidence)


def _suggest_layer(candidates: Sequence[Mapping[str, Any]], layer: str) -> str | None:
    """The candidate just before ``layer`` in graph order (else the last candidate that is not it)."""
    names = [c["name"] for c in candidates]
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


def _trust(check: Mapping[str, Any], s: Samples | None) -> Finding:
    name = check["name"]
    title, action = TRUST_TEXT.get(name, (f"Trust check {name} failed", "Fix what the check names and re-audit."))
    evidence: tuple[dict[str, Any], ...] = ()
    if s is not None and name == "heatmap_confirmation" and s.object_dependence is not None:
        evidence = _pick(s, (s.flag == "ok") & (s.object_dependence < 0.5), s.object_dependence)
    if s is not None and name == "prediction_spread" and len(s.predicted):
        values, counts = np.unique(s.predicted[s.flag != "skipped"], return_counts=True)
        if values.size:
            top = values[np.argmax(counts)]
            title = f"The model answers '{top}' for almost every image"
            evidence = _pick(s, (s.predicted == top) & np.array([top not in labs for labs in s.labels]), -s.confidence)
    message = str(check.get("message") or "")
    return Finding(id=f"trust:{name}:*", severity=WARNING, kind="trust", title=_words(title),
                   sentence=message[:1].upper() + message[1:] + ("" if message.endswith(".") else "."), action=action,
                   checks=(name,), evidence=evidence)


COARSE_GRID = 4  # a CAM grid of at most 4 x 4 cells ...
COARSE_AREA = 1 / 3  # ... over boxes that cover more than this of the input on average: energy in box says little


def _coarse(summary: Mapping[str, Any], s: Samples | None) -> list[Finding]:
    """A note when the maps are too coarse for the boxes: its chance level and the finer candidate layers."""
    prov = summary.get("provenance") or {}
    grid = prov.get("target_layer_shape") or []
    if s is None or s.box_area is None or len(grid) < 2 or max(grid[0] or 0, grid[1] or 0) > COARSE_GRID:
        return []
    area = s.box_area[(s.flag != "skipped") & ~np.isnan(s.box_area)]
    if not area.size or area.mean() <= COARSE_AREA:
        return []
    finer = [c for c in prov.get("target_layer_candidates") or [] if len(c.get("shape", [])) >= 2 and (c["shape"][0] or 0) > grid[0]]
    sentence = (f"The heatmaps are {grid[0]}×{grid[1]} cells at {prov.get('target_layer')}, and the boxes cover {area.mean():.0%} of the "
                f"input on average: a uniform map already scores energy in box {area.mean():.2f}, so energy in box says little here "
                "(the focus score corrects for it).")
    if finer:
        sentence += " Finer layers: " + ", ".join(f"{c['name']} ({c['shape'][0]}×{c['shape'][1]})" for c in finer[-4:]) + "."
    action = (f"Name a finer layer in model.target_layer ({finer[-1]['name']} is the last one finer than this grid) and re-audit, "
              "or gate on the focus score rather than energy in box." if finer else
              "Gate on the focus score rather than energy in box, or audit at a larger input size for a finer map.")
    return [Finding(id="heatmap:*:coarse", severity=NOTE, kind="heatmap", title=_words(f"Coarse {grid[0]}×{grid[1]} heatmaps over large boxes"),
                    sentence=sentence, action=action)]


def _resize(summary: Mapping[str, Any]) -> list[Finding]:
    """A warning when the preprocessing check found the other resize convention clearly more accurate (DESIGN §16)."""
    r = ((summary.get("provenance") or {}).get("preprocessing_check") or {}).get("resize") or {}
    if not r.get("other_better"):
        return []
    mine, other = ("antialiased", "plain") if r["antialias"] else ("plain", "antialiased")
    sentence = (f"On the preprocessing check's {r['images']} images the model is more accurate after an {other} resize: accuracy "
                f"{r['other_accuracy']:.2f} against {r['accuracy']:.2f} with the configured {mine} one (gain {r['difference']:.2f}, "
                f"{r['level']:.0%} interval {r['low']:.2f} to {r['high']:.2f}). The model was likely trained on pixels shrunk that "
                "way, so this audit's numbers may describe pixels it never saw.")
    action = (f"Set model.antialias: {str(not r['antialias']).lower()} if the training shrank its images that way (PIL's Image.resize, "
              "keras.utils.load_img and ImageDataGenerator antialias; tf.image.resize, Resizing and image_dataset_from_directory do "
              "not), and re-audit.")
    return [Finding(id="data:*:resize", severity=WARNING, kind="data", title=_words(f"The model reads {other}-resized images better"),
                    sentence=sentence, action=action)]


def _notes(summary: Mapping[str, Any]) -> list[Finding]:
    out = []
    idle = [(i, g) for i, g in enumerate(summary.get("gate", [])) if g["status"] == NOT_EVALUATED]
    if idle:
        why = sorted({str(g["message"]).split("not evaluated", 1)[-1].strip(" ()") or "no reason" for _, g in idle})
        out.append(Finding(id="not_evaluated:*:*", severity=NOTE, kind="not_evaluated",
                           title=_words(f"{_plural(len(idle), 'rule')} not evaluated: {why[0]}"),
                           sentence="; ".join(str(g["message"]) for _, g in idle) + ".",
                           action="Change rules need --baseline with an earlier audit's summary.json (or an MLflow models:/ URI)."
                           if any(g["kind"] in CHANGE_KINDS for _, g in idle) else "See each rule's reason in the gate table."))
    skipped = summary.get("skipped") or []
    if skipped:
        first = skipped[0]
        out.append(Finding(id="data:*:skipped", severity=NOTE, kind="data", title=_words(f"{_plural(len(skipped), 'sample')} skipped"),
                           sentence=f"{_plural(len(skipped), 'sample')} could not be used; the first, {first['sample_id']}: {first['reason']}.",
                           action="Each reason is in samples.csv and the report's 'Skipped samples': fix the images or annotations and re-audit."))
    problems = summary.get("dataset_problems") or []
    if problems:
        out.append(Finding(id="data:*:problems", severity=NOTE, kind="data",
                           title=_words(f"{_plural(len(problems), 'dataset problem')} touched no usable sample"),
                           sentence=f"The first: {problems[0]}.",
                           action="Fix the annotation file so every annotation names a listed image and every image has annotations."))
    return out


# --------------------------------------------------------------------------- accounting: rules and checks to findings


def _attribute(scope: str, causes: Sequence[_Cause], s: Samples | None) -> _Cause | None:
    """The shortcut cause of a heatmap/behaviour rule of ``scope``: its confirmed strategies' members are at
    least half of the scope's right-for-wrong-reason samples (DESIGN §13); the cause holding most of them."""
    if s is None:
        return None
    shortcuts = [c for c in causes if c.finding.kind == "shortcut" and (scope == "overall" or scope in c.finding.labels)]
    if not shortcuts:
        return None
    rf = (s.flag == RFWR) & s.in_scope(scope)
    if not rf.any():
        return None
    masks = [_members_mask(s, c.members) & rf for c in shortcuts]
    union = np.logical_or.reduce(masks)
    if union.sum() < ATTRIBUTION_SHARE * rf.sum():
        return None
    return shortcuts[int(np.argmax([m.sum() for m in masks]))]


def _route(g: Mapping[str, Any], causes: list[_Cause], s: Samples | None, summary: Mapping[str, Any], level: float) -> str:
    """The finding id (a cause's) or rule group ("accuracy", "heatmap", ...) a failing rule belongs to."""
    agg, scope = g["aggregate"], g["scope"]
    if g["kind"] in CHANGE_KINDS:
        return "regression"
    if agg in STRATEGY_METRICS:
        mine = [c for c in causes if c.finding.kind == "shortcut" and (scope == "overall" or scope in c.finding.labels)]
        return mine[0].finding.id if mine else "heatmap"
    if agg in PROBE_METRICS:
        mine = [c for c in causes if c.finding.kind == "probe" and (scope == "overall" or scope in c.finding.labels)]
        if mine:
            return mine[0].finding.id
        extra = _strongest_probe(summary, scope, s, level)
        if extra is None:
            return "heatmap"
        causes.append(extra)
        return extra.finding.id
    if agg == "background_gap":
        found = next((c for c in causes if c.finding.kind == "background"), None) or _background_cause(summary, level)
        if found is None:
            return "heatmap"
        if found not in causes:
            causes.append(found)
        return found.finding.id
    for group, metrics in (("accuracy", ACCURACY_METRICS), ("no_signal", NO_SIGNAL_METRICS), ("data", DATA_METRICS)):
        if agg in metrics:
            return group
    cause = _attribute(scope, causes, s)
    if cause is not None:
        return cause.finding.id
    return "behaviour" if agg in BEHAVIOUR_METRICS else "heatmap"


def build(summary: Mapping[str, Any], samples: Any = None, baseline: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """summary.json's ``findings`` (DESIGN §13) from its other sections, samples.csv (a DataFrame or a mapping of
    columns; None: no attribution and no evidence) and the baseline audit's summary (for ``since_baseline``)."""
    prov = summary.get("provenance") or {}
    level = float(((prov.get("config_resolved") or {}).get("statistics") or {}).get("interval", 0.9))
    s = Samples.of(samples, prov.get("target", "predicted")) if samples is not None else None
    swap = (summary.get("probes") or {}).get("background_swap")
    causes = [_shortcut_cause(g, s, level, swap) for g in _groups(_confirmed(summary))] + _probe_causes(summary, s, level)
    gate = summary.get("gate", [])
    routed: dict[str, list[int]] = {}
    for i, g in enumerate(gate):
        if g["status"] == FAIL:
            routed.setdefault(_route(g, causes, s, summary, level), []).append(i)
    checks = [c for c in (summary.get("trust") or {}).get("checks", []) if c["status"] == FAIL]
    signal = [c for c in checks if c["name"] == "heatmap_signal"]
    findings = [_with_rules(c.finding, routed.pop(c.finding.id, []), gate) for c in causes]
    if not any(c.finding.kind == "shortcut" for c in causes):
        bg = _background_cause(summary, level)
        if bg is not None and bg.finding.id not in {c.finding.id for c in causes} and _float(swap.get("background_gap_lo")) >= _min_effect(summary):
            findings.append(bg.finding)
    builders = {
        "accuracy": lambda r: _accuracy(r, s, level, summary), "heatmap": lambda r: _heatmap(r, s, level, summary, causes),
        "behaviour": lambda r: _behaviour(r, s, level), "regression": lambda r: _regression(r, level),
        "data": lambda r: _data(r, level, summary), "no_signal": lambda r: _no_signal(r, signal, s, level, summary),
    }
    for group, build_one in builders.items():
        idx = routed.pop(group, [])
        if idx or (group == "no_signal" and signal):
            found = build_one([gate[i] for i in idx])
            findings.append(_with_rules(found, idx, gate, tuple(c["name"] for c in signal) if group == "no_signal" else ()))
    findings += [_trust(c, s) for c in checks if c["name"] != "heatmap_signal"]
    findings += _notes(summary) + _coarse(summary, s) + _resize(summary)
    findings = _unique_ids(sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), -_sortable(f.effect), f.id)))
    return [f.record() for f in since_baseline(findings, baseline)]


def _min_effect(summary: Mapping[str, Any]) -> float:
    return float(((summary.get("probes") or {}).get("settings") or {}).get("min_effect", 0.2))


def _sortable(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def _with_rules(f: Finding, idx: Sequence[int], gate: Sequence[Mapping[str, Any]], checks: tuple[str, ...] = ()) -> Finding:
    """The finding with the rules (and checks) it accounts for, and the severity they give it."""
    severity = BLOCKER if idx else WARNING if (checks or f.kind in ("shortcut", "probe", "background", "trust", "no_signal")) else f.severity
    effect = f.effect
    if idx and f.kind not in ("shortcut", "probe", "background"):
        effect = max(_gap(gate[i]) for i in idx)
    return replace(f, rules=tuple(gate[i]["label"] for i in idx), rule_index=tuple(idx), checks=f.checks + checks, severity=severity,
                   effect=effect)


def _gap(g: Mapping[str, Any]) -> float:
    """How far a failing rule's compared value lies beyond its threshold (0 when undefined)."""
    v = _float(g.get("compared") if g.get("compared") is not None else g.get("value"))
    return 0.0 if math.isnan(v) else abs(v - _float(g["threshold"]))


def _unique_ids(findings: list[Finding]) -> list[Finding]:
    """Ids are unique: a second finding with the same id gets "#2" (two causes that look alike)."""
    seen: dict[str, int] = {}
    out = []
    for f in findings:
        seen[f.id] = seen.get(f.id, 0) + 1
        out.append(f if seen[f.id] == 1 else replace(f, id=f"{f.id}#{seen[f.id]}"))
    return out


def since_baseline(findings: list[Finding], baseline: Mapping[str, Any] | None) -> list[Finding]:
    """``new`` / ``persisting`` against the baseline's findings; its findings that are gone follow as ``resolved``
    notes. Unchanged (null) without a baseline or when the baseline predates findings."""
    if baseline is None or "findings" not in baseline:
        return findings
    before = {f["id"]: f for f in baseline.get("findings") or [] if f.get("since_baseline") != "resolved"}
    now = [replace(f, since_baseline="persisting" if f.id in before else "new") for f in findings]
    ids = {f.id for f in findings}
    gone = [Finding(id=i, severity=NOTE, kind=f["kind"], title=f["title"], sentence=f"Resolved since the baseline: {f['sentence']}",
                    action="Nothing to do: the baseline's finding is no longer found.", labels=tuple(f.get("labels") or ()),
                    since_baseline="resolved") for i, f in before.items() if i not in ids]
    return now + gone


def accounts(findings: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> tuple[list[int], list[int], list[str], list[str]]:
    """The accounting rule's misses: (failing rules in no finding, rules in more than one, failed checks in none,
    checks in more than one) — all empty when the rule holds (tests, and a guard in the run)."""
    counts: dict[int, int] = {}
    for f in findings:
        for i in f.get("rule_index", []):
            counts[i] = counts.get(i, 0) + 1
    failing = [i for i, g in enumerate(summary.get("gate", [])) if g["status"] == FAIL]
    check_counts: dict[str, int] = {}
    for f in findings:
        for c in f.get("checks", []):
            check_counts[c] = check_counts.get(c, 0) + 1
    failed = [c["name"] for c in (summary.get("trust") or {}).get("checks", []) if c["status"] == FAIL]
    return ([i for i in failing if counts.get(i, 0) == 0], [i for i, k in counts.items() if k > 1],
            [c for c in failed if check_counts.get(c, 0) == 0], [c for c, k in check_counts.items() if k > 1])

"""View data of the report's first screen (DESIGN §13): the verdict, "k of n rules pass", one card per
blocker and warning (title, sentence, evidence images, what to do), what passed; and which sections
open because they hold a finding's evidence. Built before rendering from summary.json's ``findings``
(no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pipeline.numbers import aggregate_text
from pipeline.numbers import rule_counts
from pipeline.records.plain import Json
from pipeline.report.pictures import crop_uri, overlay

SECTIONS_OF_KIND = {
    "shortcut": ("strategies", "gallery"), "probe": ("probes",), "background": ("probes",), "property": ("probes",),
    "heatmap": ("evidence", "strategies", "gallery"), "behaviour": ("need-object", "gallery"), "accuracy": ("classes", "gallery"),
    "trust": ("need-object",), "no_signal": ("gallery",), "regression": ("baseline",), "data": ("skipped",),
}
"""The report sections that hold a finding's evidence (opened when the finding is a blocker or a warning)."""

GALLERY_FLAGS_OF_KIND = {
    "shortcut": ("right_for_wrong_reason",), "heatmap": ("right_for_wrong_reason", "distracted"),
    "behaviour": ("right_for_wrong_reason", "ok"), "accuracy": ("distracted", "confused_on_object"), "no_signal": ("no_signal",),
}
"""The gallery's flags a finding of each kind concerns: cards with them are shown, the rest folded."""

GLOSSES = {
    "focus_score": "the share of the heatmap inside the object's boxes, corrected for chance: 0 = no better than a uniform map, "
                   "1 = all of it inside, below 0 = it avoids the object",
    "pointing_game": "the share of samples whose heatmap peak lies inside a box",
    "strategy": "a group of samples whose heatmaps look alike: one way the model decides",
    "spray": "spectral relevance analysis, Lapuschkin et al. 2019: spectral clustering of the heatmaps",
    "hot_spot": "the part of a strategy's mean heatmap that its objects do not explain",
    "consistency": "how alike the members' pixels in the hot spot are; a fixed overlay is consistent on changing backgrounds",
    "flatness": "the share of the hot spot's pixels within 8 of 255 of its median colour; a uniform marker is flat",
    "kappa": "Cohen's κ: agreement beyond what the margins give by chance; 0 = chance, 1 = perfect",
    "wilson": "Wilson interval: a confidence interval for a rate that stays inside 0–1 on small samples",
}
"""One-line glosses of the technical terms, shown where each first appears."""

CROP_SIDE = 150  # px, a hot spot's crop enlarged nearest-neighbour to at least this long side


@dataclass(frozen=True)
class EvidenceImage:
    """One evidence item: its images (one, or before and after) and the caption (the model's answer and confidence)."""

    uris: tuple[str, ...]
    caption: str
    view: str


@dataclass(frozen=True)
class FindingCard:
    """A finding as summary.json has it (``finding``: id, severity, title, sentence, action, rules, checks,
    since_baseline, ...) and its evidence rendered."""

    finding: Mapping[str, Json]
    evidence: tuple[EvidenceImage, ...] = ()


@dataclass(frozen=True)
class FirstScreen:
    cards: tuple[FindingCard, ...]  # blockers, then warnings
    notes: tuple[FindingCard, ...]  # notes (and findings resolved since the baseline), one line each
    rule_counts: str  # "5 of 7 rules pass (1 not evaluated)"
    passed: str  # one plain line of what passed
    open_sections: frozenset[str]  # section ids that hold a blocker's or warning's evidence
    gallery_flags: tuple[str, ...]  # flags whose gallery cards are shown unfolded


def passed_line(summary: Mapping[str, Json]) -> str:
    """What passed, in plain words, a class rule's classes together: "accuracy 0.97 (at least 0.9); class mean energy in
    box: circle 0.54, square 0.38 (at least 0.25). Trust checks passed: randomisation."."""
    groups: dict[tuple[str, str, float], list[Mapping[str, Json]]] = {}
    for r in summary["gate"]:
        if r["status"] == "pass":
            groups.setdefault((r["metric"], r["kind"], r["threshold"]), []).append(r)
    parts = []
    for (metric, kind, threshold), rules in groups.items():
        bound = {"min": "at least", "max": "at most", "max_drop": "drop at most", "max_rise": "rise at most"}[kind]

        def shown(r: Mapping[str, Json]) -> str:
            return aggregate_text(r.get("aggregate", metric), r["value"], 2)
        values = (shown(rules[0]) if rules[0]["scope"] == "overall" and len(rules) == 1
                  else ": " + ", ".join(f"{r['scope']} {shown(r)}" for r in rules))
        parts.append(f"{metric.replace('_', ' ')}{'' if values.startswith(':') else ' '}{values} ({bound} {threshold:g})")
    checks = [c["name"].replace("_", " ") for c in (summary.get("trust") or {}).get("checks", []) if c["status"] == "pass"]
    text = ("Passed: " + "; ".join(parts)) if parts else "No gate rule passed"
    return text + (f". Trust checks passed: {', '.join(checks)}." if checks else ".")


def build_first_screen(summary: Mapping[str, Json], images: Callable[[Mapping[str, Json]], EvidenceImage | None]) -> FirstScreen:
    """``images(item)`` renders one evidence item of a finding (None when its image cannot be read)."""
    findings = summary.get("findings") or []
    cards, notes = [], []
    for f in findings:
        if f["severity"] == "note":
            notes.append(FindingCard(f))
        else:
            cards.append(FindingCard(f, tuple(e for e in (images(item) for item in f.get("evidence", [])) if e is not None)))
    active = [f for f in findings if f["severity"] != "note"]
    sections = {s for f in active for s in _sections(f)}
    flags = tuple(dict.fromkeys(flag for f in active for flag in GALLERY_FLAGS_OF_KIND.get(f["kind"], ())))
    return FirstScreen(tuple(cards), tuple(notes), rule_counts(summary["gate"]), passed_line(summary), frozenset(sections), flags)


def _sections(f: Mapping[str, Json]) -> tuple[str, ...]:
    if f["id"].startswith("trust:prediction_spread"):
        return ("classes",)
    return SECTIONS_OF_KIND.get(f["kind"], ())


class EvidenceImages:
    """Renders a finding's evidence items from the audit's images: ``heat`` (the gallery's overlay thumbnail),
    ``crop`` (the hot spot's pixels, enlarged nearest-neighbour), ``before_after`` (a probe's exemplar: the
    clean image with its map, the edited one with the map of the class it flipped into)."""

    def __init__(self, rows: Mapping[str, int], thumbnail: Callable[[int], Any], image: Callable[[int], np.ndarray | None],
                 probes: Any = None, properties: Any = None):
        self.rows, self.thumbnail, self.image, self.probes, self.properties = rows, thumbnail, image, probes, properties

    def __call__(self, item: Mapping[str, Json]) -> EvidenceImage | None:
        row = self.rows.get(str(item.get("sample_id")))
        if row is None:
            return None
        view = item.get("view")
        if view == "heat":
            got = self.thumbnail(row)
            return None if got is None else EvidenceImage((got[1],), item["caption"], view)
        if view == "crop":
            return self._crop(row, item)
        if view == "before_after":
            return self._before_after(row, item)
        return None

    def _crop(self, row: int, item: Mapping[str, Json]) -> EvidenceImage | None:
        image = self.image(row)
        rect = item.get("rect")
        if image is None or not rect:
            return None
        h, w = image.shape[:2]
        x0, y0, x1, y1 = (int(round(v)) for v in (rect[0] * w, rect[1] * h, rect[2] * w, rect[3] * h))
        pixels = image[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)]
        if not pixels.size:
            return None
        return EvidenceImage((crop_uri(pixels, CROP_SIDE),), item["caption"], "crop")

    def _before_after(self, row: int, item: Mapping[str, Json]) -> EvidenceImage | None:
        """A probe's exemplar (``probe``, ``place``, ``label``) or a property edit's (``property``, ``direction``, ``label``)."""
        if "property" in item:
            owners = [r for r in getattr(self.properties, "rows", ()) if (r.property, r.direction, r.label) ==
                      (item.get("property"), item.get("direction"), item.get("label"))]
        else:
            owners = [r for r in getattr(self.probes, "rows", ()) if (r.probe, r.place, r.label) ==
                      (item.get("probe"), item.get("place"), item.get("label"))]
        for r in owners:
            for x in r.exemplars:
                if x.row == row:
                    return EvidenceImage((overlay(x.before, x.before_cam, []), overlay(x.after, x.after_cam, [])), item["caption"],
                                         "before_after")
        return None


def open_attr(section: str, screen: FirstScreen) -> str:
    """``open`` for a section that holds a finding's evidence, "" otherwise (the template's <details>)."""
    return "open" if section in screen.open_sections else ""


def gallery_split(cards: Sequence[Mapping[str, Json]], flags: Sequence[str], shown: int) -> tuple[list, list]:
    """(cards shown, cards folded): up to ``shown`` cards whose flag a finding concerns, the rest folded."""
    concerned = [c for c in cards if c["flag"] in flags][:shown]
    ids = {id(c) for c in concerned}
    return concerned, [c for c in cards if id(c) not in ids]

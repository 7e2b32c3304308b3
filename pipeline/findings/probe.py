"""Fooling probes (DESIGN §11) as causes: one artifact and class at several places is one finding."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence


from pipeline.findings.places import rect_of
from pipeline.findings.record import Finding, KIND_WORDS, MAX_EVIDENCE, MAX_TITLE_WORDS, Samples, WARNING, and_join, as_float, interval_text, num, words
from pipeline.findings.shortcut import Cause


def probe_rect(r: Mapping[str, Any]) -> tuple[float, ...]:
    return rect_of(r, ("x0", "y0", "x1", "y1"))


def probe_what(row: Mapping[str, Any]) -> str:
    return f"The '{row['probe']}' overlay" if row["kind"] == "overlay" else KIND_WORDS.get(row["kind"], f"The '{row['probe']}' probe")


def probe_cause(rows: Sequence[Mapping[str, Any]], s: Samples | None, level: float, overlays: Mapping[str, str]) -> Cause:
    """One finding for one artifact and class at one or more places (``rows`` strongest first)."""
    top = rows[0]
    label, what = top["class"], probe_what(top)
    froms = sorted({f for r in rows for f in r.get("from_labels", [])})
    title = f"{what} turns {and_join(froms)} images into {label}"
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
    finding = Finding(id=f"probe:{label}:{top['probe']}@{'+'.join(places)}", severity=WARNING, kind="probe", title=words(title),
                      sentence=sentence, action=action, labels=(label,), place=and_join([place_words_of_probe(r) for r in rows]),
                      rects=tuple(probe_rect(r) for r in rows), evidence=tuple(evidence[:MAX_EVIDENCE]),
                      effect=as_float(top.get("effect")))
    return Cause(finding)


def place_words_of_probe(r: Mapping[str, Any]) -> str:
    """A probe row's place in words ("at the top-left corner", "where the config puts it (...)")."""
    from pipeline.probes.stage import place_words as probe_place

    return probe_place(str(r["place"]), probe_rect(r))


def overlay_files(probes: Mapping[str, Any]) -> dict[str, str]:
    """Overlay name -> its image's file name (for the action: the file to look for)."""
    return {o["name"]: str(o.get("path", "")).rsplit("/", 1)[-1] for o in (probes.get("settings") or {}).get("overlays", [])}


def probe_causes(summary: Mapping[str, Any], s: Samples | None, level: float) -> list[Cause]:
    probes = summary.get("probes") or {}
    overlays = overlay_files(probes)
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in probes.get("rows", []):
        if r.get("fools"):
            groups.setdefault((r["probe"], r["class"]), []).append(r)
    causes = [probe_cause(sorted(g, key=lambda r: -as_float(r["effect"])), s, level, overlays) for g in groups.values()]
    return sorted(causes, key=lambda c: -c.finding.effect)


def strongest_probe(summary: Mapping[str, Any], scope: str, s: Samples | None, level: float) -> Cause | None:
    """For a failing probe rule with no fooling probe: the row with the largest effect (of the rule's class)."""
    probes = summary.get("probes") or {}
    rows = [r for r in probes.get("rows", []) if (scope == "overall" or r["class"] == scope) and not math.isnan(as_float(r.get("effect")))]
    if not rows:
        return None
    return probe_cause([max(rows, key=lambda r: as_float(r["effect"]))], s, level, overlay_files(probes))


def min_effect(summary: Mapping[str, Any]) -> float:
    return float(((summary.get("probes") or {}).get("settings") or {}).get("min_effect", 0.2))

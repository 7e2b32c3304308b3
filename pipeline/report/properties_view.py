"""View data of "What would fool it?"'s cues without a place (DESIGN §15): the class × property table, shortcuts first,
then fragility, then what only the data shows, and the before → after pairs of the edits that fool the model. Built
before rendering from a :class:`pipeline.properties.stage.PropertiesResult` (no TensorFlow)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from pipeline.numbers import fixed
from pipeline.properties.stage import (
    NONE,
    PropertiesResult,
    PropertyRow,
    edit_words,
    sentence,
)
from pipeline.numbers import format_value
from pipeline.report.pictures import overlay
from pipeline.report.probes_view import decided

CARDS = 4  # edits shown with before -> after pairs
VERDICT_WORDS = {"shortcut": "shortcut", "fragile": "fragile", "data": "data only"}


@dataclass(frozen=True)
class PropertyLine:
    label: str
    edit: str  # "a red background"
    verdict: str
    auc: str  # "0.97 [0.95, 0.99]"
    flip: str
    control: str
    effect: str
    interval: str
    heat: str
    sentence: str
    exemplars: tuple[tuple[str, str, str], ...] = ()  # (before, after) heatmap overlays and the answers
    n: str = ""  # the samples the edit ran on ("21, decided at 21 of 42" when it stopped early, DESIGN §18)


@dataclass(frozen=True)
class PropertiesView:
    n_shortcuts: int
    n_fragile: int
    n_data: int
    lines: tuple[PropertyLine, ...]  # every class × (property, direction) that says something, shortcuts first
    n_quiet: int  # rows where neither side says anything
    cards: tuple[PropertyLine, ...]  # shortcuts and fragility with their pairs, strongest first
    skipped: str
    cost: str
    cost_short: str  # for the report's run line


def _line(row: PropertyRow, caption: Callable[[int], str], exemplars: bool) -> PropertyLine:
    e = row.effect
    shown = tuple((overlay(x.before, x.before_cam, []), overlay(x.after, x.after_cam, []),
                   f"{caption(x.row)} → {row.label} {format_value(x.after_confidence, 2)}".strip())
                  for x in row.exemplars) if exemplars else ()
    auc = "—" if math.isnan(row.auc) else f"{fixed(row.auc, 2)} [{fixed(row.auc_lo, 2)}, {fixed(row.auc_hi, 2)}]"
    return PropertyLine(
        label=row.label, edit=edit_words(row.property, row.direction), verdict=VERDICT_WORDS.get(row.verdict, row.verdict), auc=auc,
        flip=format_value(row.flip, 2), control=format_value(row.control_flip, 2), effect=format_value(e.value, 2),
        interval="none (too few samples)" if math.isnan(e.low) else f"{fixed(e.low, 2)} – {fixed(e.high, 2)}",
        heat=format_value(row.heat_off_region, 2), sentence=sentence(row), exemplars=shown, n=decided(row.n, row.n_max))


def build_properties_view(result: PropertiesResult | None, caption: Callable[[int], str] = lambda row: "") -> PropertiesView | None:
    """``caption(row)``: the model's answer on a clean sample."""
    if result is None:
        return None
    telling = [r for r in result.rows if r.verdict != NONE]
    lines = tuple(_line(r, caption, False) for r in telling)
    cards = tuple(_line(r, caption, True) for r in telling if r.verdict in ("shortcut", "fragile") and r.exemplars)[:CARDS]
    passes = result.passes
    cost = (f"{passes['edits']} forward passes ({result.n_samples} probe samples, each edit once, in shared batches) and "
            f"{passes['gradcam']} Grad-CAM passes on flipped images; the data side measured {result.n_data} images; "
            f"{result.seconds:.1f} s ({result.data_seconds:.1f} s of it the data side)")
    skipped = "; ".join(result.skipped)
    short = f"properties: {passes['edits']} forward + {passes['gradcam']} Grad-CAM passes, {result.seconds:.1f} s"
    return PropertiesView(sum(r.verdict == "shortcut" for r in telling), sum(r.verdict == "fragile" for r in telling),
                          sum(r.verdict == "data" for r in telling), lines, len(result.rows) - len(telling), cards, skipped, cost, short)

"""View data of the report section "Where does the model look instead?" (DESIGN §10), built before
rendering from a :class:`pipeline.strategies.stage.StrategiesResult` (no TensorFlow)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.evidence import effects
from pipeline.numbers import format_value
from pipeline.report.pictures import crop_uri, heat_map
from pipeline.strategies import analysis as st
from pipeline.strategies.stage import (
    LabelStrategies,
    StrategiesResult,
    Strategy,
    sentence,
)

SIDE = 112  # px, the small maps' side


@dataclass(frozen=True)
class StrategyCard:
    label: str
    id: int
    n: int
    share: str
    accuracy: str
    focus: str
    status: str  # "confirmed shortcut" | "watched, unused in this data" | "not confirmed" | "not tested" | "looks at its objects"
    confirmed: bool
    place: str
    kind: str  # what the hot spot holds: "overlay", "red patch", "black border", "background", "" (none read)
    map_uri: str  # mean map, hot spot outlined
    crops: tuple[str, ...]  # the hot spot's pixels in up to 4 exemplars, enlarged nearest-neighbour (data URIs)
    exemplars: tuple[str, ...]  # overlay thumbnails (data URIs)
    sentence: str
    numbers: tuple[tuple[str, str], ...]  # (name, value) for the small table under the sentence


@dataclass(frozen=True)
class LabelRow:
    label: str
    n: int
    map_uri: str
    coverage_uri: str
    reading: str
    note: str
    stability: str
    strategies: tuple[StrategyCard, ...]

    @property
    def shown(self) -> tuple[StrategyCard, ...]:
        """The card shown unfolded: the first confirmed shortcut, else the first tested strategy (none when all are harmless)."""
        first = next((c for c in self.strategies if c.confirmed), None) or next(
            (c for c in self.strategies if c.status in ("not confirmed", "watched, unused in this data")), None)
        return (first,) if first is not None else ()

    @property
    def folded(self) -> tuple[StrategyCard, ...]:
        """The class's other strategy cards, one click away."""
        return tuple(c for c in self.strategies if c not in self.shown)


@dataclass(frozen=True)
class StrategiesView:
    rows: tuple[LabelRow, ...]  # labels with a confirmed shortcut first
    n_confirmed: int
    confirmed: tuple[str, ...]  # one sentence per confirmed shortcut, for the section's top
    settings: str


def small_map(values: np.ndarray, *, top: float | None = None, outline: tuple[int, int, int, int] | None = None) -> str:
    """(h, w) map -> a SIDE-px PNG (jet; divided by ``top``, default its maximum), cells kept square-edged;
    ``outline`` cells (r0, c0, r1, c1) drawn as a white frame with a dark edge."""
    return heat_map(values, side=SIDE, top=top, outline=outline)


FOLLOWS, BARELY = 3.0, 1.0  # on-object share / object area: heat follows the objects at 3x their share, avoids them below 1x


def reading(lab: LabelStrategies, threshold: float = 0.5) -> str:
    """A label's atlas in one sentence that never contradicts its numbers: the on-object share, the
    objects' area and their ratio, then "heat follows the objects" (ratio ≥ 3), "heat barely follows
    the objects" (1-3) or "heat avoids the objects" (< 1); where off-object heat has a hot spot
    (``threshold``: strategies.hotspot_threshold), where it is strongest."""
    a = lab.atlas
    text = f"{a.on_object:.0%} of the heat lies on the objects, which cover {a.object_area:.0%} of the image on average"
    if not a.object_area > 0:
        return text + "."
    ratio = a.on_object / a.object_area
    verdict = ("heat follows the objects" if ratio >= FOLLOWS else "heat barely follows the objects" if ratio >= BARELY
               else "heat avoids the objects")
    text += f" ({ratio:.1f}× their share): {verdict}"
    cells = st.hot_spot_cells(a.mean_map, a.mean_coverage, threshold)
    if cells is None:
        return text + "."
    return text + f"; strongest off the objects at the {st.place_name(st.rect_relative(cells, a.mean_map.shape))}."


def kind_text(s: Strategy) -> str:
    """What the hot spot holds in two words: "overlay", "red patch", "black border", "background"."""
    c = s.content
    if c is None:
        return ""
    return f"{c.colour} {c.kind}" if c.colour else c.kind


def _headline(s: Strategy) -> str:
    """One line per confirmed shortcut for the section's top (the full sentence is in the class's row)."""
    t = s.tests
    holds = f" ({kind_text(s)})" if s.content is not None else ""
    return (f"{s.label}, strategy {s.id} ({s.share:.0%} of its samples): the {st.place_name(s.hot_spot.rect)}{holds} — blanking it costs "
            f"{t.dependence.value:.0%} accuracy beyond a blank elsewhere; pasting it turns {t.transplant_flip:.0%} of other classes' "
            f"images into {s.label} (controls {t.control_flip:.0%})")


def _status(s: Strategy) -> str:
    if s.confirmed:
        return "confirmed shortcut"
    if s.watched_unused:
        return "watched, unused in this data"
    if s.tests is not None:
        return "not confirmed"
    if s.hot_spot is None or s.not_tested.startswith("not tested: off-object share"):
        return "looks at its objects"
    return "not tested"


def _numbers(s: Strategy) -> tuple[tuple[str, str], ...]:
    h, t = s.hot_spot, s.tests
    out = [(flag.replace("_", " "), str(n)) for flag, n in sorted(s.flag_mix.items(), key=lambda kv: -kv[1])]
    if h is not None:
        out += [("hot spot share", format_value(h.share)), ("concentration", format_value(h.concentration, 1)),
                ("off-object share", format_value(h.off_object_share))]
    if s.content is not None:
        c = s.content
        out += [("consistency", f"{format_value(c.consistency, 2)} (elsewhere {format_value(c.consistency_baseline, 2)})"),
                ("flatness", format_value(c.flatness, 2))]
    if t is not None:
        out += [("hot-spot accuracy", format_value(t.hotspot_accuracy)), ("control accuracy", format_value(t.control_accuracy)),
                ("dependence", effect_text(t.dependence)), ("transplant effect", effect_text(t.transplant))]
    return tuple(out)


def effect_text(e: effects.Effect) -> str:
    """"0.40 [0.24, 0.55]"; an effect without an interval says why."""
    if math.isnan(e.value):
        return "undefined (no sample)"
    if math.isnan(e.low) or math.isnan(e.high):
        return f"{format_value(e.value)} (no interval: too few samples)"
    return f"{format_value(e.value)} [{format_value(e.low)}, {format_value(e.high)}]"


def _card(s: Strategy, interval: float, thumb: Callable[[int], str | None]) -> StrategyCard:
    status = _status(s)
    # a strategy that looks at its objects has no off-object hot spot: no place, content or crops beside that word
    h = s.hot_spot if status != "looks at its objects" else None
    return StrategyCard(
        label=s.label, id=s.id, n=int(s.rows.size), share=f"{s.share:.0%}", accuracy=format_value(s.accuracy),
        focus=format_value(s.mean_focus_score), status=status, confirmed=s.confirmed,
        place=st.place_name(h.rect) if h else "—", kind=kind_text(s) if h else "", map_uri=small_map(s.mean_map, outline=h.cells if h else None),
        crops=tuple(crop_uri(c) for c in s.crops) if h else (),
        exemplars=tuple(u for u in (thumb(r) for r in s.exemplars) if u), sentence=sentence(s, interval), numbers=_numbers(s),
    )


def build_strategies_view(result: StrategiesResult | None, thumb: Callable[[int], str | None]) -> StrategiesView | None:
    """``thumb(row)`` -> the gallery's overlay thumbnail of a sample (None when its image cannot be read)."""
    if result is None:
        return None
    cfg = result.settings
    rows = []
    for lab in result.labels:
        cover = lab.atlas.mean_coverage
        rows.append(LabelRow(
            label=lab.label, n=lab.atlas.n, map_uri=small_map(lab.atlas.mean_map), coverage_uri=small_map(cover, top=1.0),
            reading=reading(lab, cfg.hotspot_threshold), note=lab.note, stability=format_value(lab.stability, 2) if lab.clustered else "—",
            strategies=tuple(sorted((_card(s, cfg.interval, thumb) for s in lab.strategies), key=lambda c: not c.confirmed)),
        ))
    rows.sort(key=lambda r: not any(c.confirmed for c in r.strategies))
    confirmed = tuple(_headline(s) for lab in result.labels for s in lab.strategies if s.confirmed)
    settings = (f"kNN graph k = {cfg.neighbours}, at most {cfg.max_strategies} strategies (eigengap), hot spot at "
                f"{cfg.hotspot_threshold:g} of the off-object peak, tested when ≥ {cfg.min_off_object:.0%} of its heat is off the objects, "
                f"{cfg.test_samples} samples and {cfg.controls} control placements per test, confirmed when an effect's "
                f"{cfg.interval:.0%} interval lower bound ≥ {cfg.min_effect:g}")
    return StrategiesView(tuple(rows), len(confirmed), confirmed, settings)

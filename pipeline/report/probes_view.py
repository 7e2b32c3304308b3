"""View data of the report section "What would fool it?" (DESIGN §11), built before rendering from a
:class:`pipeline.probes.stage.ProbesResult` (no TensorFlow)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from pipeline.config import ProbesConfig
from pipeline.numbers import fixed
from pipeline.probes.stage import (
    ProbeRow,
    ProbesResult,
    and_list,
    place_words,
    sentence,
    swap_sentence,
)
from pipeline.numbers import format_value
from pipeline.report.pictures import overlay, pixels_uri

TABLE_ROWS = 60  # the table lists the fooling rows and then the largest effects, up to this many
CARDS = 6  # fooling probes shown with exemplars
PLACE_WORDS = {"hot_spots": "every strategy's hot spot", "corners": "the four corners", "centre": "the centre"}


@dataclass(frozen=True)
class ProbeCard:
    probe: str
    kind: str
    place: str
    label: str
    fools: bool
    reads: bool  # the control alone fools off the object: a place the model reads (DESIGN §17)
    sentence: str
    n: str  # the samples it ran on: "43", or "21 (decided at 21 of 43)" when it stopped early (DESIGN §18)
    flip: str
    control: str
    effect: str
    interval: str
    accuracy: str
    heat: str
    exemplars: tuple[tuple[str, str, str], ...]  # (before, after) heatmap overlays (data URIs), and the answers "circle 0.98 → triangle 0.91"


@dataclass(frozen=True)
class SwapView:
    sentence: str
    numbers: tuple[tuple[str, str], ...]
    exemplars: tuple[tuple[str, str], ...]  # (the sample, on another class's background)


@dataclass(frozen=True)
class ProbesView:
    n_fooled: int
    read: tuple[str, ...]  # one sentence per (place, class) the model reads: any edit there turns images into the class
    cards: tuple[ProbeCard, ...]  # fooling probes with exemplars, largest effect first
    table: tuple[ProbeCard, ...]  # fooling rows first, then by effect
    n_rows: int
    swap: SwapView | None
    cost: str
    cost_short: str  # for the report's run line
    settings: str


def _card(row: ProbeRow, exemplars: bool, caption: Callable[[int], str] = lambda row: "") -> ProbeCard:
    """``caption(row)``: the model's answer on the clean sample ("circle 0.98")."""
    e = row.effect
    shown = tuple((overlay(x.before, x.before_cam, []), overlay(x.after, x.after_cam, []),
                   f"{caption(x.row)} → {row.label} {format_value(x.after_confidence, 2)}".strip())
                  for x in row.exemplars) if exemplars else ()
    return ProbeCard(
        probe=row.probe, kind=row.kind, place=place_words(row.place, row.rect), label=row.label, fools=row.fools, reads=row.reads,
        sentence=sentence(row),
        n=decided(row.n, row.n_max), flip=format_value(row.flip, 2), control=format_value(row.control_flip, 2), effect=format_value(e.value, 2),
        interval="none (too few samples)" if math.isnan(e.low) else f"{fixed(e.low, 2)} – {fixed(e.high, 2)}", accuracy=format_value(row.accuracy, 2),
        heat=format_value(row.artifact_heat, 2), exemplars=shown,
    )


def decided(n: int, n_max: int) -> str:
    """"43", or "21, decided at 21 of 43" for a test that stopped at a look before its maximum (DESIGN §18)."""
    return f"{n}, decided at {n} of {n_max}" if 0 < n < n_max else str(n)


def _swap(result: ProbesResult, level: float) -> SwapView | None:
    swap = result.swap
    if swap is None:
        return None
    if swap.note:
        return SwapView(swap_sentence(swap), (), ())
    g = swap.gap
    numbers = (("probe samples swapped", decided(swap.n, swap.n_max)), ("accuracy, same-class background", format_value(swap.accuracy_same, 2)),
               ("accuracy, other-class background", format_value(swap.accuracy_other, 2)),
               ("background gap", f"{format_value(g.value, 2)} [{format_value(g.low, 2)}, {format_value(g.high, 2)}] ({level:.0%})"),
               ("answer the background's class", f"{swap.flip:.0%}"))
    text = swap_sentence(swap)
    return SwapView(text[0].upper() + text[1:], numbers, tuple((pixels_uri(a), pixels_uri(b)) for _, a, b in swap.exemplars))


def _where(cfg: ProbesConfig) -> str:
    """Where each probe goes, as the stage places it: the frame around the image, an overlay with
    ``at`` only there, the rest at ``places`` (with their own widths)."""
    placed = [a for a in cfg.artifacts if a != "frame"]
    words = [PLACE_WORDS.get(place, place) for place in cfg.places]
    where = f"at {and_list(words) if words else 'no place'}" + (f" (corners inset {cfg.margin:.0%})" if "corners" in cfg.places else "")
    parts = [f"{', '.join(placed)}, {cfg.size:.0%} of the input width, {where}"] if placed else []
    if "frame" in cfg.artifacts:
        parts.append("frame around the image")
    for o in cfg.overlays:
        at = f"with its top-left at x {o.at[0]:.2f}, y {o.at[1]:.2f}" if o.at is not None else where
        parts.append(f"{o.name} (the overlay {o.path.name}), {o.size:.0%} of the input width, {at}")
    return "; ".join(parts) or "none"


def build_probes_view(result: ProbesResult | None, level: float, caption: Callable[[int], str] = lambda row: "") -> ProbesView | None:
    """``level``: the intervals' two-sided level (statistics.interval); ``caption(row)`` the model's answer on a clean sample."""
    if result is None:
        return None
    cfg = result.settings
    fooling = result.fooling()
    others = sorted((r for r in result.rows if not r.fools), key=lambda r: (not r.reads, -(r.effect.value if not math.isnan(r.effect.value) else -9)))
    table = tuple(_card(r, False) for r in (fooling + others)[:TABLE_ROWS])
    passes = result.passes
    forward = passes["edits"] + passes["controls"] + passes["swaps"]
    cost = (f"{result.note}; " if result.note else "") + (f"{result.n_samples} probe samples ({', '.join(f'{k} {v}' for k, v in result.samples_per_label.items())}); "
            f"{forward} forward passes ({passes['edits']} edited, {passes['controls']} controls, {passes['swaps']} background swaps) "
            f"and {passes['gradcam']} Grad-CAM passes on flipped images, in {result.seconds:.1f} s")
    settings = (f"probes: {_where(cfg)}; a probe fools the model when its effect's {level:.0%} interval lower bound "
                f"≥ {cfg.min_effect:g}")
    short = f"probes: {forward} forward + {passes['gradcam']} Grad-CAM passes, {result.seconds:.1f} s"
    return ProbesView(len(fooling), read_places(result), tuple(_card(r, True, caption) for r in fooling[:CARDS]), table, len(result.rows),
                      _swap(result, level), cost, short, settings)


def read_places(result: ProbesResult) -> tuple[str, ...]:
    """"The top-left corner, flat-filled, turns 45% of other images into covid (interval 0.31–0.60)": one per (place,
    class) whose control alone fools off the object, its strongest control first."""
    best: dict[tuple[str, str], ProbeRow] = {}
    for r in sorted((r for r in result.rows if r.reads), key=lambda r: -r.control_flip):
        best.setdefault(r.place_key, r)
    return tuple(_upper_first(f"{place_words(r.place, r.rect)}, flat-filled, turns {r.control_flip:.0%} of {and_list(r.from_labels)} images into "
                 f"{r.label} (interval {fixed(r.control_low, 2)}–{fixed(r.control_high, 2)})") for r in best.values())


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]

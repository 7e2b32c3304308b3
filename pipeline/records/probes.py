"""summary.json's ``probes`` section, typed: the probe rows (probes.csv and more), the background swap, the property rows
(``probes.properties``). The stages write these records; findings and the report read them back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Mapping

from pipeline.records.plain import (
    Json,
    Record,
    numbers,
    real,
    record_or_none,
    records_of,
    table,
    text,
)

CLASS = {"key": "class"}


@dataclass(frozen=True)
class ProbeRecord(Record):
    """One artifact at one place, tested on one class (DESIGN §11, §17). Rectangles are relative (x0, y0, x1, y1) of the
    model's input; ``flip`` the share of other classes' images turned into ``label``, ``control_flip`` the same area
    flat-filled; ``effect`` their paired difference with its interval; ``reads`` the control alone fools off the objects."""

    probe: str
    kind: str
    place: str
    x0: float
    y0: float
    x1: float
    y1: float
    label: str = field(metadata=CLASS)
    n: int
    n_max: int
    flip: float
    control_flip: float
    effect: float
    effect_lo: float
    effect_hi: float
    accuracy: float
    artifact_heat: float
    fools: bool
    n_flipped: int
    heat_area: float
    from_labels: tuple[str, ...]
    sentence: str
    control_lo: float
    control_hi: float
    object_overlap: float
    reads: bool
    place_words: str  # "at the top-left corner", as the stage says it
    what: str  # "a stock-photo watermark", "the overlay 'logo'"
    exemplar_rows: tuple[int, ...]
    exemplar_after_confidence: tuple[float, ...]

    @property
    def rect(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class SwapRecord(Record):
    """The background swap (DESIGN §11): each object pasted onto another class's background; ``per_class`` label -> gap."""

    n: int
    n_max: int
    accuracy_same: float
    accuracy_other: float
    background_gap: float | None
    background_gap_lo: float
    background_gap_hi: float
    background_flip: float
    per_class: Mapping[str, Mapping[str, float]]
    note: str | None
    exemplar_rows: tuple[int, ...]
    sentence: str

    NESTED: ClassVar = {"per_class": table}


@dataclass(frozen=True)
class PropertyRecord(Record):
    """One property pushed one way on one class's backgrounds (DESIGN §15): the data side (``auc`` of the class's images
    against the others', its interval, ``data_state``) and the model side (``flip`` against ``control_flip``, ``effect``);
    ``verdict``: shortcut | fragile | data | none."""

    label: str = field(metadata=CLASS)
    property: str
    direction: str
    auc: float
    auc_lo: float
    auc_hi: float
    flip: float
    control_flip: float
    effect: float
    effect_lo: float
    effect_hi: float
    heat_off_region: float
    verdict: str
    n: int
    n_max: int
    n_data: int
    n_flipped: int
    from_labels: tuple[str, ...]
    tells_apart: bool
    fools: bool
    data_state: str
    sentence: str
    edit_words: str  # "a red background"
    data_words: str  # "redder"
    exemplar_rows: tuple[int, ...]
    exemplar_after_confidence: tuple[float, ...]
    marked_row: int
    marked_value: float
    others_value: float


@dataclass(frozen=True)
class ProbesRecord:
    """What findings and the report read of ``probes``: its rows, the swap, the property rows, ``min_effect`` and the
    overlays' files (name -> file name)."""

    rows: tuple[ProbeRecord, ...] = ()
    background_swap: SwapRecord | None = None
    properties: tuple[PropertyRecord, ...] = ()
    min_effect: float = 0.2
    overlays: Mapping[str, str] = field(default_factory=dict)
    overall: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, data: Mapping[str, Json] | None) -> "ProbesRecord":
        data = data or {}
        settings = data.get("settings") or {}
        assert isinstance(settings, Mapping)
        overlays = {text(o.get("name")): text(o.get("path")).rsplit("/", 1)[-1] for o in settings.get("overlays") or []
                    if isinstance(o, Mapping)}
        props = data.get("properties") or {}
        aggregates = data.get("aggregates") or {}
        return cls(rows=records_of(ProbeRecord)(data.get("rows")), background_swap=record_or_none(SwapRecord)(data.get("background_swap")),
                   properties=records_of(PropertyRecord)(props.get("rows") if isinstance(props, Mapping) else None),
                   min_effect=real(settings.get("min_effect", 0.2)), overlays=overlays,
                   overall=numbers(aggregates.get("overall") if isinstance(aggregates, Mapping) else None))

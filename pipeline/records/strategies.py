"""summary.json's ``strategies`` section as findings read it (DESIGN §10): per label its atlas's strongest off-object place
and its strategies. The stage writes every strategy column (strategies.csv); these records read the ones a finding says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from pipeline.records.plain import Json, Record, record_or_none, records_of, text


@dataclass(frozen=True)
class StrategyRecord(Record):
    """One strategy of one label: its hot spot (relative rectangle, what it holds) and its two tests' effects with their
    intervals (None: not tested)."""

    label: str
    strategy: int
    confirmed: bool
    hotspot_kind: str
    hotspot_colour: str
    hotspot_x0: float
    hotspot_y0: float
    hotspot_x1: float
    hotspot_y1: float
    hotspot_dependence: float | None
    hotspot_dependence_lo: float | None
    hotspot_dependence_hi: float | None
    transplant_effect: float | None
    transplant_effect_lo: float | None
    transplant_effect_hi: float | None
    exemplar_rows: tuple[int, ...]

    @property
    def rect(self) -> tuple[float, float, float, float]:
        return (self.hotspot_x0, self.hotspot_y0, self.hotspot_x1, self.hotspot_y1)


@dataclass(frozen=True)
class OffObjectRecord(Record):
    """An atlas's strongest off-object place: its relative rectangle and the share of the label's heat off the objects there."""

    rect: tuple[float, ...]
    share: float


@dataclass(frozen=True)
class LabelRecord(Record):
    """One label's strategies, and its atlas's strongest off-object place (the atlas's maps stay in the JSON)."""

    label: str
    off_object: OffObjectRecord | None
    strategies: tuple[StrategyRecord, ...]

    @classmethod
    def of(cls, data: Mapping[str, object] | None) -> "LabelRecord":
        data = data or {}
        atlas = data.get("atlas") or {}
        return cls(text(data.get("label")), record_or_none(OffObjectRecord)(atlas.get("off_object") if isinstance(atlas, Mapping) else None),
                   records_of(StrategyRecord)(data.get("strategies")))


@dataclass(frozen=True)
class StrategiesRecord:
    labels: tuple[LabelRecord, ...] = ()

    @classmethod
    def of(cls, data: Mapping[str, Json] | None) -> "StrategiesRecord":
        return cls(records_of(LabelRecord)((data or {}).get("labels")))

    def confirmed(self) -> list[StrategyRecord]:
        return [s for lab in self.labels for s in lab.strategies if s.confirmed]


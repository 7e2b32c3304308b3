"""summary.json as findings read it: the typed sections (gate, trust, aggregates, strategies, probes, provenance's few
facts a finding says) of one audit, read once from the summary's JSON object (DESIGN §7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from pipeline.records.gate import CheckRecord, RuleRecord
from pipeline.records.plain import (
    Json,
    JsonObject,
    Record,
    real,
    record_or_none,
    records_of,
    table,
    text,
    texts,
    whole,
)
from pipeline.records.probes import ProbesRecord
from pipeline.records.strategies import StrategiesRecord


@dataclass(frozen=True)
class SkippedRecord(Record):
    """A sample the audit could not use, and why."""

    row: int
    sample_id: str
    reason: str


@dataclass(frozen=True)
class LayerRecord(Record):
    """A candidate target layer: its name and its map's grid (h, w, ...)."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ResizeRecord(Record):
    """The preprocessing check's resize comparison (DESIGN §16): the configured convention against the other."""

    antialias: bool
    accuracy: float
    other_accuracy: float
    difference: float
    low: float
    high: float
    level: float
    images: int
    other_better: bool


@dataclass(frozen=True)
class PastFinding(Record):
    """A finding of an earlier audit (a baseline's), as ``since_baseline`` compares it."""

    id: str
    kind: str
    title: str
    sentence: str
    labels: tuple[str, ...]
    since_baseline: str | None


def grid(v: object) -> tuple[int, ...]:
    """A map's shape: sizes, 0 where unknown."""
    return tuple(0 if x is None else whole(x) for x in v) if isinstance(v, list) else ()


@dataclass(frozen=True)
class Provenance:
    """What findings say of how the audit ran: the interval level, explain.target, the target layer, its grid and the
    candidates, the resize check."""

    level: float = 0.9
    target: str = "predicted"
    target_layer: str = ""
    target_layer_shape: tuple[int, ...] = ()
    candidates: tuple[LayerRecord, ...] = ()
    resize: ResizeRecord | None = None

    @classmethod
    def of(cls, prov: Mapping[str, Json]) -> "Provenance":
        resolved = prov.get("config_resolved") or {}
        statistics = resolved.get("statistics") or {} if isinstance(resolved, Mapping) else {}
        check = prov.get("preprocessing_check") or {}
        return cls(level=real(statistics.get("interval", 0.9)) if isinstance(statistics, Mapping) else 0.9,
                   target=text(prov.get("target") or "predicted"), target_layer=text(prov.get("target_layer")),
                   target_layer_shape=grid(prov.get("target_layer_shape")),
                   candidates=records_of(LayerRecord)(prov.get("target_layer_candidates")),
                   resize=record_or_none(ResizeRecord)(check.get("resize") if isinstance(check, Mapping) else None))


@dataclass(frozen=True)
class SummaryRecord:
    """One audit's summary.json, the sections findings read. ``findings`` None: the summary predates findings."""

    gate: tuple[RuleRecord, ...] = ()
    checks: tuple[CheckRecord, ...] = ()
    per_class: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    flag_counts: Mapping[str, int] = field(default_factory=dict)
    skipped: tuple[SkippedRecord, ...] = ()
    dataset_problems: tuple[str, ...] = ()
    strategies: StrategiesRecord = StrategiesRecord()
    probes: ProbesRecord = ProbesRecord()
    provenance: Provenance = Provenance()
    findings: tuple[PastFinding, ...] | None = None

    @classmethod
    def of(cls, summary: Mapping[str, Json]) -> "SummaryRecord":
        def section(key: str) -> JsonObject:
            value = summary.get(key)
            return value if isinstance(value, dict) else {}

        counts = section("flag_counts")
        return cls(gate=records_of(RuleRecord)(summary.get("gate")), checks=records_of(CheckRecord)(section("trust").get("checks")),
                   per_class=table(section("aggregates").get("per_class")), flag_counts={str(k): whole(v) for k, v in counts.items()},
                   skipped=records_of(SkippedRecord)(summary.get("skipped")), dataset_problems=texts(summary.get("dataset_problems")),
                   strategies=StrategiesRecord.of(section("strategies")), probes=ProbesRecord.of(section("probes")),
                   provenance=Provenance.of(section("provenance")),
                   findings=records_of(PastFinding)(summary.get("findings")) if "findings" in summary else None)

"""``evidence:`` the interventions (DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.reader import Reader
from pipeline.records.plain import JsonObject

FILLS = ("mean", "gray")
REMOVAL_REGIONS = ("box", "mask", "dilated")

DEFAULTS: JsonObject = {
    "interventions": True,  # object-removed / object-only forward passes (DESIGN §6)
    "fill": "mean",  # mean (of the kept pixels) | gray (127.5)
    "dependence_min": 0.5,  # object_dependence >= this: the prediction depends on the object
    "max_samples": None,  # interventions on a seeded subset of this many samples
    "removal_region": "box",  # box (each object's bounding box: no shape leaks) | mask | dilated (mask grown by dilation_px)
    "dilation_px": "auto",  # dilated: pixels at input resolution; auto = one CAM cell
    "max_region_fraction": 0.7,  # a region covering at least this share of the input is not judged by removal (§17: lungs cover 54%)
}
"""The evidence section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class EvidenceConfig:
    interventions: bool
    fill: str  # "mean" | "gray"
    dependence_min: float
    max_samples: int | None
    removal_region: str = "box"  # "box" | "mask" | "dilated"
    dilation_px: int | None = None  # None = one CAM cell at input resolution
    max_region_fraction: float = 0.7


def read_evidence(r: Reader, raw: object) -> EvidenceConfig:
    e = r.mapping(raw, "evidence", DEFAULTS)
    return EvidenceConfig(
        interventions=r.boolean(e["interventions"], "evidence.interventions"),
        fill=r.choice(e["fill"], "evidence.fill", FILLS),
        dependence_min=r.number(e["dependence_min"], "evidence.dependence_min", low=-1.0, high=1.0),
        max_samples=None if e["max_samples"] is None else r.integer(e["max_samples"], "evidence.max_samples", minimum=1),
        removal_region=r.choice(e["removal_region"], "evidence.removal_region", REMOVAL_REGIONS),
        dilation_px=None if e["dilation_px"] == "auto" else r.integer(e["dilation_px"], "evidence.dilation_px", minimum=0),
        max_region_fraction=r.number(e["max_region_fraction"], "evidence.max_region_fraction", low=0.0, high=1.0),
    )

"""``scoring:`` the focus metric and its on-target threshold (DESIGN §4)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.config.reader import Reader
from pipeline.records.plain import JsonObject

FOCUS_METRICS = ("focus_score", "energy_in_box", "energy_lift")

DEFAULTS: JsonObject = {
    "focus_metric": "focus_score",  # which localisation number decides "on target": focus_score | energy_in_box | energy_lift
    "focus_min": 0.2,  # a prediction below this is off target (right_for_wrong_reason when correct)
}
"""The scoring section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class ScoringConfig:
    focus_metric: str
    focus_min: float


def read_scoring(r: Reader, raw: object) -> ScoringConfig:
    s = r.mapping(raw, "scoring", DEFAULTS)
    metric = r.choice(s["focus_metric"], "scoring.focus_metric", FOCUS_METRICS)
    bounds = {"focus_score": (-1.0, 1.0), "energy_in_box": (0.0, 1.0), "energy_lift": (0.0, math.inf)}[metric]
    return ScoringConfig(focus_metric=metric, focus_min=r.number(s["focus_min"], "scoring.focus_min", low=bounds[0], high=bounds[1]))

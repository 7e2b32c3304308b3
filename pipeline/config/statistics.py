"""``statistics:`` the intervals every number carries (DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.reader import Reader
from pipeline.records.plain import JsonObject

DEFAULTS: JsonObject = {"interval": 0.90, "resamples": 1000, "min_samples": 30,  # intervals: Wilson for rates, bootstrap else
                            "sequential": True}  # the tests after the explain loop stop when decided (DESIGN §18)
"""The statistics section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class StatisticsConfig:
    interval: float = 0.90  # two-sided level of every interval
    resamples: int = 1000  # bootstrap resamples
    min_samples: int = 30  # a gate rule on fewer samples is reported with a warning
    sequential: bool = True  # the tests after the explain loop look at 16, 32, 64, ... units and stop when decided; false: fixed sizes


def read_statistics(r: Reader, raw: object) -> StatisticsConfig:
    s = r.mapping(raw, "statistics", DEFAULTS)
    return StatisticsConfig(interval=r.number(s["interval"], "statistics.interval", low=0.5, high=0.999),
                            resamples=r.integer(s["resamples"], "statistics.resamples", minimum=100),
                            min_samples=r.integer(s["min_samples"], "statistics.min_samples", minimum=1),
                            sequential=r.boolean(s["sequential"], "statistics.sequential"))

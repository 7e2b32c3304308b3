"""``strategies:`` where the model looks instead, and the causal shortcut tests (DESIGN §10)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.reader import Reader
from pipeline.records.plain import JsonObject

DEFAULTS: JsonObject = {  # DESIGN §10: where the model looks instead, and a causal test of it
    "enabled": True,  # run the strategies stage (atlas, strategies, hot spots, causal tests; DESIGN §10)
    "min_samples": 20,  # labels with fewer explained samples are one strategy (no clustering)
    "min_test_samples": 10,  # below this a hot spot is not tested; below it a label gets an atlas only
    "max_strategies": 6,  # at most this many strategies per label (spectral clusters)
    "neighbours": 10,  # k of the kNN graph
    "hotspot_threshold": 0.5,  # hot-spot cells: off-object map >= this fraction of its maximum
    "min_off_object": 0.7,  # a hot spot is tested when at least this share of its energy is off the objects
    "max_object_overlap": 0.25,  # tested samples / control positions: region covers at most this share of the rectangle
    "test_samples": 64,  # per strategy, seeded; also the number of transplant recipients
    "controls": 4,  # random placements per tested sample
    "min_effect": 0.2,  # a confirmed shortcut needs an effect whose interval's lower bound reaches this
    "interval": 0.90,  # two-sided bootstrap interval (1,000 resamples over samples, seeded)
}  # DESIGN §10: where the model looks instead, and a causal test of it
"""The strategies section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class StrategiesConfig:
    """DESIGN §10; every share is a fraction in [0, 1]."""

    enabled: bool = True
    min_samples: int = 20
    min_test_samples: int = 10
    max_strategies: int = 6
    neighbours: int = 10
    hotspot_threshold: float = 0.5
    min_off_object: float = 0.7
    max_object_overlap: float = 0.25
    test_samples: int = 64
    controls: int = 4
    min_effect: float = 0.2
    interval: float = 0.90


def read_strategies(r: Reader, raw: object) -> StrategiesConfig:
    s = r.mapping(raw, "strategies", DEFAULTS)
    share = {k: r.number(s[k], f"strategies.{k}", low=0.0, high=1.0)
             for k in ("hotspot_threshold", "min_off_object", "max_object_overlap", "min_effect")}
    interval = r.number(s["interval"], "strategies.interval", low=0.5, high=0.999)
    ints = {k: r.integer(s[k], f"strategies.{k}", minimum=lo)
            for k, lo in (("min_samples", 2), ("min_test_samples", 2), ("max_strategies", 1), ("neighbours", 1),
                          ("test_samples", 2), ("controls", 1))}
    return StrategiesConfig(enabled=r.boolean(s["enabled"], "strategies.enabled"), interval=interval, **share, **ints)

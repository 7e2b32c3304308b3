"""``trust:`` the checks a heatmap must pass before a verdict can be FIT (DESIGN §6, §13, §16)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.reader import Reader
from pipeline.records.plain import JsonObject

DEFAULTS: JsonObject = {
    "min_confirmed": 0.5,  # heatmap_confirmation fails when on_target_confirmed_rate's upper bound is below this
    "min_claims": 20,  # fewer on-target samples with interventions: heatmap_confirmation is not evaluated
    "randomisation": True,  # cascading model-randomisation check
    "randomisation_samples": 64,  # samples the randomised model's heatmaps are compared on
    "randomisation_draws": 5,  # independent seeded re-initialisations; the statistic pools them
    "max_randomised_similarity": 0.5,  # median rank correlation at or above this -> INCONCLUSIVE
    "max_no_signal": 0.2,  # heatmap_signal fails when more than this share of the scored samples have an all-zero map
    "max_one_class": 0.95,  # prediction_spread fails when one class takes more of the answers (labels of 2+ classes)
    "better_than_chance": True,  # balanced accuracy's interval lower bound must exceed 1/k (k labels with samples; DESIGN §16)
}
"""The trust section's keys and their defaults (None under a required key)."""

RETIRED: JsonObject = {
    "min_agreement": "trust.min_confirmed (heatmap_confirmation: the share of on-target heatmaps that the model's "
                     "behaviour confirms, with its interval); gate explanation_agreement itself with "
                     "{metric: explanation_agreement, min: X}",
}
"""Keys of earlier versions -> what replaced them: named in the error rather than "unknown key"."""


@dataclass(frozen=True)
class TrustConfig:
    min_confirmed: float
    min_claims: int
    randomisation: bool
    randomisation_samples: int
    randomisation_draws: int
    max_randomised_similarity: float
    max_no_signal: float = 0.2
    max_one_class: float = 0.95
    better_than_chance: bool = True


def read_trust(r: Reader, raw: object) -> TrustConfig:
    for name in RETIRED:
        if isinstance(raw, dict) and name in raw:
            raise r.fail(f"trust.{name}", f"{RETIRED[name]} (trust.{name} was retired)", raw[name])
    t = r.mapping(raw, "trust", DEFAULTS)
    return TrustConfig(
        min_confirmed=r.number(t["min_confirmed"], "trust.min_confirmed", low=0.0, high=1.0),
        min_claims=r.integer(t["min_claims"], "trust.min_claims", minimum=1),
        randomisation=r.boolean(t["randomisation"], "trust.randomisation"),
        randomisation_samples=r.integer(t["randomisation_samples"], "trust.randomisation_samples", minimum=2),
        randomisation_draws=r.integer(t["randomisation_draws"], "trust.randomisation_draws", minimum=1),
        max_randomised_similarity=r.number(t["max_randomised_similarity"], "trust.max_randomised_similarity", low=-1.0, high=1.0),
        max_no_signal=r.number(t["max_no_signal"], "trust.max_no_signal", low=0.0, high=1.0),
        max_one_class=r.number(t["max_one_class"], "trust.max_one_class", low=0.0, high=1.0),
        better_than_chance=r.boolean(t["better_than_chance"], "trust.better_than_chance"),
    )

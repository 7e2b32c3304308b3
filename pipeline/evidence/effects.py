"""A mean paired difference with its seeded bootstrap interval (:class:`Effect`): every effect the causal tests, the
probes and the property edits report (DESIGN §10, §11, §15). Pure NumPy."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.evidence.bootstrap import bootstrap_ci


@dataclass(frozen=True)
class Effect:
    """A mean paired difference over n units, with its bootstrap interval (NaN when n = 0)."""

    value: float
    low: float
    high: float
    n: int


def paired_difference(a: np.ndarray, b: np.ndarray, *, level: float, seed: int, resamples: int = 1000) -> Effect:
    """Mean of ``a − b`` per unit (tested sample or recipient), with a seeded percentile bootstrap
    interval over the units. Either may be (n, k): k placements, averaged per unit first.
    hotspot_dependence = (control accuracy, hot-spot accuracy); transplant_effect = (flip, control flip)."""
    a, b = (np.asarray(x, np.float64) for x in (a, b))
    a, b = (x.mean(axis=1) if x.ndim == 2 else x for x in (a, b))
    diff = a - b
    if diff.size == 0:
        return Effect(math.nan, math.nan, math.nan, 0)
    low, high = bootstrap_ci(diff, "mean", seed=seed, n_boot=resamples, level=level)
    return Effect(float(diff.mean()), low, high, int(diff.size))

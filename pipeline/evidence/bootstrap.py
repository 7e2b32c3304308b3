"""The seeded percentile bootstrap every interval of a mean or a median rests on (DESIGN §6), pure NumPy."""

from __future__ import annotations

import math

import numpy as np


def bootstrap_ci(values: np.ndarray, stat: str, *, seed: int, n_boot: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of mean/median of ``values`` (seeded, resampled in chunks)."""
    m = values.size
    if m == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    stats = []
    chunk = max(1, min(n_boot, 2_000_000 // m))
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, m, size=(min(chunk, n_boot - start), m))
        sample = values[idx]
        stats.append(np.median(sample, axis=1) if stat == "median" else sample.mean(axis=1))
    all_stats = np.concatenate(stats)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(all_stats, [tail, 100 - tail])
    return float(low), float(high)

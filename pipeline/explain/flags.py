"""Per-sample flags (pure). See DESIGN.md §4 "Flags"."""

from __future__ import annotations

import numpy as np


def assign_flags(
    *, correct: np.ndarray, focus_value: np.ndarray, judged: np.ndarray, skipped: np.ndarray, focus_min: float
) -> np.ndarray:
    """Return an object array of flag names, one per sample.

    ``focus_value`` is the configured focus metric (NaN where undefined); ``judged`` is False where
    the map is all zero or the boxes cover the whole input (``no_signal``); ``skipped`` wins over
    everything. A sample is on target when ``focus_value >= focus_min``.
    """
    correct = np.asarray(correct, dtype=bool)
    with np.errstate(invalid="ignore"):
        on_target = np.asarray(focus_value, dtype=np.float64) >= focus_min
    flags = np.where(
        correct,
        np.where(on_target, "ok", "right_for_wrong_reason"),
        np.where(on_target, "confused_on_object", "distracted"),
    ).astype(object)
    flags[~np.asarray(judged, dtype=bool)] = "no_signal"
    flags[np.asarray(skipped, dtype=bool)] = "skipped"
    return flags

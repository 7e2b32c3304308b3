"""The output activation the Grad-CAM model strips (DESIGN §4: scores are taken before it), applied back in NumPy."""

from __future__ import annotations

import numpy as np


def probabilities(logits: np.ndarray, activation: str) -> np.ndarray:
    """(B, C) class scores before the output activation -> probabilities (sigmoid, else softmax)."""
    logits = np.asarray(logits, np.float64)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)

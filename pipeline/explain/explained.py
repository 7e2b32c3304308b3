"""What the explain stage hands every later stage (DESIGN §8): the audit's answers, maps and regions row by row
(:class:`Evidence`), and the model as the later stages run it on edited images (:class:`Classifier`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np



@dataclass(frozen=True)
class Evidence:
    """What the audit already knows, N rows (row-aligned with samples.csv).

    ``explained`` (N,) dataset label of the explained class, -1 for skipped rows; ``predicted``
    (N,) label of the predicted class (-1 = none); ``correct`` (N,) bool; ``focus`` (N,) float;
    ``confidence`` (N,) probability of the explained class; ``flags`` (N,) the per-sample flags;
    ``cams`` (N, h, w) native maps;
    ``labels_of`` each row's dataset-label indices; ``region_of(row, label)`` (H, W) bool at the
    input size; ``input_size`` (H, W)."""

    labels: tuple[str, ...]
    explained: np.ndarray
    predicted: np.ndarray
    correct: np.ndarray
    focus: np.ndarray
    confidence: np.ndarray
    flags: np.ndarray
    cams: np.ndarray
    labels_of: Sequence[frozenset[int]]
    region_of: Callable[[int, int], np.ndarray]
    input_size: tuple[int, int]


@dataclass
class PassCount:
    """Forward passes (images through the model) and Grad-CAM passes run through a :class:`Classifier`, counted so each
    stage can say what it cost (DESIGN §18)."""

    forward: int = 0
    gradcam: int = 0


@dataclass(frozen=True)
class Classifier:
    """The model as the causal tests use it: ``images(rows)`` -> {row: (H, W, 3) float32, 0-255 at the
    input size, before preprocessing}; ``probabilities(batch)`` (B, H, W, 3) -> (B, C);
    ``is_label(probs, label)`` -> (B,) bool, "classified as this label"; ``target_class`` (N,) the
    explained class of each row (whose probability the confidence drop is measured on); ``explain``
    the audit's CAM method for the highest-scoring class of each image's label (the probes' heat)."""

    images: Callable[[Sequence[int]], Mapping[int, np.ndarray]]
    probabilities: Callable[[np.ndarray], np.ndarray]
    is_label: Callable[[np.ndarray, int], np.ndarray]
    target_class: np.ndarray
    batch_size: int = 32
    explain: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None  # (B, H, W, 3) raw, (B,) labels -> (B, h, w) CAMs
    count: PassCount = field(default_factory=PassCount)  # what ``probabilities`` and ``explain`` ran (forward.classifier counts)

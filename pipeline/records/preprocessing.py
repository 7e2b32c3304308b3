"""The preprocessing check's record (DESIGN §3, §16): what :mod:`pipeline.prepare.preprocessing_check` found, as
``validate``, the report's run line and summary.json's ``provenance.preprocessing_check`` show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from pipeline.records.plain import JsonObject

LEVEL = 0.90  # two-sided level of the paired intervals
RESIZE_GAIN = 0.05  # the other resize convention this much more accurate (interval above 0): a warning


@dataclass(frozen=True)
class Outcome:
    """One setting's answers on the check's batch: accuracy, its most common answer, that answer's share, and each
    image's correctness (in the batch's order, for the paired intervals)."""

    accuracy: float
    top: str
    top_share: float
    correct: tuple[bool, ...] = ()


@dataclass(frozen=True)
class ResizeCheck:
    """The configured resize convention against the other on the same images (with the configured preprocessing)."""

    antialias: bool  # the configured model.antialias
    accuracy: float
    other_accuracy: float
    difference: float  # other - configured
    low: float
    high: float
    n: int  # images

    @property
    def better(self) -> bool:
        """The other convention is clearly more accurate: at least RESIZE_GAIN, the paired interval above 0."""
        return resize_verdict(self.difference, self.low)

    def record(self) -> JsonObject:
        return {"antialias": self.antialias, "accuracy": self.accuracy, "other_antialias": not self.antialias,
                "other_accuracy": self.other_accuracy, "difference": self.difference, "low": self.low, "high": self.high,
                "level": LEVEL, "images": self.n, "other_better": self.better}


@dataclass(frozen=True)
class PreprocessingCheck:
    """What the check found. ``status``: ok | refused | off (model.check_preprocessing: false) | skipped (why in ``note``)."""

    configured: str
    status: str
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    passes: int = 0
    seconds: float = 0.0
    own_layers: tuple[str, ...] = ()  # the model's own Rescaling / Normalization layers, described
    note: str = ""
    resize: ResizeCheck | None = None

    def record(self) -> JsonObject:
        """provenance's ``preprocessing_check``."""
        return {"configured": self.configured, "status": self.status, "passes": self.passes, "seconds": round(self.seconds, 3),
                "own_layers": list(self.own_layers), "note": self.note or None,
                "outcomes": {k: {"accuracy": o.accuracy, "answer": o.top, "answer_share": o.top_share} for k, o in self.outcomes.items()},
                "resize": self.resize.record() if self.resize is not None else None}

    def line(self) -> str:
        """One line for validate and the report's run line."""
        if self.status == "off":
            return "preprocessing check: off (model.check_preprocessing: false)"
        if self.status == "skipped":
            return f"preprocessing check: skipped ({self.note})"
        mine = self.outcomes[self.configured]
        others = ", ".join(f"{k} {o.accuracy:.2f}" for k, o in self.outcomes.items() if k != self.configured)
        text = (f"preprocessing check: {self.configured} gives accuracy {mine.accuracy:.2f} on {self.n} images (others: {others}); "
                f"{self.passes} forward passes, {self.seconds:.1f} s")
        if self.resize is not None:
            r = self.resize
            text += (f"; resize: {'antialiased' if r.antialias else 'plain'} {r.accuracy:.2f}, "
                     f"{'plain' if r.antialias else 'antialiased'} {r.other_accuracy:.2f}"
                     + (f" — set model.antialias: {str(not r.antialias).lower()}" if r.better else ""))
        return text

    @property
    def n(self) -> int:
        return len(next(iter(self.outcomes.values())).correct) if self.outcomes else 0


def resize_verdict(difference: float, low: float) -> bool:
    """The other resize convention is clearly more accurate: by RESIZE_GAIN at least, the paired interval above 0."""
    eps = 1e-9  # accuracies are shares of the same batch: 0.55 - 0.50 must count as 0.05
    return difference >= RESIZE_GAIN - eps and low > 0

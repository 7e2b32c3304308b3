"""Records shared by the annotation loaders (pure data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Box:
    """One labelled object: ``(x0, y0, x1, y1)`` in original-image pixels, float, half-open, x = column."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    segmentation: Any = field(default=None, compare=False, repr=False)  # COCO polygons / RLE, None when absent

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class ImageRecord:
    """One image of the evaluation set as the annotations describe it.

    ``image`` is the path relative to the images folder, as written in the annotations.
    ``problem`` is set when the annotations themselves make the image unusable (the sample is
    skipped with that reason).
    """

    image: str
    boxes: tuple[Box, ...]
    problem: str | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """Classes present, in first-appearance order."""
        return tuple(dict.fromkeys(b.label for b in self.boxes))


@dataclass(frozen=True)
class Annotations:
    """What a loader read: images in a stable order, and class names in the format's own order
    (COCO: categories by id; VOC/CSV: labels sorted)."""

    images: tuple[ImageRecord, ...]
    class_names: tuple[str, ...]
    files: tuple[str, ...]  # the annotation files read, for the dataset fingerprint
    problems: tuple[str, ...] = ()  # dataset problems that touch no usable sample (listed, not fatal)
    images_dir: Path | None = None  # the folder image paths are relative to, when the format says (YOLO); else dataset.images
    notes: tuple[str, ...] = ()  # what the loader decided for the user (Roboflow's root category left out), said on stderr


def first(annotations: Annotations, limit: int | None) -> Annotations:
    """The first ``limit`` images (all when None)."""
    return annotations if limit is None else replace(annotations, images=annotations.images[:limit])

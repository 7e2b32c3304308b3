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


def stratified(annotations: Annotations, limit: int | None, seed: int, source: str = "--limit") -> Annotations:
    """A seeded, label-stratified sample of ``limit`` images (all when None or when there are no more):
    each label (an image's first) gets its share of ``limit`` by largest remainder, at least one image
    while ``limit`` allows; images keep their order. A note says what was taken and which label got none."""
    images = annotations.images
    if limit is None or limit >= len(images):
        return annotations
    import numpy as np

    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(images):
        groups.setdefault(rec.labels[0] if rec.labels else "", []).append(i)
    quota = _shares(limit, {lab: len(rows) for lab, rows in groups.items()})
    rng = np.random.default_rng(seed)
    keep = sorted(int(i) for lab in sorted(groups) for i in rng.permutation(groups[lab])[:quota[lab]])
    counts = ", ".join(f"{lab or 'no label'} {quota[lab]}" for lab in sorted(groups) if quota[lab])
    missing = [lab or "no label" for lab in sorted(groups) if not quota[lab]]
    note = (f"{source} {limit}: a seeded, label-stratified sample of {limit} of {len(images)} images ({counts})"
            + (f"; no image of {', '.join(missing)} (raise {source} to at least {len(groups)})" if missing else ""))
    return replace(annotations, images=tuple(images[i] for i in keep), notes=annotations.notes + (note,))


def _shares(limit: int, sizes: dict[str, int]) -> dict[str, int]:
    """``limit`` split over groups in proportion to ``sizes`` (largest remainder), each group at least one while
    ``limit`` allows (taken from the largest share), never more than a group holds."""
    total = sum(sizes.values())
    exact = {k: limit * n / total for k, n in sizes.items()}
    out = {k: int(v) for k, v in exact.items()}
    for k in sorted(sizes, key=lambda k: (-(exact[k] - out[k]), k))[: limit - sum(out.values())]:
        out[k] += 1
    for k in sorted(sizes, key=lambda k: (sizes[k], k)):
        if out[k] == 0 and sum(1 for v in out.values() if v > 1):
            donor = max(out, key=lambda d: (out[d], d))
            out[donor] -= 1
            out[k] = 1
    return {k: min(v, sizes[k]) for k, v in out.items()}

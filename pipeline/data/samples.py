"""ImageRecords -> Samples (DESIGN.md §4 "Sample"), with per-sample validation and padded box arrays."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.data.images import ImageProblem, image_size, resolve_image
from pipeline.data.records import Box, ImageRecord
from pipeline.scoring import pixel_boxes

_EDGE_TOLERANCE = 0.01  # px; float round-off in COCO x + w must not skip a sample


@dataclass(frozen=True)
class Sample:
    """One row of samples.csv.

    ``boxes`` are the boxes the sample may be scored against, in original-image pixels: every box
    of the image for target "predicted" (scoring picks the predicted class's boxes when present),
    the target class's boxes for target "true". ``target`` is the class index to explain for
    target "true", else -1. ``size`` is the image's (width, height).
    """

    row: int
    sample_id: str
    image: str
    path: Path | None
    labels: tuple[str, ...]
    target: int
    boxes: tuple[Box, ...]
    size: tuple[int, int] | None
    skip_reason: str | None


@dataclass(frozen=True)
class BoxArrays:
    """Padded per-sample boxes at the model's input resolution, K = most boxes in any sample.

    ``pixels`` (N, K, 4) int ``(c0, r0, c1, r1)`` half-open pixel intervals; ``classes`` (N, K) int
    class index of each box; ``valid`` (N, K) bool, False for padding and for skipped samples.
    """

    pixels: np.ndarray
    classes: np.ndarray
    valid: np.ndarray


def _check_boxes(boxes: Sequence[Box], size: tuple[int, int], input_size: tuple[int, int]) -> str | None:
    width, height = size
    for k, b in enumerate(boxes):
        where = f"box {k} ({b.label}) ({b.x0:g}, {b.y0:g}, {b.x1:g}, {b.y1:g})"
        if not (b.x1 > b.x0 and b.y1 > b.y0):
            return f"{where} has zero area (expected x1 > x0 and y1 > y0)"
        tol = _EDGE_TOLERANCE
        if b.x0 < -tol or b.y0 < -tol or b.x1 > width + tol or b.y1 > height + tol:
            return f"{where} lies outside the {width}x{height} image"
        px = pixel_boxes(np.array(b.as_tuple()), (input_size[1] / width, input_size[0] / height), input_size)
        if px[2] <= px[0] or px[3] <= px[1]:
            return f"{where} covers no pixel at the model's {input_size[0]}x{input_size[1]} input"
    return None


def build_samples(
    records: Sequence[ImageRecord],
    *,
    images_dir: Path,
    class_names: Sequence[str],
    target: str,
    input_size: tuple[int, int],
    workers: int = 8,
) -> list[Sample]:
    """Expand images into samples and record why any cannot be used.

    Image headers are read (in threads) to get the real size: annotation sizes are not trusted.
    """
    known = {name: i for i, name in enumerate(class_names)}

    def header(record: ImageRecord) -> tuple[Path | None, tuple[int, int] | None, str | None]:
        if record.problem:
            return None, None, record.problem
        try:
            path = resolve_image(images_dir, record.image)
            return path, image_size(path), None
        except ImageProblem as exc:
            return None, None, str(exc)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        headers = list(pool.map(header, records))

    samples: list[Sample] = []
    for record, (path, size, problem) in zip(records, headers):
        labels = record.labels
        if problem is None and not record.boxes:
            problem = "no labelled object in this image"
        unknown = [lab for lab in labels if lab not in known]
        if target == "predicted":
            reason = problem
            if reason is None and unknown:
                reason = f"label {unknown[0]!r} is not one of the model's classes ({', '.join(class_names)})"
            if reason is None:
                reason = _check_boxes(record.boxes, size, input_size)  # type: ignore[arg-type]
            samples.append(Sample(len(samples), record.image, record.image, path, labels, -1, record.boxes, size, reason))
            continue
        for label in labels or ("",):
            boxes = tuple(b for b in record.boxes if b.label == label)
            reason = problem
            if reason is None and label in unknown:
                reason = f"label {label!r} is not one of the model's classes ({', '.join(class_names)})"
            if reason is None:
                reason = _check_boxes(boxes, size, input_size)  # type: ignore[arg-type]
            sample_id = f"{record.image}#{label}" if label else record.image
            samples.append(Sample(len(samples), sample_id, record.image, path, labels, known.get(label, -1), boxes, size, reason))
    return samples


def box_arrays(samples: Sequence[Sample], class_names: Sequence[str], input_size: tuple[int, int]) -> BoxArrays:
    """Pad every usable sample's boxes into arrays at the input resolution (built once per run)."""
    known = {name: i for i, name in enumerate(class_names)}
    k = max([len(s.boxes) for s in samples if s.skip_reason is None] or [1])
    n = len(samples)
    coords = np.zeros((n, k, 4), np.float64)
    scale = np.ones((n, 2), np.float64)
    classes = np.full((n, k), -1, np.int64)
    valid = np.zeros((n, k), bool)
    for s in samples:
        if s.skip_reason is not None:
            continue
        width, height = s.size  # type: ignore[misc]
        scale[s.row] = (input_size[1] / width, input_size[0] / height)
        for j, b in enumerate(s.boxes):
            coords[s.row, j] = b.as_tuple()
            classes[s.row, j] = known[b.label]
            valid[s.row, j] = True
    scaled = coords * np.concatenate([scale, scale], axis=1)[:, None, :]
    pixels = pixel_boxes(scaled, (1.0, 1.0), input_size)
    return BoxArrays(pixels, classes, valid)

"""ImageRecords -> Samples (DESIGN.md §4 "Sample"), with per-sample validation and padded box arrays."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.data.images import ImageProblem, image_size, resolve_image
from pipeline.data.masks import MaskProblem, segmentation_mask
from pipeline.data.records import Box, ImageRecord
from pipeline.data.geometry import InputSpec, Window, box_in_window, boxes_to_input
from pipeline.data.labels import LabelSpace
from pipeline.data.geometry import pixel_boxes

_EDGE_TOLERANCE = 0.01  # px; float round-off in COCO x + w must not skip a sample


@dataclass(frozen=True)
class Sample:
    """One row of samples.csv.

    ``boxes`` are the boxes the sample may be scored against, in original-image pixels: every box
    of the image for target "predicted" (scoring picks the predicted class's boxes when present),
    the target label's boxes for target "true". ``target`` says which model classes may be
    explained (the highest-scoring of them is): -1 = every class (target "predicted"), ``l`` < L =
    the classes of label ``l`` (target "true"), ``L + c`` = class ``c`` alone (a multi-label
    sample per predicted class); see :func:`target_sets`. ``size`` is the image's (width, height).
    ``masks`` (k, ceil(H*W / 8)) uint8, each box's segmentation at the input size, bit-packed
    (``region: mask`` only). ``window`` (x0, y0, cw, ch) the part of the image the model sees
    (:mod:`pipeline.data.geometry`); ``boxes`` are those at least partly inside it.
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
    masks: np.ndarray | None = None
    window: Window | None = None


@dataclass(frozen=True)
class BoxArrays:
    """Padded per-sample boxes at the model's input resolution, K = most boxes in any sample.

    ``pixels`` (N, K, 4) int ``(c0, r0, c1, r1)`` half-open pixel intervals; ``classes`` (N, K) int
    dataset-label index of each box; ``valid`` (N, K) bool, False for padding and for skipped
    samples; ``masks`` (``region: mask``) (N,) object array of each sample's packed box masks.
    """

    pixels: np.ndarray
    classes: np.ndarray
    valid: np.ndarray
    masks: np.ndarray | None = None

    def scored(self, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(B, K) bool: the boxes each row is scored against — those of its explained dataset label
        ``labels`` (B,) when it has any, else every box (DESIGN §4 "Sample")."""
        valid = self.valid[rows]
        match = valid & (self.classes[rows] == np.asarray(labels)[:, None])
        return np.where(match.any(axis=1, keepdims=True), match, valid)

    def region(self, row: int, label: int, size: tuple[int, int], *, masks: bool = True) -> np.ndarray:
        """(H, W) bool: the region row ``row`` was scored against when explaining dataset label
        ``label`` (its boxes' union, or their masks' under ``region: mask``), pixel-centre rule.
        ``masks=False``: the boxes' union even under ``region: mask`` (``evidence.removal_region: box``)."""
        use = self.scored(np.array([row]), np.array([label]))
        if masks and self.masks is not None:
            return (self.slot_masks(np.array([row]), size) & use[..., None, None]).any(axis=1)[0]
        region = np.zeros(size, bool)
        for c0, r0, c1, r1 in self.pixels[row][use[0]]:
            region[r0:r1, c0:c1] = True
        return region

    def slot_masks(self, rows: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """(B, K, H, W) bool: every box slot's mask (False for padding and for rows < 0)."""
        k = self.valid.shape[1]
        out = np.zeros((len(rows), k, *size), bool)
        for b, row in enumerate(rows):
            packed = self.masks[row] if row >= 0 and self.masks is not None else None
            if packed is not None:
                out[b, : packed.shape[0]] = np.unpackbits(packed, axis=1, count=size[0] * size[1]).astype(bool).reshape(-1, *size)
        return out


def _check_boxes(boxes: Sequence[Box], size: tuple[int, int], spec: InputSpec, win: Window) -> tuple[tuple[Box, ...], str | None]:
    """(the boxes the model sees, None) or ((), why the sample cannot be scored). Under ``crop`` a box
    wholly outside the window is left out; a sample left with none is skipped as cropped away."""
    width, height = size
    input_size = spec.input_size
    kept = []
    for k, b in enumerate(boxes):
        where = f"box {k} ({b.label}) ({b.x0:g}, {b.y0:g}, {b.x1:g}, {b.y1:g})"
        if not (b.x1 > b.x0 and b.y1 > b.y0):
            return (), f"{where} has zero area (expected x1 > x0 and y1 > y0)"
        tol = _EDGE_TOLERANCE
        if b.x0 < -tol or b.y0 < -tol or b.x1 > width + tol or b.y1 > height + tol:
            return (), f"{where} lies outside the {width}x{height} image"
        inside = box_in_window(b.as_tuple(), win)
        if inside is None:
            continue
        px = pixel_boxes(boxes_to_input(np.array(b.as_tuple()), win, input_size), (1.0, 1.0), input_size)
        if px[2] <= px[0] or px[3] <= px[1]:
            if inside != (b.x0 - win[0], b.y0 - win[1], b.x1 - win[0], b.y1 - win[1]):
                continue  # a sliver left by the crop: cropped away too
            return (), f"{where} covers no pixel at the model's {input_size[0]}x{input_size[1]} input"
        kept.append(b)
    if not kept:
        x0, y0, cw, ch = win
        return (), (f"cropped away: every box lies outside the centre crop the model sees (x {x0}-{x0 + cw}, y {y0}-{y0 + ch} "
                    f"of the {width}x{height} image; model.resize_mode crop, crop_fraction {spec.crop_fraction:g})")
    return tuple(kept), None


def _masks(boxes: Sequence[Box], size: tuple[int, int], input_size: tuple[int, int], win: Window) -> tuple[np.ndarray | None, str | None]:
    """Each box's segmentation rasterised at the input size, bit-packed; or the reason it cannot be."""
    masks = []
    for k, b in enumerate(boxes):
        if b.segmentation is None:
            return None, f"box {k} ({b.label}) has no segmentation (dataset.region is mask)"
        try:
            m = segmentation_mask(b.segmentation, size, input_size, win)
        except MaskProblem as exc:
            return None, f"box {k} ({b.label}): {exc}"
        if not m.any():
            return None, f"box {k} ({b.label}): its mask covers no pixel at the model's {input_size[0]}x{input_size[1]} input"
        masks.append(np.packbits(m.reshape(-1)))
    return np.stack(masks), None


def _unknown_reason(label: str, space: LabelSpace) -> str:
    if space.mapped:
        return (f"label {label!r} is neither a dataset.label_map key nor a model class name or WordNet id "
                f"({space.source}); map it under dataset.label_map")
    names = ", ".join(space.class_names[:12]) + (f", ... ({len(space.class_names)} in all)" if len(space.class_names) > 12 else "")
    return f"label {label!r} is not one of the model's classes ({names})"


def build_samples(
    records: Sequence[ImageRecord],
    *,
    images_dir: Path,
    space: LabelSpace,
    target: str,
    spec: InputSpec,
    region: str = "box",
    workers: int = 8,
) -> list[Sample]:
    """Expand images into samples and record why any cannot be used.

    Image headers are read (in threads) to get the real size: annotation sizes are not trusted.
    """

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
        unknown = [lab for lab in labels if not space.known(lab)]
        per_label = target == "true"
        for label in (labels or ("",)) if per_label else (None,):
            boxes = record.boxes if label is None else tuple(b for b in record.boxes if b.label == label)
            reason = problem
            if reason is None and unknown and (label is None or label in unknown):
                reason = _unknown_reason(unknown[0] if label is None else label, space)
            win = spec.window(size) if size is not None else None
            if reason is None:
                seen, reason = _check_boxes(boxes, size, spec, win)  # type: ignore[arg-type]
                boxes = seen or boxes
            masks = None
            if reason is None and region == "mask":
                masks, reason = _masks(boxes, size, spec.input_size, win)  # type: ignore[arg-type]
            sample_id = f"{record.image}#{label}" if label else record.image
            samples.append(Sample(len(samples), sample_id, record.image, path, labels,
                                  space.index(label) if label else -1, boxes, size, reason, masks, win))
    return samples


def windows(samples: Sequence[Sample]) -> np.ndarray:
    """(N, 4) int32 each sample's window (x0, y0, cw, ch); a placeholder for samples without an image size (skipped)."""
    return np.array([s.window or (0, 0, 1, 1) for s in samples], np.int32).reshape(-1, 4)


def target_sets(space: LabelSpace) -> np.ndarray:
    """(L + C, C) bool: row ``l`` = the classes of label ``l``, row ``L + c`` = class ``c`` alone (:attr:`Sample.target`)."""
    return np.concatenate([space.sets, np.eye(len(space.class_names), dtype=bool)], axis=0)


def expand_predicted(samples: Sequence[Sample], probs: np.ndarray, threshold: float, space: LabelSpace) -> list[Sample]:
    """Multi-label, target "predicted": one sample per (image, predicted class) (DESIGN §4).

    ``samples`` one per image (target "predicted"); ``probs`` (N, C) sigmoid probabilities of the
    usable ones (rows of skipped samples are ignored). A class is predicted when its probability
    is >= ``threshold``; an image with none gives one sample for its top class. Skipped images
    stay one skipped sample.
    """
    out: list[Sample] = []
    n_labels = len(space.labels)
    for s in samples:
        if s.skip_reason is not None:
            out.append(replace(s, row=len(out)))
            continue
        p = probs[s.row]
        classes = np.flatnonzero(p >= threshold)
        for c in classes if classes.size else [int(p.argmax())]:
            out.append(replace(s, row=len(out), sample_id=f"{s.image}#{space.class_names[c]}", target=n_labels + int(c)))
    return out


def box_arrays(samples: Sequence[Sample], space: LabelSpace, input_size: tuple[int, int]) -> BoxArrays:
    """Pad every usable sample's boxes into arrays at the input resolution (built once per run)."""
    k = max([len(s.boxes) for s in samples if s.skip_reason is None] or [1])
    n = len(samples)
    scaled = np.zeros((n, k, 4), np.float64)
    classes = np.full((n, k), -1, np.int64)
    valid = np.zeros((n, k), bool)
    for s in samples:
        if s.skip_reason is None:
            scaled[s.row, : len(s.boxes)] = boxes_to_input(np.array([b.as_tuple() for b in s.boxes]), s.window, input_size)
            classes[s.row, : len(s.boxes)] = [space.index(b.label) for b in s.boxes]
            valid[s.row, : len(s.boxes)] = True
    pixels = pixel_boxes(scaled, (1.0, 1.0), input_size)
    masks = None
    if any(s.masks is not None for s in samples):
        masks = np.empty(n, dtype=object)
        masks[:] = [s.masks if s.skip_reason is None else None for s in samples]
    return BoxArrays(pixels, classes, valid, masks)

"""Annotation loaders (one module per format), image decoding and sample building."""

from __future__ import annotations

from pipeline.config import DatasetConfig
from pipeline.data.records import Annotations


def load_annotations(cfg: DatasetConfig) -> Annotations:
    """Read the dataset's annotations in the configured format (images are read later)."""
    from pipeline.data.coco import load_coco
    from pipeline.data.csv_format import load_csv
    from pipeline.data.voc import load_voc

    loader = {"coco": load_coco, "voc": load_voc, "csv": load_csv}[cfg.format]
    annotations = loader(cfg.annotations)
    if cfg.limit is not None:
        annotations = Annotations(annotations.images[: cfg.limit], annotations.class_names, annotations.files, annotations.problems)
    return annotations

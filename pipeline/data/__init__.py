"""Annotation loaders (one module per format), image decoding and sample building."""

from __future__ import annotations

from pipeline.config import DatasetConfig
from pipeline.data.records import Annotations


def load_annotations(cfg: DatasetConfig) -> Annotations:
    """Read the dataset's annotations in the configured format (images are read later; ``dataset.limit`` and
    ``--limit`` are applied by the run, seeded: :func:`pipeline.data.records.stratified`)."""
    from pipeline.data.coco import load_coco
    from pipeline.data.csv_format import load_csv
    from pipeline.data.voc import load_voc
    from pipeline.data.yolo import load_yolo

    if cfg.format == "yolo":
        return load_yolo(cfg.annotations, cfg.split)
    if cfg.format == "coco":
        return load_coco(cfg.annotations, ignore=cfg.ignore_categories)
    return {"voc": load_voc, "csv": load_csv}[cfg.format](cfg.annotations)

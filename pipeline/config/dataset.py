"""``dataset:`` the evaluation set: annotation format, images, label map, region (DESIGN §3, §4)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config.reader import Reader, key_text
from pipeline.records.plain import JsonObject

DATASET_FORMATS = ("coco", "voc", "csv", "yolo")
REGIONS = ("box", "mask")

DEFAULTS: JsonObject = {
    "format": None,  # required: coco | voc | csv | yolo
    "annotations": None,  # required: coco a JSON file, voc a folder of XML files, csv a file (image,label,x0,y0,x1,y1 in pixels), yolo its data.yaml
    "images": None,  # required (not for yolo): the folder the annotations' image paths are relative to
    "limit": None,  # audit only the first N samples (null: all); --limit overrides it
    "label_map": None,  # {dataset label: [model class names, WordNet ids or "i-j" index ranges]}
    "region": "box",  # box | mask (COCO segmentation polygons / RLE, YOLO-seg polygons)
    "split": "val",  # yolo: the data.yaml split to audit (train | val | test)
    "ignore_categories": [],  # coco: category names left out of class_names auto (Roboflow's root category is detected)
}
"""The dataset section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class DatasetConfig:
    format: str
    annotations: Path  # COCO/CSV: a file; VOC: a folder of XML files
    images: Path  # folder that image paths in the annotations are relative to
    limit: int | None
    label_map: tuple[tuple[str, tuple[str | int, ...]], ...] | None = None  # (label, entries) in config order
    region: str = "box"  # "box" | "mask"
    split: str = "val"  # yolo: the data.yaml split
    ignore_categories: tuple[str, ...] = ()  # coco: categories left out of class_names auto


def label_map(r: Reader, raw: object) -> tuple[tuple[str, tuple[str | int, ...]], ...] | None:
    """``{label: [entries]}`` -> ordered pairs; entries are checked against the model at prepare time."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise r.fail("dataset.label_map", "a mapping {dataset label: [model classes]}", raw)
    pairs = []
    for label, entries in raw.items():
        key = f"dataset.label_map.{key_text(label)}"
        if not isinstance(label, str) or not label:
            raise r.fail(key, "a dataset label (a non-empty string) as the key", label)
        if isinstance(entries, (str, int)) and not isinstance(entries, bool):
            entries = [entries]
        if not isinstance(entries, list) or not entries:
            raise r.fail(key, "a non-empty list of model class names, WordNet ids or \"i-j\" index ranges", entries)
        for k, e in enumerate(entries):
            if isinstance(e, bool) or not isinstance(e, (str, int)) or (isinstance(e, str) and not e.strip()):
                raise r.fail(f"{key}[{k}]", "a model class name, a WordNet id, an index or an \"i-j\" index range", e)
        pairs.append((label, tuple(entries)))
    return tuple(pairs)


def read_dataset(r: Reader, raw: object) -> DatasetConfig:
    d = r.mapping(raw, "dataset", DEFAULTS)
    fmt = r.choice(d["format"], "dataset.format", DATASET_FORMATS)
    if d["region"] == "mask" and fmt not in ("coco", "yolo"):
        raise r.fail("dataset.region", "box for a VOC or CSV dataset (mask needs COCO segmentation or YOLO-seg polygons)", "mask")
    ignore = d["ignore_categories"]
    if not (isinstance(ignore, list) and all(isinstance(v, str) and v for v in ignore)):
        raise r.fail("dataset.ignore_categories", "a list of COCO category names", ignore)
    if ignore and fmt != "coco":
        raise r.fail("dataset.ignore_categories", "an empty list for a non-COCO dataset (it names COCO categories)", ignore)
    images = d["images"]
    if fmt == "yolo":
        if images is not None:
            raise r.fail("dataset.images", "no value for a YOLO dataset (data.yaml's path and split say where the images are)", images)
        images = str(Path(r.text(d["annotations"], "dataset.annotations")).parent)  # unused: the loader resolves the images
    elif images is None:
        raise r.fail("dataset.images", "a value (this key is required)", None)
    return DatasetConfig(
        format=fmt,
        annotations=r.path(d["annotations"], "dataset.annotations", kind="dir" if fmt == "voc" else "file"),
        images=r.path(images, "dataset.images", kind="dir"),
        limit=None if d["limit"] is None else r.integer(d["limit"], "dataset.limit", minimum=1),
        label_map=label_map(r, d["label_map"]),
        region=r.choice(d["region"], "dataset.region", REGIONS),
        split=r.choice(d["split"], "dataset.split", ("train", "val", "test")),
        ignore_categories=tuple(ignore),
    )

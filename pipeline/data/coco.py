"""COCO JSON annotations -> ImageRecords. COCO boxes are ``[x, y, w, h]`` in pixels."""

from __future__ import annotations

import json
import math
from pathlib import Path

from pipeline.data.records import Annotations, Box, ImageRecord
from pipeline.errors import DatasetError


def root_categories(doc: dict, categories: dict[int, str], used: set[int]) -> list[int]:
    """Ids of Roboflow-style root categories: owning no annotation, and named as the dataset itself
    (``info.description`` / ``info.name``) or the supercategory of every other category."""
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    dataset_names = {v for v in (info.get("description"), info.get("name")) if isinstance(v, str)}
    supers = {i: c.get("supercategory") for c in doc["categories"] if isinstance(c, dict) for i in [c.get("id")]}
    out = []
    for cid, name in categories.items():
        others = [supers.get(k) for k in categories if k != cid]
        if cid not in used and others and (name in dataset_names or all(s == name for s in others)):
            out.append(cid)
    return out


def _document(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: expected a readable COCO JSON file, found an unreadable file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: expected COCO JSON, found invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
        found = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise DatasetError(f"{path}: expected a COCO object with lists 'images', 'annotations' and 'categories', found {found}")
    return doc


def _categories(doc: dict, path: Path, ignore: tuple[str, ...]) -> dict[int, str]:
    categories: dict[int, str] = {}
    for i, cat in enumerate(doc["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            raise DatasetError(f"{path}: categories[{i}]: expected {{id: int, name: str}}, found {cat!r}")
        categories[cat["id"]] = cat["name"]
    if len(set(categories.values())) != len(categories):
        raise DatasetError(f"{path}: categories: expected distinct names, found duplicates")
    unknown = [n for n in ignore if n not in categories.values()]
    if unknown:
        raise DatasetError(f"{path}: dataset.ignore_categories: expected category names of this file, found {unknown[0]!r}; "
                           f"categories: {', '.join(list(categories.values())[:20])}")
    return categories


def load_coco(path: Path, *, ignore: tuple[str, ...] = ()) -> Annotations:
    """``ignore``: category names left out of the classes (their annotations are dropped, counted as a dataset problem)."""
    doc = _document(path)
    categories = _categories(doc, path, ignore)
    files: dict[int, str] = {}
    first: dict[int, int] = {}
    dataset_problems: list[str] = []
    for i, img in enumerate(doc["images"]):
        if not isinstance(img, dict) or not isinstance(img.get("id"), int) or not isinstance(img.get("file_name"), str):
            raise DatasetError(f"{path}: images[{i}]: expected {{id: int, file_name: str}}, found {img!r}")
        if img["id"] in files:
            dataset_problems.append(f"images[{i}]: id {img['id']} was already used by images[{first[img['id']]}] "
                                    f"({files[img['id']]!r}); this entry ({img['file_name']!r}) is ignored")
            continue
        files[img["id"]] = img["file_name"]
        first[img["id"]] = i

    boxes: dict[int, list[Box]] = {i: [] for i in files}
    problems: dict[int, str] = {}
    ignored = {cid for cid, name in categories.items() if name in ignore}
    dropped = 0
    for i, ann in enumerate(doc["annotations"]):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        if image_id not in files:
            dataset_problems.append(f"annotations[{i}]: image_id {image_id!r} is not listed in 'images'; the annotation is ignored")
            continue
        cat, bbox = ann.get("category_id"), ann.get("bbox")
        if cat in ignored:
            dropped += 1
            continue
        if cat not in categories:
            problems.setdefault(image_id, f"annotation {i} has category_id {cat!r}, which is not in 'categories'")
            continue
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)):
            problems.setdefault(image_id, f"annotation {i} has bbox {bbox!r}; expected [x, y, w, h] numbers")
            continue
        x, y, w, h = (float(v) for v in bbox)
        boxes[image_id].append(Box(categories[cat], x, y, x + w, y + h, ann.get("segmentation") or None))

    if dropped:
        dataset_problems.append(f"{dropped} annotation(s) of dataset.ignore_categories ({', '.join(ignore)}) were left out")
    used = {ann.get("category_id") for ann in doc["annotations"] if isinstance(ann, dict)}
    notes = []
    for cid in root_categories(doc, categories, used):
        if categories[cid] not in ignore:
            notes.append(f"{path.name}: category {cid} {categories[cid]!r} owns no annotation and is the dataset's root category "
                         "(named as the dataset or the supercategory of every other; Roboflow adds one): left out of the classes; "
                         f"say dataset.ignore_categories: [{categories[cid]}] to make it explicit")
        ignored.add(cid)
    records = tuple(ImageRecord(files[i], tuple(boxes[i]), problems.get(i)) for i in files)
    names = tuple(categories[k] for k in sorted(categories) if k not in ignored)
    return Annotations(records, names, (str(path),), tuple(dataset_problems), notes=tuple(notes))

"""Pascal VOC XML annotations (a folder of ``*.xml``) -> ImageRecords.

VOC coordinates are 1-based and inclusive: ``xmin..xmax`` covers 0-based columns
``xmin - 1 .. xmax - 1``, i.e. the half-open box ``[xmin - 1, xmax)``. The XML's
``<size>`` is ignored (real data has 0 there); the image file is the truth.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from pipeline.data.records import Annotations, Box, ImageRecord
from pipeline.errors import DatasetError


def _parse(xml_path: Path) -> ImageRecord:
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        return ImageRecord(xml_path.stem, (), f"annotation file {xml_path.name} cannot be parsed: {exc}")
    filename = (root.findtext("filename") or "").strip() or None
    if filename is None:
        return ImageRecord(xml_path.stem, (), f"annotation file {xml_path.name} has no <filename>")
    boxes = []
    for k, obj in enumerate(root.iter("object")):
        label = (obj.findtext("name") or "").strip()
        bnd = obj.find("bndbox")
        try:
            xmin, ymin, xmax, ymax = (float((bnd.findtext(t) or "").strip()) for t in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            return ImageRecord(filename, (), f"{xml_path.name}: object {k} has no numeric <bndbox> xmin/ymin/xmax/ymax")
        if not label:
            return ImageRecord(filename, (), f"{xml_path.name}: object {k} has an empty <name>")
        if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
            return ImageRecord(filename, (), f"{xml_path.name}: object {k} has a non-finite coordinate")
        boxes.append(Box(label, xmin - 1.0, ymin - 1.0, xmax, ymax))
    return ImageRecord(filename, tuple(boxes))


def load_voc(folder: Path) -> Annotations:
    xml_files = sorted(folder.glob("*.xml"))
    if not xml_files:
        raise DatasetError(f"{folder}: expected a folder of Pascal VOC *.xml files, found none")
    records = tuple(_parse(p) for p in xml_files)
    labels = sorted({b.label for r in records for b in r.boxes})
    return Annotations(records, tuple(labels), tuple(str(p) for p in xml_files))

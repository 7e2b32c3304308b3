"""CSV annotations ``image,label,x0,y0,x1,y1`` (one row per box, header required) -> ImageRecords.

Coordinates are already the internal convention: original-image pixels, half-open, x = column.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from pipeline.data.records import Annotations, Box, ImageRecord
from pipeline.errors import DatasetError

COLUMNS = ("image", "label", "x0", "y0", "x1", "y1")


def load_csv(path: Path) -> Annotations:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = tuple(reader.fieldnames or ())
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise DatasetError(f"{path}: expected a header with columns {','.join(COLUMNS)}, found {','.join(header) or 'no header'}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: expected a readable UTF-8 CSV file, found an unreadable file ({exc})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: expected CSV, found a malformed file ({exc})") from None

    boxes: dict[str, list[Box]] = {}
    problems: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        image = (row.get("image") or "").strip()
        if not image:
            raise DatasetError(f"{path}: line {line}: expected an image path in column 'image', found nothing")
        boxes.setdefault(image, [])
        label = (row.get("label") or "").strip()
        try:
            coords = [float(row[c]) for c in ("x0", "y0", "x1", "y1")]  # type: ignore[arg-type]
        except (TypeError, ValueError):
            problems.setdefault(image, f"line {line}: expected numbers in x0,y0,x1,y1, found {[row.get(c) for c in ('x0', 'y0', 'x1', 'y1')]}")
            continue
        if not label:
            problems.setdefault(image, f"line {line}: empty label")
            continue
        if not all(math.isfinite(v) for v in coords):
            problems.setdefault(image, f"line {line}: a coordinate is not finite")
            continue
        boxes[image].append(Box(label, *coords))
    if not boxes:
        raise DatasetError(f"{path}: expected at least one annotation row, found none")
    records = tuple(ImageRecord(img, tuple(b), problems.get(img)) for img, b in boxes.items())
    labels = sorted({b.label for r in records for b in r.boxes})
    return Annotations(records, tuple(labels), (str(path),))

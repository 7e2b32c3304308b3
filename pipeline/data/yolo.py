"""YOLO / Ultralytics / Roboflow exports (``data.yaml`` + ``images/`` + ``labels/*.txt``) -> ImageRecords.

``data.yaml``: ``path`` (the dataset root; relative to the yaml's folder, default that folder),
``train``/``val``/``test`` (a folder of images, a ``.txt`` list of image paths, or a list of
those; relative to the root), ``names`` (a list in id order or ``{id: name}``), ``nc`` (checked).
Roboflow writes ``val: ../valid/images`` next to the yaml; as Ultralytics does, a split that
does not exist with a leading ``../`` is looked up without it.

An image's label file is found by the Ultralytics rule: the last ``/images/`` of its path becomes
``/labels/`` and the extension ``.txt``. Each row is ``class cx cy w h`` (normalised to [0, 1],
1% tolerance, clipped) or ``class x1 y1 x2 y2 ...`` (a YOLO-seg polygon, normalised): the polygon
is the object's mask for ``region: mask`` and its bounding box otherwise. Boxes are converted to
original-image pixels with the image's real size (read from its header).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline.data.images import ImageProblem, image_size
from pipeline.data.records import Annotations, Box, ImageRecord
from pipeline.errors import DatasetError

IMAGE_SUFFIXES = (".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic")
_TOLERANCE = 0.01  # normalised; exporters round to 6 digits and some write 1.000001


def _read_yaml(path: Path) -> dict:
    from pipeline.config import parse_yaml

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: expected a readable YOLO data.yaml, found an unreadable file ({exc})") from None
    doc = parse_yaml(path, data, DatasetError)
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: expected a YOLO data.yaml mapping (path, train/val/test, names), found {type(doc).__name__}")
    return doc


def class_names(doc: dict, path: Path) -> tuple[str, ...]:
    """``names`` as a list (id order) or ``{id: name}`` with ids 0..n-1; ``nc`` must agree."""
    names = doc.get("names")
    if isinstance(names, dict):
        ids = sorted(names) if all(isinstance(k, int) and not isinstance(k, bool) for k in names) else None
        if ids is None or ids != list(range(len(ids))):
            raise DatasetError(f"{path}: names: expected {{id: name}} with ids 0..{len(names) - 1}, found ids {list(names)[:10]}")
        names = [names[i] for i in ids]
    if not (isinstance(names, list) and names and all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in names)):
        raise DatasetError(f"{path}: names: expected a non-empty list of class names in id order or {{id: name}}, found {names!r}"[:300])
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise DatasetError(f"{path}: names: expected distinct class names, found duplicates {sorted({n for n in names if names.count(n) > 1})}")
    nc = doc.get("nc")
    if nc is not None and nc != len(names):
        raise DatasetError(f"{path}: nc: expected {len(names)} (the number of names), found {nc!r}")
    return tuple(names)


def _split_sources(doc: dict, path: Path, split: str) -> tuple[Path, list[Path]]:
    """(dataset root, the split's folders / list files), each checked to exist."""
    base = path.parent
    root = Path(doc["path"]) if isinstance(doc.get("path"), str) and doc["path"] else base
    root = (root if root.is_absolute() else base / root).resolve()
    entry = doc.get(split)
    if entry is None:
        given = [k for k in ("train", "val", "test") if doc.get(k)]
        raise DatasetError(f"{path}: dataset.split is {split!r}: expected a {split!r} entry in data.yaml, found {', '.join(given) or 'no split'}"
                           f"; set dataset.split to one of those")
    entries = entry if isinstance(entry, list) else [entry]
    out = []
    for e in entries:
        if not isinstance(e, str) or not e:
            raise DatasetError(f"{path}: {split}: expected a folder or .txt file path (or a list of them), found {e!r}")
        p = Path(e) if Path(e).is_absolute() else root / e
        if not p.exists() and e.startswith("../"):
            p = root / e[3:]  # Roboflow's "../valid/images" next to data.yaml (Ultralytics looks there too)
        if not p.exists():
            raise DatasetError(f"{path}: {split}: expected an existing folder or .txt list at {p.resolve()}, found nothing there")
        out.append(p.resolve())
    return root, out


def _images(sources: list[Path], path: Path) -> list[Path]:
    images: list[Path] = []
    for src in sources:
        if src.is_dir():
            images += sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            for line in src.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line:
                    p = Path(line)
                    images.append((p if p.is_absolute() else src.parent / p).resolve())
    if not images:
        raise DatasetError(f"{path}: expected images in {', '.join(map(str, sources))}, found none ({', '.join(IMAGE_SUFFIXES[:6])}, ...)")
    return images


def label_path(image: Path) -> Path:
    """The Ultralytics rule: the last ``/images/`` in the path -> ``/labels/``, the extension -> ``.txt``."""
    text = str(image)
    sep = f"{os.sep}images{os.sep}"
    i = text.rfind(sep)
    if i >= 0:
        text = text[:i] + f"{os.sep}labels{os.sep}" + text[i + len(sep):]
    return Path(text).with_suffix(".txt")


def _row_box(values: list[float], size: tuple[int, int], names: tuple[str, ...], where: str) -> Box:
    """One label row -> a Box in pixels (raises ValueError with the reason)."""
    cls = values[0]
    if cls != int(cls) or not 0 <= cls < len(names):
        raise ValueError(f"{where}: class id {values[0]:g} is out of range (data.yaml names ids 0-{len(names) - 1})")
    coords = values[1:]
    if len(coords) != 4 and (len(coords) < 6 or len(coords) % 2):
        raise ValueError(f"{where}: expected 'class cx cy w h' or a polygon 'class x1 y1 x2 y2 x3 y3 ...', found {len(values)} numbers")
    bad = [v for v in coords if not (math.isfinite(v) and -_TOLERANCE <= v <= 1 + _TOLERANCE)]
    if bad:
        raise ValueError(f"{where}: coordinate {bad[0]:g} is outside [0, 1] (YOLO coordinates are normalised by the image size)")
    w, h = size
    coords = [min(max(v, 0.0), 1.0) for v in coords]
    label = names[int(cls)]
    if len(coords) == 4:
        cx, cy, bw, bh = coords
        return Box(label, (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
    xs, ys = [x * w for x in coords[0::2]], [y * h for y in coords[1::2]]
    polygon = [v for xy in zip(xs, ys) for v in xy]
    return Box(label, min(xs), min(ys), max(xs), max(ys), [polygon])


def _record(image: Path, root: Path, names: tuple[str, ...]) -> tuple[ImageRecord | None, str | None]:
    """(the image's record, None) or (None, a dataset problem: no label file / an empty one)."""
    rel = os.path.relpath(image, root)
    labels = label_path(image)
    if not labels.is_file():
        return None, f"{rel}: no label file (expected {os.path.relpath(labels, root)}); an image with no object is not audited"
    try:
        lines = labels.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return ImageRecord(rel, (), f"label file {labels} cannot be read ({exc})"), None
    rows = [(n, line.split()) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        return None, f"{rel}: its label file {os.path.relpath(labels, root)} is empty; an image with no object is not audited"
    try:
        size = image_size(image)
    except ImageProblem as exc:
        return ImageRecord(rel, (), str(exc)), None
    boxes = []
    for n, parts in rows:
        where = f"{labels} line {n}"
        try:
            boxes.append(_row_box([float(p) for p in parts], size, names, where))
        except ValueError as exc:
            reason = str(exc) if str(exc).startswith(where) else f"{where}: expected numbers, found {' '.join(parts)[:60]!r}"
            return ImageRecord(rel, (), reason), None
    return ImageRecord(rel, tuple(boxes)), None


def load_yolo(path: Path, split: str = "val") -> Annotations:
    """Read ``data.yaml`` and the split's label files; ``Annotations.images_dir`` is the folder image paths are relative to."""
    doc = _read_yaml(path)
    names = class_names(doc, path)
    root, sources = _split_sources(doc, path, split)
    images = _images(sources, path)
    base = Path(os.path.commonpath([root, *(p.parent for p in images)]))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda p: _record(p, base, names), images))
    records = tuple(r for r, _ in results if r is not None)
    problems = tuple(p for _, p in results if p is not None)
    label_files = tuple(str(label_path(p)) for p in images if label_path(p).is_file())
    return Annotations(records, names, (str(path), *label_files), problems, images_dir=base)


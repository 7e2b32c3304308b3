"""YOLO / Roboflow exports: data.yaml, the Ultralytics label rule, rows, polygons, problems; Roboflow's COCO root category."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.coco import load_coco
from pipeline.data.masks import segmentation_mask
from pipeline.data.yolo import label_path, load_yolo
from pipeline.errors import DatasetError


def _export(root: Path, labels: dict[str, str], *, names="[cat, dog]", split="val", sizes=None, extra="") -> Path:
    """A YOLO export: root/images/<split>/*.png, root/labels/<split>/*.txt, root/data.yaml."""
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for name, text in labels.items():
        Image.new("RGB", (sizes or {}).get(name, (200, 100)), (80, 80, 80)).save(root / "images" / split / f"{name}.png")
        if text is not None:
            (root / "labels" / split / f"{name}.txt").write_text(text)
    yaml = root / "data.yaml"
    yaml.write_text(f"path: .\n{split}: images/{split}\nnames: {names}\n{extra}")
    return yaml


def test_boxes_in_pixels_by_hand(tmp_path):
    # 200x100 image: cx .5 cy .5 w .2 h .4 -> x 80..120, y 30..70; class 1 = dog
    yaml = _export(tmp_path, {"a": "1 0.5 0.5 0.2 0.4\n0 0.1 0.2 0.2 0.2\n"})
    ann = load_yolo(yaml, "val")
    assert ann.class_names == ("cat", "dog")
    (rec,) = ann.images
    assert rec.image == "images/val/a.png" and rec.problem is None
    assert [(b.label, *np.round(b.as_tuple(), 9)) for b in rec.boxes] == [("dog", 80, 30, 120, 70), ("cat", 0, 10, 40, 30)]
    assert ann.images_dir == tmp_path.resolve()


def test_names_as_dict_and_nc_checked(tmp_path):
    yaml = _export(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"}, names="{0: cat, 1: dog}", extra="nc: 2\n")
    assert load_yolo(yaml).class_names == ("cat", "dog")
    yaml.write_text("path: .\nval: images/val\nnames: {0: cat, 1: dog}\nnc: 3\n")
    with pytest.raises(DatasetError, match=r"nc: expected 2 \(the number of names\), found 3"):
        load_yolo(yaml)
    yaml.write_text("path: .\nval: images/val\nnames: {0: cat, 2: dog}\n")
    with pytest.raises(DatasetError, match=r"names: expected \{id: name\} with ids 0..1"):
        load_yolo(yaml)


def test_missing_and_empty_label_files_are_dataset_problems(tmp_path):
    yaml = _export(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n", "b": None, "c": "\n"})
    ann = load_yolo(yaml)
    assert [r.image for r in ann.images] == ["images/val/a.png"]
    assert any("images/val/b.png: no label file (expected labels/val/b.txt)" in p for p in ann.problems)
    assert any("images/val/c.png: its label file labels/val/c.txt is empty" in p for p in ann.problems)


def test_bad_rows_skip_the_sample_naming_file_and_line(tmp_path):
    yaml = _export(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n", "b": "0 0.5 0.5 0.2\n", "c": "0 0.5 x 0.2 0.2\n",
                              "d": "1 0.5 0.5 1.3 0.2\n"})
    by = {Path(r.image).stem: r.problem for r in load_yolo(yaml).images}
    label_dir = tmp_path.resolve() / "labels" / "val"
    assert by["a"] == f"{label_dir / 'a.txt'} line 2: class id 7 is out of range (data.yaml names ids 0-1)"
    assert by["b"].startswith(f"{label_dir / 'b.txt'} line 1: expected 'class cx cy w h' or a polygon")
    assert by["c"] == f"{label_dir / 'c.txt'} line 1: expected numbers, found '0 0.5 x 0.2 0.2'"
    assert by["d"].startswith(f"{label_dir / 'd.txt'} line 1: coordinate 1.3 is outside [0, 1]")


def test_seg_polygon_is_the_mask_and_its_box(tmp_path):
    # a 10x10 image; the polygon (0.2, 0.2) (0.6, 0.2) (0.6, 0.8) (0.2, 0.8) -> pixels x 2..6, y 2..8
    yaml = _export(tmp_path, {"a": "0 0.2 0.2 0.6 0.2 0.6 0.8 0.2 0.8\n"}, sizes={"a": (10, 10)})
    (box,) = load_yolo(yaml).images[0].boxes
    assert np.allclose(box.as_tuple(), (2, 2, 6, 8))
    mask = segmentation_mask(box.segmentation, (10, 10), (10, 10))
    expected = np.zeros((10, 10), bool)
    expected[2:8, 2:6] = True
    assert (mask == expected).all()


def test_ultralytics_label_rule_and_roboflow_layout(tmp_path):
    assert label_path(Path("/d/images/x/images/a.b.jpg")) == Path("/d/images/x/labels/a.b.txt")
    # Roboflow: data.yaml beside train/ valid/ with "val: ../valid/images" and no path
    (tmp_path / "valid" / "images").mkdir(parents=True)
    (tmp_path / "valid" / "labels").mkdir(parents=True)
    Image.new("RGB", (20, 20)).save(tmp_path / "valid" / "images" / "a.jpg")
    (tmp_path / "valid" / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['fruit']\n")
    ann = load_yolo(tmp_path / "data.yaml", "val")
    assert [r.image for r in ann.images] == ["valid/images/a.jpg"] and ann.images[0].boxes[0].label == "fruit"
    with pytest.raises(DatasetError, match="dataset.split is 'test': expected a 'test' entry in data.yaml, found train, val"):
        load_yolo(tmp_path / "data.yaml", "test")


def _coco(tmp_path: Path, categories: list[dict], info: dict | None = None) -> Path:
    doc = {"images": [{"id": 1, "file_name": "a.jpg"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]},
                           {"id": 2, "image_id": 1, "category_id": 2, "bbox": [1, 1, 4, 4]}],
           "categories": categories, **({"info": info} if info else {})}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    return path


def test_roboflow_root_category_left_out_and_said(tmp_path):
    cats = [{"id": 0, "name": "fruits-3x8", "supercategory": "none"}, {"id": 1, "name": "apple", "supercategory": "fruits-3x8"},
            {"id": 2, "name": "banana", "supercategory": "fruits-3x8"}]
    ann = load_coco(_coco(tmp_path, cats))
    assert ann.class_names == ("apple", "banana")
    assert len(ann.notes) == 1 and "category 0 'fruits-3x8' owns no annotation and is the dataset's root category" in ann.notes[0]
    # named as the dataset itself (info.description), no supercategories
    plain = [{"id": 0, "name": "my-fruits"}, {"id": 1, "name": "apple"}, {"id": 2, "name": "banana"}]
    assert load_coco(_coco(tmp_path, plain, {"description": "my-fruits"})).class_names == ("apple", "banana")
    # an unused ordinary category stays (a subset of COCO); ignore_categories removes it explicitly, silently
    assert load_coco(_coco(tmp_path, plain)).class_names == ("my-fruits", "apple", "banana")
    explicit = load_coco(_coco(tmp_path, plain), ignore=("my-fruits",))
    assert explicit.class_names == ("apple", "banana") and explicit.notes == ()
    with pytest.raises(DatasetError, match="dataset.ignore_categories: expected category names of this file, found 'pear'"):
        load_coco(_coco(tmp_path, plain), ignore=("pear",))


def test_the_shipped_demo_export_loads():
    from conftest import ROOT

    ann = load_yolo(ROOT / "data_samples" / "shapes" / "data.yaml", "val")
    assert ann.class_names == ("circle", "square", "triangle") and len(ann.images) == 300 and not ann.problems
    first = next(r for r in ann.images if r.image == "images/circle_0000.jpg")
    # annotations.json: bbox [57, 65, 36, 36] in a 103x105 image, written to 6 digits
    assert np.allclose(first.boxes[0].as_tuple(), (57, 65, 93, 101), atol=1e-3)


def test_a_broken_data_yaml_is_a_dataset_error(tmp_path):
    (tmp_path / "data.yaml").write_text("names: [a, b\nval: images\n")
    with pytest.raises(DatasetError, match=r"data.yaml: expected valid YAML, found a syntax error at line 2"):
        load_yolo(tmp_path / "data.yaml")
    (tmp_path / "data.yaml").write_text("- just\n- a list\n")
    with pytest.raises(DatasetError, match=r"expected a YOLO data.yaml mapping \(path, train/val/test, names\), found list"):
        load_yolo(tmp_path / "data.yaml")

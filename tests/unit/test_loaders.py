"""COCO / VOC / CSV box conversion to the internal (x0, y0, x1, y1) half-open pixel convention."""

from __future__ import annotations

import json

import pytest

from pipeline.data.coco import load_coco
from pipeline.data.csv_format import load_csv
from pipeline.data.voc import load_voc
from pipeline.errors import DatasetError


def test_coco_xywh_to_xyxy_and_category_order(tmp_path):
    doc = {
        "images": [{"id": 7, "file_name": "a.jpg"}, {"id": 3, "file_name": "b.jpg"}],
        "annotations": [
            {"image_id": 7, "category_id": 5, "bbox": [5, 6, 10, 20]},
            {"image_id": 7, "category_id": 2, "bbox": [0.5, 0, 1.5, 2]},
            {"image_id": 3, "category_id": 9, "bbox": [1, 1, 1, 1]},
        ],
        "categories": [{"id": 5, "name": "zebra"}, {"id": 2, "name": "ant"}],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    ann = load_coco(path)
    assert ann.class_names == ("ant", "zebra")  # category id order: 2, 5
    a, b = ann.images
    assert a.image == "a.jpg" and [bx.as_tuple() for bx in a.boxes] == [(5, 6, 15, 26), (0.5, 0, 2.0, 2)]
    assert a.labels == ("zebra", "ant")
    assert b.problem is not None and "category_id 9" in b.problem


def test_coco_invalid_json_names_line(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text('{"images": [\n}')
    with pytest.raises(DatasetError, match=r"ann.json: expected COCO JSON, found invalid JSON at line 2"):
        load_coco(path)


def test_coco_missing_sections(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text('{"images": []}')
    with pytest.raises(DatasetError, match="expected a COCO object with lists"):
        load_coco(path)


VOC = """<annotation><filename>{name}</filename><size><width>0</width><height>0</height></size>
<object><name>apple</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
<object><name>banana</name><bndbox><xmin>5.5</xmin><ymin>1</ymin><xmax>6</xmax><ymax>1</ymax></bndbox></object>
</annotation>"""


def test_voc_one_based_inclusive_to_half_open(tmp_path):
    (tmp_path / "b.xml").write_text(VOC.format(name="b.jpg"))
    (tmp_path / "a.xml").write_text(VOC.format(name="a.png"))
    ann = load_voc(tmp_path)
    assert [r.image for r in ann.images] == ["a.png", "b.jpg"]  # sorted by XML name
    # xmin=1..xmax=10 inclusive, 1-based = columns 0..9 -> [0, 10): 10 pixels wide.
    assert [b.as_tuple() for b in ann.images[0].boxes] == [(0, 1, 10, 20), (4.5, 0, 6, 1)]
    assert ann.class_names == ("apple", "banana")


def test_voc_broken_xml_is_a_skipped_sample_not_a_crash(tmp_path):
    (tmp_path / "a.xml").write_text("<annotation><filename>a.jpg")
    ann = load_voc(tmp_path)
    assert ann.images[0].problem and "cannot be parsed" in ann.images[0].problem


def test_voc_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="found none"):
        load_voc(tmp_path)


def test_csv_rows_grouped_by_image_in_first_appearance_order(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("image,label,x0,y0,x1,y1\nb.jpg,cat,1,2,3,4\na.jpg,dog,0,0,5,5\nb.jpg,dog,2.5,0,4,1\nc.jpg,cat,x,0,1,1\n")
    ann = load_csv(path)
    assert [r.image for r in ann.images] == ["b.jpg", "a.jpg", "c.jpg"]
    assert [b.as_tuple() for b in ann.images[0].boxes] == [(1, 2, 3, 4), (2.5, 0, 4, 1)]
    assert ann.class_names == ("cat", "dog")
    assert ann.images[2].problem and "line 5" in ann.images[2].problem


def test_csv_missing_columns(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("img,label\n")
    with pytest.raises(DatasetError, match="expected a header with columns image,label,x0,y0,x1,y1, found img,label"):
        load_csv(path)


def test_coco_problems_that_touch_no_usable_sample_are_listed_not_fatal(tmp_path):
    import json

    from pipeline.data.coco import load_coco

    doc = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}, {"id": 1, "file_name": "dup.jpg"}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
                        {"id": 2, "image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5]}],
    }
    (tmp_path / "c.json").write_text(json.dumps(doc))
    ann = load_coco(tmp_path / "c.json")
    assert [r.image for r in ann.images] == ["a.jpg", "b.jpg"] and len(ann.images[0].boxes) == 1
    assert ann.images[1].boxes == ()  # an image without annotations: a sample skipped later, with its reason
    assert ann.problems == (
        "images[2]: id 1 was already used by images[0] ('a.jpg'); this entry ('dup.jpg') is ignored",
        "annotations[1]: image_id 99 is not listed in 'images'; the annotation is ignored",
    )

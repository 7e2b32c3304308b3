"""Mask regions on the demo (DESIGN §4 "Region") and dataset problems that touch no usable sample
(§4 "Dataset problems"), end to end."""

from __future__ import annotations

import csv
import json

import numpy as np

from conftest import ROOT
from pipeline.cli import main
from test_label_map import colour_model, write_png


def _rows(folder):
    with (folder / "samples.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_the_mask_demo_scores_inside_each_box_more_tightly(tmp_path, demo_runs):
    """Every mask lies inside its box, so per sample the mask's area fraction and energy can only
    be smaller than the box's (same heatmaps: the model and images are the demo's)."""
    code = main(["audit", str(ROOT / "configs" / "demo_mask.yaml"), "--output", str(tmp_path / "mask"), "--limit", "64", "--no-progress"])
    summary = json.loads((tmp_path / "mask" / "summary.json").read_text())
    assert code == summary["exit_code"] and summary["provenance"]["region"] == "mask"
    assert "region = mask" in (tmp_path / "mask" / "report.html").read_text()
    masks = _rows(tmp_path / "mask")  # --limit 64: a label-stratified sample, matched to the box audit's rows by sample id
    everything = _rows(demo_runs["demo"][1])
    where = {r["sample_id"]: i for i, r in enumerate(everything)}
    rows = [where[m["sample_id"]] for m in masks]
    boxes = [everything[i] for i in rows]
    assert len(masks) == 64 and {b["label"] for b in boxes} == {"circle", "square", "triangle"}
    # the same heatmaps: batches of other neighbours give the same maps up to oneDNN's rounding
    np.testing.assert_allclose(np.load(demo_runs["demo"][1] / "heatmaps.npz")["cams"][rows], np.load(tmp_path / "mask" / "heatmaps.npz")["cams"],
                               rtol=1e-4, atol=1e-6)
    fb, fm = (np.array([float(r["box_area_fraction"]) for r in rows]) for rows in (boxes, masks))
    eb, em = (np.array([float(r["energy_in_box"]) for r in rows]) for rows in (boxes, masks))
    assert (fm < fb).all() and (em <= eb + 1e-6).all()
    # a filled circle covers pi/4 of its bounding square; the masks are the drawn shapes' pixels
    circles = [i for i, b in enumerate(boxes) if b["label"] == "circle"]
    assert 0.7 < np.median(fm[circles] / fb[circles]) < 0.85


def test_region_mask_without_segmentation_is_a_clear_exit_2(tmp_path, capsys):
    ann = json.loads((ROOT / "data_samples" / "shapes" / "annotations.json").read_text())
    for a in ann["annotations"]:
        a.pop("segmentation")
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    text = (ROOT / "configs" / "demo_mask.yaml").read_text().replace("../", f"{ROOT}/")
    text = text.replace(f"{ROOT}/data_samples/shapes/annotations.json", str(tmp_path / "ann.json"))
    (tmp_path / "c.yaml").write_text(text)
    assert main(["audit", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "dataset.region is mask: expected COCO annotations with 'segmentation'" in err and str(tmp_path / "ann.json") in err
    assert not (tmp_path / "out").exists()


def test_dataset_problems_that_touch_no_usable_sample_audit_to_the_end_and_are_listed(tmp_path):
    colour_model(tmp_path / "model.keras")
    (tmp_path / "images").mkdir()
    for name, colour in (("red.png", (220, 10, 10)), ("blue.png", (10, 10, 220)), ("empty.png", (100, 100, 100))):
        write_png(tmp_path / "images", name, colour)
    doc = {
        "images": [{"id": 1, "file_name": "red.png"}, {"id": 2, "file_name": "blue.png"}, {"id": 3, "file_name": "empty.png"},
                   {"id": 2, "file_name": "again.png"}],
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate("abcdef")],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 8, 8]},
                        {"id": 2, "image_id": 2, "category_id": 4, "bbox": [2, 2, 8, 8]},
                        {"id": 3, "image_id": 77, "category_id": 1, "bbox": [2, 2, 8, 8]}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    (tmp_path / "c.yaml").write_text("name: problems\nmodel: {path: model.keras}\ndataset: {format: coco, annotations: ann.json, images: images}\n"
                                     "trust: {randomisation: false}\ngate:\n  - {metric: accuracy, min: 0.5}\n")
    assert main(["audit", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["dataset_problems"] == [
        "images[3]: id 2 was already used by images[1] ('blue.png'); this entry ('again.png') is ignored",
        "annotations[2]: image_id 77 is not listed in 'images'; the annotation is ignored",
    ]
    assert summary["skipped"] == [{"row": 2, "sample_id": "empty.png", "reason": "no labelled object in this image"}]
    assert [r["correct"] for r in _rows(tmp_path / "out")] == ["true", "true", ""]  # red -> a, blue -> d
    report = (tmp_path / "out" / "report.html").read_text()
    assert "image_id 77 is not listed" in report and "again.png" in report and "no labelled object in this image" in report

"""The inputs users bring, end to end: a YOLO export, centre-crop geometry, the Python API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT
from pipeline import ConfigError, audit
from pipeline.data.geometry import window

SHAPES = ROOT / "data_samples" / "shapes"
MODEL = SHAPES / "model_good.keras"
N = 40


def _quick(dataset: dict, **model) -> dict:
    """A fast audit config (no interventions, randomisation or strategies) as a mapping."""
    return {
        "name": "real-inputs", "model": {"path": str(MODEL), **model}, "dataset": dataset,
        "evidence": {"interventions": False}, "trust": {"randomisation": False}, "strategies": {"enabled": False},
        "gate": [{"metric": "accuracy", "min": 0.0}],
    }


def _shapes_coco() -> dict:
    doc = json.loads((SHAPES / "annotations.json").read_text())
    keep = {img["id"] for img in doc["images"][:N]}
    return {**doc, "images": [i for i in doc["images"] if i["id"] in keep],
            "annotations": [a for a in doc["annotations"] if a["image_id"] in keep]}


def _energies(result) -> pd.Series:
    table = result.samples
    return table.set_index(table["sample_id"].map(lambda s: Path(s).name))["energy_in_box"].sort_index()


def test_yolo_export_scores_as_the_equivalent_coco(tmp_path):
    coco = _shapes_coco()
    names = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
    root = tmp_path / "yolo"
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    by_image: dict[int, list[str]] = {}
    for a in coco["annotations"]:
        img = next(i for i in coco["images"] if i["id"] == a["image_id"])
        w, h = Image.open(SHAPES / "images" / img["file_name"]).size
        x, y, bw, bh = a["bbox"]
        by_image.setdefault(a["image_id"], []).append(f"{a['category_id'] - 1} {(x + bw / 2) / w:.12f} {(y + bh / 2) / h:.12f} {bw / w:.12f} {bh / h:.12f}")
    for img in coco["images"]:
        shutil.copy(SHAPES / "images" / img["file_name"], root / "images" / "val" / img["file_name"])
        (root / "labels" / "val" / Path(img["file_name"]).with_suffix(".txt").name).write_text("\n".join(by_image[img["id"]]) + "\n")
    (root / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/val\nnames: {dict(enumerate(names))}\n")
    (tmp_path / "coco.json").write_text(json.dumps(coco))

    from_coco = audit(_quick({"format": "coco", "annotations": str(tmp_path / "coco.json"), "images": str(SHAPES / "images")}),
                      output=tmp_path / "out-coco", progress=False)
    from_yolo = audit(_quick({"format": "yolo", "annotations": str(root / "data.yaml")}), output=tmp_path / "out-yolo", progress=False)
    a, b = _energies(from_coco), _energies(from_yolo)
    assert len(a) == N and list(a.index) == list(b.index)
    assert np.allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-9, equal_nan=True)
    assert from_yolo.summary["aggregates"]["overall"]["accuracy"] == from_coco.summary["aggregates"]["overall"]["accuracy"]


def test_crop_equals_images_cropped_beforehand_with_stretch(tmp_path):
    """resize_mode crop scores exactly as stretching files that were cropped to the window first."""
    coco = _shapes_coco()
    (tmp_path / "cropped").mkdir()
    cropped = {**coco, "annotations": []}
    for img in coco["images"]:
        im = Image.open(SHAPES / "images" / img["file_name"])
        x0, y0, cw, ch = window(im.size, (64, 64), "crop", 0.8)
        im.crop((x0, y0, x0 + cw, y0 + ch)).save(tmp_path / "cropped" / Path(img["file_name"]).with_suffix(".png").name)
        img["file_name"] = Path(img["file_name"]).with_suffix(".png").name
        for a in (a for a in coco["annotations"] if a["image_id"] == img["id"]):
            x, y, w, h = a["bbox"]
            left, top = max(x - x0, 0), max(y - y0, 0)
            right, bottom = min(x + w - x0, cw), min(y + h - y0, ch)
            if right > left and bottom > top:
                cropped["annotations"].append({**a, "bbox": [left, top, right - left, bottom - top], "segmentation": None})
    (tmp_path / "cropped.json").write_text(json.dumps(cropped))
    original = _shapes_coco()
    for img in original["images"]:
        img["file_name"] = Path(img["file_name"]).with_suffix(".png").name
        Image.open(SHAPES / "images" / Path(img["file_name"]).with_suffix(".jpg").name).save(tmp_path / img["file_name"])
    (tmp_path / "original.json").write_text(json.dumps(original))

    crop = audit(_quick({"format": "coco", "annotations": str(tmp_path / "original.json"), "images": str(tmp_path)},
                        resize_mode="crop", crop_fraction=0.8), output=tmp_path / "out-crop", progress=False)
    pre = audit(_quick({"format": "coco", "annotations": str(tmp_path / "cropped.json"), "images": str(tmp_path / "cropped")}),
                output=tmp_path / "out-pre", progress=False)
    a, b = _energies(crop), _energies(pre)
    assert list(a.index) == list(b.index) and a.notna().sum() > N // 2
    assert np.allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-9, equal_nan=True)
    cams_a, cams_b = (np.load(r.output_dir / "heatmaps.npz")["cams"] for r in (crop, pre))
    assert np.array_equal(cams_a, cams_b)
    # the report shows what the model saw: the thumbnails are of the cropped window
    assert crop.summary["provenance"]["input"] == {"resize_mode": "crop", "interpolation": "bilinear", "preprocessing": "scale_0_1",
                                                   "crop_fraction": 0.8, "antialias": False, "channels": 3, "luma": False}


def test_api_returns_the_cli_summary(demo_runs, tmp_path):
    code, folder = demo_runs["demo"]
    result = audit(ROOT / "configs" / "demo.yaml", output=tmp_path / "api", progress=False)
    cli = json.loads((folder / "summary.json").read_text())
    assert (result.verdict, result.exit_code) == (cli["verdict"], code) == ("FIT TO DEPLOY", 0)
    for key in ("gate", "aggregates", "trust", "dataset_problems", "strategies"):  # as JSON: NaN == NaN there
        assert json.dumps(result.summary[key], sort_keys=True) == json.dumps(cli[key], sort_keys=True), key
    assert result.report_path == tmp_path / "api" / "report.html" and result.report_path.is_file()
    samples = result.samples
    assert len(samples) == cli["aggregates"]["overall"]["n_samples"] and "energy_in_box" in samples.columns
    html = result._repr_html_()
    assert "FIT TO DEPLOY" in html and "mean_focus_score" in html and "report.html" in html


def test_api_bad_config_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"<config dict>: model.resize_mode: expected one of stretch, crop, pad \(did you mean 'crop'\?\), found 'cropp'"):
        audit(_quick({"format": "coco", "annotations": str(SHAPES / "annotations.json"), "images": str(SHAPES / "images")},
                     resize_mode="cropp"), output=tmp_path / "x")
    with pytest.raises(ConfigError, match="expected a YAML config file, found nothing there"):
        audit(tmp_path / "missing.yaml")


def test_ray_decoder_crops_as_the_local_pipeline():
    """The Ray actors' streaming decoder runs the same per-image map, windows included."""
    from pipeline.data.batches import StreamingDecoder, sample_batches
    from pipeline.data.coco import load_coco
    from pipeline.data.samples import build_samples
    from pipeline.data.geometry import InputSpec
    from pipeline.data.labels import label_space

    for spec in (InputSpec((64, 64), mode="crop", crop_fraction=0.7), InputSpec((48, 64), mode="pad", pad_value=114)):
        ann = load_coco(SHAPES / "annotations.json")
        samples = build_samples(ann.images[:6], images_dir=SHAPES / "images", space=label_space(ann.class_names, ann.class_names),
                                target="predicted", spec=spec)
        rows, images, raw, _ = next(iter(sample_batches(samples, spec, 8)))
        decoder = StreamingDecoder(spec=spec, batch_size=8)
        rows2, images2, raw2, _ = decoder.decode([s.row for s in samples], [str(s.path) for s in samples], np.array([s.window for s in samples]))
        assert rows.numpy().tolist() == rows2.tolist()
        assert np.array_equal(images.numpy(), images2) and np.array_equal(raw.numpy(), raw2)
        # the letterbox is pad_value in raw pixels
        if spec.mode == "pad":
            assert np.all(raw.numpy()[:6, :, 0, :] == 114)


def test_the_decode_pipeline_does_not_autotune_and_decodes_as_an_autotuned_one():
    """Autotuning's model thread sleeps up to a minute between optimisations and deleting the iterator waits for it: after a
    90 s loop the iterator's end cost 52 s with autotuning and 0.00 s without (TF 2.21, 500 images; docs/speed.md). Without it
    the batches are the same numbers."""
    import tensorflow as tf

    from pipeline.data.batches import sample_batches
    from pipeline.data.coco import load_coco
    from pipeline.data.samples import build_samples
    from pipeline.data.geometry import InputSpec
    from pipeline.data.labels import label_space

    spec = InputSpec((64, 64))
    ann = load_coco(SHAPES / "annotations.json")
    samples = build_samples(ann.images[:10], images_dir=SHAPES / "images", space=label_space(ann.class_names, ann.class_names),
                            target="predicted", spec=spec)
    fixed = sample_batches(samples, spec, 4)
    assert fixed.options().autotune.enabled is False
    tuned = tf.data.Options()
    tuned.autotune.enabled = True
    for a, b in zip(fixed, fixed.with_options(tuned), strict=True):
        assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b))

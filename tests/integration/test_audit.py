"""End to end: the two demo configs, a dataset with bad samples, bad configs, and real VOC data."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FRUITS, ROOT, require
from pipeline.cli import main
from pipeline.publish.outputs import SAMPLE_COLUMNS

OUTPUTS = ("report.html", "summary.json", "samples.csv", "heatmaps.npz", "junit.xml", "summary.md", "strategies.csv", "probes.csv",
           "properties.csv")


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_demo_good_model_is_fit(demo_runs):
    code, folder = demo_runs["demo"]
    summary = json.loads((folder / "summary.json").read_text())
    assert code == 0 and summary["verdict"] == "FIT TO DEPLOY" and summary["exit_code"] == 0
    assert summary["aggregates"]["overall"]["accuracy"] >= 0.9


def test_demo_shortcut_model_is_accurate_but_not_fit(demo_runs):
    code, folder = demo_runs["demo_shortcut"]
    summary = json.loads((folder / "summary.json").read_text())
    good = json.loads((demo_runs["demo"][1] / "summary.json").read_text())
    assert code == 1 and summary["verdict"] == "NOT FIT"
    acc, good_acc = summary["aggregates"]["overall"]["accuracy"], good["aggregates"]["overall"]["accuracy"]
    assert acc >= 0.9 and abs(acc - good_acc) < 0.08  # accuracy alone cannot tell the two apart
    failed = {r["metric"] for r in summary["gate"] if r["status"] == "fail"}
    assert {"mean_focus_score", "right_for_wrong_reason_rate", "still_right_without_object_rate"} <= failed
    assert summary["flag_counts"]["right_for_wrong_reason"] > summary["flag_counts"]["ok"]
    assert "accuracy" not in failed
    # the interventions tell the same story in behaviour: the shortcut model does not need the shape
    evidence, good_evidence = summary["aggregates"]["overall"], good["aggregates"]["overall"]
    # (a third of the shortcut model's samples are right on a flat image too: the blank control takes them out)
    assert evidence["still_right_without_object_rate"] > 0.6 and good_evidence["still_right_without_object_rate"] < 0.3
    assert abs(evidence["mean_object_dependence"]) < 0.05 and good_evidence["mean_object_dependence"] > 0.4
    assert [c["status"] for c in good["trust"]["checks"]] == ["pass", "pass", "pass", "pass", "pass"]
    # no heatmap of the shortcut model claims the object, so there is no claim to confirm
    assert [c["status"] for c in summary["trust"]["checks"]] == ["not evaluated", "pass", "pass", "pass", "pass"]


@pytest.mark.parametrize("name", ["demo", "demo_shortcut"])
def test_outputs_present_and_consistent(demo_runs, name):
    _, folder = demo_runs[name]
    assert sorted(p.name for p in folder.iterdir()) == sorted(OUTPUTS)
    summary = json.loads((folder / "summary.json").read_text())
    rows = _rows(folder / "samples.csv")
    # DESIGN §5: the base columns, then the evidence columns (interventions are on by default)
    assert tuple(rows[0].keys()) == SAMPLE_COLUMNS + (
        "removed_confidence", "only_confidence", "object_dependence", "still_right_without_object", "right_from_object_alone",
        "blank_confidence", "evidence_note", "strategy")  # the strategies stage's column comes last (known only after every batch)
    assert [int(r["row"]) for r in rows] == list(range(len(rows)))
    assert len(rows) == summary["aggregates"]["overall"]["n_samples"] == 300
    with np.load(folder / "heatmaps.npz") as npz:
        cams, targets = npz["cams"], npz["target_class"]
    assert cams.shape == (300, 16, 16) and cams.dtype == np.float32 and targets.shape == (300,)
    assert np.nanmin(cams) >= 0
    # samples.csv flags agree with the summary's counts, and the CAM's class is the prediction
    assert {f: sum(r["flag"] == f for r in rows) for f in summary["flag_counts"]} == summary["flag_counts"]
    names = summary["class_names"]
    assert all(names[t] == r["predicted"] for t, r in zip(targets, rows))
    html = (folder / "report.html").read_text()
    assert f'<div class="big">{summary["verdict"]}</div>' in html
    junit = (folder / "junit.xml").read_text()
    # 7 overall rules + 1 class rule x 3 classes, + one case per trust check, per confirmed shortcut and per fooling probe
    shortcuts = int(summary["strategies"]["aggregates"]["overall"]["confirmed_shortcuts"])
    fooled = int(summary["probes"]["aggregates"]["overall"]["probes_fooled"])
    findings = summary["findings"]
    assert len(summary["gate"]) == 7 + 3 and junit.count("<testcase") == len(findings) + 10 + 5 + shortcuts + fooled
    assert junit.count("<failure") == (sum(r["status"] == "fail" for r in summary["gate"]) + sum(f["severity"] == "blocker" for f in findings)
                                       + sum(c["status"] == "fail" for c in summary["trust"]["checks"]) + shortcuts + fooled)
    assert summary["verdict"] in (folder / "summary.md").read_text()
    prov = summary["provenance"]
    assert prov["target_layer"] == "relu4" and prov["target_layer_shape"] == [16, 16, 64] and len(prov["model_sha256"]) == 64


def test_scores_in_csv_match_heatmaps_recomputed_independently(demo_runs):
    """Recompute energy_in_box for a few rows from heatmaps.npz with a full-resolution upsample."""
    import tensorflow as tf

    _, folder = demo_runs["demo"]
    rows = _rows(folder / "samples.csv")
    ann = json.loads((ROOT / "data_samples" / "shapes" / "annotations.json").read_text())
    images = {im["file_name"]: im for im in ann["images"]}
    with np.load(folder / "heatmaps.npz") as npz:
        cams = npz["cams"]
    for i in (0, 1, 2, 150, 299):
        im = images[rows[i]["image"]]
        up = tf.image.resize(cams[i][..., None], (64, 64), method="bilinear").numpy()[..., 0]
        mask = np.zeros((64, 64), bool)
        for a in ann["annotations"]:
            if a["image_id"] == im["id"]:
                x, y, w, h = a["bbox"]
                sx, sy = 64 / im["width"], 64 / im["height"]
                cols = (np.arange(64) + 0.5 >= x * sx) & (np.arange(64) + 0.5 < (x + w) * sx)
                rws = (np.arange(64) + 0.5 >= y * sy) & (np.arange(64) + 0.5 < (y + h) * sy)
                mask |= rws[:, None] & cols[None, :]
        assert float(rows[i]["energy_in_box"]) == pytest.approx(up[mask].sum() / up.sum(), abs=1e-4)
        assert float(rows[i]["box_area_fraction"]) == pytest.approx(mask.mean(), abs=1e-6)


def test_batch_size_one_and_seven_give_identical_rows(tmp_path):
    cfg = (ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/")
    results = {}
    for bs in (1, 7):
        path = tmp_path / f"bs{bs}.yaml"
        path.write_text(cfg.replace("batch_size: 32", f"batch_size: {bs}"))
        assert main(["audit", str(path), "--output", str(tmp_path / f"out{bs}"), "--limit", "15", "--no-progress"]) in (0, 1, 3)
        results[bs] = (_rows(tmp_path / f"out{bs}" / "samples.csv"), np.load(tmp_path / f"out{bs}" / "heatmaps.npz")["cams"])
    (rows1, cams1), (rows7, cams7) = results[1], results[7]
    assert [r["flag"] for r in rows1] == [r["flag"] for r in rows7] and [r["predicted"] for r in rows1] == [r["predicted"] for r in rows7]
    np.testing.assert_allclose(cams1, cams7, atol=1e-5)
    for a, b in zip(rows1, rows7):
        assert float(a["energy_in_box"]) == pytest.approx(float(b["energy_in_box"]), abs=1e-5)


def test_bad_samples_are_skipped_listed_and_the_rest_audited(tmp_path, capsys):
    src = ROOT / "data_samples" / "shapes" / "images"
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    good = sorted(src.iterdir())[:3]
    for p in good:
        shutil.copy(p, imgs / p.name)
    (imgs / "junk.jpg").write_bytes(b"GIF89a nonsense")
    data = good[0].read_bytes()
    (imgs / "truncated.jpg").write_bytes(data[: int(len(data) * 0.5)])  # header fine, pixels missing
    w = Image.open(good[1]).size[0]
    lines = ["image,label,x0,y0,x1,y1"]
    lines += [f"{p.name},circle,10,10,40,40" for p in good]
    for name, source in (("outside.jpg", good[1]), ("zero.jpg", good[2]), ("unknown.jpg", good[2])):
        shutil.copy(source, imgs / name)
    lines += [
        "missing.jpg,circle,1,1,20,20",
        "junk.jpg,circle,1,1,20,20",
        "truncated.jpg,circle,1,1,20,20",
        f"outside.jpg,circle,0,0,{w + 5},10",
        "../escape.jpg,circle,1,1,5,5",
        "zero.jpg,circle,5,5,5,20",
        "unknown.jpg,hexagon,1,1,20,20",
    ]
    (tmp_path / "boxes.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "bad.yaml").write_text(
        f"""name: bad-samples
model: {{path: {ROOT}/data_samples/shapes/model_good.keras, class_names: [circle, square, triangle]}}
dataset: {{format: csv, annotations: boxes.csv, images: imgs}}
gate:
  - {{metric: skipped_rate, max: 1.0}}
"""
    )
    code = main(["audit", str(tmp_path / "bad.yaml"), "--output", str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    rows = {r["image"]: r for r in _rows(tmp_path / "out" / "samples.csv")}
    assert len(rows) == 10
    for p in good:
        assert rows[p.name]["flag"] != "skipped" and rows[p.name]["predicted"] in ("circle", "square", "triangle")
    expect = {
        "missing.jpg": "image file not found",
        "junk.jpg": "not a readable image",
        "truncated.jpg": "corrupt or truncated",
        "outside.jpg": "lies outside the",
        "../escape.jpg": "leaves the images folder",
        "zero.jpg": "has zero area",
        "unknown.jpg": "label 'hexagon' is not one of the model's classes",
    }
    for image, reason in expect.items():
        assert rows[image]["flag"] == "skipped" and reason in rows[image]["skip_reason"], image
        assert rows[image]["energy_in_box"] == ""
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["flag_counts"]["skipped"] == 7 and len(summary["skipped"]) == 7
    assert summary["aggregates"]["overall"]["n_scored"] == 3
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Skipped samples (7)" in html and "label &#39;hexagon&#39; is not one of the model&#39;s classes" in html
    with np.load(tmp_path / "out" / "heatmaps.npz") as npz:
        skipped = [i for i, r in enumerate(_rows(tmp_path / "out" / "samples.csv")) if r["flag"] == "skipped"]
        assert np.isnan(npz["cams"][skipped]).all() and (npz["target_class"][skipped] == -1).all()


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_bad_config_exits_2_with_one_message_and_no_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text((ROOT / "configs" / "demo.yaml").read_text().replace("batch_size: 32", "batch_size: 0").replace("../", f"{ROOT}/"))
    result = _run_cli("audit", str(cfg), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {cfg}: explain.batch_size: expected an integer >= 1, found 0"
    assert not (tmp_path / "reports").exists()


def test_corrupt_model_file_exits_2_naming_the_file(tmp_path):
    (tmp_path / "broken.keras").write_bytes(b"this is not a zip")
    cfg = tmp_path / "c.yaml"
    cfg.write_text((ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/").replace(f"{ROOT}/data_samples/shapes/model_good.keras", "broken.keras"))
    result = _run_cli("validate", str(cfg), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'broken.keras'}: expected a Keras model" in result.stderr


def test_usage_error_exits_2(tmp_path):
    result = _run_cli("audit", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "the following arguments are required: config" in result.stderr


def test_validate_reports_the_plan_without_running(tmp_path):
    result = _run_cli("validate", str(ROOT / "configs" / "demo.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "target layer relu4 (16x16x64)" in result.stdout and "300 samples" in result.stdout


@pytest.fixture(scope="module")
def tiny_fruit_model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64, 64, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    path = tmp_path_factory.mktemp("fruit") / "tiny.keras"
    model.save(path)
    return path


@pytest.mark.parametrize("split,target,n_samples", [("test", "predicted", 60), ("test", "true", 68), ("train", "predicted", 240)])
def test_real_voc_dataset_has_no_unusable_sample(tmp_path, tiny_fruit_model, split, target, n_samples):
    """fruits-voc: PNGs named .jpg with alpha, XML sizes of 0, EXIF orientation 0, a 2569x4605 image."""
    require(FRUITS.is_dir(), f"{FRUITS} is absent (the shared datasets are not part of a clone)")
    folder = FRUITS / split
    cfg = tmp_path / "fruits.yaml"
    cfg.write_text(
        f"""name: fruits-{split}
model: {{path: {tiny_fruit_model}}}
dataset: {{format: voc, annotations: {folder}, images: {folder}}}
explain: {{target: {target}}}
trust: {{max_one_class: 1.0, better_than_chance: false}}  # an untrained model's constant answer and chance accuracy are not under test here
gate:
  - {{metric: skipped_rate, max: 0.0}}
"""
    )
    code = main(["audit", str(cfg), "--output", str(tmp_path / "out"), "--no-progress"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["skipped"] == [] and code == 0
    assert summary["aggregates"]["overall"]["n_samples"] == n_samples
    assert summary["class_names"] == ["apple", "banana", "orange"]
    if target == "true":
        rows = _rows(tmp_path / "out" / "samples.csv")
        # 68 samples = 55 single-class images + 13 from the 5 mixed images (one per class present)
        assert sum("|" in r["label"] for r in rows) == 13


def test_unwritable_output_folder_exits_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code = main(["audit", str(ROOT / "configs" / "demo.yaml"), "--output", str(blocker / "out"), "--no-progress", "--limit", "3"])
    assert code == 2
    assert f"{blocker / 'out'}: expected a folder the audit can write its outputs to" in capsys.readouterr().err


def test_dataset_with_no_usable_sample_exits_2(tmp_path, capsys):
    (tmp_path / "empty_images").mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text((ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/")
                   .replace(f"images: {ROOT}/data_samples/shapes/images", f"images: {tmp_path / 'empty_images'}"))
    assert main(["audit", str(cfg), "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "dataset: expected at least one usable sample, found none of 300" in err and "image file not found" in err
    assert not (tmp_path / "out").exists()


def test_class_count_that_differs_from_the_model_exits_2(tmp_path, capsys):
    src = sorted((ROOT / "data_samples" / "shapes" / "images").iterdir())[:2]
    (tmp_path / "imgs").mkdir()
    for p in src:
        shutil.copy(p, tmp_path / "imgs" / p.name)
    (tmp_path / "b.csv").write_text(f"image,label,x0,y0,x1,y1\n{src[0].name},circle,1,1,9,9\n{src[1].name},square,1,1,9,9\n")
    (tmp_path / "c.yaml").write_text(
        f"name: n\nmodel: {{path: {ROOT}/data_samples/shapes/model_good.keras}}\n"
        "dataset: {format: csv, annotations: b.csv, images: imgs}\ngate: [{metric: accuracy, min: 0}]\n"
    )
    assert main(["validate", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err
    assert "model.class_names: expected 3 class names (the model's outputs), found 2 from the CSV labels (sorted): circle, square" in err


def test_unknown_keras_applications_preprocessing_fails_validate(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text((ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/")
                   .replace("preprocessing: scale_0_1", "preprocessing: keras.applications.no_such_net.preprocess_input"))
    assert main(["validate", str(cfg)]) == 2
    assert "model.preprocessing: expected an importable keras.applications module with preprocess_input, found 'keras.applications.no_such_net.preprocess_input'" in capsys.readouterr().err

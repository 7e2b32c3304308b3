"""Trust checks end to end: a heatmap on the object that the model does not need is INCONCLUSIVE;
the randomisation check leaves the user's model alone, is reproducible and handles nested models."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from pipeline.cli import main


def _squares(folder, n=12, size=32, seed=0):
    """White 10x10 squares on black; returns CSV lines (label 'a', box in pixels)."""
    rng = np.random.default_rng(seed)
    (folder / "imgs").mkdir()
    lines = ["image,label,x0,y0,x1,y1"]
    for i in range(n):
        x, y = (int(v) for v in rng.integers(0, size - 10, 2))
        img = np.zeros((size, size, 3), np.uint8)
        img[y:y + 10, x:x + 10] = 255
        Image.fromarray(img).save(folder / "imgs" / f"s{i}.png")
        lines.append(f"s{i}.png,a,{x},{y},{x + 10},{y + 10}")
    (folder / "boxes.csv").write_text("\n".join(lines) + "\n")


def _bright_but_ignored_model(path):
    """Class 'a' always wins by a huge bias; its score rises a little with brightness, so Grad-CAM's
    heat sits on the white square, yet removing the square leaves p(a) at 1: the model does not need it."""
    import keras

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(1, 1, name="bright")(inp)
    x = keras.layers.ReLU(name="target")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2, activation="softmax", name="head")(x)
    model = keras.Model(inp, out)
    model.get_layer("bright").set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32), np.zeros(1, np.float32)])
    model.get_layer("head").set_weights([np.array([[0.01, -0.01]], np.float32), np.array([10.0, -10.0], np.float32)])
    model.save(path)


def test_heat_on_an_object_the_model_does_not_need_is_inconclusive(tmp_path, capsys):
    _squares(tmp_path, n=24)
    _bright_but_ignored_model(tmp_path / "m.keras")
    (tmp_path / "c.yaml").write_text(
        "name: constructed\nmodel: {path: m.keras, class_names: [a, b], target_layer: target}\n"
        "dataset: {format: csv, annotations: boxes.csv, images: imgs}\n"
        "trust: {randomisation: false}\n"
        "gate:\n  - {metric: mean_focus_score, min: 0.3}\n  - {metric: accuracy, min: 0.9}\n"
    )
    code = main(["audit", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["status"] for r in summary["gate"]] == ["pass", "pass"]  # the Grad-CAM-only gate is happy...
    assert code == 3 and summary["verdict"] == "INCONCLUSIVE" and summary["exit_code"] == 3  # ...but cannot be trusted
    (confirm,) = [c for c in summary["trust"]["checks"] if c["name"] == "heatmap_confirmation"]
    assert confirm["status"] == "fail" and confirm["value"] == 0.0 and confirm["n"] == 24
    # 0 of 24 on-target claims confirmed: Wilson 90% upper bound z²/n / (1 + z²/n) = 0.1013 < 0.5
    assert "interval 0.000 to 0.101" in confirm["message"]
    ex = summary["explanation"]
    assert ex["cells"] == {"on_needed": 0, "on_not_needed": 24, "off_needed": 0, "off_not_needed": 0}
    assert ex["kappa"] is None and "empty" in ex["kappa_reason"]
    rows = list(csv.DictReader((tmp_path / "out" / "samples.csv").open()))
    assert all(r["flag"] == "ok" and float(r["object_dependence"]) < 0.01 for r in rows)
    assert "  warning: Heatmaps' on-target claims are not backed by behaviour" in out  # its finding, with what to do
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert 'name="trust heatmap_confirmation"><failure' in junit and 'name="trust randomisation"><skipped' in junit
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'class="verdict inconclusive"' in html and "finer target layer" in html and "heatmap misleads<br><b>24</b>" in html
    # a failing rule still gives NOT FIT, whatever the trust checks say
    (tmp_path / "c2.yaml").write_text((tmp_path / "c.yaml").read_text().replace("min: 0.9}", "min: 1.1}").replace("constructed", "c2"))
    assert main(["audit", str(tmp_path / "c2.yaml"), "--output", str(tmp_path / "out2"), "--no-progress"]) == 1
    # with min_claims above the 24 on-target samples the check is not evaluated, never a coin flip: FIT
    (tmp_path / "c3.yaml").write_text((tmp_path / "c.yaml").read_text().replace("trust: {randomisation: false}",
                                      "trust: {randomisation: false, min_claims: 25}").replace("constructed", "c3"))
    assert main(["audit", str(tmp_path / "c3.yaml"), "--output", str(tmp_path / "out3"), "--no-progress"]) == 0
    (confirm,) = json.loads((tmp_path / "out3" / "summary.json").read_text())["trust"]["checks"][:1]
    assert confirm["status"] == "not evaluated" and "n too small: 24" in confirm["message"]


@pytest.fixture(scope="module")
def nested_setup(tmp_path_factory):
    """A model whose target layer sits inside a nested model, and a 10-image CSV dataset."""
    import keras

    folder = tmp_path_factory.mktemp("nested")
    src = sorted((ROOT / "data_samples" / "shapes" / "images").iterdir())[:10]
    (folder / "imgs").mkdir()
    lines = ["image,label,x0,y0,x1,y1"]
    for i, p in enumerate(src):
        (folder / "imgs" / p.name).write_bytes(p.read_bytes())
        lines.append(f"{p.name},{'abc'[i % 3]},5,5,40,40")
    (folder / "b.csv").write_text("\n".join(lines) + "\n")
    keras.utils.set_random_seed(3)
    inner = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(6, 3, padding="same", name="c1"),
                              keras.layers.ReLU(name="r1"), keras.layers.Conv2D(8, 3, padding="same", name="c2"),
                              keras.layers.ReLU(name="r2")], name="backbone")
    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inner(inp))
    keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(x)).save(folder / "nested.keras")
    (folder / "c.yaml").write_text(
        "name: nested\nmodel: {path: nested.keras, target_layer: backbone/r1, class_names: [a, b, c]}\n"
        "dataset: {format: csv, annotations: b.csv, images: imgs}\n"
        "trust: {randomisation_samples: 6, randomisation_draws: 2}\ngate: [{metric: accuracy, min: 0}]\n"
    )
    return folder


def test_randomisation_leaves_the_users_model_alone_and_is_reproducible(nested_setup):
    import tensorflow as tf

    from pipeline.config import load_config
    from pipeline.conclude.randomisation import randomisation_statistic
    from pipeline.prepare.stage import prepare

    cfg = load_config(nested_setup / "c.yaml")
    prep = prepare(cfg)
    user = prep.model.model
    before = [w.copy() for w in user.get_weights()]
    x = tf.random.stateless_uniform((4, 32, 32, 3), seed=(1, 2))
    predictions = user(x, training=False).numpy()
    n = len(prep.samples)
    cams = np.random.default_rng(0).random((n, 32, 32)).astype(np.float32)
    targets = np.arange(n) % 3
    first = randomisation_statistic(cfg, prep.model, prep.samples, cams, targets, keras_file=prep.loaded.keras_file)
    second = randomisation_statistic(cfg, prep.model, prep.samples, cams, targets, keras_file=prep.loaded.keras_file)
    assert first[0] == second[0] and first[1] == second[1] and (first[2] == second[2]).all()
    assert first[2].size == 6 and first[1] <= 12 and np.isfinite(first[0])  # 6 samples x 2 draws
    assert all(np.array_equal(a, b) for a, b in zip(before, user.get_weights()))
    assert np.array_equal(predictions, user(x, training=False).numpy())


def test_nested_model_audit_reports_both_trust_checks(nested_setup, tmp_path):
    code = main(["audit", str(nested_setup / "c.yaml"), "--output", str(tmp_path / "o"), "--no-progress"])
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert code in (0, 3) and summary["provenance"]["target_layer"] == "backbone/r1"
    rand = summary["trust"]["checks"][1]
    assert rand["name"] == "randomisation" and rand["status"] in ("pass", "fail") and rand["value"] is not None


def test_randomising_every_layer_above_the_map_changes_it_on_the_demo(tmp_path):
    """The good demo: the trained maps and those of re-initialised heads are unrelated (well below 0.5)."""
    from pipeline.config import load_config
    from pipeline.conclude.randomisation import randomisation_statistic
    from pipeline.prepare.stage import prepare

    cfg = load_config(ROOT / "configs" / "demo.yaml")
    prep = prepare(cfg, limit=40)
    assert main(["audit", str(ROOT / "configs" / "demo.yaml"), "--limit", "40", "--output", str(tmp_path / "o"), "--no-progress"]) in (0, 3)
    with np.load(tmp_path / "o" / "heatmaps.npz") as npz:
        value, n, rows = randomisation_statistic(cfg, prep.model, prep.samples, npz["cams"], npz["target_class"],
                                                 keras_file=prep.loaded.keras_file, sequential=cfg.statistics.sequential)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    # the audit's looks (DESIGN §18) stop at the first look whose interval lies below 0.5: the same rows here
    assert summary["trust"]["checks"][1]["value"] == pytest.approx(value) and value < 0.5 and rows.size in (16, 32, 40)

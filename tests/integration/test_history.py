"""pipeline history over real audits of the demo."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil

import pytest

from conftest import ROOT, require
from pipeline.cli import main


@pytest.fixture(scope="module")
def three_audits(demo_runs, tmp_path_factory):
    """good, shortcut, and good again with a stricter accuracy threshold (a third config)."""
    folder = tmp_path_factory.mktemp("hist")
    cfg = folder / "strict.yaml"
    cfg.write_text((ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/")
                   .replace("{metric: accuracy, min: 0.90}", "{metric: accuracy, min: 0.99}").replace("demo-shapes", "demo-strict"))
    assert main(["audit", str(cfg), "--output", str(folder / "strict"), "--no-progress"]) == 1
    return [demo_runs["demo"][1] / "summary.json", demo_runs["demo_shortcut"][1] / "summary.json", folder / "strict" / "summary.json"]


def test_history_rows_are_chronological_and_equal_the_summaries(three_audits, tmp_path):
    shuffled = list(three_audits)
    random.Random(1).shuffle(shuffled)
    assert main(["history", *map(str, shuffled), "--output", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    summaries = sorted((json.loads(p.read_text()) for p in three_audits), key=lambda s: s["provenance"]["started"])
    assert [r["name"] for r in rows] == [s["name"] for s in summaries] == ["demo-shapes", "demo-shortcut", "demo-strict"]
    assert [r["started"] for r in rows] == sorted(r["started"] for r in rows)
    for row, s in zip(rows, summaries):
        assert row["verdict"] == s["verdict"] and row["model_sha"] == s["provenance"]["model_sha256"][:12]
        for key in ("accuracy", "mean_focus_score", "still_right_without_object_rate", "ok_rate"):
            assert float(row[key]) == s["aggregates"]["overall"][key]
        assert float(row["class_mean_energy_in_box[square]"]) == s["aggregates"]["per_class"]["square"]["mean_energy_in_box"]
    html = (tmp_path / "history.html").read_text()
    # the model changes at the shortcut audit and back at the strict one: two markers per chart
    header = (tmp_path / "history.csv").read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header))
    # gated: accuracy, mean_focus_score, right_for_wrong_reason_rate, still_right_without_object_rate, confirmed_shortcuts,
    # probes_fooled, 3 x class_mean_energy_in_box
    charts = html.count('<svg viewBox')
    assert charts == 9 and len(header) == 6 + 9 + 5 and html.count('class="model-change"') == 2 * charts
    # the findings' ids per audit: the shortcut appears, and is gone again in the strict audit (its accuracy blocker is
    # new); each model's background fragility warning (a blurred background reads as circle / square) comes and goes with it
    assert [r["findings"] for r in rows] == ["property:circle:fragile@background",
                                             "shortcut:circle+square+triangle:corners",
                                             "accuracy:*:* property:circle:fragile@background"]
    assert html.count('<span class="chg">new</span>') == 3
    assert [float(r["confirmed_shortcuts"]) for r in rows] == [0.0, 12.0, 0.0]
    assert [float(r["probes_fooled"]) for r in rows] == [s["aggregates"]["overall"]["probes_fooled"] for s in summaries]
    assert html.count('class="dataset-change"') == 2 * charts


def test_history_of_one_audit_and_bad_inputs(demo_runs, tmp_path, capsys):
    assert main(["history", str(demo_runs["demo"][1] / "summary.json"), "--output", str(tmp_path / "one")]) == 0
    assert len(list(csv.DictReader((tmp_path / "one" / "history.csv").open()))) == 1
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", ')
    assert main(["history", str(demo_runs["demo"][1] / "summary.json"), str(broken), "--output", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert f"{broken}: expected a summary.json from an audit, found invalid JSON" in err and "Traceback" not in err
    foreign = tmp_path / "package.json"
    foreign.write_text('{"name": "left-pad", "version": "1.0.0"}')
    assert main(["history", str(foreign)]) == 2
    assert f"{foreign}: expected a summary.json written by `pipeline audit`" in capsys.readouterr().err


def test_history_of_200_audits_stays_small(demo_runs, tmp_path):
    import time

    base = json.loads((demo_runs["demo"][1] / "summary.json").read_text())
    paths = []
    for i in range(200):
        s = dict(base, provenance={**base["provenance"], "started": f"2026-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}T00:00:00+00:00",
                                   "model_sha256": f"{i // 50:064d}"})
        p = tmp_path / f"a{i}" / "summary.json"
        p.parent.mkdir()
        p.write_text(json.dumps(s))
        paths.append(str(p))
    start = time.perf_counter()
    assert main(["history", *paths, "--output", str(tmp_path / "h")]) == 0
    assert (tmp_path / "h" / "history.html").stat().st_size <= 2_000_000
    assert time.perf_counter() - start < 10  # generous: a bound against quadratic blow-ups, not a speed test


@pytest.mark.browser
def test_history_page_in_chromium(three_audits, tmp_path):
    require(shutil.which("chromium") is not None or os.path.exists("/usr/bin/chromium"),
            "/usr/bin/chromium is absent: apt-get install chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    assert main(["history", *map(str, three_audits), "--output", str(tmp_path)]) == 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto((tmp_path / "history.html").as_uri())
        assert page.locator("svg.chart").count() >= 6 and page.locator("#verdict-strip a").count() == 3
        hrefs = page.eval_on_selector_all("#audits a", "els => els.map(e => e.href)")
        assert len(hrefs) == 3
        for href in hrefs:
            response = page.goto(href)
            assert response is not None and response.ok and "Grad-CAM audit" in page.title()
        browser.close()
    assert errors == []

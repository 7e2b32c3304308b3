"""Periodic review: an audit compared with a baseline audit."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT
from pipeline.cli import main


@pytest.fixture(scope="module")
def good_baseline(demo_runs):
    code, folder = demo_runs["demo"]
    assert code == 0
    return folder / "summary.json"


def test_audit_against_itself_has_zero_deltas(tmp_path, good_baseline):
    code = main(["audit", str(ROOT / "configs" / "demo.yaml"), "--output", str(tmp_path), "--baseline", str(good_baseline), "--no-progress"])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    (drop,) = [r for r in summary["gate"] if r["kind"] == "max_drop"]
    assert drop["status"] == "pass" and drop["baseline"] == pytest.approx(drop["value"], abs=1e-12)
    assert "dropped by 0.000" in drop["message"]
    html = (tmp_path / "report.html").read_text()
    deltas = re.findall(r'<td class="num">([+-]\d\.\d{3})</td></tr>', html)
    assert deltas and set(deltas) <= {"+0.000", "-0.000"}
    assert "0 samples went from ok to a flag; 0 came back to ok." in html


def test_shortcut_against_good_baseline_lists_regressions_and_fails_max_drop(tmp_path, good_baseline):
    code = main(["audit", str(ROOT / "configs" / "demo_shortcut.yaml"), "--output", str(tmp_path), "--baseline", str(good_baseline), "--no-progress"])
    assert code == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    base = json.loads(good_baseline.read_text())
    (drop,) = [r for r in summary["gate"] if r["kind"] == "max_drop"]
    expected_drop = base["aggregates"]["overall"]["mean_focus_score"] - summary["aggregates"]["overall"]["mean_focus_score"]
    assert drop["status"] == "fail" and f"dropped by {expected_drop:.3f}" in drop["message"]
    html = (tmp_path / "report.html").read_text()
    # the same file names exist in both evaluation sets: every baseline "ok" sample is now flagged
    n_ok_before = base["flag_counts"]["ok"]
    assert f"{n_ok_before} samples went from ok to a flag" in html
    assert html.count(">regressed</td>") == min(n_ok_before, 500)
    junit = (tmp_path / "junit.xml").read_text()
    assert 'name="mean_focus_score max_drop 0.05"><failure' in junit


def test_baseline_key_in_config_and_unreadable_baseline(tmp_path, good_baseline, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text((ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/") + f"baseline: {good_baseline}\n")
    assert main(["audit", str(cfg), "--output", str(tmp_path / "o"), "--no-progress", "--limit", "30"]) in (0, 1)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert [r["status"] for r in summary["gate"] if r["kind"] == "max_drop"] != ["not evaluated"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["audit", str(ROOT / "configs" / "demo.yaml"), "--baseline", str(bad), "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: expected a summary.json from a previous audit" in err and "Traceback" not in err


def test_baseline_on_another_dataset_is_called_out(tmp_path, demo_runs, capsys):
    """The shortcut demo's summary as baseline for the shapes demo: different evaluation sets."""
    other = demo_runs["demo_shortcut"][1] / "summary.json"
    code = main(["audit", str(ROOT / "configs" / "demo.yaml"), "--output", str(tmp_path / "o"), "--baseline", str(other), "--no-progress"])
    assert code == 0  # focus rose against the shortcut baseline: the drop rule passes, on different data
    err = capsys.readouterr().err
    assert "warning: baseline ran on a different evaluation set: changes compare different data" in err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["baseline"] == {"path": str(other), "dataset_matches": False, "model_changed": True, "config_changed": True}
    (drop,) = [r for r in summary["gate"] if r["kind"] == "max_drop"]
    assert drop["message"].endswith("(baseline ran on a different evaluation set: changes compare different data)")
    html = (tmp_path / "o" / "report.html").read_text()
    assert 'id="baseline-note"' in html and html.count("baseline ran on a different evaluation set") >= 2


def test_require_same_dataset_makes_a_foreign_baseline_exit_2(tmp_path, demo_runs, capsys):
    other = demo_runs["demo_shortcut"][1] / "summary.json"
    cfg = tmp_path / "c.yaml"
    cfg.write_text((ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/")
                   + f"baseline: {{path: {other}, require_same_dataset: true}}\n")
    assert main(["audit", str(cfg), "--output", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "baseline.require_same_dataset: expected a baseline audited on the same evaluation set" in err
    assert not (tmp_path / "o").exists()


def test_matching_dataset_says_nothing_and_prints_not_evaluated_once(tmp_path, good_baseline, capsys):
    code = main(["audit", str(ROOT / "configs" / "demo.yaml"), "--output", str(tmp_path / "o"), "--baseline", str(good_baseline), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0 and "different evaluation set" not in captured.err + captured.out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["baseline"]["dataset_matches"] is True and summary["baseline"]["model_changed"] is False
    # without a baseline, the console says "not evaluated" once per rule, not twice
    main(["audit", str(ROOT / "configs" / "demo.yaml"), "--output", str(tmp_path / "p"), "--no-progress", "--limit", "20"])
    line = [ln for ln in capsys.readouterr().out.splitlines() if "no baseline" in ln]
    assert line == ["  note: 1 rule not evaluated: no baseline"]


def test_change_rules_with_a_bound_use_the_paired_interval_of_the_change(tmp_path, good_baseline):
    """Against itself the paired interval of the change is exactly [0, 0] (every sample's outcome is the
    same); against the shortcut model (other images, the same file names) the change is unpaired, and said."""
    text = (ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/").replace("randomisation: true", "randomisation: false")
    text = text.replace("{metric: mean_focus_score, max_drop: 0.05}", "{metric: mean_focus_score, max_drop: 0.05, bound: upper}")
    text = text.replace("{metric: accuracy, min: 0.90}", "{metric: accuracy, min: 0.90}\n  - {metric: accuracy, max_drop: 0.02, bound: upper}")
    (tmp_path / "same.yaml").write_text(text)
    assert main(["audit", str(tmp_path / "same.yaml"), "--output", str(tmp_path / "same"), "--baseline", str(good_baseline), "--no-progress"]) == 0
    drops = [r for r in json.loads((tmp_path / "same" / "summary.json").read_text())["gate"] if r["kind"] == "max_drop"]
    assert [r["metric"] for r in drops] == ["accuracy", "mean_focus_score"]
    for r in drops:
        # (the baseline's samples.csv holds 6 significant digits: the per-sample differences are rounding, < 1e-6)
        assert r["status"] == "pass" and r["interval_method"] == "paired bootstrap" and r["n"] == 300
        assert r["interval"] == pytest.approx([0.0, 0.0], abs=1e-6)
    shortcut = (ROOT / "configs" / "demo_shortcut.yaml").read_text().replace("../", f"{ROOT}/").replace("randomisation: true", "randomisation: false")
    shortcut = shortcut.replace("{metric: mean_focus_score, max_drop: 0.05}", "{metric: mean_focus_score, max_drop: 0.05, bound: upper}")
    (tmp_path / "other.yaml").write_text(shortcut)
    assert main(["audit", str(tmp_path / "other.yaml"), "--output", str(tmp_path / "other"), "--baseline", str(good_baseline), "--no-progress"]) == 1
    (drop,) = [r for r in json.loads((tmp_path / "other" / "summary.json").read_text())["gate"] if r["kind"] == "max_drop"]
    assert drop["status"] == "fail" and drop["interval_method"] == "unpaired bootstrap"
    assert drop["interval"][1] < 0 and "upper bound of the drop" in drop["message"] and "different evaluation set" in drop["message"]

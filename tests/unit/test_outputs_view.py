"""CI outputs and the report's gallery selection, on hand-made summaries."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from pipeline.publish.outputs import Staging, write_junit, write_summary_md
from pipeline.report.pictures import jet
from pipeline.report.view import gallery_rows

SUMMARY = {
    "name": "t",
    "verdict": "NOT FIT",
    "exit_code": 1,
    "gate": [
        {"metric": "accuracy", "label": "accuracy", "kind": "min", "threshold": 0.9, "scope": "overall", "value": 0.95, "baseline": None, "status": "pass", "message": "accuracy 0.950 >= 0.9"},
        {"metric": "class_mean_energy_in_box", "label": "class_mean_energy_in_box[a<b>]", "kind": "min", "threshold": 0.4, "scope": "a<b>", "value": 0.3, "baseline": None, "status": "fail", "message": "class_mean_energy_in_box[a<b>] 0.300 < 0.4"},
        {"metric": "mean_focus_score", "label": "mean_focus_score", "kind": "max_drop", "threshold": 0.05, "scope": "overall", "value": 0.3, "baseline": None, "status": "not evaluated", "message": "mean_focus_score: not evaluated (no baseline)"},
    ],
    "aggregates": {"overall": {"n_samples": 10.0, "n_scored": 9.0, "accuracy": 0.95, "mean_energy_in_box": 0.5, "mean_focus_score": 0.3}},
    "flag_counts": {"ok": 5, "right_for_wrong_reason": 4, "skipped": 1},
}


FINDING = {"id": "heatmap:a<b>:*", "severity": "blocker", "kind": "heatmap", "title": "Heat lies off the objects",
           "sentence": "class_mean_energy_in_box[a<b>] 0.30 is below the required 0.4.", "action": "Name an earlier target layer.",
           "rules": ["class_mean_energy_in_box[a<b>]"], "rule_index": [1], "checks": [], "evidence": [], "since_baseline": None}
NOTE = {**FINDING, "id": "not_evaluated:*:*", "severity": "note", "kind": "not_evaluated", "title": "1 rule not evaluated: no baseline",
        "rules": [], "rule_index": []}


def _rules_suite(path):
    return ET.parse(path).getroot().findall("testsuite")[1]


def test_junit_one_case_per_rule_and_class_with_failures_and_skips(tmp_path):
    write_junit(tmp_path / "junit.xml", SUMMARY)
    suite = _rules_suite(tmp_path / "junit.xml")
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["accuracy min 0.9", "class_mean_energy_in_box[a<b>] min 0.4", "mean_focus_score max_drop 0.05"]
    assert cases[1].find("failure").get("message") == "class_mean_energy_in_box[a<b>] 0.300 < 0.4"
    assert cases[2].find("skipped") is not None and cases[0].find("failure") is None


def test_summary_md_lists_failed_rules_and_table(tmp_path):
    write_summary_md(tmp_path / "s.md", SUMMARY)
    text = (tmp_path / "s.md").read_text()
    assert "**NOT FIT** (exit 1)" in text
    assert "- class_mean_energy_in_box[a<b>] 0.300 < 0.4" in text
    assert text.count("\n| `") == 3
    assert "| `n_samples`" not in text  # only rules in the table


def test_summary_md_leads_with_the_verdict_the_findings_and_the_report(tmp_path):
    write_summary_md(tmp_path / "s.md", {**SUMMARY, "findings": [FINDING, NOTE]}, report="reports/t/report.html")
    lines = (tmp_path / "s.md").read_text().splitlines()
    assert "**NOT FIT**" in lines[0]
    assert lines[2] == "1 of 2 rules pass (1 not evaluated)."  # accuracy passes, one fails, one not evaluated
    body = "\n".join(lines)
    # the blocker's title, sentence and action come before the rule table; the note is one line
    order = [body.index(x) for x in ("blocker: Heat lies off the objects", FINDING["sentence"], "**What to do:** Name an earlier",
                                      "- ℹ️ 1 rule not evaluated", "`reports/t/report.html`", "| rule |")]
    assert order == sorted(order)


def test_junit_findings_suite_fails_blockers_and_warnings_only_when_inconclusive(tmp_path):
    warning = {**FINDING, "id": "trust:randomisation:*", "severity": "warning", "kind": "trust", "title": "Maps ignore the weights",
               "rules": [], "rule_index": [], "checks": ["randomisation"]}
    for verdict, failed in (("NOT FIT", ["blocker: Heat lies off the objects"]),
                            ("INCONCLUSIVE", ["blocker: Heat lies off the objects", "warning: Maps ignore the weights"])):
        write_junit(tmp_path / "junit.xml", {**SUMMARY, "verdict": verdict, "findings": [FINDING, warning, NOTE]})
        found = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite")[0]
        assert found.get("name").endswith("findings") and found.get("tests") == "3"
        assert [c.get("name") for c in found.findall("testcase") if c.find("failure") is not None] == failed
        assert "What to do: Name an earlier target layer." in found.findall("testcase")[0].find("failure").get("message")


def test_staging_publishes_atomically_and_discard_keeps_the_old_output(tmp_path):
    target = tmp_path / "out"
    first = Staging(target)
    (first.path / "report.html").write_text("one")
    assert not target.exists()  # nothing visible until published
    first.publish()
    assert (target / "report.html").read_text() == "one"
    second = Staging(target)
    (second.path / "report.html").write_text("half-written")
    second.discard()  # a failed or interrupted run
    assert (target / "report.html").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_gallery_order_most_serious_flag_first_lowest_energy_first_with_shares():
    flags = np.array(["ok", "distracted", "right_for_wrong_reason", "ok", "right_for_wrong_reason", "skipped", "distracted", "right_for_wrong_reason"], dtype=object)
    energy = np.array([0.9, 0.3, 0.2, 0.5, 0.1, np.nan, 0.05, 0.4])
    # 5 cards over 3 flags: share 1 each first round (5 // 3), then the remainder by severity.
    assert gallery_rows(flags, energy, 5) == [4, 2, 6, 1, 3]
    assert gallery_rows(flags, energy, 100) == [4, 2, 7, 6, 1, 3, 0]
    assert gallery_rows(flags, energy, 0) == []


def test_jet_endpoints():
    assert tuple(jet(np.array(0.0))) == (0, 0, 127)
    assert tuple(jet(np.array(1.0))) == (127, 0, 0)
    assert tuple(jet(np.array(0.5))) == (127, 255, 127)


def test_junit_and_summary_md_show_the_interval_the_value_compared_and_warnings(tmp_path):
    rule = {"metric": "accuracy", "label": "accuracy", "kind": "min", "threshold": 0.9, "scope": "overall", "value": 0.91,
            "baseline": None, "status": "fail", "bound": "lower", "compared": 0.81, "n": 40, "interval": [0.81, 0.96],
            "message": "accuracy 0.910 (40 samples, interval 0.810 to 0.960; lower bound compared): 0.810 < 0.9",
            "warning": None}
    point = {**rule, "status": "pass", "bound": "point", "compared": 0.91, "message": "accuracy 0.910 >= 0.9",
             "warning": "accuracy rests on 12 samples, fewer than statistics.min_samples (30)", "n": 12}
    summary = {**SUMMARY, "gate": [rule, point]}
    write_junit(tmp_path / "junit.xml", summary)
    cases = _rules_suite(tmp_path / "junit.xml").findall("testcase")
    assert cases[0].find("failure").get("message") == rule["message"]  # it already says the interval and what was compared
    assert "n 12, interval 0.810 to 0.960, point value compared" in (tmp_path / "junit.xml").read_text()
    write_summary_md(tmp_path / "s.md", summary)
    text = (tmp_path / "s.md").read_text()
    assert "| 0.810–0.960 (n 40) | 0.810 (lower) |" in text and "- warning: accuracy rests on 12 samples" in text


def test_the_probes_settings_line_says_where_each_probe_goes():
    from pathlib import Path

    from pipeline.config import OverlayConfig, ProbesConfig
    from pipeline.report.probes_view import _where

    cfg = ProbesConfig(artifacts=("stamp", "frame"), places=("corners", "centre"), margin=0.05, size=0.3,
                       overlays=(OverlayConfig("logo", Path("/x/logo.png"), 0.25, (0.7, 0.8)), OverlayConfig("tag", Path("/x/tag.png"), 0.1)))
    assert _where(cfg) == ("stamp, 30% of the input width, at the four corners and the centre (corners inset 5%); frame around the image; "
                           "logo (the overlay logo.png), 25% of the input width, with its top-left at x 0.70, y 0.80; "
                           "tag (the overlay tag.png), 10% of the input width, at the four corners and the centre (corners inset 5%)")
    assert _where(ProbesConfig(artifacts=(), places=("hot_spots",))) == "none"
    only_spots = ProbesConfig(artifacts=("noise",), places=("hot_spots",), size=0.4)
    assert _where(only_spots) == "noise, 40% of the input width, at every strategy's hot spot"


def test_the_first_screens_passed_line_says_what_passed_in_plain_words():
    from pipeline.report.findings_view import passed_line

    def r(metric, scope, value, kind="min", threshold=0.25, status="pass"):
        agg = metric[len("class_"):] if metric.startswith("class_") else metric
        return {"metric": metric, "aggregate": agg, "scope": scope, "value": value, "kind": kind, "threshold": threshold, "status": status,
                "label": metric if scope == "overall" else f"{metric}[{scope}]"}
    summary = {"gate": [r("accuracy", "overall", 0.971, threshold=0.9), r("class_mean_energy_in_box", "circle", 0.5449),
                        r("class_mean_energy_in_box", "square", -0.0001), r("confirmed_shortcuts", "overall", 0.0, "max", 0),
                        r("mean_focus_score", "overall", 0.1, status="fail")],
               "trust": {"checks": [{"name": "heatmap_signal", "status": "pass"}, {"name": "randomisation", "status": "not evaluated"}]}}
    assert passed_line(summary) == ("Passed: accuracy 0.97 (at least 0.9); class mean energy in box: circle 0.54, square 0.00 "
                                    "(at least 0.25); confirmed shortcuts 0 (at most 0). Trust checks passed: heatmap signal.")


def test_the_notebook_view_shows_the_findings_cards_before_the_gate_table():
    from pathlib import Path

    from pipeline.report import render_result

    gate = [{**r, "bound": "point", "n": None, "interval": None} for r in SUMMARY["gate"]]  # as summary.json has them
    html = render_result({**SUMMARY, "gate": gate, "findings": [FINDING, NOTE]}, Path("/tmp/r/report.html"))
    assert html.index('class="finding" data-id="heatmap:a&lt;b&gt;:*"') < html.index("<table")
    assert "blocker: Heat lies off the objects" in html and "Name an earlier target layer." in html
    assert "1 of 2 rules pass (1 not evaluated)" in html and "not_evaluated:*:*" not in html  # notes are not cards

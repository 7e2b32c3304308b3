"""The whole audit at the cost of its forward passes (issue 43, DESIGN §18): every stage that runs the model shows its
name, count and time left; the stages after the explain loop stop their tests when decided and count their passes;
``statistics.sequential: false`` restores the fixed sizes."""

from __future__ import annotations

import json

from conftest import ROOT
from pipeline.cli import main

STAGES = ("preprocessing check", "explain", "trust", "strategies", "probes", "properties")


def _config(tmp_path, sequential: bool) -> str:
    text = (ROOT / "configs" / "demo_shortcut.yaml").read_text()
    text = text.replace("../data_samples", str(ROOT / "data_samples"))
    text += f"statistics: {{sequential: {str(sequential).lower()}}}\n"
    path = tmp_path / f"shortcut-{sequential}.yaml"
    path.write_text(text)
    return str(path)


def test_every_stage_shows_its_progress_the_looks_stop_early_and_fixed_sizes_conclude_the_same(tmp_path, capsys):
    assert main(["audit", _config(tmp_path, True), "--limit", "120", "--output", str(tmp_path / "seq")]) == 1
    err = capsys.readouterr().err
    for name in STAGES:  # a non-terminal stderr gets the bars too (as the explain loop's always had)
        assert f"{name}: 100%" in err, name
    looked = json.loads((tmp_path / "seq" / "summary.json").read_text())
    prov = looked["provenance"]
    assert set(prov["passes"]) == {"preprocessing_check", "explain", "trust", "strategies", "probes", "properties"}
    assert prov["passes"]["explain"] == {"forward": 4 * 120, "gradcam": 120}  # each sample and its three intervention images
    tested = [s for lab in looked["strategies"]["labels"] for s in lab["strategies"] if s["n_tested"]]
    assert any(s["n_recipients"] < s["n_recipients_max"] for s in tested)  # confirmed before every recipient was pasted on
    rows = looked["probes"]["rows"]
    assert any(r["n"] < r["n_max"] for r in rows) and all(r["n"] <= r["n_max"] for r in rows)
    assert prov["randomisation"]["samples"] < prov["randomisation"]["samples_max"]

    # statistics.sequential: false runs every test to its maximum, and concludes the same
    assert main(["audit", _config(tmp_path, False), "--limit", "120", "--output", str(tmp_path / "fixed"), "--no-progress"]) == 1
    fixed = json.loads((tmp_path / "fixed" / "summary.json").read_text())
    assert all(r["n"] == r["n_max"] for r in fixed["probes"]["rows"])
    assert all(s["n_tested"] == s["n_tested_max"] and s["n_recipients"] == s["n_recipients_max"]
               for lab in fixed["strategies"]["labels"] for s in lab["strategies"])
    assert fixed["provenance"]["randomisation"]["samples"] == fixed["provenance"]["randomisation"]["samples_max"]
    assert sorted(f["id"] for f in fixed["findings"]) == sorted(f["id"] for f in looked["findings"])
    assert sum(v["forward"] for v in prov["passes"].values()) < sum(v["forward"] for v in fixed["provenance"]["passes"].values())

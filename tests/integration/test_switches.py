"""explain.jit_compile (XLA) keeps scores within 1e-3 of the default compiled step.

(Mixed precision was tried and is not offered: bfloat16, the only reduced precision fast on
CPU, moved energy_in_box by up to 0.012 and flipped a prediction on the demo.)"""

from __future__ import annotations

import csv

import pytest

from conftest import ROOT
from pipeline.cli import main


def _audit(tmp_path, name: str, extra: str) -> list[dict]:
    text = (ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/")
    text = text.replace("  batch_size: 32\n", f"  batch_size: 32\n{extra}")
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(text)
    assert main(["audit", str(cfg), "--output", str(tmp_path / name), "--limit", "64", "--no-progress"]) in (0, 1)
    with (tmp_path / name / "samples.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("switch", ["  jit_compile: true\n"])
def test_switch_keeps_scores_within_1e_3(tmp_path, switch):
    base = _audit(tmp_path, "f32", "")
    other = _audit(tmp_path, "switched", switch)
    assert [r["predicted"] for r in base] == [r["predicted"] for r in other]
    for column in ("energy_in_box", "focus_score", "confidence"):
        worst = max(abs(float(a[column]) - float(b[column])) for a, b in zip(base, other))
        assert worst <= 1e-3, (column, worst)

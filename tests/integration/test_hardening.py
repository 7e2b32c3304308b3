"""Accidents CI brings: two audits on one output folder, a full disk (file-size limit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT


def _cli(*args: str, cwd: Path, preexec=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=preexec)


def test_second_audit_on_a_busy_output_folder_exits_2_naming_the_first(tmp_path):
    out = tmp_path / "shared-out"
    first = _cli("audit", str(ROOT / "configs" / "demo.yaml"), "--output", str(out), "--no-progress", cwd=tmp_path)
    lock = tmp_path / ".shared-out.lock"
    deadline = time.time() + 120
    while not lock.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert lock.exists(), first.communicate()[1]
    second = _cli("audit", str(ROOT / "configs" / "demo_shortcut.yaml"), "--output", str(out), "--no-progress", cwd=tmp_path)
    _, err2 = second.communicate(timeout=120)
    out1, err1 = first.communicate(timeout=300)
    assert second.returncode == 2 and "Traceback" not in err2
    assert f"{out}: expected an output folder no other audit is writing, found one in progress (pid {first.pid} on" in err2
    assert "report:" not in err2
    assert first.returncode == 0, err1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["name"] == "demo-shapes" and f"report: {out / 'report.html'}" in out1  # the folder holds the first run's own report
    assert not lock.exists()


def _limit_file_size():
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_full_disk_exits_2_in_plain_words_and_publishes_nothing(tmp_path):
    out = tmp_path / "out"
    run = _cli("audit", str(ROOT / "configs" / "demo.yaml"), "--output", str(out), "--no-progress", cwd=tmp_path, preexec=_limit_file_size)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 2 and "Traceback" not in err and "internal error" not in err
    assert f"{out}: file too large writing the audit's outputs" in err and "nothing was published" in err
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*")) and not (tmp_path / ".out.lock").exists()


@pytest.mark.parametrize("debug", [False, True])
def test_a_crash_is_never_a_verdict_and_names_its_stage(tmp_path, capsys, monkeypatch, debug):
    """An internal error exits 2 with or without PIPELINE_DEBUG (which adds the traceback): 1 would read as NOT FIT to a
    CI gate. It names the stage that failed and the kept batches, and does not suggest --resume (a rerun meets it again)."""
    from pipeline import run
    from pipeline.cli import main

    def planted(*args, **kwargs):
        raise TypeError("a planted bug")

    monkeypatch.setattr(run, "strategies_stage", planted)
    if debug:
        monkeypatch.setenv("PIPELINE_DEBUG", "1")
    else:
        monkeypatch.delenv("PIPELINE_DEBUG", raising=False)
    out = tmp_path / "out"
    code = main(["audit", str(ROOT / "configs" / "demo.yaml"), "--limit", "40", "--output", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--resume" not in err, err
    assert errors[0].startswith("error: internal error in the strategies stage, TypeError: a planted bug; no report was published "
                                "and the 2 completed batches of Grad-CAM are kept in ")
    assert ("Traceback (most recent call last)" in err) == debug and ("a planted bug" in err.split("error:")[0]) == debug
    assert not (out / "report.html").exists()

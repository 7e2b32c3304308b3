"""Resumable runs, a stale staging folder, an unreachable Ray head. Kept apart from
test_engines.py so that module's 2-node test cluster is shut down before these start clusters of their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from pipeline.cli import main
from test_engines import _demo_config, assert_same_outputs


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_killed_run_resumes_to_the_same_outputs(tmp_path, demo_runs, engine):
    if engine == "ray":
        pytest.importorskip("ray", reason="the Ray extra is not installed (pip install '.[ray]')")
    cfg = _demo_config(tmp_path, batch=4)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen([sys.executable, "-m", "pipeline", "audit", str(cfg), "--output", str(out), "--no-progress"],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    checkpoints = tmp_path / ".out.partial" / "checkpoint"
    deadline = time.time() + 180
    while time.time() < deadline and run.poll() is None and len(list(checkpoints.glob("batch-*.npz"))) < 10:
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait()
    done = len(list(checkpoints.glob("batch-*.npz")))
    assert 10 <= done < 75 and not out.exists(), done  # killed part-way, nothing published
    # a changed config refuses to resume
    changed = tmp_path / "changed.yaml"
    changed.write_text(cfg.read_text().replace("focus_min: 0.2", "focus_min: 0.25"))
    bad = subprocess.run([sys.executable, "-m", "pipeline", "audit", str(changed), "--output", str(out), "--no-progress", "--resume"],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--resume: expected the interrupted run's inputs, found a different the config file" in bad.stderr
    resumed = subprocess.run([sys.executable, "-m", "pipeline", "audit", str(cfg), "--output", str(out), "--no-progress", "--resume",
                              "--engine", engine], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["resumed_samples"] == done * 4 and summary["provenance"]["engine"] == engine
    assert_same_outputs(out, demo_runs["demo"][1])
    assert not (out / "checkpoint").exists() and not (tmp_path / ".out.partial").exists()


def test_without_resume_a_stale_staging_folder_is_replaced_and_said(tmp_path, capsys):
    stale = tmp_path / ".out.partial"
    (stale / "checkpoint").mkdir(parents=True)
    (stale / "checkpoint" / "manifest.json").write_text("{}")
    assert main(["audit", str(_demo_config(tmp_path)), "--output", str(tmp_path / "out"), "--no-progress", "--limit", "8"]) in (0, 1, 3)
    assert "replaced the staging folder of an interrupted run" in capsys.readouterr().err
    assert not stale.exists()


def test_an_unreachable_ray_address_is_exit_2_quickly_naming_it(tmp_path, capsys):
    pytest.importorskip("ray", reason="the Ray extra is not installed (pip install '.[ray]')")
    import ray

    if ray.is_initialized():
        ray.shutdown()
    cfg = _demo_config(tmp_path, "engine: {kind: ray, address: '127.0.0.1:9'}\n")  # the discard port: nothing listens
    start = time.time()
    assert main(["audit", str(cfg), "--output", str(tmp_path / "o"), "--no-progress", "--limit", "4"]) == 2
    assert time.time() - start < 60
    assert "engine.address: expected a reachable Ray head at '127.0.0.1:9'" in capsys.readouterr().err

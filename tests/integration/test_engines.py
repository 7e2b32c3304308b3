"""Engines and resumable runs: Ray gives the local engine's files; a killed run resumes to the same files."""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from pipeline.cli import main

def _rows(folder: Path) -> list[dict]:
    with (folder / "samples.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def assert_same_outputs(a: Path, b: Path, tol: float = 1e-6) -> None:
    """samples.csv equal column by column (floats within tol), heatmaps within tol, summaries equal but for timings."""
    ra, rb = _rows(a), _rows(b)
    assert len(ra) == len(rb) and list(ra[0]) == list(rb[0])
    for x, y in zip(ra, rb):
        for key in x:
            try:
                assert float(x[key]) == pytest.approx(float(y[key]), abs=tol, nan_ok=True), (key, x, y)
            except ValueError:
                assert x[key] == y[key], (key, x, y)
    with np.load(a / "heatmaps.npz") as na, np.load(b / "heatmaps.npz") as nb:
        np.testing.assert_allclose(na["cams"], nb["cams"], atol=tol)
        assert np.array_equal(na["target_class"], nb["target_class"])
    sa, sb = (json.loads((f / "summary.json").read_text()) for f in (a, b))
    pa, pb = sa.pop("provenance"), sb.pop("provenance")
    for key in ("model_sha256", "dataset_fingerprint", "target_layer", "method", "input_size"):
        assert pa[key] == pb[key], key
    _close(sa, sb, tol)  # verdict, gate, trust, aggregates, flag counts, skipped: equal


def _close(x, y, tol) -> bool:
    if isinstance(x, dict):
        assert x.keys() == y.keys()
        return all(_close(x[k], y[k], tol) for k in x)
    if isinstance(x, list):
        assert len(x) == len(y)
        return all(_close(i, j, tol) for i, j in zip(x, y))
    if isinstance(x, float) and isinstance(y, float):
        assert x == pytest.approx(y, abs=tol), (x, y)
        return True
    assert x == y, (x, y)
    return True


def _demo_config(tmp_path: Path, extra: str = "", batch: int = 32) -> Path:
    cfg = tmp_path / "demo.yaml"
    cfg.write_text((ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/")
                   .replace("batch_size: 32", f"batch_size: {batch}") + extra)
    return cfg


def test_ray_engine_without_ray_installed_is_exit_2_with_the_install_command(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code = main(["audit", str(_demo_config(tmp_path)), "--engine", "ray", "--output", str(tmp_path / "o"), "--no-progress", "--limit", "5"])
    err = capsys.readouterr().err
    assert code == 2 and "engine.kind: ray: expected the optional Ray extra to be installed" in err and "pip install '.[ray]'" in err
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-node cluster, 2 logical CPUs each (on this 2-core machine); always shut down."""
    ray = pytest.importorskip("ray", reason="the Ray extra is not installed (pip install '.[ray]')")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_ray_engine_on_a_two_node_cluster_equals_the_local_engine(ray_cluster, demo_runs, tmp_path):
    # 2 CPUs per actor (one per node) = the local engine's 2 TensorFlow threads: oneDNN's sums depend on the thread count
    cfg = _demo_config(tmp_path, "engine: {kind: ray, workers: 2, cpus_per_worker: 2}\n")
    code = main(["audit", str(cfg), "--output", str(tmp_path / "ray"), "--no-progress"])
    assert code == demo_runs["demo"][0] == 0
    assert_same_outputs(tmp_path / "ray", demo_runs["demo"][1])
    # stronger than the 1e-6 the issue asks: the same batches give the same bytes
    assert (tmp_path / "ray" / "samples.csv").read_bytes() == (demo_runs["demo"][1] / "samples.csv").read_bytes()
    with np.load(tmp_path / "ray" / "heatmaps.npz") as a, np.load(demo_runs["demo"][1] / "heatmaps.npz") as b:
        assert np.array_equal(a["cams"], b["cams"], equal_nan=True)
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["provenance"]["engine"] == "ray"


def _actor_pids() -> list[int]:
    """Processes whose title Ray set to the audit's actor (``ray::MapWorker(MapBatches(RayAuditActor))``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("ray::") and "RayAuditActor" in title:
                pids.append(int(proc.name))
    return pids


def test_a_ray_worker_killed_mid_run_is_replaced_and_the_outputs_are_equal(ray_cluster, demo_runs, tmp_path):
    import threading

    import ray

    cfg = _demo_config(tmp_path, "engine: {kind: ray, workers: 1, cpus_per_worker: 1}\n", batch=8)
    killed: list[int] = []

    def killer():
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            if (tmp_path / ".ray.partial" / "checkpoint").is_dir() and len(list((tmp_path / ".ray.partial" / "checkpoint").glob("batch-*"))) >= 2:
                for pid in _actor_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    code = main(["audit", str(cfg), "--output", str(tmp_path / "ray"), "--no-progress"])
    thread.join()
    assert killed, "no actor was killed (the run finished first?)"
    assert ray.is_initialized() and code == 0
    assert_same_outputs(tmp_path / "ray", demo_runs["demo"][1])

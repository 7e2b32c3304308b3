"""MLflow tracking and the model registry against real MLflow (no mocks): the embedded sqlite default, a
real ``mlflow server`` started here on a free localhost port (and always stopped), models and baselines
from the registry, and the faults a CI gate must survive."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, require
from pipeline.cli import main

LIMIT = "45"  # images per audit: enough for every rule to be evaluated, fast enough for CI


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Downloads go to the test's own folder, not ~/.cache."""
    monkeypatch.setenv("GRADCAM_AUDIT_CACHE", str(tmp_path / "cache"))


def _need_mlflow() -> None:
    require(importlib.util.find_spec("mlflow") is not None, "mlflow is not installed (pip install -e '.[mlflow]'; make install does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path) -> tuple[str, subprocess.Popen]:
    """``mlflow server`` on a free port (sqlite backend, a temp artifact root), in its own process group."""
    port = free_port()
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return url, proc
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            break
    stop_server(proc)
    raise RuntimeError(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_mlflow()
    url, proc = start_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield url
    finally:
        stop_server(proc)


def demo_config(folder: Path, model: str | None = None, extra: str = "", rule: str = "") -> Path:
    """configs/demo.yaml, absolute paths, no randomisation check (its cost is not what is tested here), model.path
    replaced, ``extra`` sections appended and a gate ``rule`` added."""
    text = (ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/").replace("randomisation: true", "randomisation: false")
    last = "  - {metric: mean_focus_score, max_drop: 0.05}"
    text = text.replace(last, f"{rule}\n{last}" if rule else last)
    if model is not None:
        text = text.replace(f"path: {ROOT}/data_samples/shapes/model_good.keras", f"path: {model}")
    cfg = folder / "demo.yaml"
    cfg.write_text(text + extra)
    return cfg


def run_audit(args: list[str]) -> int:
    return main(["audit", *args, "--limit", LIMIT, "--no-progress"])


def register(server: str, model: str, name: str, alias: str = "challenger") -> str:
    """data_samples/register_models.py in its own process (as a team's training job; this process never sets
    MLflow's global tracking URI, so the audit must find the server by itself): the new version's number."""
    out = subprocess.run([sys.executable, str(ROOT / "data_samples" / "register_models.py"), model, "--tracking-uri", server,
                          "--name", name, "--alias", alias], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1].split(f"models:/{name}/")[1].split(",")[0]


@pytest.fixture(scope="module")
def registered(server):
    """The demo's good model logged with the Keras flavour and registered as 'demo' version 1, alias @challenger."""
    from mlflow import MlflowClient

    assert register(server, "good", "demo") == "1"
    return MlflowClient(server, server)


def test_the_embedded_default_logs_one_run_with_the_summarys_numbers(tmp_path, monkeypatch):
    _need_mlflow()
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # the default is reports/mlflow.db under the working directory
    assert run_audit([str(demo_config(tmp_path)), "--output", str(tmp_path / "out"), "--mlflow"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    db = tmp_path / "reports" / "mlflow.db"
    assert db.is_file() and summary["mlflow"]["tracking_uri"] == f"sqlite:///{db}" and summary["mlflow"]["logged"]
    client = MlflowClient(f"sqlite:///{db}")
    (run,) = client.search_runs([client.get_experiment_by_name("gradcam-audit").experiment_id])
    assert run.info.run_id == summary["mlflow"]["run_id"] and run.info.status == "FINISHED" and run.info.run_name == "demo-shapes"
    overall = summary["aggregates"]["overall"]
    m = run.data.metrics
    for name, value in overall.items():
        if value is None:
            assert name not in m
        else:
            assert m[name] == pytest.approx(value, rel=1e-12), name
    for cls, values in summary["aggregates"]["per_class"].items():
        assert m[f"class_{cls}_accuracy"] == pytest.approx(values["accuracy"])
    acc = next(r for r in summary["gate"] if r["metric"] == "accuracy")
    assert (m["accuracy_lo"], m["accuracy_hi"]) == pytest.approx(tuple(acc["interval"]))
    tags = run.data.tags
    assert tags["gradcam_audit.verdict"] == "FIT TO DEPLOY" and tags["gradcam_audit.exit_code"] == "0"
    prov = summary["provenance"]
    assert tags["gradcam_audit.model_sha256"] == prov["model_sha256"] and tags["gradcam_audit.dataset_fingerprint"] == prov["dataset_fingerprint"]
    assert tags["gradcam_audit.config_sha256"] == prov["config_sha256"] and tags["gradcam_audit.engine"] == "local"
    assert run.data.params["probes.artifacts"] == "['stamp', 'noise']" and run.data.params["gate.0.metric"] == "accuracy"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {p.name for p in (tmp_path / "out").iterdir()}
    assert (tmp_path / "reports" / "mlartifacts").is_dir()  # beside the database


def test_a_registered_model_is_audited_and_its_version_tagged(server, registered, tmp_path):
    local = tmp_path / "local"
    assert run_audit([str(demo_config(tmp_path)), "--output", str(local)]) == 0
    cfg = demo_config(tmp_path, "models:/demo@challenger", "mlflow: {promote_alias: champion}\n")
    assert run_audit([str(cfg), "--output", str(tmp_path / "reg"), "--mlflow", server]) == 0
    with np.load(local / "heatmaps.npz") as a, np.load(tmp_path / "reg" / "heatmaps.npz") as b:
        assert np.array_equal(a["cams"], b["cams"], equal_nan=True)  # the registry's copy is the same model, read the same way
    summary = json.loads((tmp_path / "reg" / "summary.json").read_text())
    reg = summary["provenance"]["model_registry"]
    assert (reg["uri"], reg["name"], reg["version"], reg["alias"]) == ("models:/demo@challenger", "demo", "1", "challenger")
    from pipeline.publish.summary import sha256_file

    # MLflow saved its own copy of the .keras file: the provenance names the file the audit loaded, and its hash
    assert summary["provenance"]["model"] == reg["file"] and summary["provenance"]["model_sha256"] == sha256_file(Path(reg["file"]))
    version = registered.get_model_version("demo", "1")
    run_id = summary["mlflow"]["run_id"]
    assert version.tags["gradcam_audit.verdict"] == "FIT TO DEPLOY" and version.tags["gradcam_audit.run_id"] == run_id
    assert version.tags["gradcam_audit.report"].endswith(f"{run_id}/artifacts/report.html") and version.tags["gradcam_audit.date"]
    assert version.tags["gradcam_audit.findings"] == ""  # FIT: no blocker id
    # promote_alias on FIT TO DEPLOY: the audited version is now the champion
    assert registered.get_model_version_by_alias("demo", "champion").version == "1"
    assert summary["mlflow"]["notes"] == ["set alias @champion on models:/demo/1 (FIT TO DEPLOY)"]
    assert registered.get_run(run_id).info.status == "FINISHED"


def test_the_baseline_is_the_champions_own_last_audit(server, registered, tmp_path):
    import mlflow

    if not registered.get_model_version("demo", "1").tags.get("gradcam_audit.run_id"):
        # the test above ran on another xdist worker (its own server): audit version 1 and promote it here, as it does
        champion = demo_config(tmp_path, "models:/demo@challenger", "mlflow: {promote_alias: champion}\n")
        assert run_audit([str(champion), "--output", str(tmp_path / "champion"), "--mlflow", server]) == 0
    assert register(server, "good", "demo") == "2"  # a second version of the same model, the new challenger
    cfg = demo_config(tmp_path, "models:/demo@challenger", rule="  - {metric: accuracy, max_drop: 0.02, bound: upper}")
    out = tmp_path / "challenger"
    assert run_audit([str(cfg), "--output", str(out), "--mlflow", server, "--baseline", "models:/demo@champion"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    champion_run = registered.get_model_version("demo", "1").tags["gradcam_audit.run_id"]
    champion = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=champion_run, artifact_path="summary.json",
                                                                   dst_path=str(tmp_path / "dl"), tracking_uri=server)).read_text())
    change = [r for r in summary["gate"] if r["kind"] == "max_drop"]
    assert change and all(r["status"] == "pass" for r in change)
    focus = next(r for r in change if r["metric"] == "mean_focus_score")
    assert focus["baseline"] == champion["aggregates"]["overall"]["mean_focus_score"]
    paired = next(r for r in change if r["metric"] == "accuracy")
    assert paired["interval_method"] == "paired bootstrap"  # the champion's samples.csv came along: the change is paired
    assert summary["baseline"]["dataset_matches"] and summary["baseline"]["model_changed"]  # another version, another file


def test_a_baseline_version_never_audited_is_exit_2(server, registered, tmp_path, capsys):
    register(server, "good", "never-audited")
    code = run_audit([str(demo_config(tmp_path)), "--output", str(tmp_path / "o"), "--mlflow", server,
                      "--baseline", "models:/never-audited/1"])
    err = capsys.readouterr().err
    assert code == 2 and "models:/never-audited/1" in err and "gradcam_audit.run_id" in err and "Traceback" not in err


def test_an_alias_that_does_not_exist_is_exit_2_naming_the_uri(server, registered, tmp_path, capsys):
    code = run_audit([str(demo_config(tmp_path, "models:/demo@nope")), "--output", str(tmp_path / "o"), "--mlflow", server])
    err = capsys.readouterr().err
    assert code == 2 and "models:/demo@nope" in err and "alias @nope" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_a_model_without_a_keras_file_is_exit_2_naming_the_uri_and_its_flavours(server, tmp_path, capsys):
    script = f"""
import mlflow
class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input
mlflow.set_tracking_uri({server!r})
with mlflow.start_run():
    mlflow.pyfunc.log_model(name="model", python_model=Constant(), registered_model_name="not-keras")
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    code = run_audit([str(demo_config(tmp_path, "models:/not-keras/1")), "--output", str(tmp_path / "o"), "--mlflow", server])
    err = capsys.readouterr().err
    assert code == 2 and "models:/not-keras/1" in err and "Keras flavour" in err and "python_function" in err


def test_a_dead_tracking_server_is_a_warning_unless_required(tmp_path, capsys):
    _need_mlflow()
    (tmp_path / "dead").mkdir()
    url, proc = start_server(tmp_path / "dead")
    stop_server(proc)  # killed before the audit logs anything
    plain = tmp_path / "plain"
    assert run_audit([str(demo_config(tmp_path)), "--output", str(plain)]) == 0
    capsys.readouterr()
    started = time.perf_counter()
    assert run_audit([str(demo_config(tmp_path)), "--output", str(tmp_path / "soft"), "--mlflow", url]) == 0
    err = capsys.readouterr().err
    assert time.perf_counter() - started < 120  # a CI gate does not hang on the server
    warnings = [line for line in err.splitlines() if url in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: MLflow logging failed")
    soft = json.loads((tmp_path / "soft" / "summary.json").read_text())
    base = json.loads((plain / "summary.json").read_text())
    assert soft["mlflow"]["logged"] is False and url in soft["mlflow"]["error"]
    for key in ("verdict", "exit_code", "gate", "aggregates", "flag_counts", "strategies", "probes"):
        assert soft[key] == base[key], key
    assert (tmp_path / "soft" / "samples.csv").read_bytes() == (plain / "samples.csv").read_bytes()
    cfg = demo_config(tmp_path, extra="mlflow: {required: true}\n")
    assert run_audit([str(cfg), "--output", str(tmp_path / "hard"), "--mlflow", url]) == 2
    err = capsys.readouterr().err
    assert url in err and "mlflow.required is true" in err and "Traceback" not in err


def test_an_audit_that_fails_after_its_run_started_ends_the_run_failed(tmp_path, monkeypatch, capsys):
    _need_mlflow()
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()  # every image missing: the dataset has no usable sample, exit 2 after the run was created
    cfg = demo_config(tmp_path)
    cfg.write_text(cfg.read_text().replace(f"images: {ROOT}/data_samples/shapes/images", f"images: {tmp_path / 'empty'}"))
    assert run_audit([str(cfg), "--output", str(tmp_path / "out"), "--mlflow"]) == 2
    assert "expected at least one usable sample" in capsys.readouterr().err
    client = MlflowClient(f"sqlite:///{tmp_path / 'reports' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("gradcam-audit").experiment_id])
    assert run.info.status == "FAILED"  # never left RUNNING


def _runs_read_only(db: Path) -> list[tuple[str, str]]:
    """(run id, status) of every run in an MLflow sqlite store, read without creating or migrating anything; none while
    the file or its tables do not exist yet."""
    import sqlite3

    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return [(str(r), str(s)) for r, s in con.execute("SELECT run_uuid, status FROM runs")]
        finally:
            con.close()
    except sqlite3.OperationalError:  # no runs table yet, or locked by the audit's writes
        return []


def test_a_cancelled_audit_ends_its_run_failed_and_releases_its_output_folder(tmp_path):
    """A cancelled CI job sends SIGTERM: the audit process ends the MLflow run FAILED, publishes nothing, releases its
    output lock, discards its staging folder unless it holds completed batches (kept for --resume, and said), and exits
    2 with one line (Python's default would leave the run RUNNING, the lock and the staging folder behind)."""
    _need_mlflow()
    from mlflow import MlflowClient

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = tmp_path / "out"
    config = demo_config(tmp_path)
    # batches of 2: the explain loop keeps a checkpoint per batch, so a signal sent at its first one lands inside the audit's
    # work with many batches to go, whatever the machine's load
    config.write_text(config.read_text().replace("  batch_size: 32\n", "  batch_size: 2\n", 1))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "audit", str(config), "--output", str(out), "--mlflow",
                             "--no-progress"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "reports" / "mlflow.db"
    batches = tmp_path / ".out.partial" / "checkpoint"
    try:
        # the signal goes in as soon as the explain loop has kept its first batch: inside the audit's work, its run started.
        # The test reads the runs table read-only (a second MLflow store opened on a database the audit is still creating
        # would run the migrations a second time)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not any(batches.glob("batch-*.npz")):
            time.sleep(0.02)
        runs = _runs_read_only(db)
        while not runs and proc.poll() is None and time.time() < deadline:  # the store busy at that moment: read again
            time.sleep(0.2)
            runs = _runs_read_only(db)
        if proc.poll() is not None or not runs:
            proc.kill()
            _, err_text = proc.communicate(timeout=60)
            pytest.fail(f"the audit never reached its explain loop with its run started (exit {proc.returncode}, runs {runs}):\n"
                        f"{err_text[-3000:]}")
        assert runs[0][1] == "RUNNING", runs
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2 and "interrupted by SIGTERM" in err and "Traceback" not in err, (proc.returncode, err[-3000:])
    assert MlflowClient(f"sqlite:///{db}").get_run(runs[0][0]).info.status == "FAILED"
    assert not out.exists() and not (tmp_path / ".out.lock").exists()  # no report, no lock
    # where the signal lands decides whether batches were done: either way nothing is left unexplained
    staging = tmp_path / ".out.partial"
    assert not staging.exists() or f"kept {staging}" in err and "--resume" in err

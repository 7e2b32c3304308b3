"""The stage sequence: prepare -> engine -> conclude (trust, strategies, probes, gate) -> publish.

The per-batch work (Grad-CAM, interventions, scoring) is ``pipeline.worker.AuditWorker``; an
engine runs it over the samples and the collector streams its results to samples.csv and
heatmaps.npz in row order; only small per-sample scalars stay in memory. TensorFlow is imported
lazily, by the stages that need it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline import gate
from pipeline.baseline import comparability
from pipeline.checkpoint import CheckpointStore
from pipeline.conclude import conclude, sample_table
from pipeline.config import AuditConfig
from pipeline.engines.drive import run_engine, work_plan
from pipeline.errors import AuditError
from pipeline.notices import notice
from pipeline.prepare import prepare_checked
from pipeline.publish import (add_findings, check_resume, discard_or_keep, log_run, open_staging, summarise, write_failure,
                              write_outputs, write_stage_tables)
from pipeline.result import AuditResult
from pipeline.summary import fingerprints
from pipeline.worker import BatchResult

if TYPE_CHECKING:
    from pipeline.tracking.models import ResolvedModel
    from pipeline.tracking.runs import Tracker

def output_dir(cfg: AuditConfig, override: Path | None) -> Path:
    if override is not None:
        return override.resolve()
    if cfg.report.output_dir is not None:
        return cfg.report.output_dir
    return (Path.cwd() / "reports" / cfg.name).resolve()


def load_baseline(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["aggregates"]["overall"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditError(f"{path}: expected a summary.json from a previous audit, found {type(exc).__name__}: {exc}") from None
    return data


def compare_baseline(cfg: AuditConfig, base: dict | None, baseline_path: Path | None, prints: dict[str, str]) -> dict | None:
    """The baseline's comparability (None without one); a baseline on other data is exit 2 when the config requires the same."""
    compared = comparability(base, path=baseline_path, **prints) if base is not None and baseline_path else None
    if compared and not compared["dataset_matches"] and cfg.baseline_require_same_dataset:
        theirs = str((base.get("provenance") or {}).get("dataset_fingerprint") or "none recorded")[:12]
        raise AuditError(
            f"{baseline_path}: baseline.require_same_dataset: expected a baseline audited on the same evaluation set "
            f"(dataset fingerprint {prints['dataset_fingerprint'][:12]}), found one on {theirs}")
    return compared


def audit(
    cfg: AuditConfig,
    *,
    output: Path | None = None,
    baseline: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    resume: bool = False,
    mlflow: str | None = None,
) -> AuditResult:
    """Run the whole audit and publish the outputs. Raises AuditError when it cannot run.

    ``resume`` continues an interrupted run from the checkpoints in its staging folder; ``baseline`` is a
    summary.json or an MLflow URI (``models:/NAME@champion``); ``mlflow`` ("" or a tracking URI) logs the audit
    as an MLflow run, as ``mlflow.enabled`` does."""
    from pipeline.tracking.session import resolve_inputs, tracked_run

    cfg, registry, baseline_path = resolve_inputs(cfg, baseline or cfg.baseline, mlflow)
    with tracked_run(cfg, mlflow, notice) as tracker:
        return _audit(cfg, output=output, baseline_path=baseline_path, limit=limit, progress=progress, resume=resume,
                      tracker=tracker, registry=registry)


def _audit(cfg: AuditConfig, *, output: Path | None, baseline_path: Path | None, limit: int | None, progress: bool, resume: bool,
           tracker: "Tracker | None", registry: "ResolvedModel | None") -> AuditResult:
    import keras

    from pipeline.collector import Collector
    from pipeline.columns import active
    from pipeline.outputs import HeatmapWriter, SamplesWriter, json_safe

    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    base = load_baseline(baseline_path) if baseline_path else None
    keras.utils.set_random_seed(cfg.seed)
    cfg, prep = prepare_checked(cfg, limit=limit, reports=output_dir(cfg, output).parent)
    prints = fingerprints(cfg, prep)
    compared = compare_baseline(cfg, base, baseline_path, prints)
    plan = work_plan(cfg, prep)
    out_dir = output_dir(cfg, output)
    from pipeline.lock import OutputLock

    with OutputLock(out_dir) as lock:
        if lock.took_over:
            notice(f"{out_dir}: took over the lock left by a run that is gone (pid {lock.took_over.get('pid', '?')} on "
                    f"{lock.took_over.get('host', '?')}, started {lock.took_over.get('started', '?')})")
        staging = open_staging(out_dir, resume)
        store = CheckpointStore(staging.path)
        manifest = {**prints, "limit": limit, "n_samples": len(prep.samples)}
        check_resume(staging, store, manifest, resume)
        try:
            if not staging.resumed:
                store.start(manifest)
            csv_out = SamplesWriter(staging.path / "samples.csv", active(plan.groups))
            heat = HeatmapWriter(staging.path, len(prep.samples), prep.model.layer_shape[:2])
            collector = Collector(prep.samples, prep.space, plan.groups, csv_out, heat)
            for done in store.load() if staging.resumed else ():
                collector.add(done)

            def checkpoint(result: BatchResult) -> None:
                store.save(result)
                lock.heartbeat()

            timing = run_engine(cfg, prep, plan, collector, progress, on_result=checkpoint, started=t0)
            csv_out.close()
            heat.close()
            cams = np.load(staging.path / "cams.npy", mmap_mode="r")
            target_class = np.load(staging.path / "target_class.npy")

            table = sample_table(cfg, prep, collector.values)
            found = conclude(cfg, prep, table, collector.values, cams, target_class, base, compared, timing, baseline_path)
            timing = {"started": started.isoformat(timespec="seconds"), "ended": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      "seconds": round(time.perf_counter() - t0, 3), **timing}
            summary = summarise(cfg, prep, table, collector.values, found, prints=prints, baseline_path=baseline_path,
                                compared=compared, timing=timing, tracker=tracker, registry=registry)
            write_stage_tables(staging.path, summary, found)
            summary = add_findings(summary, staging.path / "samples.csv", base)
            report_seconds = write_outputs(staging.path, summary, prep, table, collector.values, cams, found, base, baseline_path,
                                           report=out_dir / "report.html")
            timings = {"explain_seconds": timing["explain_seconds"], "report_seconds": report_seconds}
            del cams
            heat.cleanup()
            store.remove()
            tracking_failure = log_run(tracker, cfg, summary, staging.path, registry)
            staging.publish()
        except OSError as exc:
            kept = discard_or_keep(staging, store)
            failure = write_failure(exc, out_dir, kept)
            if failure is None:
                raise
            raise failure from None
        except BaseException:
            discard_or_keep(staging, store)
            raise
    if tracking_failure is not None:  # mlflow.required: the local outputs are published, the audit still fails
        raise tracking_failure
    return AuditResult(found.verdict, gate.EXIT_CODES[found.verdict], out_dir, json_safe(summary), timings)  # as summary.json has it

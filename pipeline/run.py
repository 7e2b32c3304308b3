"""The stage sequence: prepare -> explain (the engine) -> conclude (trust, strategies, probes, gate) -> publish.

The per-batch work (Grad-CAM, interventions, scoring) is ``pipeline.explain.worker.AuditWorker``; an
engine runs it over the samples and the collector streams its results to samples.csv and
heatmaps.npz in row order; only small per-sample scalars stay in memory. TensorFlow is imported
lazily, by the stages that need it.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.conclude import gate
from pipeline.conclude.baseline import compare_baseline, load_baseline
from pipeline.conclude.stage import Conclusions, conclude, sample_table
from pipeline.conclude.trust import trust_stage
from pipeline.config import AuditConfig
from pipeline.console import notice, progress, stage
from pipeline.errors import AuditError
from pipeline.explain.checkpoint import CheckpointStore
from pipeline.explain.engines.drive import run_engine, work_plan
from pipeline.explain.forward import stage_inputs
from pipeline.explain.worker import BatchResult, WorkPlan
from pipeline.prepare.prepared import Prepared
from pipeline.prepare.stage import prepare_checked
from pipeline.probes.stage import probes_stage
from pipeline.properties.stage import properties_stage
from pipeline.publish.stage import (
    add_findings,
    check_resume,
    discard_or_keep,
    internal_error,
    log_run,
    open_staging,
    summarise,
    write_failure,
    write_outputs,
    write_stage_tables,
)
from pipeline.publish.summary import fingerprints
from pipeline.records.plain import JsonObject
from pipeline.result import AuditResult
from pipeline.strategies.stage import strategies_stage

if TYPE_CHECKING:
    from pipeline.explain.explained import PassCount
    from pipeline.tracking.models import ResolvedModel
    from pipeline.tracking.runs import Tracker


def output_dir(cfg: AuditConfig, override: Path | None) -> Path:
    if override is not None:
        return override.resolve()
    if cfg.report.output_dir is not None:
        return cfg.report.output_dir
    return (Path.cwd() / "reports" / cfg.name).resolve()


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
        run = _start(cfg, output=output, baseline_path=baseline_path, limit=limit, progress=progress)
        return _staged(run, progress=progress, resume=resume, tracker=tracker, registry=registry)


@dataclass(frozen=True)
class Run:
    """What every step after preparation reads: the checked inputs and where the outputs go."""

    cfg: AuditConfig
    prep: Prepared
    plan: WorkPlan
    prints: dict[str, str]  # config, model and dataset fingerprints
    base: dict | None  # the baseline's summary.json
    baseline_path: Path | None
    compared: dict | None  # the baseline's comparability
    out_dir: Path
    limit: int | None
    started: dt.datetime
    t0: float  # perf_counter at the start
    progress: bool = True  # each stage's progress bar on stderr


def _start(cfg: AuditConfig, *, output: Path | None, baseline_path: Path | None, limit: int | None, progress: bool = True) -> Run:
    """Prepare: the baseline, the checked samples and model, the fingerprints, the per-sample work plan."""
    import keras

    started, t0 = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    base = load_baseline(baseline_path) if baseline_path else None
    keras.utils.set_random_seed(cfg.seed)
    out_dir = output_dir(cfg, output)
    with stage("prepare"):
        prep = prepare_checked(cfg, limit=limit, reports=out_dir.parent, progress=progress)
    prints = fingerprints(cfg, prep)
    compared = compare_baseline(base, baseline_path, prints, require_same=cfg.baseline_require_same_dataset)
    return Run(cfg, prep, work_plan(cfg, prep), prints, base, baseline_path, compared, out_dir, limit, started, t0, progress)


def _staged(run: Run, *, progress: bool, resume: bool, tracker: "Tracker | None", registry: "ResolvedModel | None") -> AuditResult:
    """Explain, conclude and publish inside the output folder's lock and staging folder; a failure keeps completed
    batches for --resume (or removes the staging folder) and publishes nothing."""
    from pipeline.publish.lock import OutputLock
    from pipeline.publish.outputs import json_safe

    with OutputLock(run.out_dir) as lock:
        if lock.took_over:
            notice(f"{run.out_dir}: took over the lock left by a run that is gone (pid {lock.took_over.get('pid', '?')} on "
                   f"{lock.took_over.get('host', '?')}, started {lock.took_over.get('started', '?')})")
        staging = open_staging(run.out_dir, resume)
        store = CheckpointStore(staging.path)
        manifest = {**run.prints, "limit": run.limit, "n_samples": len(run.prep.samples)}
        check_resume(staging, store, manifest, resume)
        try:
            if not staging.resumed:
                store.start(manifest)
            with stage("explain"):
                explained = _explain(run, staging, store, lock, progress)
            summary, found, timings = _conclude_and_write(run, staging.path, explained, tracker, registry)
            explained.release()
            store.remove()
            tracking_failure = log_run(tracker, run.cfg, summary, staging.path, registry)
            staging.publish()
        except AuditError:
            discard_or_keep(staging, store)
            raise
        except OSError as exc:  # a full disk, a lost mount: may pass on a rerun
            raise write_failure(exc, run.out_dir, discard_or_keep(staging, store)) from None
        except (KeyboardInterrupt, MemoryError):  # may pass on a rerun: --resume continues from the kept batches
            discard_or_keep(staging, store)
            raise
        except Exception as exc:  # a bug: a rerun would meet it again, so --resume is not suggested
            raise internal_error(exc, discard_or_keep(staging, store, rerun=False), staging.path) from exc
    if tracking_failure is not None:  # mlflow.required: the local outputs are published, the audit still fails
        raise tracking_failure
    return AuditResult(found.verdict, gate.EXIT_CODES[found.verdict], run.out_dir, json_safe(summary), timings)  # as summary.json has it


@dataclass
class Explained:
    """The engine's per-sample results: the collector's values, the native CAMs (memory-mapped) and explained classes."""

    values: dict[str, np.ndarray]
    cams: np.ndarray
    target_class: np.ndarray
    timing: JsonObject
    heat: Any  # the HeatmapWriter, whose temporary arrays go once the report is written

    def release(self) -> None:
        self.cams = np.empty((0,))
        self.heat.cleanup()


def _explain(run: Run, staging: Any, store: CheckpointStore, lock: Any, progress: bool) -> Explained:
    """The engine over the samples not yet checkpointed; results stream to samples.csv and the CAM arrays."""
    from pipeline.explain.collector import Collector
    from pipeline.explain.columns import active
    from pipeline.explain.writers import HeatmapWriter, SamplesWriter

    prep = run.prep
    csv_out = SamplesWriter(staging.path / "samples.csv", active(run.plan.groups))
    heat = HeatmapWriter(staging.path, len(prep.samples), prep.model.layer_shape[:2])
    collector = Collector(prep.samples, prep.space, run.plan.groups, csv_out, heat)
    for done in store.load() if staging.resumed else ():
        collector.add(done)

    def checkpoint(result: BatchResult) -> None:  # written before the collector sees it: a kill between loses nothing
        store.save(result)
        lock.heartbeat()

    timing = run_engine(run.cfg, prep, run.plan, collector, progress, on_result=checkpoint, started=run.t0)
    csv_out.close()
    heat.close()
    return Explained(collector.values, np.load(staging.path / "cams.npy", mmap_mode="r"), np.load(staging.path / "target_class.npy"),
                     timing, heat)


def _conclude_and_write(run: Run, folder: Path, explained: Explained, tracker: "Tracker | None",
                        registry: "ResolvedModel | None") -> tuple[JsonObject, Conclusions, dict[str, float]]:
    """The stages after the explain loop, in order, then summary.json with its findings, the stage tables and the report,
    all into the staging ``folder``; returns (summary, conclusions, timings)."""
    found = _conclusions(run, explained)
    timing = {"started": run.started.isoformat(timespec="seconds"), "ended": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "seconds": round(time.perf_counter() - run.t0, 3), **explained.timing}
    cfg, prep = run.cfg, run.prep
    with stage("summary"):
        summary = summarise(cfg, prep, found.table, explained.values, found, prints=run.prints, baseline_path=run.baseline_path,
                            compared=run.compared, timing=timing, tracker=tracker, registry=registry)
        write_stage_tables(folder, summary, found)
    with stage("findings"):
        summary = add_findings(summary, folder / "samples.csv", run.base)
    with stage("report"):
        report_seconds = write_outputs(folder, summary, prep, found.table, explained.values, explained.cams, found, run.base,
                                       run.baseline_path, report=run.out_dir / "report.html")
    return summary, found, {"explain_seconds": timing["explain_seconds"], "report_seconds": report_seconds}


def _conclusions(run: Run, explained: Explained) -> Conclusions:
    """Trust -> strategies -> probes -> properties -> aggregates and gate; each stage's seconds and forward passes go into
    the explain loop's timing (summary.json's provenance), its progress to stderr."""
    cfg, prep, timing = run.cfg, run.prep, explained.timing
    values, cams, target_class = explained.values, explained.cams, explained.target_class
    table = sample_table(cfg, prep, values)
    passes = timing.setdefault("passes", explain_passes(run, prep))
    with stage("trust", timing), progress("trust", run.progress) as bar:
        checks, randomisation = trust_stage(cfg, prep, table, values, cams, target_class, bar)
    timing["randomisation"] = randomisation
    passes["trust"] = {"forward": 0, "gradcam": int((randomisation or {}).get("samples") or 0) * cfg.trust.randomisation_draws}
    with stage("strategies", timing), progress("strategies", run.progress) as bar:
        ev, model = stage_inputs(cfg, prep, values, cams, target_class)
        strat = strategies_stage(cfg, ev, model, bar)
    passes["strategies"] = _passes(model.count, (0, 0))
    seen = (model.count.forward, model.count.gradcam)
    with stage("probes", timing), progress("probes", run.progress) as bar:
        probed = probes_stage(cfg, ev, model, cams, strat, prep.model.input, bar)
    passes["probes"], seen = _passes(model.count, seen), (model.count.forward, model.count.gradcam)
    with stage("properties", timing), progress("properties", run.progress) as bar:
        props = properties_stage(cfg, ev, model, cams, prep.model.input, bar)
    passes["properties"] = _passes(model.count, seen)
    timing["properties_data_seconds"] = round(props.data_seconds, 3) if props is not None else None
    with stage("gate"):
        return conclude(cfg, prep, table, checks, (strat, probed, props), run.base, run.compared, run.baseline_path)


def _passes(count: "PassCount", before: tuple[int, int]) -> dict[str, int]:
    """A stage's forward and Grad-CAM passes: the classifier's count since ``before``."""
    return {"forward": count.forward - before[0], "gradcam": count.gradcam - before[1]}


def explain_passes(run: Run, prep: Prepared) -> dict[str, dict[str, int]]:
    """The passes before the stages after the explain loop: the preprocessing check's, and the explain loop's (each usable
    sample once, plus its three intervention images — object removed, object only, blank — where they ran)."""
    usable = sum(s.skip_reason is None for s in prep.samples)
    intervened = int(np.asarray(run.plan.intervene)[[s.row for s in prep.samples if s.skip_reason is None]].sum())
    check = prep.check.passes if getattr(prep, "check", None) is not None else 0
    return {"preprocessing_check": {"forward": int(check), "gradcam": 0},
            "explain": {"forward": usable + 3 * intervened, "gradcam": usable}}

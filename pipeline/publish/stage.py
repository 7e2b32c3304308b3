"""The audit's outputs: summary.json's content, the stage tables, the findings, summary.md, junit.xml and the
report, written into the staging folder and published atomically; the MLflow run's logging; failures said
in the user's terms."""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.conclude import aggregates
from pipeline.config import AuditConfig
from pipeline.console import notice
from pipeline.errors import AuditError, InternalError, one_line
from pipeline.explain.checkpoint import CheckpointStore
from pipeline.probes.stage import section as probe_section
from pipeline.publish.summary import (
    build_summary,
    explanation_section,
    provenance,
    trust_section,
)
from pipeline.records.plain import JsonObject
from pipeline.strategies.stage import section as strategy_section

if TYPE_CHECKING:
    from pipeline.conclude.stage import Conclusions
    from pipeline.prepare.prepared import Prepared
    from pipeline.strategies.stage import StrategiesResult
    from pipeline.tracking.models import ResolvedModel
    from pipeline.tracking.runs import Tracker

def summarise(cfg: AuditConfig, prep: Prepared, table: aggregates.SampleTable, values: dict[str, np.ndarray], found: Conclusions, *,
              prints: dict[str, str], baseline_path: Path | None, compared: dict | None, timing: JsonObject,
              tracker: "Tracker | None" = None, registry: "ResolvedModel | None" = None) -> JsonObject:
    """summary.json's content from the findings (DESIGN §5); with MLflow, where the run is and the model's registry version."""
    summary = build_summary(
        cfg, verdict=found.verdict, results=found.results, trust=trust_section(found.checks, cfg), table=table,
        overall=found.overall, per_class=found.per_class, class_names=prep.class_names, labels=prep.labels,
        samples=prep.samples, reasons=values["skip_reason"],
        provenance=provenance(cfg, prep, fingerprints=prints, baseline_path=baseline_path, timing=timing), baseline=compared,
        dataset_problems=prep.annotations.problems,
        strategies=strategy_section(found.strategies) if found.strategies else None,
        probes=probe_section(found.probes) if found.probes else None,
        explanation=explanation_section(table, values.get("evidence_note"), cfg),
    )
    if found.properties is not None and summary.get("probes") is not None:
        from pipeline.properties.stage import section as property_section

        summary["probes"]["properties"] = property_section(found.properties)
    if registry is not None:
        summary["provenance"]["model_registry"] = registry.provenance()
    if tracker is not None:
        summary["mlflow"] = tracker.section()
    return summary


def write_outputs(folder: Path, summary: JsonObject, prep: Prepared, table: aggregates.SampleTable, values: dict[str, np.ndarray],
                  cams: np.ndarray, found: Conclusions, base: dict | None, baseline_path: Path | None, report: Path | None = None) -> float:
    """summary.json, summary.md, junit.xml and report.html into the staging ``folder`` (the stage tables and
    the findings first: :func:`write_stage_tables`, :func:`add_findings`); returns the report's rendering time in seconds."""
    from pipeline.publish.outputs import write_json, write_junit, write_summary_md
    from pipeline.report import render_report

    write_json(folder / "summary.json", summary)
    write_summary_md(folder / "summary.md", summary, report=str(report) if report else None)
    write_junit(folder / "junit.xml", summary)
    t_report = time.perf_counter()
    render_report(folder / "report.html", summary, prep, table, values=values, cams=cams, baseline=base,
                  baseline_path=baseline_path, strategies=found.strategies, probes=found.probes, properties=found.properties)
    return time.perf_counter() - t_report


def write_stage_tables(folder: Path, summary: JsonObject, found: Conclusions) -> None:
    """strategies.csv (+ samples.csv's ``strategy`` column), probes.csv and properties.csv into the staging ``folder``."""
    if found.strategies is not None:
        write_strategy_outputs(folder, found.strategies, summary["strategies"])
    if found.probes is not None:
        from pipeline.probes.stage import CSV_COLUMNS as PROBE_COLUMNS
        from pipeline.publish.outputs import write_records_csv

        write_records_csv(folder / "probes.csv", summary["probes"]["rows"], PROBE_COLUMNS)
    if found.properties is not None:
        from pipeline.properties.stage import CSV_COLUMNS as PROPERTY_COLUMNS
        from pipeline.properties.stage import record
        from pipeline.publish.outputs import write_records_csv

        write_records_csv(folder / "properties.csv", [record(r).to_json() for r in found.properties.rows], PROPERTY_COLUMNS)


def add_findings(summary: JsonObject, samples_csv: Path, base: dict | None) -> JsonObject:
    """summary.json with its ``findings`` (DESIGN §13) after the verdict: the causes, from the summary and the
    staged samples.csv (with its ``strategy`` column), ``since_baseline`` against the baseline's findings."""
    import pandas as pd

    from pipeline.findings import build

    found = build(summary, pd.read_csv(samples_csv, keep_default_na=True), base)
    head = ("baseline", "name", "verdict", "exit_code")
    return {**{k: summary[k] for k in head if k in summary}, "findings": found, **{k: v for k, v in summary.items() if k not in head}}


def write_strategy_outputs(folder: Path, result: "StrategiesResult", section: JsonObject) -> None:
    """strategies.csv, and samples.csv's ``strategy`` column (known only after every batch)."""
    from pipeline.publish.outputs import append_column, write_records_csv
    from pipeline.strategies.stage import CSV_COLUMNS

    write_records_csv(folder / "strategies.csv", [s for lab in section["labels"] for s in lab["strategies"]], CSV_COLUMNS)
    append_column(folder / "samples.csv", "strategy", ["" if v < 0 else str(v) for v in result.strategy])


_FULL = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file too large"}


def write_failure(exc: OSError, out_dir: Path, kept: bool = False) -> AuditError:
    """An I/O error during the audit (a full disk, quota or file-size limit, a lost mount), said in the user's terms."""
    staging = "the completed batches were kept for --resume" if kept else "the staging folder was removed"
    if exc.errno in _FULL:
        return AuditError(f"{out_dir}: {_FULL[exc.errno]} writing the audit's outputs ({exc.strerror}); "
                          f"nothing was published and {staging}: free space or choose another --output")
    where = exc.filename or out_dir
    return AuditError(f"{where}: expected to read or write it, found an I/O error ({exc.strerror or exc}); "
                      f"nothing was published and {staging}")


def discard_or_keep(staging: Any, store: CheckpointStore, *, rerun: bool = True) -> int:
    """After a failure: keep a staging folder that holds completed batches, else remove it; returns the batches kept.
    ``rerun``: the failure may pass on a rerun, so --resume is suggested (not after an internal error)."""
    done = store.batches_done()
    if done:
        if rerun:
            notice(f"kept {staging.path} with {done} completed batches: rerun with --resume to continue")
        return done
    staging.discard()
    return 0


def internal_error(exc: BaseException, kept: int, folder: Path) -> InternalError:
    """A bug as the user reads it: the stage that failed, the exception, what was kept (a rerun would meet it again)."""
    from pipeline.console import stage_of

    where = stage_of(exc)
    kept_text = (f"the {kept} completed batch{'es' if kept != 1 else ''} of Grad-CAM are kept in {folder}" if kept
                 else "nothing was kept")
    return InternalError(f"internal error in the {where or 'audit'} stage, {type(exc).__name__}: {one_line(exc, 400)}; no report was "
                         f"published and {kept_text}")


def open_staging(out_dir: Path, resume: bool):
    from pipeline.publish.outputs import Staging

    try:
        return Staging(out_dir, resume=resume)
    except OSError as exc:
        if exc.errno in _FULL:
            raise write_failure(exc, out_dir) from None
        raise AuditError(f"{out_dir}: expected a folder the audit can write its outputs to, found an error: {exc.strerror or exc}") from None


def check_resume(staging: Any, store: CheckpointStore, manifest: JsonObject, resume: bool) -> None:
    """A resumed staging folder must match this run's manifest; otherwise say what happened to an old one."""
    if staging.resumed:
        store.check(manifest, staging.path)
    elif resume:
        notice(f"--resume: no interrupted run in {staging.path}; starting from the beginning")
    elif staging.found_stale:
        notice(f"replaced the staging folder of an interrupted run ({staging.path}); --resume would have continued it")


def log_run(tracker: "Tracker | None", cfg: AuditConfig, summary: JsonObject, folder: Path,
            registry: "ResolvedModel | None") -> AuditError | None:
    """Log the audit to its MLflow run from the staging ``folder`` (the outputs as they will be published):
    values and registry tags, summary.json's ``mlflow`` rewritten, then the folder. A failure is recorded in
    summary.json; with ``mlflow.required`` it is returned, to raise once the outputs are published."""
    if tracker is None:
        return None
    from pipeline.publish.outputs import write_json
    from pipeline.tracking.client import TrackingError

    try:
        tracker.log_values(summary, resolved=cfg.resolved, engine=cfg.engine.kind, extra_tags=dict(cfg.mlflow.tags),
                           registry=registry.provenance() if registry else None, promote_alias=cfg.mlflow.promote_alias)
        summary["mlflow"] = tracker.section()
        write_json(folder / "summary.json", summary)
        tracker.log_folder(folder)
    except TrackingError as exc:
        failure: AuditError | None = exc
    else:
        failure = None
    if tracker.error:
        summary["mlflow"] = tracker.section()
        write_json(folder / "summary.json", summary)
    return failure

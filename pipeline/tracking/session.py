"""How an audit uses MLflow, in two steps around ``run.audit``'s work: resolve the inputs (a model or a
baseline given as an MLflow URI) before anything else, and hold the audit's run while it works."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from pipeline.config import AuditConfig
from pipeline.config.uris import is_mlflow_uri
from pipeline.tracking.client import tracking_uri


def enabled(cfg: AuditConfig, flag: str | None) -> bool:
    """Logging is on with ``mlflow.enabled`` or ``--mlflow [URI]`` (``flag`` "" or a URI)."""
    return cfg.mlflow.enabled or flag is not None


def uri_for(cfg: AuditConfig, flag: str | None) -> str:
    return tracking_uri(cfg.mlflow.tracking_uri, flag or None)


def resolve_inputs(cfg: AuditConfig, baseline: str | Path | None, flag: str | None = None) -> tuple[AuditConfig, Any, Path | None]:
    """(config with model.path the downloaded Keras file, the ResolvedModel or None, the baseline's local summary.json)."""
    resolved = None
    if cfg.model.uri:
        from pipeline.tracking.models import resolve_model

        resolved = resolve_model(cfg.model.uri, uri_for(cfg, flag))
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, path=resolved.path))
    if baseline is not None and is_mlflow_uri(str(baseline)):
        from pipeline.tracking.baselines import resolve_baseline

        baseline = resolve_baseline(str(baseline), uri_for(cfg, flag))
    return cfg, resolved, None if baseline is None else Path(baseline)


@contextmanager
def tracked_run(cfg: AuditConfig, flag: str | None, notice: Callable[[str], None]) -> Iterator[Any]:
    """The audit's Tracker (None when logging is off); the run ends FINISHED when the body completes, FAILED
    when it raises (an interrupt too)."""
    if not enabled(cfg, flag):
        yield None
        return
    from pipeline.tracking.runs import Tracker

    tracker = Tracker.start(uri_for(cfg, flag), cfg.mlflow.experiment, cfg.mlflow.run_name or cfg.name, required=cfg.mlflow.required,
                            notice=notice)
    ok = False
    try:
        yield tracker
        ok = True
    finally:
        tracker.end(ok)

"""The Python API (DESIGN §3): ``from pipeline import audit``, for notebooks and scripts.

``audit(config)`` runs the same audit as ``python -m pipeline audit`` and returns its
:class:`~pipeline.result.AuditResult` (verdict, exit code, summary, a samples DataFrame, the report's
path, an HTML view for Jupyter). Errors raise the typed :class:`~pipeline.errors.AuditError` s;
nothing here prints or exits. TensorFlow is imported when the audit runs, not on import.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.config import AuditConfig
    from pipeline.result import AuditResult

def load(config: "str | Path | dict[str, Any] | AuditConfig") -> "AuditConfig":
    """A config file path, a mapping (paths relative to the working directory) or an AuditConfig -> AuditConfig."""
    from pipeline.config import AuditConfig, config_from_dict, load_config

    if isinstance(config, AuditConfig):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


def audit(config: "str | Path | dict[str, Any] | AuditConfig", *, output: str | Path | None = None, baseline: str | Path | None = None,
          limit: int | None = None, engine: str | None = None, progress: bool = True, resume: bool = False,
          mlflow: str | bool | None = None) -> "AuditResult":
    """Run the audit of ``config`` and publish its report; the arguments are the CLI's options (``baseline``
    may be an MLflow URI such as ``models:/NAME@champion``; ``mlflow``: True or a tracking URI logs the run,
    as ``--mlflow [URI]`` does).

    Raises ConfigError, DatasetError, ModelError (all AuditError, exit code 2) when it cannot run;
    a NOT FIT or INCONCLUSIVE verdict is a result, not an error."""
    from pipeline.config import ENGINES
    from pipeline.run import audit as run_audit

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"limit: expected an integer >= 1, found {limit!r}")
    if engine is not None and engine not in ENGINES:
        raise UsageError(f"engine: expected one of {', '.join(ENGINES)}, found {engine!r}")
    cfg = load(config)
    if engine is not None and engine != cfg.engine.kind:
        cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, kind=engine))
    if mlflow is not None and not isinstance(mlflow, (bool, str)):
        raise UsageError(f"mlflow: expected True, False or a tracking URI, found {mlflow!r}")
    flag = None if mlflow is None or mlflow is False else "" if mlflow is True else mlflow
    return run_audit(cfg, output=None if output is None else Path(output), baseline=baseline, limit=limit, progress=progress,
                     resume=resume, mlflow=flag)

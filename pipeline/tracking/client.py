"""Connecting to MLflow: which tracking URI, a client that fails fast, MLflow's own logs kept quiet.

Tracking URI, first that is set: ``--mlflow URI`` on the command line, ``mlflow.tracking_uri`` in the
config, ``MLFLOW_TRACKING_URI``, then the embedded default ``sqlite:///reports/mlflow.db`` under the
working directory (no server needed; its artifacts go beside it, in ``reports/mlartifacts/``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pipeline.errors import AuditError

INSTALL = "pip install -e '.[mlflow]' (make install does)"
DEFAULT_DB = Path("reports") / "mlflow.db"
# A CI gate must not wait minutes on a tracking server that is down: MLflow's defaults retry 7 times
# with exponential backoff and wait 120 s a request. The user's own settings win.
FAST_FAILURE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


class TrackingError(AuditError):
    """MLflow is missing, unreachable or refuses a request (exit 2 when it is needed)."""

    kind = "tracking error"


def require_mlflow(what: str) -> Any:
    """The ``mlflow`` module, or a TrackingError that names what needed it and the install command."""
    for key, value in FAST_FAILURE.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
    except ImportError:
        raise TrackingError(f"{what}: expected the mlflow package, found it not installed; install it with {INSTALL}") from None
    for name in ("mlflow", "alembic", "urllib3.connectionpool"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return mlflow


def tracking_uri(configured: str | None = None, command_line: str | None = None) -> str:
    """The tracking URI to use (see the module docstring); the embedded default as an absolute sqlite URI."""
    for uri in (command_line, configured, os.environ.get("MLFLOW_TRACKING_URI")):
        if uri:
            return uri
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB).resolve()}"


def artifact_root(uri: str) -> str | None:
    """Where a new experiment's artifacts go: beside a sqlite database (``mlartifacts/``); the server's choice otherwise."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()


def connect(uri: str, what: str) -> Any:
    """An ``MlflowClient`` for ``uri`` (tracking and registry); a sqlite database's folder is created."""
    require_mlflow(what)
    from mlflow import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)



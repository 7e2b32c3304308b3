"""One audit = one MLflow run (the issue's "Runs" and "The registry knows").

The run is created when the audit starts and always ends FINISHED or FAILED (an interrupted or failed
audit, or a failed upload, ends it FAILED). Logged: params = the resolved config, flattened; metrics =
every overall aggregate, each gate interval as ``<name>_lo`` / ``<name>_hi``, per class
``class_<c>_<name>``; tags = verdict, exit code, fingerprints, engine and the user's tags; artifacts =
the whole output folder (report.html opens from the MLflow UI). A model from the registry gets the
version tags ``gradcam_audit.verdict``, ``.run_id``, ``.report``, ``.date`` and ``.findings`` (the blockers' ids), and, when asked and
only on FIT TO DEPLOY, an alias.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from pipeline.errors import one_line
from pipeline.records.plain import Json, JsonObject
from pipeline.tracking.client import TrackingError, artifact_root, connect

MAX_PARAM = 6000  # MLflow's limit on a param's value
BATCH = 100  # params / metrics / tags per log_batch request
_NAME = re.compile(r"[^A-Za-z0-9_.\- /]")


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested mappings and lists as ``a.b.0.c`` keys (MLflow refuses brackets in names) with text values."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, (list, tuple)) and value and any(isinstance(v, (Mapping, list, tuple)) for v in value):
        for i, v in enumerate(value):
            yield from flatten(v, f"{prefix}.{i}")
    else:
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        yield _NAME.sub("_", prefix), text[:MAX_PARAM]


def metrics(summary: Mapping[str, Json]) -> dict[str, float]:
    """Every overall aggregate, ``class_<c>_<name>`` per class, and ``<name>_lo`` / ``_hi`` for each gate rule's
    interval (of the value; change rules' intervals are of the change and are left out). NaN (null) values are not logged."""
    out: dict[str, float] = {}
    agg = summary["aggregates"]
    for name, v in agg["overall"].items():
        out[name] = v
    for cls, values in agg["per_class"].items():
        for name, v in values.items():
            out[f"class_{cls}_{name}"] = v
    for rule in summary["gate"]:
        if rule.get("interval") and rule["interval"][0] is not None and rule["kind"] in ("min", "max"):
            base = rule["aggregate"] if rule["scope"] == "overall" else f"class_{rule['scope']}_{rule['aggregate']}"
            out[f"{base}_lo"], out[f"{base}_hi"] = rule["interval"]
    return {_NAME.sub("_", k): float(v) for k, v in out.items() if isinstance(v, (int, float)) and not math.isnan(float(v))}


def blocker_ids(summary: Mapping[str, Json]) -> str:
    """The version tag ``gradcam_audit.findings``: the blocker findings' ids, comma-separated ("" when none)."""
    return ",".join(f["id"] for f in summary.get("findings") or [] if f["severity"] == "blocker")


def tags(summary: Mapping[str, Json], engine: str, extra: Mapping[str, str]) -> dict[str, str]:
    prov = summary["provenance"]
    out = {"gradcam_audit.verdict": summary["verdict"], "gradcam_audit.exit_code": str(summary["exit_code"]),
           "gradcam_audit.config_sha256": prov["config_sha256"], "gradcam_audit.model_sha256": prov["model_sha256"],
           "gradcam_audit.dataset_fingerprint": prov["dataset_fingerprint"], "gradcam_audit.engine": engine,
           "gradcam_audit.name": summary["name"], "gradcam_audit.findings": blocker_ids(summary)}
    if (prov.get("model_registry") or {}).get("uri"):
        out["gradcam_audit.model_uri"] = prov["model_registry"]["uri"]
    out.update({str(k): str(v) for k, v in extra.items()})
    return out


@dataclass
class Tracker:
    """The audit's run on ``uri``; ``run_id`` is None when logging is off or could not start (``error`` says why)."""

    uri: str
    experiment: str
    required: bool
    run_id: str | None = None
    artifact_uri: str | None = None
    error: str = ""
    notice: Callable[[str], None] = print  # one warning line (stderr) when logging fails
    notes: list[str] = field(default_factory=list)  # what was done in the registry (alias set or not), for summary.json
    client: Any = None

    @classmethod
    def start(cls, uri: str, experiment: str, run_name: str, *, required: bool, notice: Callable[[str], None]) -> "Tracker":
        """Create the run (RUNNING). A server that cannot be reached is a TrackingError when ``required``, else a
        tracker that logs nothing and says why."""
        t = cls(uri, experiment, required, notice=notice)
        try:
            t.client = connect(uri, f"mlflow ({uri})")
            found = t.client.get_experiment_by_name(experiment)
            exp_id = found.experiment_id if found else t.client.create_experiment(experiment, artifact_location=artifact_root(uri))
            run = t.client.create_run(exp_id, run_name=run_name)
            t.run_id, t.artifact_uri = run.info.run_id, run.info.artifact_uri
        except TrackingError:
            raise
        except Exception as exc:  # unreachable server, refused request: MLflow and requests raise many types
            t.fail(f"could not start a run on {uri}: {one_line(exc, 300)}")
        return t

    def fail(self, why: str) -> None:
        """Logging failed: exit 2 when required; else one warning, and the summary records it."""
        self.error = why
        if self.required:
            raise TrackingError(f"mlflow.required is true: {why}")
        self.notice(f"MLflow logging failed, the audit's verdict and local outputs stand (mlflow.required is false): {why}")

    def section(self) -> JsonObject:
        """summary.json's ``mlflow``: where the run is, or that logging failed."""
        return {"tracking_uri": self.uri, "experiment": self.experiment, "run_id": self.run_id, "artifact_uri": self.artifact_uri,
                "logged": self.run_id is not None and not self.error, "error": self.error or None, "notes": list(self.notes)}

    def log_values(self, summary: Mapping[str, Json], *, resolved: Mapping[str, Json], engine: str, extra_tags: Mapping[str, str],
                   registry: Mapping[str, Json] | None, promote_alias: str | None) -> None:
        """Params, metrics and tags, then the registry's version tags (and the alias)."""
        if self.run_id is None:
            return
        from mlflow.entities import Metric, Param, RunTag

        now = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
        try:
            params = [Param(k, v) for k, v in flatten(resolved)]
            values = [Metric(k, v, now, 0) for k, v in metrics(summary).items()]
            marks = [RunTag(k, v) for k, v in tags(summary, engine, extra_tags).items()]
            for i in range(0, max(len(params), len(values), len(marks)), BATCH):
                self.client.log_batch(self.run_id, metrics=values[i:i + BATCH], params=params[i:i + BATCH], tags=marks[i:i + BATCH])
            if registry and registry.get("name"):
                self._tag_version(summary, registry, promote_alias)
        except Exception as exc:  # a server gone, a refused request: MLflow and requests raise many types
            self.fail(f"logging run {self.run_id} on {self.uri} failed: {one_line(exc, 300)}")

    def log_folder(self, folder: Path) -> None:
        """The whole output folder as the run's artifacts (report.html opens from the MLflow UI)."""
        if self.run_id is None or self.error:
            return
        try:
            self.client.log_artifacts(self.run_id, str(folder))
        except Exception as exc:
            self.fail(f"uploading the outputs to run {self.run_id} on {self.uri} failed: {one_line(exc, 300)}")

    def _tag_version(self, summary: Mapping[str, Json], registry: Mapping[str, Json], alias: str | None) -> None:
        name, version = registry["name"], registry["version"]
        for key, value in (("gradcam_audit.verdict", summary["verdict"]), ("gradcam_audit.run_id", self.run_id),
                           ("gradcam_audit.report", f"{self.artifact_uri}/report.html"),
                           ("gradcam_audit.date", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")),
                           ("gradcam_audit.findings", blocker_ids(summary))):
            self.client.set_model_version_tag(name, version, key, value)
        if not alias:
            return
        if summary["verdict"] == "FIT TO DEPLOY":
            self.client.set_registered_model_alias(name, alias, version)
            self.notes.append(f"set alias @{alias} on models:/{name}/{version} (FIT TO DEPLOY)")
        else:
            self.notes.append(f"alias @{alias} not set on models:/{name}/{version}: the verdict is {summary['verdict']}")

    def end(self, ok: bool) -> None:
        """FINISHED or FAILED; a run is never left RUNNING (a server gone by now is one more warning)."""
        if self.run_id is None:
            return
        try:
            self.client.set_terminated(self.run_id, "FINISHED" if ok and not self.error else "FAILED")
        except Exception as exc:
            if not self.error:
                self.notice(f"could not end MLflow run {self.run_id} on {self.uri}: {one_line(exc, 300)}")

"""``mlflow:`` one MLflow run per audit, the registry's version tagged (pipeline.tracking)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.config.reader import Reader
from pipeline.records.plain import JsonObject

DEFAULTS: JsonObject = {  # one MLflow run per audit, the registry's version tagged (pip install '.[mlflow]'; --mlflow [URI] turns it on)
    "enabled": False,  # log the audit as an MLflow run (--mlflow turns it on)
    "tracking_uri": None,  # null: MLFLOW_TRACKING_URI, else sqlite:///reports/mlflow.db under the working directory
    "experiment": "gradcam-audit",  # the MLflow experiment the runs are logged in
    "run_name": None,  # null: the audit's name
    "tags": {},  # extra run tags
    "required": False,  # true: a tracking server that fails is exit 2; false: one warning, the verdict stands
    "promote_alias": None,  # e.g. champion: set on the audited registry version, only on FIT TO DEPLOY
}  # one MLflow run per audit, the registry's version tagged (pip install '.[mlflow]'; --mlflow [URI] turns it on)
"""The mlflow section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class MlflowConfig:
    enabled: bool = False
    tracking_uri: str | None = None  # None: --mlflow URI, MLFLOW_TRACKING_URI, else the embedded sqlite default
    experiment: str = "gradcam-audit"
    run_name: str | None = None  # None: the audit's name
    tags: tuple[tuple[str, str], ...] = ()
    required: bool = False
    promote_alias: str | None = None


def read_mlflow(r: Reader, raw: object) -> MlflowConfig:
    m = r.mapping(raw, "mlflow", DEFAULTS)
    tags = m["tags"]
    if not isinstance(tags, dict) or not all(isinstance(k, str) and k and isinstance(v, (str, int, float, bool)) for k, v in tags.items()):
        raise r.fail("mlflow.tags", "a mapping {tag name: value}", tags)
    optional = {k: None if m[k] is None else r.text(m[k], f"mlflow.{k}") for k in ("tracking_uri", "run_name", "promote_alias")}
    if optional["promote_alias"] is not None and not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$", optional["promote_alias"]):
        raise r.fail("mlflow.promote_alias", "an alias name (letters, digits, '_' or '-')", optional["promote_alias"])
    return MlflowConfig(enabled=r.boolean(m["enabled"], "mlflow.enabled"), experiment=r.text(m["experiment"], "mlflow.experiment"),
                        tags=tuple((k, str(v)) for k, v in tags.items()), required=r.boolean(m["required"], "mlflow.required"),
                        **optional)

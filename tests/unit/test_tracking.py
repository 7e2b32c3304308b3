"""The pure parts of MLflow tracking: URI forms, config keys, the flattened params and the metric names;
a missing mlflow package is exit 2 with the install command."""

from __future__ import annotations

import math
import sys

import pytest

from pipeline.config import load_config
from pipeline.errors import AuditError, ConfigError
from pipeline.tracking.client import INSTALL, artifact_root, require_mlflow, tracking_uri
from pipeline.tracking.runs import flatten, metrics
from pipeline.config.uris import is_mlflow_uri, parse

VALID = """
name: t1
model:
  path: {model}
dataset: {{format: coco, annotations: ann.json, images: imgs}}
gate:
  - {{metric: accuracy, min: 0.9}}
"""


@pytest.mark.parametrize("text, fields", [
    ("models:/fruits/7", {"name": "fruits", "version": "7", "alias": None, "run_id": None}),
    ("models:/fruits@champion", {"name": "fruits", "version": None, "alias": "champion"}),
    ("runs:/0123abcdef/model", {"name": None, "run_id": "0123abcdef", "path": "model"}),
    ("runs:/0123abcdef", {"run_id": "0123abcdef", "path": ""}),
])
def test_the_three_uri_forms(text, fields):
    uri = parse(text)
    assert uri is not None and uri.text == text and is_mlflow_uri(text)
    for key, value in fields.items():
        assert getattr(uri, key) == value, key
    assert uri.registry == (fields.get("name") is not None)


@pytest.mark.parametrize("text", ["models:/", "models:/fruits", "models:/fruits/v7", "models:/fruits@", "runs:/not-hex/x", "runs:/"])
def test_malformed_uris_are_not_parsed(text):
    assert parse(text) is None


def test_model_path_may_be_an_mlflow_uri_and_a_malformed_one_names_the_forms(files, write_config):
    cfg = load_config(write_config(VALID.format(model="models:/fruits@champion") + "mlflow: {enabled: true, promote_alias: champion}\n"))
    assert cfg.model.uri == "models:/fruits@champion" and cfg.mlflow.enabled and cfg.mlflow.promote_alias == "champion"
    assert cfg.mlflow.experiment == "gradcam-audit" and cfg.mlflow.required is False
    assert load_config(write_config(VALID.format(model="m.keras"))).model.uri is None
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(VALID.format(model="models:/fruits/seven")))
    assert "model.path" in str(exc.value) and "models:/NAME@ALIAS" in str(exc.value) and "'models:/fruits/seven'" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(VALID.format(model="m.keras") + "mlflow: {tags: [a, b]}\n"))
    assert "mlflow.tags" in str(exc.value) and "a mapping" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(VALID.format(model="m.keras") + "mlflow: {tracking: http://x}\n"))
    assert "did you mean 'tracking_uri'" in str(exc.value)


def test_the_tracking_uri_order(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert tracking_uri("http://config:5000", "http://cli:5000") == "http://cli:5000"
    assert tracking_uri("http://config:5000") == "http://config:5000"
    assert tracking_uri(None) == "http://env:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert tracking_uri(None, "") == f"sqlite:///{tmp_path / 'reports' / 'mlflow.db'}"
    assert artifact_root(f"sqlite:///{tmp_path}/reports/mlflow.db") == (tmp_path / "reports" / "mlartifacts").as_uri()
    assert artifact_root("http://server:5000") is None


def test_params_are_the_resolved_config_flattened_without_brackets():
    params = dict(flatten({"model": {"path": "m.keras", "class_names": "auto"}, "gate": [{"metric": "accuracy", "min": 0.9}],
                           "probes": {"artifacts": ["stamp", "noise"], "overlays": []}, "baseline": None, "flag": True}))
    assert params == {"model.path": "m.keras", "model.class_names": "auto", "gate.0.metric": "accuracy", "gate.0.min": "0.9",
                      "probes.artifacts": "['stamp', 'noise']", "probes.overlays": "[]", "baseline": "null", "flag": "true"}


def test_metrics_are_the_aggregates_per_class_and_the_gate_intervals():
    summary = {
        "aggregates": {"overall": {"accuracy": 0.9, "explanation_kappa": None, "n_samples": 300.0},
                       "per_class": {"red apple": {"accuracy": 0.8}, "pear": {"accuracy": math.nan}}},
        "gate": [{"aggregate": "accuracy", "scope": "overall", "kind": "min", "interval": [0.85, 0.94]},
                 {"aggregate": "accuracy", "scope": "red apple", "kind": "min", "interval": [0.7, 0.88]},
                 {"aggregate": "accuracy", "scope": "overall", "kind": "max_drop", "interval": [-0.1, 0.1]},
                 {"aggregate": "confirmed_shortcuts", "scope": "overall", "kind": "max", "interval": None}],
    }
    assert metrics(summary) == {"accuracy": 0.9, "n_samples": 300.0, "class_red apple_accuracy": 0.8, "accuracy_lo": 0.85,
                                "accuracy_hi": 0.94, "class_red apple_accuracy_lo": 0.7, "class_red apple_accuracy_hi": 0.88}


def test_without_mlflow_installed_its_use_is_exit_2_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` meets where the extra is not installed
    with pytest.raises(AuditError) as exc:
        require_mlflow("model.path models:/fruits@champion")
    assert exc.value.exit_code == 2 and "models:/fruits@champion" in str(exc.value) and INSTALL in str(exc.value)


def test_the_findings_version_tag_lists_the_blockers_ids():
    from pipeline.tracking.runs import blocker_ids, tags

    summary = {"findings": [{"id": "shortcut:a+b:corners", "severity": "blocker"}, {"id": "trust:randomisation:*", "severity": "warning"},
                            {"id": "probe:b:logo@at", "severity": "blocker"}, {"id": "not_evaluated:*:*", "severity": "note"}]}
    assert blocker_ids(summary) == "shortcut:a+b:corners,probe:b:logo@at"
    assert blocker_ids({}) == ""  # an audit from before findings
    prov = {"config_sha256": "c", "model_sha256": "m", "dataset_fingerprint": "d"}
    assert tags({**summary, "verdict": "NOT FIT", "exit_code": 1, "name": "x", "provenance": prov}, "local", {})[
        "gradcam_audit.findings"] == "shortcut:a+b:corners,probe:b:logo@at"


def test_a_registered_keras_2_model_is_its_savedmodel_folder(tmp_path):
    """mlflow.tensorflow / an older mlflow.keras logged a Keras 2 model as a SavedModel folder under data/."""
    from pipeline.tracking.models import keras_file

    model = tmp_path / "m"
    (model / "data" / "model" / "variables").mkdir(parents=True)
    (model / "data" / "model" / "saved_model.pb").write_bytes(b"x")
    (model / "MLmodel").write_text("flavors:\n  tensorflow:\n    saved_model_dir: data\n    model_type: keras\n  python_function: {}\n")
    assert keras_file(model, "models:/old/1") == model / "data" / "model"
    (model / "MLmodel").write_text("flavors:\n  keras:\n    data: data\n    keras_module: tensorflow.keras\n")
    assert keras_file(model, "models:/old/1") == model / "data" / "model"

"""The whole config: :class:`AuditConfig` from a YAML file or a mapping, validated strictly before any heavy work
(unknown keys are errors with a "did you mean", types and ranges checked, paths resolved against the config file).
Each section's dataclass, defaults and validation live in its own module; this one assembles them."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.config.dataset import DEFAULTS as DATASET_DEFAULTS
from pipeline.config.dataset import DatasetConfig, read_dataset
from pipeline.config.engine import DEFAULTS as ENGINE_DEFAULTS
from pipeline.config.engine import EngineConfig, read_engine
from pipeline.config.evidence import DEFAULTS as EVIDENCE_DEFAULTS
from pipeline.config.evidence import EvidenceConfig, read_evidence
from pipeline.config.explain import DEFAULTS as EXPLAIN_DEFAULTS
from pipeline.config.explain import ExplainConfig, read_explain
from pipeline.config.gate import (
    EVIDENCE_AGGREGATES,
    PROBE_AGGREGATES,
    STRATEGY_AGGREGATES,
    GateRule,
    read_gate,
)
from pipeline.config.mlflow import DEFAULTS as MLFLOW_DEFAULTS
from pipeline.config.mlflow import MlflowConfig, read_mlflow
from pipeline.config.model import DEFAULTS as MODEL_DEFAULTS
from pipeline.config.model import ModelConfig, read_model
from pipeline.config.probes import DEFAULTS as PROBES_DEFAULTS
from pipeline.config.probes import ProbesConfig, read_probes
from pipeline.config.reader import MAX_CONFIG_BYTES, NAME_RE, Reader, parse_yaml
from pipeline.config.report import DEFAULTS as REPORT_DEFAULTS
from pipeline.config.report import ReportConfig, read_report
from pipeline.config.scoring import DEFAULTS as SCORING_DEFAULTS
from pipeline.config.scoring import ScoringConfig, read_scoring
from pipeline.config.statistics import DEFAULTS as STATISTICS_DEFAULTS
from pipeline.config.statistics import StatisticsConfig, read_statistics
from pipeline.config.strategies import DEFAULTS as STRATEGIES_DEFAULTS
from pipeline.config.strategies import StrategiesConfig, read_strategies
from pipeline.config.trust import DEFAULTS as TRUST_DEFAULTS
from pipeline.config.trust import TrustConfig, read_trust
from pipeline.errors import ConfigError
from pipeline.records.plain import Json, JsonObject

DEFAULTS: JsonObject = {
    "name": None,  # required: the run's name; the output folder defaults to reports/<name>/
    "seed": 0,  # seeds every sampled subset, clustering and bootstrap: the same seed gives the same numbers
    "baseline": None,  # a previous audit's summary.json, or {path: ..., require_same_dataset: false}
    "model": MODEL_DEFAULTS,
    "dataset": DATASET_DEFAULTS,
    "explain": EXPLAIN_DEFAULTS,
    "evidence": EVIDENCE_DEFAULTS,
    "trust": TRUST_DEFAULTS,
    "scoring": SCORING_DEFAULTS,
    "engine": ENGINE_DEFAULTS,
    "strategies": STRATEGIES_DEFAULTS,
    "probes": PROBES_DEFAULTS,
    "statistics": STATISTICS_DEFAULTS,
    "mlflow": MLFLOW_DEFAULTS,
    "gate": None,  # required, a non-empty list of rules (the gate section below)
    "report": REPORT_DEFAULTS,
}
"""Every key the config accepts, with its default (``None`` under a required key), assembled from the sections' modules."""

REQUIRED = {"name", "model.path", "dataset.format", "dataset.annotations", "gate"}  # and dataset.images, except for yolo


@dataclass(frozen=True)
class AuditConfig:
    name: str
    seed: int
    model: ModelConfig
    dataset: DatasetConfig
    explain: ExplainConfig
    scoring: ScoringConfig
    evidence: EvidenceConfig
    trust: TrustConfig
    engine: EngineConfig
    strategies: StrategiesConfig
    statistics: StatisticsConfig
    gate: tuple[GateRule, ...]
    report: ReportConfig
    baseline: Path | None  # a previous audit's summary.json
    baseline_require_same_dataset: bool  # a baseline on another evaluation set is exit 2 instead of a warning
    source: Path  # the config file
    sha256: str  # of the config file's bytes
    resolved: JsonObject  # the config with defaults filled in (echoed in reports)
    text: str = ""  # the config as the user wrote it (the file's text; a mapping as YAML)
    probes: ProbesConfig = ProbesConfig()
    mlflow: MlflowConfig = MlflowConfig()


def read_baseline(r: Reader, raw: object) -> tuple[Path | None, bool]:
    """``baseline: PATH`` or ``baseline: {path: PATH, require_same_dataset: BOOL}``."""
    if raw is None:
        return None, False
    if isinstance(raw, dict):
        b = r.mapping(raw, "baseline", {"path": None, "require_same_dataset": False})
        path = None if b["path"] is None else r.path(b["path"], "baseline.path", kind="file")
        return path, r.boolean(b["require_same_dataset"], "baseline.require_same_dataset")
    return r.path(raw, "baseline", kind="file"), False


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate a config file. Raises ConfigError with a message naming file and key."""
    try:
        source = Path(path).expanduser().resolve()
    except RuntimeError:  # "~name" for a user this machine does not have
        raise ConfigError(f"{path}: expected a YAML config file, found a ~ path naming no user of this machine") from None
    if not source.is_file():
        raise ConfigError(f"{path}: expected a YAML config file, found {'a folder' if source.is_dir() else 'nothing there'}")
    if source.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: expected a config of at most {MAX_CONFIG_BYTES // 1024} KB, found {source.stat().st_size // 1024} KB")
    data = source.read_bytes()
    return build(parse_yaml(source, data), source, hashlib.sha256(data).hexdigest(), data.decode("utf-8", errors="replace"))


def config_from_dict(doc: dict, *, base: str | Path | None = None) -> AuditConfig:
    """A config given as a mapping (the Python API): validated exactly as a file is; relative paths
    resolve against ``base`` (default the working directory); messages name ``<base>/<config dict>``."""
    import json

    if not isinstance(doc, dict):
        raise ConfigError(f"config: expected a mapping of keys (or a YAML file path), found {type(doc).__name__}")
    def plain(value: object) -> Json:  # Path objects are written as text, as in a YAML file
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return str(value) if isinstance(value, Path) else value

    doc = plain(doc)
    source = Path(base or Path.cwd()).expanduser().resolve() / "<config dict>"
    text = json.dumps(doc, sort_keys=True, default=str)
    return build(doc, source, hashlib.sha256(text.encode()).hexdigest(), yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


def build(doc: object, source: Path, sha256: str, text: str) -> AuditConfig:
    r = Reader(source, REQUIRED)
    top = r.mapping(doc, "", DEFAULTS)
    name = r.text(top["name"], "name")
    if not NAME_RE.match(name):
        raise r.fail("name", "letters, digits, '.', '_' or '-' (it names the output folder)", name)
    dataset = read_dataset(r, top["dataset"])
    baseline, require_same = read_baseline(r, top["baseline"])
    resolved = {k: copy.deepcopy(v) for k, v in top.items()}
    for k, v in DEFAULTS.items():
        if isinstance(v, dict) and isinstance(top.get(k), dict):
            resolved[k] = {**v, **top[k]}
    evidence = read_evidence(r, top["evidence"])
    strategies = read_strategies(r, top["strategies"])
    probes = read_probes(r, top["probes"])
    rules = read_gate(r, top["gate"])
    for rule in rules:
        off = ("evidence.interventions is false" if not evidence.interventions and rule.aggregate in EVIDENCE_AGGREGATES
               else "strategies.enabled is false" if not strategies.enabled and rule.aggregate in STRATEGY_AGGREGATES
               else "probes.enabled is false" if not probes.enabled and rule.aggregate in PROBE_AGGREGATES
               else "probes.background_swap is false" if not probes.background_swap and rule.aggregate == "background_gap"
               else "probes.properties is empty" if not probes.properties and rule.aggregate == "properties_fragile" else "")
        if off:
            raise r.fail(f"gate[{rule.index}].metric", f"an aggregate this run computes ({off})", rule.metric)
    return AuditConfig(
        name=name,
        seed=r.integer(top["seed"], "seed", minimum=0),
        model=read_model(r, top["model"]),
        dataset=dataset,
        explain=read_explain(r, top["explain"]),
        scoring=read_scoring(r, top["scoring"]),
        evidence=evidence,
        trust=read_trust(r, top["trust"]),
        engine=read_engine(r, top["engine"]),
        strategies=strategies,
        probes=probes,
        mlflow=read_mlflow(r, top["mlflow"]),
        statistics=read_statistics(r, top["statistics"]),
        gate=rules,
        report=read_report(r, top["report"]),
        baseline=baseline,
        baseline_require_same_dataset=require_same,
        source=source,
        sha256=sha256,
        text=text,
        resolved=resolved,
    )


def resolved_yaml(cfg: AuditConfig) -> str:
    """The config with every default filled in, as YAML (echoed in the report)."""
    return yaml.safe_dump(cfg.resolved, sort_keys=False, default_flow_style=False, width=100)

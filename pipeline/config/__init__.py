"""YAML -> frozen dataclasses, with strict validation (DESIGN §3).

One module per section (its dataclass, defaults and validation: :mod:`.model`, :mod:`.dataset`, :mod:`.explain`,
:mod:`.scoring`, :mod:`.evidence`, :mod:`.trust`, :mod:`.statistics`, :mod:`.strategies`, :mod:`.probes`,
:mod:`.engine`, :mod:`.report`, :mod:`.mlflow`, :mod:`.gate`), the strict reader (:mod:`.reader`, the only
``yaml`` import besides the top level's echo) and the whole config (:mod:`.audit`). The public names are here.
"""

from pipeline.config.audit import (
    DEFAULTS,
    REQUIRED,
    AuditConfig,
    config_from_dict,
    load_config,
    resolved_yaml,
)
from pipeline.config.dataset import DATASET_FORMATS, REGIONS, DatasetConfig
from pipeline.config.engine import ENGINES, EngineConfig
from pipeline.config.evidence import FILLS, REMOVAL_REGIONS, EvidenceConfig
from pipeline.config.explain import CAM_METHODS, TARGETS, ExplainConfig
from pipeline.config.gate import (
    AGGREGATES,
    BOUNDS,
    EVIDENCE_AGGREGATES,
    FLAGS,
    NO_INTERVAL,
    PROBE_AGGREGATES,
    RULE_KINDS,
    STRATEGY_AGGREGATES,
    GateRule,
)
from pipeline.config.mlflow import MlflowConfig
from pipeline.config.model import (
    GEOMETRY_KEYS,
    PREPROCESSING,
    RESIZE_METHODS,
    RESIZE_MODES,
    ModelConfig,
)
from pipeline.config.probes import (
    PROBE_KINDS,
    PROBE_PLACES,
    PROPERTY_KINDS,
    OverlayConfig,
    ProbesConfig,
)
from pipeline.config.reader import parse_yaml
from pipeline.config.report import ReportConfig
from pipeline.config.scoring import FOCUS_METRICS, ScoringConfig
from pipeline.config.statistics import StatisticsConfig
from pipeline.config.strategies import StrategiesConfig
from pipeline.config.trust import TrustConfig

__all__ = [
    "AGGREGATES", "BOUNDS", "CAM_METHODS", "DATASET_FORMATS", "DEFAULTS", "ENGINES", "EVIDENCE_AGGREGATES", "FILLS", "FLAGS",
    "FOCUS_METRICS", "GEOMETRY_KEYS", "NO_INTERVAL", "PREPROCESSING", "PROBE_AGGREGATES", "PROBE_KINDS", "PROBE_PLACES", "PROPERTY_KINDS", "REGIONS",
    "REMOVAL_REGIONS", "REQUIRED", "RESIZE_METHODS", "RESIZE_MODES", "RULE_KINDS", "STRATEGY_AGGREGATES", "TARGETS", "AuditConfig",
    "DatasetConfig", "EngineConfig", "EvidenceConfig", "ExplainConfig", "GateRule", "MlflowConfig", "ModelConfig", "OverlayConfig",
    "ProbesConfig", "ReportConfig", "ScoringConfig", "StatisticsConfig", "StrategiesConfig", "TrustConfig", "config_from_dict",
    "load_config", "parse_yaml", "resolved_yaml",
]

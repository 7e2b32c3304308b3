"""YAML config -> frozen dataclasses, with strict validation.

This module is the one place where defaults live (``DEFAULTS``) and the only module that imports
``yaml``. Every error names the config file and the key path (``gate[2].min``), what was expected
and what was found. Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from pipeline.errors import ConfigError

FLAGS = ("ok", "right_for_wrong_reason", "confused_on_object", "distracted", "no_signal", "skipped")
"""Per-sample flags, in the order reports list them."""

AGGREGATES = (
    "n_samples",
    "n_scored",
    "accuracy",
    "balanced_accuracy",  # mean per-class recall
    "majority_accuracy",  # the share of the most common label: what a constant answer scores
    "mean_energy_in_box",
    "median_energy_in_box",
    "mean_focus_score",
    "mean_energy_lift",
    "pointing_accuracy",
    *(f"{flag}_rate" for flag in FLAGS),
    *("mean_object_dependence", "still_right_without_object_rate", "object_only_accuracy", "explanation_agreement",
      "explanation_kappa", "on_target_confirmed_rate", "off_target_confirmed_rate"),
)
"""Aggregate names a gate rule may use; ``class_<name>`` applies the rule to every class."""

STRATEGY_AGGREGATES = ("confirmed_shortcuts", "max_hotspot_dependence", "max_transplant_effect")
"""Aggregates of the strategies stage (DESIGN §10), gate-able like AGGREGATES (also ``class_``)."""

PROBE_AGGREGATES = ("probes_fooled", "max_probe_effect", "background_gap")
"""Aggregates of the probes stage (DESIGN §11), gate-able like AGGREGATES (also ``class_``)."""
PROBE_KINDS = ("watermark", "stamp", "noise", "frame")  # kept in step with pipeline.probes.BUILTIN (unit test)
PROBE_PLACES = ("hot_spots", "corners", "centre")

FOCUS_METRICS = ("focus_score", "energy_in_box", "energy_lift")
PREPROCESSING = ("none", "scale_0_1", "scale_-1_1", "imagenet_caffe", "imagenet_torch", "model")
RESIZE_METHODS = ("bilinear", "nearest", "area")
DATASET_FORMATS = ("coco", "voc", "csv", "yolo")
RESIZE_MODES = ("stretch", "crop", "pad")  # kept in step with pipeline.geometry.RESIZE_MODES (unit test)
GEOMETRY_KEYS = ("resize", "resize_mode", "crop_fraction", "pad_value")
"""Keys that ``preprocessing: model`` takes from the saved ImageConverter instead."""
TARGETS = ("predicted", "true")
REGIONS = ("box", "mask")
RULE_KINDS = ("min", "max", "max_drop", "max_rise")
CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam")  # kept in step with pipeline.cams.METHODS (unit test)
EVIDENCE_AGGREGATES = AGGREGATES[-7:]
"""Aggregates that need ``evidence.interventions`` (DESIGN §6)."""
FILLS = ("mean", "gray")
REMOVAL_REGIONS = ("box", "mask", "dilated")
BOUNDS = ("point", "lower", "upper")
NO_INTERVAL = ("n_samples", "n_scored", "explanation_kappa")
"""Aggregates without an interval (counts, κ), besides the strategies' (they carry their own effects' intervals)."""

DEFAULTS: dict[str, Any] = {
    "name": None,  # required
    "seed": 0,
    "baseline": None,  # a previous audit's summary.json, or {path: ..., require_same_dataset: false}
    "model": {
        "path": None,  # required
        "target_layer": "auto",
        "preprocessing": "scale_0_1",
        "input_size": "auto",
        "resize": "bilinear",
        "resize_mode": "stretch",  # stretch (plain resize) | crop (shorter side, centre crop) | pad (letterbox)
        "crop_fraction": 0.875,  # crop: the centre crop keeps this share of the shorter side (224 of 256)
        "pad_value": 0,  # pad: the letterbox's fill, raw 0-255 before preprocessing
        "class_names": "auto",  # auto | imagenet | a list in model-output order
        "multi_label": "auto",  # auto = true when the output activation is sigmoid
        "threshold": 0.5,  # multi-label: a class is predicted when its probability >= threshold
        "token_grid": "auto",  # token (B, T, C) target layers: [h, w]; auto = the input's patch grid (DESIGN §4)
        "special_tokens": "auto",  # leading tokens dropped before the reshape (class token, registers)
        "check_preprocessing": True,  # compare the preprocessing with the alternatives on 64 images before Grad-CAM
    },
    "dataset": {
        "format": None,  # required
        "annotations": None,  # required
        "images": None,  # required
        "limit": None,
        "label_map": None,  # {dataset label: [model class names, WordNet ids or "i-j" index ranges]}
        "region": "box",  # box | mask (COCO segmentation polygons / RLE, YOLO-seg polygons)
        "split": "val",  # yolo: the data.yaml split to audit (train | val | test)
        "ignore_categories": [],  # coco: category names left out of class_names auto (Roboflow's root category is detected)
    },
    "explain": {
        "method": "gradcam",
        "target": "predicted",
        "batch_size": 32,
        "jit_compile": False,  # XLA; scores stay within 1e-5 of the default (benchmarks/RESULTS.md)
        "compare_method": None,  # a second CAM method from the same forward/backward pass
    },
    "evidence": {
        "interventions": True,  # object-removed / object-only forward passes (DESIGN §6)
        "fill": "mean",  # mean (of the kept pixels) | gray (127.5)
        "dependence_min": 0.5,  # object_dependence >= this: the prediction depends on the object
        "max_samples": None,  # interventions on a seeded subset of this many samples
        "removal_region": "box",  # box (each object's bounding box: no shape leaks) | mask | dilated (mask grown by dilation_px)
        "dilation_px": "auto",  # dilated: pixels at input resolution; auto = one CAM cell
        "max_region_fraction": 0.5,  # a region covering at least this share of the input is not judged by removal
    },
    "trust": {
        "min_confirmed": 0.5,  # heatmap_confirmation fails when on_target_confirmed_rate's upper bound is below this
        "min_claims": 20,  # fewer on-target samples with interventions: heatmap_confirmation is not evaluated
        "randomisation": True,  # cascading model-randomisation check
        "randomisation_samples": 64,
        "randomisation_draws": 5,  # independent seeded re-initialisations; the statistic pools them
        "max_randomised_similarity": 0.5,  # median rank correlation at or above this -> INCONCLUSIVE
        "max_no_signal": 0.5,  # heatmap_signal fails when more than this share of the scored samples have an all-zero map
        "max_one_class": 0.95,  # prediction_spread fails when one class takes more of the answers (labels of 2+ classes)
    },
    "scoring": {"focus_metric": "focus_score", "focus_min": 0.2},
    "engine": {
        "kind": "local",  # local (one process, tf.data) | ray (Ray Data actor pool; pip install '.[ray]')
        "address": None,  # ray: null = start a local cluster; "auto" = join RAY_ADDRESS / a running one; "host:port"
        "workers": 1,  # ray: actors
        "cpus_per_worker": 1,  # ray: CPUs per actor (fractions allowed); TensorFlow's thread pools follow it
        "gpus_per_worker": 0,
    },
    "strategies": {  # DESIGN §10: where the model looks instead, and a causal test of it
        "enabled": True,
        "min_samples": 20,  # labels with fewer explained samples are one strategy (no clustering)
        "min_test_samples": 10,  # below this a hot spot is not tested; below it a label gets an atlas only
        "max_strategies": 6,
        "neighbours": 10,  # k of the kNN graph
        "hotspot_threshold": 0.5,  # hot-spot cells: off-object map >= this fraction of its maximum
        "min_off_object": 0.7,  # a hot spot is tested when at least this share of its energy is off the objects
        "max_object_overlap": 0.25,  # tested samples / control positions: region covers at most this share of the rectangle
        "test_samples": 64,  # per strategy, seeded; also the number of transplant recipients
        "controls": 4,  # random placements per tested sample
        "min_effect": 0.2,  # a confirmed shortcut needs an effect whose interval's lower bound reaches this
        "interval": 0.90,  # two-sided bootstrap interval (1,000 resamples over samples, seeded)
    },
    "probes": {  # DESIGN §11: what would fool it that the evaluation set does not show
        "enabled": True,
        "samples": 64,  # seeded, correctly classified scored samples, stratified by label
        "artifacts": list(PROBE_KINDS),  # built-in kinds; [] for none
        "overlays": [],  # user images: [{name: vendor-logo, path: logos/vendor.png, size: 0.25, at: [0.56, 0.80]}]
        "places": list(PROBE_PLACES),  # hot_spots = every strategy's hot spot
        "margin": 0.03,  # corners are inset by this share of each side
        "size": 0.4,  # an artifact's width as a share of the input width (height from its aspect)
        "background_swap": True,  # the object on a same-label and an other-label background
        "min_effect": 0.2,  # "fools" when an effect's interval lower bound reaches this
    },
    "statistics": {"interval": 0.90, "resamples": 1000, "min_samples": 30},  # intervals: Wilson for rates, bootstrap else
    "mlflow": {  # one MLflow run per audit, the registry's version tagged (pip install '.[mlflow]'; --mlflow [URI] turns it on)
        "enabled": False,
        "tracking_uri": None,  # null: MLFLOW_TRACKING_URI, else sqlite:///reports/mlflow.db under the working directory
        "experiment": "gradcam-audit",
        "run_name": None,  # null: the audit's name
        "tags": {},  # extra run tags
        "required": False,  # true: a tracking server that fails is exit 2; false: one warning, the verdict stands
        "promote_alias": None,  # e.g. champion: set on the audited registry version, only on FIT TO DEPLOY
    },
    "gate": None,  # required, non-empty list
    "report": {"output_dir": "auto", "gallery_size": 48},
}
"""Every key the config accepts, with its default (``None`` under a required key)."""

REQUIRED = {"name", "model.path", "dataset.format", "dataset.annotations", "gate"}  # and dataset.images, except for yolo


@dataclass(frozen=True)
class MlflowConfig:
    enabled: bool = False
    tracking_uri: str | None = None  # None: --mlflow URI, MLFLOW_TRACKING_URI, else the embedded sqlite default
    experiment: str = "gradcam-audit"
    run_name: str | None = None  # None: the audit's name
    tags: tuple[tuple[str, str], ...] = ()
    required: bool = False
    promote_alias: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    path: Path  # the local .keras / .h5 file or Keras 2 SavedModel folder (MLflow URI: where it was downloaded; Keras 2: its conversion)
    target_layer: str  # "auto", a layer name, or "outer/inner" for nested models
    preprocessing: str  # one of PREPROCESSING or "keras.applications.<module>.preprocess_input"
    input_size: tuple[int, int] | None  # (H, W); None = from the model's input shape
    resize: str
    class_names: tuple[str, ...] | str | None  # model-output order; "imagenet"; None = from the dataset
    multi_label: bool | None = None  # None = auto (sigmoid output)
    threshold: float = 0.5
    token_grid: tuple[int, int] | None = None  # None = auto
    special_tokens: int | None = None  # None = auto
    resize_mode: str = "stretch"  # "stretch" | "crop" | "pad" (pipeline.geometry)
    crop_fraction: float = 0.875
    pad_value: float = 0.0
    uri: str | None = None  # models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH (pipeline.tracking)
    check_preprocessing: bool = True  # pipeline.model.preprocessing before any Grad-CAM


@dataclass(frozen=True)
class DatasetConfig:
    format: str
    annotations: Path  # COCO/CSV: a file; VOC: a folder of XML files
    images: Path  # folder that image paths in the annotations are relative to
    limit: int | None
    label_map: tuple[tuple[str, tuple[str | int, ...]], ...] | None = None  # (label, entries) in config order
    region: str = "box"  # "box" | "mask"
    split: str = "val"  # yolo: the data.yaml split
    ignore_categories: tuple[str, ...] = ()  # coco: categories left out of class_names auto


@dataclass(frozen=True)
class ExplainConfig:
    method: str
    target: str  # "predicted" | "true"
    batch_size: int
    jit_compile: bool
    compare_method: str | None = None


@dataclass(frozen=True)
class EvidenceConfig:
    interventions: bool
    fill: str  # "mean" | "gray"
    dependence_min: float
    max_samples: int | None
    removal_region: str = "box"  # "box" | "mask" | "dilated"
    dilation_px: int | None = None  # None = one CAM cell at input resolution
    max_region_fraction: float = 0.5


@dataclass(frozen=True)
class StatisticsConfig:
    interval: float = 0.90  # two-sided level of every interval
    resamples: int = 1000  # bootstrap resamples
    min_samples: int = 30  # a gate rule on fewer samples is reported with a warning


@dataclass(frozen=True)
class TrustConfig:
    min_confirmed: float
    min_claims: int
    randomisation: bool
    randomisation_samples: int
    randomisation_draws: int
    max_randomised_similarity: float
    max_no_signal: float = 0.5
    max_one_class: float = 0.95


@dataclass(frozen=True)
class StrategiesConfig:
    """DESIGN §10; every share is a fraction in [0, 1]."""

    enabled: bool = True
    min_samples: int = 20
    min_test_samples: int = 10
    max_strategies: int = 6
    neighbours: int = 10
    hotspot_threshold: float = 0.5
    min_off_object: float = 0.7
    max_object_overlap: float = 0.25
    test_samples: int = 64
    controls: int = 4
    min_effect: float = 0.2
    interval: float = 0.90


@dataclass(frozen=True)
class OverlayConfig:
    """A user's artifact: an RGBA image ``size`` of the input width wide (aspect kept); ``at`` its
    top-left in relative (x, y), then placed only there."""

    name: str
    path: Path
    size: float = 0.25
    at: tuple[float, float] | None = None


@dataclass(frozen=True)
class ProbesConfig:
    """DESIGN §11; shares are fractions in [0, 1]."""

    enabled: bool = True
    samples: int = 64
    artifacts: tuple[str, ...] = PROBE_KINDS
    overlays: tuple[OverlayConfig, ...] = ()
    places: tuple[str, ...] = PROBE_PLACES
    margin: float = 0.03
    size: float = 0.4
    background_swap: bool = True
    min_effect: float = 0.2


@dataclass(frozen=True)
class ScoringConfig:
    focus_metric: str
    focus_min: float


@dataclass(frozen=True)
class GateRule:
    metric: str  # an AGGREGATES name, or "class_" + one
    kind: str  # "min" | "max" | "max_drop" | "max_rise"
    threshold: float
    index: int  # position in the config's gate list, for messages ("gate[2]")
    bound: str = "point"  # "point" | "lower" (min) | "upper" (max, max_drop, max_rise): which value is compared

    @property
    def per_class(self) -> bool:
        return self.metric.startswith("class_")

    @property
    def aggregate(self) -> str:
        """The aggregate the rule reads (without the ``class_`` prefix)."""
        return self.metric[len("class_"):] if self.per_class else self.metric

    @property
    def needs_baseline(self) -> bool:
        return self.kind in ("max_drop", "max_rise")

    def describe(self) -> str:
        op = {"min": ">=", "max": "<=", "max_drop": "drop <=", "max_rise": "rise <="}[self.kind]
        return f"{self.metric} {op} {self.threshold:g}" + (f" ({self.bound} bound)" if self.bound != "point" else "")


@dataclass(frozen=True)
class ReportConfig:
    output_dir: Path | None  # None = reports/<name>/ under the working directory
    gallery_size: int


@dataclass(frozen=True)
class EngineConfig:
    kind: str  # "local" | "ray"
    address: str | None  # ray: None starts a local cluster; "auto"; "host:port"
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float


ENGINES = ("local", "ray")
_ADDRESS_RE = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.-]+:\d{1,5})$")


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
    resolved: dict[str, Any]  # the config with defaults filled in (echoed in reports)
    text: str = ""  # the config as the user wrote it (the file's text; a mapping as YAML)
    probes: ProbesConfig = ProbesConfig()
    mlflow: MlflowConfig = MlflowConfig()


# --------------------------------------------------------------------------- helpers


MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 10_000
"""A config larger than this, counted with every alias expanded, is refused before it is built."""


def _expanded_nodes(root: yaml.Node | None) -> int:
    """How many nodes the document has once every alias is expanded, computed without expanding
    (each distinct node's expanded size is memoised; aliases share node objects)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a recursive alias counts once; SafeLoader builds it as a cycle, not a blow-up
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        sizes[key] = min(total, MAX_CONFIG_NODES + 1)
        return sizes[key]

    return 0 if root is None else size(root)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[arg-type]
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (the first is at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class _Reader:
    """Validates one parsed YAML document; every error names the file and key path."""

    def __init__(self, source: Path):
        self.source = source
        self.base = source.parent

    def fail(self, key: str, expected: str, found: Any) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: expected {expected}, found {_show(found)}")

    def mapping(self, value: Any, key: str, allowed: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key or "top level", "a mapping of keys", value)
        for name in value:
            if name not in allowed:
                where = f"{key}.{_key_text(name)}" if key else _key_text(name)
                hint = difflib.get_close_matches(str(name), list(allowed), n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise ConfigError(
                    f"{self.source}: {where}: unknown key{extra}; "
                    f"allowed keys{' under ' + key if key else ''}: {', '.join(allowed)}"
                )
        merged = copy.deepcopy(allowed)
        merged.update(value)
        for name, val in merged.items():
            full = f"{key}.{name}" if key else name
            if val is None and full in REQUIRED:
                raise self.fail(full, "a value (this key is required)", None)
        return merged

    def choice(self, value: Any, key: str, options: tuple[str, ...]) -> str:
        if value not in options:
            hint = difflib.get_close_matches(str(value), options, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise self.fail(key, f"one of {', '.join(options)}{extra}", value)
        return value

    def integer(self, value: Any, key: str, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"an integer >= {minimum}", value)
        if value < minimum:
            raise self.fail(key, f"an integer >= {minimum}", value)
        return value

    def number(self, value: Any, key: str, *, low: float = -math.inf, high: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, _range_text(low, high), value)
        if not low <= value <= high:
            raise self.fail(key, _range_text(low, high), value)
        return float(value)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string", value)
        return value

    def path(self, value: Any, key: str, *, kind: str, what: str | None = None) -> Path:
        """Resolve against the config's folder; ``kind`` is "file", "dir" or "any" (must exist); ``what`` the
        expected thing in the message (default: from ``kind``)."""
        text = self.text(value, key)
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # "~name" for a user this machine does not have
            raise self.fail(key, "a path (a leading ~ must name an existing user's home)", text) from None
        path = path if path.is_absolute() else (self.base / path)
        path = path.resolve()
        checks: dict[str, Callable[[Path], bool]] = {"file": Path.is_file, "dir": Path.is_dir, "any": Path.exists}
        if not checks[kind](path):
            what = what or {"file": "an existing file", "dir": "an existing folder", "any": "an existing path"}[kind]
            found = "a folder" if path.is_dir() else "a file" if path.exists() else "nothing there"
            raise ConfigError(f"{self.source}: {key}: expected {what} at {path}, found {found}")
        return path


def _key_text(name: Any) -> str:
    """A mapping key as it appears in a message: as written when it is plain printable text,
    otherwise quoted and escaped (a key with a newline must not break the one-line message)."""
    text = str(name)
    return text if isinstance(name, str) and text.isprintable() and 0 < len(text) <= 60 else _short(name)


def _short(value: Any, limit: int = 60) -> str:
    """A bounded rendering: reprlib caps the work (never renders the whole value, then cuts)."""
    import reprlib

    r = reprlib.Repr()
    r.maxlist = r.maxdict = 4
    r.maxstring = r.maxother = limit
    r.maxlevel = 2
    return r.repr(value)


class _Raw(str):
    """A description of what was found, shown as is (not quoted like a YAML value)."""


def _show(value: Any) -> str:
    if isinstance(value, _Raw):
        return str(value)
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return repr(value) if len(value) <= 200 else _short(value, 200)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list {_short(value)}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return _short(value)


def _range_text(low: float, high: float) -> str:
    if math.isinf(low) and math.isinf(high):
        return "a number"
    if math.isinf(high):
        return f"a number >= {low:g}"
    if math.isinf(low):
        return f"a number <= {high:g}"
    return f"a number between {low:g} and {high:g}"


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_KERAS_PREPROCESS_RE = re.compile(r"^keras\.applications\.[a-z0-9_]+\.preprocess_input$")


# --------------------------------------------------------------------------- sections


def _model_path(r: _Reader, value: Any) -> tuple[Path, str | None]:
    """(local file or SavedModel folder, None) or, for an MLflow URI, (a placeholder resolved before loading, the URI).

    A file is recognised by its content when it is loaded (pipeline.model.source), whatever its suffix."""
    from pipeline.tracking.uris import FORMS, is_mlflow_uri, parse

    if is_mlflow_uri(value):
        if parse(value) is None:
            raise r.fail("model.path", f"a model file (.keras, .h5, .hdf5), a Keras 2 SavedModel folder, or {FORMS}", value)
        return Path(value), value
    path = r.path(value, "model.path", kind="any", what="an existing model file (.keras, .h5, .hdf5) or Keras 2 SavedModel folder")
    if path.is_dir():  # a Keras 2 SavedModel folder (DESIGN §14)
        if not (path / "saved_model.pb").is_file():
            raise r.fail("model.path", "a model file (.keras, .h5, .hdf5), or a Keras 2 SavedModel folder (with saved_model.pb)",
                         _Raw(f"a folder without saved_model.pb ({path})"))
        return path, None
    if path.name == "saved_model.pb":
        return path.parent, None
    return path, None


def _model(r: _Reader, raw: Any) -> ModelConfig:
    m = r.mapping(raw, "model", DEFAULTS["model"])
    path, uri = _model_path(r, m["path"])
    pre = m["preprocessing"]
    if not (isinstance(pre, str) and (pre in PREPROCESSING or _KERAS_PREPROCESS_RE.match(pre))):
        raise r.fail(
            "model.preprocessing",
            f"one of {', '.join(PREPROCESSING)} or keras.applications.<module>.preprocess_input",
            pre,
        )
    size = m["input_size"]
    if size == "auto":
        input_size = None
    elif (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in size)
    ):
        input_size = (size[0], size[1])
    else:
        raise r.fail("model.input_size", "auto or [H, W] with integers >= 8", size)
    names = m["class_names"]
    if names == "auto":
        class_names = None
    elif names == "imagenet":
        class_names = "imagenet"
    elif isinstance(names, list) and names and all(isinstance(n, str) and n for n in names):
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise r.fail("model.class_names", "distinct class names", _Raw(f"duplicates {dupes}"))
        class_names = tuple(names)
    else:
        raise r.fail("model.class_names", "auto, imagenet or a non-empty list of class-name strings", names)
    multi = m["multi_label"]
    grid = m["token_grid"]
    if not (grid == "auto" or (isinstance(grid, list) and len(grid) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in grid))):
        raise r.fail("model.token_grid", "auto or [h, w] with integers >= 1", grid)
    special = m["special_tokens"]
    if pre == "model":
        given = [k for k in GEOMETRY_KEYS if isinstance(raw, dict) and k in raw]
        if given:
            raise r.fail(f"model.{given[0]}", "no value with preprocessing: model (the saved ImageConverter's resize, crop/pad rule "
                         "and interpolation are used)", m[given[0]])
    return ModelConfig(
        path=path,
        target_layer=r.text(m["target_layer"], "model.target_layer"),
        preprocessing=pre,
        input_size=input_size,
        resize=r.choice(m["resize"], "model.resize", RESIZE_METHODS),
        class_names=class_names,
        multi_label=None if multi == "auto" else r.boolean(multi, "model.multi_label"),
        threshold=r.number(m["threshold"], "model.threshold", low=0.0, high=1.0),
        token_grid=None if grid == "auto" else (grid[0], grid[1]),
        special_tokens=None if special == "auto" else r.integer(special, "model.special_tokens", minimum=0),
        resize_mode=r.choice(m["resize_mode"], "model.resize_mode", RESIZE_MODES),
        crop_fraction=r.number(m["crop_fraction"], "model.crop_fraction", low=0.05, high=1.0),
        pad_value=r.number(m["pad_value"], "model.pad_value", low=0.0, high=255.0),
        check_preprocessing=r.boolean(m["check_preprocessing"], "model.check_preprocessing"),
        uri=uri,
    )


def _label_map(r: _Reader, raw: Any) -> tuple[tuple[str, tuple[str | int, ...]], ...] | None:
    """``{label: [entries]}`` -> ordered pairs; entries are checked against the model at prepare time."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise r.fail("dataset.label_map", "a mapping {dataset label: [model classes]}", raw)
    pairs = []
    for label, entries in raw.items():
        key = f"dataset.label_map.{_key_text(label)}"
        if not isinstance(label, str) or not label:
            raise r.fail(key, "a dataset label (a non-empty string) as the key", label)
        if isinstance(entries, (str, int)) and not isinstance(entries, bool):
            entries = [entries]
        if not isinstance(entries, list) or not entries:
            raise r.fail(key, "a non-empty list of model class names, WordNet ids or \"i-j\" index ranges", entries)
        for k, e in enumerate(entries):
            if isinstance(e, bool) or not isinstance(e, (str, int)) or (isinstance(e, str) and not e.strip()):
                raise r.fail(f"{key}[{k}]", "a model class name, a WordNet id, an index or an \"i-j\" index range", e)
        pairs.append((label, tuple(entries)))
    return tuple(pairs)


def _dataset(r: _Reader, raw: Any) -> DatasetConfig:
    d = r.mapping(raw, "dataset", DEFAULTS["dataset"])
    fmt = r.choice(d["format"], "dataset.format", DATASET_FORMATS)
    if d["region"] == "mask" and fmt not in ("coco", "yolo"):
        raise r.fail("dataset.region", "box for a VOC or CSV dataset (mask needs COCO segmentation or YOLO-seg polygons)", "mask")
    ignore = d["ignore_categories"]
    if not (isinstance(ignore, list) and all(isinstance(v, str) and v for v in ignore)):
        raise r.fail("dataset.ignore_categories", "a list of COCO category names", ignore)
    if ignore and fmt != "coco":
        raise r.fail("dataset.ignore_categories", "an empty list for a non-COCO dataset (it names COCO categories)", ignore)
    images = d["images"]
    if fmt == "yolo":
        if images is not None:
            raise r.fail("dataset.images", "no value for a YOLO dataset (data.yaml's path and split say where the images are)", images)
        images = str(Path(r.text(d["annotations"], "dataset.annotations")).parent)  # unused: the loader resolves the images
    elif images is None:
        raise r.fail("dataset.images", "a value (this key is required)", None)
    return DatasetConfig(
        format=fmt,
        annotations=r.path(d["annotations"], "dataset.annotations", kind="dir" if fmt == "voc" else "file"),
        images=r.path(images, "dataset.images", kind="dir"),
        limit=None if d["limit"] is None else r.integer(d["limit"], "dataset.limit", minimum=1),
        label_map=_label_map(r, d["label_map"]),
        region=r.choice(d["region"], "dataset.region", REGIONS),
        split=r.choice(d["split"], "dataset.split", ("train", "val", "test")),
        ignore_categories=tuple(ignore),
    )


def _explain(r: _Reader, raw: Any) -> ExplainConfig:
    e = r.mapping(raw, "explain", DEFAULTS["explain"])
    return ExplainConfig(
        method=r.choice(e["method"], "explain.method", CAM_METHODS),
        # YAML reads an unquoted `target: true` as a boolean; the design spells the option `true`.
        target=r.choice("true" if e["target"] is True else e["target"], "explain.target", TARGETS),
        batch_size=r.integer(e["batch_size"], "explain.batch_size", minimum=1),
        jit_compile=r.boolean(e["jit_compile"], "explain.jit_compile"),
        compare_method=None if e["compare_method"] is None else r.choice(e["compare_method"], "explain.compare_method", CAM_METHODS),
    )


def _evidence(r: _Reader, raw: Any) -> EvidenceConfig:
    e = r.mapping(raw, "evidence", DEFAULTS["evidence"])
    return EvidenceConfig(
        interventions=r.boolean(e["interventions"], "evidence.interventions"),
        fill=r.choice(e["fill"], "evidence.fill", FILLS),
        dependence_min=r.number(e["dependence_min"], "evidence.dependence_min", low=-1.0, high=1.0),
        max_samples=None if e["max_samples"] is None else r.integer(e["max_samples"], "evidence.max_samples", minimum=1),
        removal_region=r.choice(e["removal_region"], "evidence.removal_region", REMOVAL_REGIONS),
        dilation_px=None if e["dilation_px"] == "auto" else r.integer(e["dilation_px"], "evidence.dilation_px", minimum=0),
        max_region_fraction=r.number(e["max_region_fraction"], "evidence.max_region_fraction", low=0.0, high=1.0),
    )


def _statistics(r: _Reader, raw: Any) -> StatisticsConfig:
    s = r.mapping(raw, "statistics", DEFAULTS["statistics"])
    return StatisticsConfig(interval=r.number(s["interval"], "statistics.interval", low=0.5, high=0.999),
                            resamples=r.integer(s["resamples"], "statistics.resamples", minimum=100),
                            min_samples=r.integer(s["min_samples"], "statistics.min_samples", minimum=1))


def _trust(r: _Reader, raw: Any) -> TrustConfig:
    t = r.mapping(raw, "trust", DEFAULTS["trust"])
    return TrustConfig(
        min_confirmed=r.number(t["min_confirmed"], "trust.min_confirmed", low=0.0, high=1.0),
        min_claims=r.integer(t["min_claims"], "trust.min_claims", minimum=1),
        randomisation=r.boolean(t["randomisation"], "trust.randomisation"),
        randomisation_samples=r.integer(t["randomisation_samples"], "trust.randomisation_samples", minimum=2),
        randomisation_draws=r.integer(t["randomisation_draws"], "trust.randomisation_draws", minimum=1),
        max_randomised_similarity=r.number(t["max_randomised_similarity"], "trust.max_randomised_similarity", low=-1.0, high=1.0),
        max_no_signal=r.number(t["max_no_signal"], "trust.max_no_signal", low=0.0, high=1.0),
        max_one_class=r.number(t["max_one_class"], "trust.max_one_class", low=0.0, high=1.0),
    )


def _scoring(r: _Reader, raw: Any) -> ScoringConfig:
    s = r.mapping(raw, "scoring", DEFAULTS["scoring"])
    metric = r.choice(s["focus_metric"], "scoring.focus_metric", FOCUS_METRICS)
    bounds = {"focus_score": (-1.0, 1.0), "energy_in_box": (0.0, 1.0), "energy_lift": (0.0, math.inf)}[metric]
    return ScoringConfig(focus_metric=metric, focus_min=r.number(s["focus_min"], "scoring.focus_min", low=bounds[0], high=bounds[1]))


def _strategies(r: _Reader, raw: Any) -> StrategiesConfig:
    s = r.mapping(raw, "strategies", DEFAULTS["strategies"])
    share = {k: r.number(s[k], f"strategies.{k}", low=0.0, high=1.0)
             for k in ("hotspot_threshold", "min_off_object", "max_object_overlap", "min_effect")}
    interval = r.number(s["interval"], "strategies.interval", low=0.5, high=0.999)
    ints = {k: r.integer(s[k], f"strategies.{k}", minimum=lo)
            for k, lo in (("min_samples", 2), ("min_test_samples", 2), ("max_strategies", 1), ("neighbours", 1),
                          ("test_samples", 2), ("controls", 1))}
    return StrategiesConfig(enabled=r.boolean(s["enabled"], "strategies.enabled"), interval=interval, **share, **ints)


def _names(r: _Reader, value: Any, key: str, options: tuple[str, ...]) -> tuple[str, ...]:
    """A list of distinct option names (possibly empty)."""
    if not isinstance(value, list):
        raise r.fail(key, f"a list of {', '.join(options)}", value)
    out = tuple(r.choice(v, f"{key}[{i}]", options) for i, v in enumerate(value))
    if len(set(out)) != len(out):
        raise r.fail(key, "each name once", _Raw(f"duplicates {sorted({v for v in out if out.count(v) > 1})}"))
    return out


def _overlay(r: _Reader, raw: Any, key: str) -> OverlayConfig:
    o = r.mapping(raw, key, {"name": None, "path": None, "size": 0.25, "at": None})
    for k in ("name", "path"):
        if o[k] is None:
            raise r.fail(f"{key}.{k}", "a value (this key is required)", None)
    name = r.text(o["name"], f"{key}.name")
    if not _NAME_RE.match(name) or name in PROBE_KINDS:
        raise r.fail(f"{key}.name", f"letters, digits, '.', '_' or '-', not a built-in kind ({', '.join(PROBE_KINDS)})", name)
    path = r.path(o["path"], f"{key}.path", kind="file")
    try:
        from PIL import Image

        with Image.open(path) as img:
            img.verify()
    except Exception as exc:  # Pillow raises many types for a file that is not an image
        raise r.fail(f"{key}.path", "an image file (a PNG with transparency, or any image Pillow reads)",
                     _Raw(f"{path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")) from None
    at = o["at"]
    if at is not None and not (isinstance(at, list) and len(at) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1 for v in at)):
        raise r.fail(f"{key}.at", "null or [x, y]: the overlay's top-left, relative, each in [0, 1)", at)
    return OverlayConfig(name=name, path=path, size=r.number(o["size"], f"{key}.size", low=0.01, high=1.0),
                         at=None if at is None else (float(at[0]), float(at[1])))


def _probes(r: _Reader, raw: Any) -> ProbesConfig:
    p = r.mapping(raw, "probes", DEFAULTS["probes"])
    if not isinstance(p["overlays"], list):
        raise r.fail("probes.overlays", "a list of {name, path, size, at} mappings", p["overlays"])
    overlays = tuple(_overlay(r, o, f"probes.overlays[{i}]") for i, o in enumerate(p["overlays"]))
    names = [o.name for o in overlays]
    if len(set(names)) != len(names):
        raise r.fail("probes.overlays", "a distinct name per overlay", _Raw(f"duplicates {sorted({n for n in names if names.count(n) > 1})}"))
    return ProbesConfig(
        enabled=r.boolean(p["enabled"], "probes.enabled"),
        samples=r.integer(p["samples"], "probes.samples", minimum=2),
        artifacts=_names(r, p["artifacts"], "probes.artifacts", PROBE_KINDS),
        overlays=overlays,
        places=_names(r, p["places"], "probes.places", PROBE_PLACES),
        margin=r.number(p["margin"], "probes.margin", low=0.0, high=0.45),
        size=r.number(p["size"], "probes.size", low=0.01, high=1.0),
        background_swap=r.boolean(p["background_swap"], "probes.background_swap"),
        min_effect=r.number(p["min_effect"], "probes.min_effect", low=0.0, high=1.0),
    )


def _mlflow(r: _Reader, raw: Any) -> MlflowConfig:
    m = r.mapping(raw, "mlflow", DEFAULTS["mlflow"])
    tags = m["tags"]
    if not isinstance(tags, dict) or not all(isinstance(k, str) and k and isinstance(v, (str, int, float, bool)) for k, v in tags.items()):
        raise r.fail("mlflow.tags", "a mapping {tag name: value}", tags)
    optional = {k: None if m[k] is None else r.text(m[k], f"mlflow.{k}") for k in ("tracking_uri", "run_name", "promote_alias")}
    if optional["promote_alias"] is not None and not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$", optional["promote_alias"]):
        raise r.fail("mlflow.promote_alias", "an alias name (letters, digits, '_' or '-')", optional["promote_alias"])
    return MlflowConfig(enabled=r.boolean(m["enabled"], "mlflow.enabled"), experiment=r.text(m["experiment"], "mlflow.experiment"),
                        tags=tuple((k, str(v)) for k, v in tags.items()), required=r.boolean(m["required"], "mlflow.required"),
                        **optional)


def _gate(r: _Reader, raw: Any) -> tuple[GateRule, ...]:
    if not isinstance(raw, list) or not raw:
        raise r.fail("gate", "a non-empty list of rules like {metric: accuracy, min: 0.9}", raw)
    names = AGGREGATES + STRATEGY_AGGREGATES + PROBE_AGGREGATES
    known = list(names) + [f"class_{a}" for a in names]
    rules = []
    for i, item in enumerate(raw):
        key = f"gate[{i}]"
        allowed = {"metric": None, **{k: None for k in RULE_KINDS}, "bound": "point"}
        rule = r.mapping(item, key, allowed)
        metric = rule["metric"]
        if metric not in known:
            hint = difflib.get_close_matches(str(metric), known, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise r.fail(f"{key}.metric", f"an aggregate name{extra}, e.g. accuracy, mean_focus_score, class_accuracy", metric)
        kinds = [k for k in RULE_KINDS if rule[k] is not None]
        if len(kinds) != 1:
            raise r.fail(key, f"exactly one of {', '.join(RULE_KINDS)}", _Raw(f"{len(kinds)} ({', '.join(kinds) or 'none'})"))
        kind = kinds[0]
        low = 0.0 if kind in ("max_drop", "max_rise") else -math.inf
        bound = r.choice(rule["bound"], f"{key}.bound", BOUNDS)
        side = "lower" if kind == "min" else "upper"
        if bound not in ("point", side):
            raise r.fail(f"{key}.bound", f"point or {side} (a {kind} rule compares the {side} bound)", bound)
        aggregate = metric[len("class_"):] if metric.startswith("class_") else metric
        if bound != "point" and (aggregate in NO_INTERVAL or aggregate in STRATEGY_AGGREGATES or aggregate in PROBE_AGGREGATES):
            raise r.fail(f"{key}.bound", f"point: {aggregate} has no interval", bound)
        rules.append(GateRule(metric=metric, kind=kind, threshold=r.number(rule[kind], f"{key}.{kind}", low=low), index=i, bound=bound))
    return tuple(rules)


def _engine(r: _Reader, raw: Any) -> EngineConfig:
    e = r.mapping(raw, "engine", DEFAULTS["engine"])
    address = e["address"]
    if address is not None and not (isinstance(address, str) and _ADDRESS_RE.match(address)):
        raise r.fail("engine.address", "null (start a local cluster), auto, or host:port", address)
    return EngineConfig(
        kind=r.choice(e["kind"], "engine.kind", ENGINES),
        address=address,
        workers=r.integer(e["workers"], "engine.workers", minimum=1),
        cpus_per_worker=r.number(e["cpus_per_worker"], "engine.cpus_per_worker", low=0.01, high=1024),
        gpus_per_worker=r.number(e["gpus_per_worker"], "engine.gpus_per_worker", low=0, high=64),
    )


def _baseline(r: _Reader, raw: Any) -> tuple[Path | None, bool]:
    """``baseline: PATH`` or ``baseline: {path: PATH, require_same_dataset: BOOL}``."""
    if raw is None:
        return None, False
    if isinstance(raw, dict):
        b = r.mapping(raw, "baseline", {"path": None, "require_same_dataset": False})
        path = None if b["path"] is None else r.path(b["path"], "baseline.path", kind="file")
        return path, r.boolean(b["require_same_dataset"], "baseline.require_same_dataset")
    return r.path(raw, "baseline", kind="file"), False


def _report(r: _Reader, raw: Any) -> ReportConfig:
    p = r.mapping(raw, "report", DEFAULTS["report"])
    out = p["output_dir"]
    if out == "auto":
        output_dir = None
    else:
        text = r.text(out, "report.output_dir")
        output_dir = Path(text) if Path(text).is_absolute() else (r.base / text).resolve()
    return ReportConfig(output_dir=output_dir, gallery_size=r.integer(p["gallery_size"], "report.gallery_size", minimum=0))


# --------------------------------------------------------------------------- entry point


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
    return _build(parse_yaml(source, data), source, hashlib.sha256(data).hexdigest(), data.decode("utf-8", errors="replace"))


def config_from_dict(doc: dict, *, base: str | Path | None = None) -> AuditConfig:
    """A config given as a mapping (the Python API): validated exactly as a file is; relative paths
    resolve against ``base`` (default the working directory); messages name ``<base>/<config dict>``."""
    import json

    if not isinstance(doc, dict):
        raise ConfigError(f"config: expected a mapping of keys (or a YAML file path), found {type(doc).__name__}")
    def plain(value: Any) -> Any:  # Path objects are written as text, as in a YAML file
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return str(value) if isinstance(value, Path) else value

    doc = plain(doc)
    source = Path(base or Path.cwd()).expanduser().resolve() / "<config dict>"
    text = json.dumps(doc, sort_keys=True, default=str)
    return _build(doc, source, hashlib.sha256(text.encode()).hexdigest(), yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


def parse_yaml(source: Path, data: bytes, error: type[Exception] = ConfigError) -> Any:
    """The YAML document, alias bombs and duplicate keys refused; problems raise ``error`` naming ``source``
    (the one YAML reader of the package: configs, and YOLO's data.yaml with ``error=DatasetError``)."""
    try:
        loader = _StrictLoader(data)
        try:
            root = loader.get_single_node()
            nodes = _expanded_nodes(root)
            if nodes > MAX_CONFIG_NODES:
                raise error(
                    f"{source}: expected a config of at most {MAX_CONFIG_NODES:,} YAML values with its aliases expanded, found more "
                    "(anchors and aliases that multiply, such as an alias bomb); reuse a block with one alias per use instead")
            doc = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{source}: expected valid YAML, found a syntax error{where}: {problem}") from None
    return doc


def _build(doc: Any, source: Path, sha256: str, text: str) -> AuditConfig:
    r = _Reader(source)
    top = r.mapping(doc, "", DEFAULTS)
    name = r.text(top["name"], "name")
    if not _NAME_RE.match(name):
        raise r.fail("name", "letters, digits, '.', '_' or '-' (it names the output folder)", name)
    dataset = _dataset(r, top["dataset"])
    baseline, require_same = _baseline(r, top["baseline"])
    resolved = {k: copy.deepcopy(v) for k, v in top.items()}
    for k, v in DEFAULTS.items():
        if isinstance(v, dict) and isinstance(top.get(k), dict):
            resolved[k] = {**v, **top[k]}
    evidence = _evidence(r, top["evidence"])
    strategies = _strategies(r, top["strategies"])
    probes = _probes(r, top["probes"])
    rules = _gate(r, top["gate"])
    for rule in rules:
        off = ("evidence.interventions is false" if not evidence.interventions and rule.aggregate in EVIDENCE_AGGREGATES
               else "strategies.enabled is false" if not strategies.enabled and rule.aggregate in STRATEGY_AGGREGATES
               else "probes.enabled is false" if not probes.enabled and rule.aggregate in PROBE_AGGREGATES
               else "probes.background_swap is false" if not probes.background_swap and rule.aggregate == "background_gap" else "")
        if off:
            raise r.fail(f"gate[{rule.index}].metric", f"an aggregate this run computes ({off})", rule.metric)
    return AuditConfig(
        name=name,
        seed=r.integer(top["seed"], "seed", minimum=0),
        model=_model(r, top["model"]),
        dataset=dataset,
        explain=_explain(r, top["explain"]),
        scoring=_scoring(r, top["scoring"]),
        evidence=evidence,
        trust=_trust(r, top["trust"]),
        engine=_engine(r, top["engine"]),
        strategies=strategies,
        probes=probes,
        mlflow=_mlflow(r, top["mlflow"]),
        statistics=_statistics(r, top["statistics"]),
        gate=rules,
        report=_report(r, top["report"]),
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

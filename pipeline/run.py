"""The stage sequence: prepare -> engine -> aggregate -> trust -> gate -> publish.

The per-batch work (Grad-CAM, interventions, scoring) is ``pipeline.worker.AuditWorker``; an
engine runs it over the samples and the collector streams its results to samples.csv and
heatmaps.npz in row order; only small per-sample scalars stay in memory. TensorFlow is imported
lazily, by the stages that need it.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from pipeline import aggregates, evidence, gate
from pipeline.config import AuditConfig
from pipeline.data import load_annotations
from pipeline.data.records import Annotations, stratified
from pipeline.data.samples import BoxArrays, Sample, box_arrays, build_samples, expand_predicted, target_sets
from pipeline.labels import IMAGENET, LabelSpace, imagenet_classes, label_space
from pipeline.errors import AuditError, DatasetError, ModelError
from pipeline.baseline import comparability, note
from pipeline.checkpoint import CheckpointStore
from pipeline.intervals import rule_intervals, table_from_csv
from pipeline.probe_stage import section as probe_section
from pipeline.strategy_stage import section as strategy_section
from pipeline.summary import build_summary, explanation_section, fingerprints, provenance, trust_section
from pipeline.worker import BatchResult, WorkPlan

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.collector import Collector
    from pipeline.model import AuditModel
    from pipeline.legacy import Conversion
    from pipeline.preprocessing_check import PreprocessingCheck
    from pipeline.probe_stage import ProbesResult
    from pipeline.probes import Artifact
    from pipeline.strategy_stage import Classifier, Evidence, StrategiesResult
    from pipeline.tracking.models import ResolvedModel
    from pipeline.tracking.runs import Tracker


@dataclass(frozen=True)
class Prepared:
    """Everything checked before any Grad-CAM work (what ``validate`` reports)."""

    cfg: AuditConfig
    annotations: Annotations
    model: "AuditModel"
    samples: list[Sample]
    boxes: BoxArrays
    space: LabelSpace
    multi_label: bool
    pending_predictions: bool = False  # multi-label, target predicted: samples are per image until the prediction pass
    check: "PreprocessingCheck | None" = None  # the preprocessing check's outcome (check_preprocessing)
    conversion: "Conversion | None" = None  # a Keras 2 model's conversion (DESIGN §14), None for a Keras 3 file

    @property
    def class_names(self) -> tuple[str, ...]:
        """The model's classes, in output order."""
        return self.space.class_names

    @property
    def labels(self) -> tuple[str, ...]:
        """The dataset labels per-class aggregates are reported for (those that own a model class)."""
        return tuple(lab for lab in self.space.labels if self.space.known(lab))


@dataclass(frozen=True)
class AuditResult:
    """What an audit returns (the Python API's result): ``verdict`` FIT TO DEPLOY / NOT FIT / INCONCLUSIVE,
    ``exit_code`` the CLI's (0 / 1 / 3), ``summary`` summary.json as a dict, the output folder."""

    verdict: str
    exit_code: int
    output_dir: Path
    summary: dict
    timings: dict  # seconds: explain loop, report rendering

    @property
    def report_path(self) -> Path:
        return self.output_dir / "report.html"

    @property
    def findings(self) -> list[dict]:
        """The audit's conclusions (DESIGN §13), blockers first: summary.json's ``findings``."""
        return list(self.summary.get("findings") or [])

    @property
    def samples(self) -> "pd.DataFrame":
        """samples.csv as a DataFrame, one row per sample (DESIGN §5's columns), read on each access."""
        import pandas as pd

        return pd.read_csv(self.output_dir / "samples.csv", keep_default_na=True)

    def _repr_html_(self) -> str:
        """Jupyter's view: the verdict banner, the findings' cards (title, sentence, what to do) and the gate table, with a link to the full report."""
        from pipeline.report import render_result

        return render_result(self.summary, self.report_path)


def prepare(cfg: AuditConfig, *, limit: int | None = None) -> Prepared:
    from pipeline.data.batches import preprocessing_fn
    from pipeline.model import build_audit_model

    preprocessing_fn(cfg.model.preprocessing)  # a keras.applications module that does not exist fails here
    annotations = load_annotations(cfg.dataset)
    if cfg.dataset.limit is not None:
        annotations = stratified(annotations, cfg.dataset.limit, cfg.seed, source="dataset.limit")
    annotations = stratified(annotations, limit, cfg.seed)
    for line in annotations.notes:
        _notice(line)
    if not annotations.images:
        raise DatasetError(f"{cfg.dataset.annotations}: expected at least one image in the annotations, found none")
    model = build_audit_model(cfg.model)
    space = _label_space(cfg, annotations, model)
    multi_label = cfg.model.multi_label if cfg.model.multi_label is not None else model.output_activation == "sigmoid"
    if cfg.dataset.region == "mask" and not any(b.segmentation is not None for r in annotations.images for b in r.boxes):
        raise DatasetError(f"{cfg.dataset.annotations}: dataset.region is mask: expected COCO annotations with 'segmentation' "
                           "(polygons or RLE) or YOLO-seg polygon rows, found none in any annotation; use region: box or add the masks")
    samples = build_samples(
        annotations.images,
        images_dir=annotations.images_dir or cfg.dataset.images,
        space=space,
        target=cfg.explain.target,
        spec=model.input,
        region=cfg.dataset.region,
    )
    if all(s.skip_reason for s in samples):
        reasons = "; ".join(f"{s.sample_id}: {s.skip_reason}" for s in samples[:3])
        raise DatasetError(
            f"{cfg.source}: dataset: expected at least one usable sample, found none of {len(samples)} "
            f"(check dataset.images and dataset.annotations); first reasons: {reasons}"
        )
    pending = multi_label and cfg.explain.target == "predicted"
    return Prepared(cfg, annotations, model, samples, box_arrays(samples, space, model.input_size), space, multi_label, pending)


def _label_space(cfg: AuditConfig, annotations: Annotations, model: "AuditModel") -> LabelSpace:
    """Class names (config, ImageNet or the dataset's labels) and the dataset labels' classes (DESIGN §4)."""
    names, aliases = cfg.model.class_names, None
    if names == IMAGENET:
        names, aliases = imagenet_classes()
        source = "model.class_names: imagenet (the 1,000 ILSVRC-2012 classes)"
    elif names is not None:
        source = "model.class_names"
    else:
        names = annotations.class_names
        source = {"coco": "the COCO categories (by id)", "voc": "the VOC labels (sorted)", "csv": "the CSV labels (sorted)",
                  "yolo": "the data.yaml names (by id)"}[cfg.dataset.format]
    if len(names) != model.n_classes:
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise ModelError(
            f"{cfg.source}: model.class_names: expected {model.n_classes} class names (the model's outputs), "
            f"found {len(names)} from {source}: {shown}"
            + ("; list them in model-output order under model.class_names" if cfg.model.class_names is None else "")
        )
    return label_space(names, annotations.class_names, label_map=cfg.dataset.label_map, aliases=aliases, source=source,
                       prefix=f"{cfg.source}: ")


def predict_samples(cfg: AuditConfig, prep: Prepared) -> Prepared:
    """Multi-label, target "predicted": run the model once over the usable images and expand each
    image into one sample per predicted class (DESIGN §4). Other runs are returned unchanged."""
    if not prep.pending_predictions:
        return prep
    import tensorflow as tf

    from pipeline.data.batches import sample_batches
    from pipeline.worker import probabilities

    usable = [s for s in prep.samples if s.skip_reason is None]
    probs = np.zeros((len(prep.samples), prep.model.n_classes))
    forward = tf.function(lambda x: prep.model.cam_model(x, training=False)[1], reduce_retracing=True)
    for rows, images, _raw, errors in sample_batches(usable, prep.model.input, cfg.explain.batch_size):
        r = rows.numpy()
        p = probabilities(forward(images).numpy(), prep.model.output_activation)
        probs[r[r >= 0]] = p[r >= 0]
    samples = expand_predicted(prep.samples, probs, cfg.model.threshold, prep.space)
    return replace(prep, samples=samples, boxes=box_arrays(samples, prep.space, prep.model.input_size), pending_predictions=False)


@dataclass(frozen=True)
class Legacy:
    """A Keras 2 model on its way in: its conversion, and the tf_keras model while the conversion is unchecked."""

    conversion: "Conversion"
    model: Any = None  # the tf_keras model (None when the conversion came from the cache, checked)


def resolve_legacy(cfg: AuditConfig, reports: Path) -> tuple[AuditConfig, Legacy | None]:
    """A Keras 2 SavedModel / .h5 / .keras: the config pointed at its Keras 3 conversion (from the cache under
    ``reports``, or converted now and checked by :func:`check_conversion`); a Keras 3 file: unchanged."""
    from pipeline import legacy

    fmt = legacy.legacy_format(cfg.model.path)
    if fmt is None:
        return cfg, None
    folder = legacy.cache_dir(reports)
    found = legacy.cached(cfg.model.path, fmt, folder)
    state = Legacy(found) if found is not None else Legacy(*legacy.convert(cfg.model.path, fmt, folder))
    return replace(cfg, model=replace(cfg.model, path=state.conversion.converted)), state


def check_conversion(cfg: AuditConfig, prep: Prepared, state: Legacy | None) -> tuple[AuditConfig, Prepared]:
    """Both models' outputs on a seeded batch of the evaluation images (after the config's preprocessing) agree to
    legacy.MAX_DIFF, else exit 2 naming the first layer that differs; the checked conversion joins the cache."""
    if state is None:
        return cfg, prep
    from pipeline import legacy

    conversion = state.conversion
    if state.model is not None:
        from pipeline.data.batches import spec_preprocessing
        from pipeline.preprocessing_check import preprocessed_batch

        images = preprocessed_batch(prep, legacy.CHECK_IMAGES, cfg.explain.batch_size, cfg.seed, spec_preprocessing(prep.model.input))
        diff = legacy.max_difference(state.model, prep.model.model, images)
        if not diff <= legacy.MAX_DIFF:
            where = legacy.first_difference(state.model, prep.model.model, images)
            legacy.discard(conversion)
            raise ModelError(f"{conversion.source}: expected the Keras 3 rebuild to match the Keras 2 model (max |Δ probability| "
                             f"<= {legacy.MAX_DIFF:g} on {len(images)} evaluation images), found {diff:.3g}; the first layer whose "
                             f"outputs differ: {where}")
        conversion = legacy.accept(conversion, diff, len(images))
        cfg = replace(cfg, model=replace(cfg.model, path=conversion.converted))
    return cfg, replace(prep, cfg=cfg, conversion=conversion)


def prepare_checked(cfg: AuditConfig, *, limit: int | None, reports: Path) -> tuple[AuditConfig, Prepared]:
    """Everything before Grad-CAM, checked: a Keras 2 model converted and checked (its cache under ``reports``),
    the samples (per predicted class for multi-label), the preprocessing check. An unchecked conversion is
    discarded when anything fails."""
    cfg, state = resolve_legacy(cfg, reports)
    try:
        cfg, prep = check_conversion(cfg, predict_samples(cfg, prepare(cfg, limit=limit)), state)
    except BaseException:
        if state is not None:
            from pipeline.legacy import discard

            discard(state.conversion)
        raise
    return cfg, check_preprocessing(cfg, prep)


def check_preprocessing(cfg: AuditConfig, prep: Prepared) -> Prepared:
    """The preprocessing check (model.check_preprocessing): a clearly better preprocessing is exit 2 before any Grad-CAM."""
    from pipeline.preprocessing_check import enforce, run_check

    check = run_check(cfg.model.check_preprocessing, prep, batch_size=cfg.explain.batch_size, seed=cfg.seed)
    enforce(check, str(cfg.source))
    return replace(prep, check=check)


def output_dir(cfg: AuditConfig, override: Path | None) -> Path:
    if override is not None:
        return override.resolve()
    if cfg.report.output_dir is not None:
        return cfg.report.output_dir
    return (Path.cwd() / "reports" / cfg.name).resolve()


def _load_baseline(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["aggregates"]["overall"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditError(f"{path}: expected a summary.json from a previous audit, found {type(exc).__name__}: {exc}") from None
    return data


def work_plan(cfg: AuditConfig, prep: Prepared) -> WorkPlan:
    """The per-sample constants every worker gets (DESIGN §7: identical in every process)."""
    samples, space = prep.samples, prep.space
    has_label = np.zeros((len(samples), len(space.class_names)), bool)  # has_label[i, c]: class c's label is among sample i's
    for s in samples:
        has_label[s.row] = space.sets[[space.index(lab) for lab in s.labels if space.known(lab)]].any(axis=0)
    usable = [s.row for s in samples if s.skip_reason is None]
    intervene = np.zeros(len(samples), bool)
    groups = []
    if cfg.evidence.interventions:
        groups.append("evidence")
        intervene[evidence.seeded_subset(usable, cfg.evidence.max_samples, cfg.seed)] = True
    if cfg.explain.compare_method:
        groups.append("compare")
    if space.mapped or prep.multi_label:
        groups.append("mapped")
    return WorkPlan(np.array([s.target for s in samples], np.int32), has_label, prep.boxes, intervene, tuple(groups),
                    sets=target_sets(space), class_label=space.class_label, multi_label=prep.multi_label, threshold=cfg.model.threshold)


def chunks(samples: list[Sample], batch_size: int) -> list[list[Sample]]:
    """The run's batches: consecutive groups of ``batch_size`` usable samples. Every engine and
    every resumed run computes exactly these groups, so a sample is always batched with the same
    neighbours (oneDNN's rounding can depend on them) and results are identical across engines."""
    return [samples[i:i + batch_size] for i in range(0, len(samples), batch_size)]


def _results(cfg: AuditConfig, prep: Prepared, plan: WorkPlan, todo: list[list[Sample]]) -> Iterator[BatchResult]:
    """The configured engine's results for the ``todo`` batches."""
    if cfg.engine.kind == "ray":
        from pipeline.engines.ray_engine import run_ray

        return run_ray(cfg, plan, prep.samples, todo)
    from pipeline.engines.local import run_local
    from pipeline.worker import AuditWorker

    # every batch but the run's last is full, so tf.data's batching of the concatenation gives the same groups
    return run_local(AuditWorker(cfg, prep.model, plan), [s for c in todo for s in c],
                     batch_size=cfg.explain.batch_size)


def _run_engine(cfg: AuditConfig, prep: Prepared, plan: WorkPlan, collector: "Collector", progress: bool,
                on_result: Callable[[BatchResult], None] = lambda r: None, started: float | None = None) -> dict[str, Any]:
    """Drive the engine over the samples the collector still lacks; returns the loop's timings.

    ``on_result`` sees every result before the collector does (the checkpoint is written first,
    so a kill between the two loses nothing)."""
    from tqdm import tqdm

    usable = [s for s in prep.samples if s.skip_reason is None]
    todo_batches = [c for c in chunks(usable, cfg.explain.batch_size) if not collector.done[c[0].row]]
    todo = [s for c in todo_batches for s in c]
    bar = tqdm(total=len(usable), initial=len(usable) - len(todo), desc=f"audit {cfg.name}", unit="img", disable=not progress, file=sys.stderr)
    t_loop = time.perf_counter()
    t_first = None
    for result in (_results(cfg, prep, plan, todo_batches) if todo_batches else ()):
        on_result(result)
        collector.add(result)
        bar.update(len(result.rows))
        if t_first is None:
            t_first = time.perf_counter()
    bar.close()
    collector.finish()
    t_end = time.perf_counter()
    loop = t_end - t_loop
    first_batch = min(cfg.explain.batch_size, len(todo))
    steady = (len(todo) - first_batch) / (t_end - t_first) if t_first is not None and t_end > t_first and len(todo) > first_batch else None
    return {
        "engine": cfg.engine.kind,
        "startup_seconds": round(t_loop - started, 3) if started is not None else None,  # config read to the engine's start
        "resumed_samples": len(usable) - len(todo),
        "explain_seconds": round(loop, 3),
        "samples_per_second": round(len(todo) / loop, 2) if loop > 0 and todo else None,
        "first_batch_seconds": round(t_first - t_loop, 3) if t_first is not None else None,
        "steady_samples_per_second": round(steady, 2) if steady else None,
    }


def sample_table(cfg: AuditConfig, prep: Prepared, values: dict[str, np.ndarray]) -> aggregates.SampleTable:
    has_evidence = "removed_confidence" in values
    space = prep.space
    # a multi-label sample is about one class: its per-class aggregates go to that class's label alone
    labels = [((space.labels[k],) if (k := space.explained_label(s.target)) >= 0 else ()) if prep.multi_label else s.labels
              for s in prep.samples]
    return aggregates.SampleTable(
        labels=labels, correct=values["correct"] == 1.0,
        energy_in_box=values["energy_in_box"], focus_score=values["focus_score"], energy_lift=values["energy_lift"],
        pointing_hit=values["pointing_hit"], box_area_fraction=values["box_area_fraction"], flags=values["flag"],
        object_dependence=values["object_dependence"] if has_evidence else None,
        still_right_without_object=values["still_right_without_object"] if has_evidence else None,
        only_correct=values["only_correct"] if has_evidence else None,
        dependence_min=cfg.evidence.dependence_min,
    )


def trust_checks(cfg: AuditConfig, prep: Prepared, table: aggregates.SampleTable, cams: np.ndarray, target_class: np.ndarray,
                 predicted: np.ndarray, rand_timing: dict[str, Any] | None = None) -> list[evidence.TrustCheck]:
    """The trust checks of DESIGN §6 and §13 (the randomisation one runs the model copy: TensorFlow);
    ``rand_timing`` receives the randomisation check's own timings."""
    values, _ = aggregates.population(table, "on_target_confirmed_rate", np.arange(len(table.flags)))
    agree = evidence.confirmation_check(int(values.sum()), int(values.size), min_confirmed=cfg.trust.min_confirmed,
                                        min_claims=cfg.trust.min_claims, level=cfg.statistics.interval,
                                        enabled=cfg.evidence.interventions)
    median, n = float("nan"), 0
    if cfg.trust.randomisation:
        from pipeline.randomisation import randomisation_statistic

        median, n, _ = randomisation_statistic(cfg, prep.model, prep.samples, cams, target_class, timing=rand_timing)
    rand = evidence.randomisation_check(median, n, cfg.trust.max_randomised_similarity, enabled=cfg.trust.randomisation)
    scored = table.flags != "skipped"
    signal = evidence.signal_check(int((table.flags == "no_signal").sum()), int(scored.sum()), cfg.trust.max_no_signal)
    answers = [prep.space.labels[int(p)] if int(p) >= 0 else "" for p in np.asarray(predicted)[scored]]
    spread = evidence.spread_check(answers, [table.labels[i] for i in np.flatnonzero(scored)], cfg.trust.max_one_class)
    return [agree, rand, signal, spread]


def stage_inputs(cfg: AuditConfig, prep: Prepared, values: dict[str, np.ndarray], cams: np.ndarray,
                 target_class: np.ndarray) -> "tuple[Evidence, Classifier]":
    """What the strategies and probes stages read (the audit's maps and regions) and the model as they
    run it (the compiled forward path, decoding as the audit does)."""
    from pipeline.forward import classifier
    from pipeline.strategy_stage import Evidence

    space, size = prep.space, prep.model.input_size
    target_class = np.asarray(target_class)
    ev = Evidence(
        labels=space.labels, explained=np.where(target_class >= 0, space.class_label[np.maximum(target_class, 0)], -1),
        predicted=values["predicted"], correct=values["correct"] == 1.0, focus=values["focus_score"],
        confidence=values["explained_confidence"], flags=values["flag"], cams=cams,
        labels_of=[frozenset(space.index(lab) for lab in s.labels) for s in prep.samples],
        region_of=lambda row, label: prep.boxes.region(row, label, size), input_size=size,
    )
    return ev, classifier(cfg, prep.model, prep.samples, space, multi_label=prep.multi_label, target_class=target_class)


def strategies_stage(cfg: AuditConfig, ev: "Evidence", model: "Classifier") -> "StrategiesResult | None":
    """DESIGN §10 on the audit's own maps and regions; the hot spots' causal tests run the compiled forward path."""
    if not cfg.strategies.enabled:
        return None
    from pipeline.strategy_stage import run_strategies

    return run_strategies(cfg.strategies, ev, model, fill=cfg.evidence.fill, seed=cfg.seed)


def probe_artifacts(cfg: AuditConfig, size: tuple[int, int]) -> "list[Artifact]":
    """The built-in artifacts and the user's overlays (read here: I/O at the stage's edge) at the input ``size``."""
    from PIL import Image

    from pipeline import probes as pr

    out = [pr.builtin(kind, cfg.probes.size, size) for kind in cfg.probes.artifacts]
    for o in cfg.probes.overlays:
        with Image.open(o.path) as img:
            rgba = np.asarray(img.convert("RGBA"), np.float64)
        out.append(pr.overlay(o.name, rgba, o.size, size, o.at))
    return out


def probes_stage(cfg: AuditConfig, ev: "Evidence", model: "Classifier", cams: np.ndarray,
                 strategies: "StrategiesResult | None") -> "ProbesResult | None":
    """DESIGN §11: the artifacts at the corners, the centre and every strategy's hot spot (tested or not: every
    strategy whose off-object heat reaches strategies.min_off_object; one whose heat follows its objects has none
    to probe), and the background swap."""
    if not cfg.probes.enabled:
        return None
    from pipeline.probe_stage import run_probes

    spots = [(f"{s.label}/{s.id}", s.hot_spot.rect) for lab in (strategies.labels if strategies else ()) for s in lab.strategies
             if s.hot_spot is not None and s.hot_spot.off_object_share >= cfg.strategies.min_off_object]
    return run_probes(cfg.probes, ev, model, probe_artifacts(cfg, ev.input_size), cams=cams, hot_spots=spots, fill=cfg.evidence.fill,
                      seed=cfg.seed, level=cfg.statistics.interval, resamples=cfg.statistics.resamples)


@dataclass(frozen=True)
class Conclusions:
    """What the audit concludes from the per-sample results: trust checks, strategies, aggregates, gate."""

    checks: list[evidence.TrustCheck]
    strategies: "StrategiesResult | None"
    probes: "ProbesResult | None"
    overall: dict[str, float]
    per_class: dict[str, dict[str, float]]
    results: list[gate.RuleResult]
    verdict: str


def conclude(cfg: AuditConfig, prep: Prepared, table: aggregates.SampleTable, values: dict[str, np.ndarray], cams: np.ndarray,
             target_class: np.ndarray, base: dict | None, compared: dict | None, timing: dict[str, Any],
             base_path: Path | None = None) -> Conclusions:
    """Trust checks -> strategies -> aggregates -> gate -> verdict (stage times are added to ``timing``)."""
    t = time.perf_counter()
    rand: dict[str, Any] = {}
    checks = trust_checks(cfg, prep, table, cams, target_class, values["predicted"], rand)
    timing["trust_seconds"] = round(time.perf_counter() - t, 3)
    timing["randomisation"] = rand or None
    t = time.perf_counter()
    ev, model = stage_inputs(cfg, prep, values, cams, target_class)
    strat = strategies_stage(cfg, ev, model)
    timing["strategies_seconds"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    probed = probes_stage(cfg, ev, model, cams, strat)
    timing["probes_seconds"] = round(time.perf_counter() - t, 3)
    overall, per_class = aggregates.summarize(table), aggregates.by_class(table, prep.labels)
    for stage in (s for s in (strat, probed) if s is not None):
        overall.update(stage.overall)
        for name, agg in per_class.items():
            agg.update(stage.per_label[name])
    ranges = rule_intervals(cfg.gate, table, list(per_class), cfg.statistics, cfg.seed, baseline=_baseline_table(cfg, base_path),
                            ids=[s.sample_id for s in prep.samples], same_dataset=bool(compared and compared["dataset_matches"]))
    results = gate.evaluate(cfg.gate, overall, per_class, base["aggregates"] if base else None, baseline_note=note(compared),
                            intervals=ranges, min_samples=cfg.statistics.min_samples)
    for r in results:
        if r.warning:
            _notice(r.warning)
    return Conclusions(checks, strat, probed, overall, per_class, results, gate.verdict(results, [c.status for c in checks]))


def _baseline_table(cfg: AuditConfig, base_path: Path | None) -> "tuple[aggregates.SampleTable, list[str]] | None":
    """The baseline audit's samples.csv (beside its summary.json) for change rules with a bound; None without one."""
    if base_path is None or not any(r.needs_baseline and r.bound != "point" for r in cfg.gate):
        return None
    path = Path(base_path).parent / "samples.csv"
    if not path.is_file():
        raise AuditError(f"{base_path}: a change rule with bound needs the baseline's samples.csv beside its summary.json, found none at {path}")
    return table_from_csv(path, cfg.evidence.dependence_min)


def summarise(cfg: AuditConfig, prep: Prepared, table: aggregates.SampleTable, values: dict[str, np.ndarray], found: Conclusions, *,
              prints: dict[str, str], baseline_path: Path | None, compared: dict | None, timing: dict[str, Any],
              tracker: "Tracker | None" = None, registry: "ResolvedModel | None" = None) -> dict[str, Any]:
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
    if registry is not None:
        summary["provenance"]["model_registry"] = registry.provenance()
    if tracker is not None:
        summary["mlflow"] = tracker.section()
    return summary


def _compare_baseline(cfg: AuditConfig, base: dict | None, baseline_path: Path | None, prints: dict[str, str]) -> dict | None:
    """The baseline's comparability (None without one); a baseline on other data is exit 2 when the config requires the same."""
    compared = comparability(base, path=baseline_path, **prints) if base is not None and baseline_path else None
    if compared and not compared["dataset_matches"] and cfg.baseline_require_same_dataset:
        theirs = str((base.get("provenance") or {}).get("dataset_fingerprint") or "none recorded")[:12]
        raise AuditError(
            f"{baseline_path}: baseline.require_same_dataset: expected a baseline audited on the same evaluation set "
            f"(dataset fingerprint {prints['dataset_fingerprint'][:12]}), found one on {theirs}")
    return compared


def _check_resume(staging: Any, store: CheckpointStore, manifest: dict[str, Any], resume: bool) -> None:
    """A resumed staging folder must match this run's manifest; otherwise say what happened to an old one."""
    if staging.resumed:
        store.check(manifest, staging.path)
    elif resume:
        _notice(f"--resume: no interrupted run in {staging.path}; starting from the beginning")
    elif staging.found_stale:
        _notice(f"replaced the staging folder of an interrupted run ({staging.path}); --resume would have continued it")


def write_outputs(folder: Path, summary: dict[str, Any], prep: Prepared, table: aggregates.SampleTable, values: dict[str, np.ndarray],
                  cams: np.ndarray, found: Conclusions, base: dict | None, baseline_path: Path | None, report: Path | None = None) -> float:
    """summary.json, summary.md, junit.xml and report.html into the staging ``folder`` (the stage tables and
    the findings first: :func:`write_stage_tables`, :func:`add_findings`); returns the report's rendering time in seconds."""
    from pipeline.outputs import write_json, write_junit, write_summary_md
    from pipeline.report import render_report

    write_json(folder / "summary.json", summary)
    write_summary_md(folder / "summary.md", summary, report=str(report) if report else None)
    write_junit(folder / "junit.xml", summary)
    t_report = time.perf_counter()
    render_report(folder / "report.html", summary, prep, table, values=values, cams=cams, baseline=base,
                  baseline_path=baseline_path, strategies=found.strategies, probes=found.probes)
    return time.perf_counter() - t_report


def write_stage_tables(folder: Path, summary: dict[str, Any], found: Conclusions) -> None:
    """strategies.csv (+ samples.csv's ``strategy`` column) and probes.csv into the staging ``folder``."""
    if found.strategies is not None:
        write_strategy_outputs(folder, found.strategies, summary["strategies"])
    if found.probes is not None:
        from pipeline.outputs import write_records_csv
        from pipeline.probe_stage import CSV_COLUMNS as PROBE_COLUMNS

        write_records_csv(folder / "probes.csv", summary["probes"]["rows"], PROBE_COLUMNS)


def add_findings(summary: dict[str, Any], samples_csv: Path, base: dict | None) -> dict[str, Any]:
    """summary.json with its ``findings`` (DESIGN §13) after the verdict: the causes, from the summary and the
    staged samples.csv (with its ``strategy`` column), ``since_baseline`` against the baseline's findings."""
    import pandas as pd

    from pipeline.findings import build

    found = build(summary, pd.read_csv(samples_csv, keep_default_na=True), base)
    head = ("baseline", "name", "verdict", "exit_code")
    return {**{k: summary[k] for k in head if k in summary}, "findings": found, **{k: v for k, v in summary.items() if k not in head}}


def write_strategy_outputs(folder: Path, result: "StrategiesResult", section: dict[str, Any]) -> None:
    """strategies.csv, and samples.csv's ``strategy`` column (known only after every batch)."""
    from pipeline.outputs import append_column, write_records_csv
    from pipeline.strategy_stage import CSV_COLUMNS

    write_records_csv(folder / "strategies.csv", [s for lab in section["labels"] for s in lab["strategies"]], CSV_COLUMNS)
    append_column(folder / "samples.csv", "strategy", ["" if v < 0 else str(v) for v in result.strategy])


_FULL = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file too large"}


def _notice(message: str) -> None:
    """A warning the user should see (not an error: the audit goes on)."""
    print(f"warning: {message}", file=sys.stderr)


def write_failure(exc: OSError, out_dir: Path, kept: bool = False) -> AuditError | None:
    """A full disk, quota or file-size limit, said in the user's terms; None for other errors."""
    if exc.errno not in _FULL:
        return None
    staging = "the completed batches were kept for --resume" if kept else "the staging folder was removed"
    return AuditError(f"{out_dir}: {_FULL[exc.errno]} writing the audit's outputs ({exc.strerror}); "
                      f"nothing was published and {staging}: free space or choose another --output")


def _discard_or_keep(staging: Any, store: CheckpointStore) -> bool:
    """After a failure: keep a staging folder that holds completed batches (for --resume), else remove it."""
    if store.batches_done():
        _notice(f"kept {staging.path} with {store.batches_done()} completed batches: rerun with --resume to continue")
        return True
    staging.discard()
    return False


def _open_staging(out_dir: Path, resume: bool):
    from pipeline.outputs import Staging

    try:
        return Staging(out_dir, resume=resume)
    except OSError as exc:
        raise write_failure(exc, out_dir) or AuditError(
            f"{out_dir}: expected a folder the audit can write its outputs to, found an error: {exc.strerror or exc}") from None


def audit(
    cfg: AuditConfig,
    *,
    output: Path | None = None,
    baseline: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    resume: bool = False,
    mlflow: str | None = None,
) -> AuditResult:
    """Run the whole audit and publish the outputs. Raises AuditError when it cannot run.

    ``resume`` continues an interrupted run from the checkpoints in its staging folder; ``baseline`` is a
    summary.json or an MLflow URI (``models:/NAME@champion``); ``mlflow`` ("" or a tracking URI) logs the audit
    as an MLflow run, as ``mlflow.enabled`` does."""
    from pipeline.tracking.session import resolve_inputs, tracked_run

    cfg, registry, baseline_path = resolve_inputs(cfg, baseline or cfg.baseline, mlflow)
    with tracked_run(cfg, mlflow, _notice) as tracker:
        return _audit(cfg, output=output, baseline_path=baseline_path, limit=limit, progress=progress, resume=resume,
                      tracker=tracker, registry=registry)


def _audit(cfg: AuditConfig, *, output: Path | None, baseline_path: Path | None, limit: int | None, progress: bool, resume: bool,
           tracker: "Tracker | None", registry: "ResolvedModel | None") -> AuditResult:
    import keras

    from pipeline.collector import Collector
    from pipeline.columns import active
    from pipeline.outputs import HeatmapWriter, SamplesWriter, json_safe

    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    base = _load_baseline(baseline_path) if baseline_path else None
    keras.utils.set_random_seed(cfg.seed)
    cfg, prep = prepare_checked(cfg, limit=limit, reports=output_dir(cfg, output).parent)
    prints = fingerprints(cfg, prep)
    compared = _compare_baseline(cfg, base, baseline_path, prints)
    plan = work_plan(cfg, prep)
    out_dir = output_dir(cfg, output)
    from pipeline.lock import OutputLock

    with OutputLock(out_dir) as lock:
        if lock.took_over:
            _notice(f"{out_dir}: took over the lock left by a run that is gone (pid {lock.took_over.get('pid', '?')} on "
                    f"{lock.took_over.get('host', '?')}, started {lock.took_over.get('started', '?')})")
        staging = _open_staging(out_dir, resume)
        store = CheckpointStore(staging.path)
        manifest = {**prints, "limit": limit, "n_samples": len(prep.samples)}
        _check_resume(staging, store, manifest, resume)
        try:
            if not staging.resumed:
                store.start(manifest)
            csv_out = SamplesWriter(staging.path / "samples.csv", active(plan.groups))
            heat = HeatmapWriter(staging.path, len(prep.samples), prep.model.layer_shape[:2])
            collector = Collector(prep.samples, prep.space, plan.groups, csv_out, heat)
            for done in store.load() if staging.resumed else ():
                collector.add(done)

            def checkpoint(result: BatchResult) -> None:
                store.save(result)
                lock.heartbeat()

            timing = _run_engine(cfg, prep, plan, collector, progress, on_result=checkpoint, started=t0)
            csv_out.close()
            heat.close()
            cams = np.load(staging.path / "cams.npy", mmap_mode="r")
            target_class = np.load(staging.path / "target_class.npy")

            table = sample_table(cfg, prep, collector.values)
            found = conclude(cfg, prep, table, collector.values, cams, target_class, base, compared, timing, baseline_path)
            timing = {"started": started.isoformat(timespec="seconds"), "ended": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      "seconds": round(time.perf_counter() - t0, 3), **timing}
            summary = summarise(cfg, prep, table, collector.values, found, prints=prints, baseline_path=baseline_path,
                                compared=compared, timing=timing, tracker=tracker, registry=registry)
            write_stage_tables(staging.path, summary, found)
            summary = add_findings(summary, staging.path / "samples.csv", base)
            report_seconds = write_outputs(staging.path, summary, prep, table, collector.values, cams, found, base, baseline_path,
                                           report=out_dir / "report.html")
            timings = {"explain_seconds": timing["explain_seconds"], "report_seconds": report_seconds}
            del cams
            heat.cleanup()
            store.remove()
            tracking_failure = log_run(tracker, cfg, summary, staging.path, registry)
            staging.publish()
        except OSError as exc:
            kept = _discard_or_keep(staging, store)
            failure = write_failure(exc, out_dir, kept)
            if failure is None:
                raise
            raise failure from None
        except BaseException:
            _discard_or_keep(staging, store)
            raise
    if tracking_failure is not None:  # mlflow.required: the local outputs are published, the audit still fails
        raise tracking_failure
    return AuditResult(found.verdict, gate.EXIT_CODES[found.verdict], out_dir, json_safe(summary), timings)  # as summary.json has it


def log_run(tracker: "Tracker | None", cfg: AuditConfig, summary: dict[str, Any], folder: Path,
            registry: "ResolvedModel | None") -> AuditError | None:
    """Log the audit to its MLflow run from the staging ``folder`` (the outputs as they will be published):
    values and registry tags, summary.json's ``mlflow`` rewritten, then the folder. A failure is recorded in
    summary.json; with ``mlflow.required`` it is returned, to raise once the outputs are published."""
    if tracker is None:
        return None
    from pipeline.outputs import write_json
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

"""The stage sequence: load -> explain (batches) -> score -> flag -> gate -> report.

Per-sample results stream to samples.csv and heatmaps.npz as batches finish; only small
per-sample scalars stay in memory. TensorFlow is imported here lazily, by the stages that need it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pipeline import aggregates, gate
from pipeline.config import AuditConfig
from pipeline.data import load_annotations
from pipeline.data.records import Annotations
from pipeline.data.samples import BoxArrays, Sample, box_arrays, build_samples
from pipeline.errors import AuditError, DatasetError, ModelError
from pipeline.flags import assign_flags
from pipeline.scoring import score


@dataclass(frozen=True)
class Prepared:
    """Everything checked before any Grad-CAM work (what ``validate`` reports)."""

    cfg: AuditConfig
    annotations: Annotations
    model: Any  # pipeline.model.AuditModel (TensorFlow-backed)
    class_names: tuple[str, ...]
    samples: list[Sample]
    boxes: BoxArrays


@dataclass(frozen=True)
class AuditResult:
    verdict: str
    exit_code: int
    output_dir: Path
    summary: dict
    timings: dict  # seconds: explain loop, report rendering


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dataset_fingerprint(annotations: Annotations, samples: Sequence[Sample]) -> str:
    """sha256 over the annotation files' bytes and each image's relative path and size in bytes."""
    h = hashlib.sha256()
    for name in annotations.files:
        h.update(Path(name).name.encode() + b"\0")
        h.update(Path(name).read_bytes())
    for s in samples:
        size = s.path.stat().st_size if s.path is not None and s.path.exists() else -1
        h.update(f"{s.image}\0{size}\n".encode())
    return h.hexdigest()


def prepare(cfg: AuditConfig, *, limit: int | None = None) -> Prepared:
    from pipeline.data.batches import preprocessing_fn
    from pipeline.model import build_audit_model

    preprocessing_fn(cfg.model.preprocessing)  # a keras.applications module that does not exist fails here
    annotations = load_annotations(cfg.dataset)
    if limit is not None:
        annotations = Annotations(annotations.images[:limit], annotations.class_names, annotations.files)
    if not annotations.images:
        raise DatasetError(f"{cfg.dataset.annotations}: expected at least one image in the annotations, found none")
    model = build_audit_model(cfg.model)
    if cfg.model.class_names is not None:
        class_names, source = cfg.model.class_names, "model.class_names"
    else:
        class_names = annotations.class_names
        source = {"coco": "the COCO categories (by id)", "voc": "the VOC labels (sorted)", "csv": "the CSV labels (sorted)"}[cfg.dataset.format]
    if len(class_names) != model.n_classes:
        raise ModelError(
            f"{cfg.source}: model.class_names: expected {model.n_classes} class names (the model's outputs), "
            f"found {len(class_names)} from {source}: {', '.join(class_names)}"
            + ("; list them in model-output order under model.class_names" if cfg.model.class_names is None else "")
        )
    samples = build_samples(
        annotations.images,
        images_dir=cfg.dataset.images,
        class_names=class_names,
        target=cfg.explain.target,
        input_size=model.input_size,
    )
    if all(s.skip_reason for s in samples):
        reasons = "; ".join(f"{s.sample_id}: {s.skip_reason}" for s in samples[:3])
        raise DatasetError(
            f"{cfg.source}: dataset: expected at least one usable sample, found none of {len(samples)} "
            f"(check dataset.images and dataset.annotations); first reasons: {reasons}"
        )
    return Prepared(cfg, annotations, model, tuple(class_names), samples, box_arrays(samples, class_names, model.input_size))


def _output_dir(cfg: AuditConfig, override: Path | None) -> Path:
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


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("tensorflow", "keras", "numpy", "pandas", "scikit-image", "jinja2", "pyyaml", "pillow"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def audit(
    cfg: AuditConfig,
    *,
    output: Path | None = None,
    baseline: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> AuditResult:
    """Run the whole audit and publish the outputs. Raises AuditError when it cannot run."""
    import keras
    import tensorflow as tf
    from tqdm import tqdm

    from pipeline.cams import get_method
    from pipeline.cams.base import make_step
    from pipeline.data.batches import make_batches
    from pipeline.outputs import HeatmapWriter, SamplesWriter, Staging, write_json, write_junit, write_summary_md
    from pipeline.report import render_report

    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    baseline_path = baseline or cfg.baseline
    base = _load_baseline(baseline_path) if baseline_path else None
    keras.utils.set_random_seed(cfg.seed)
    prep = prepare(cfg, limit=limit)
    model, samples, boxes, names = prep.model, prep.samples, prep.boxes, prep.class_names
    n = len(samples)
    size = model.input_size

    predicted = np.full(n, -1, np.int64)
    confidence = np.full(n, np.nan)
    correct = np.zeros(n, bool)
    metrics = {k: np.full(n, np.nan) for k in ("energy_in_box", "box_area_fraction", "energy_lift", "focus_score", "pointing_hit")}
    flags = np.full(n, "skipped", dtype=object)
    reasons = np.array([s.skip_reason or "" for s in samples], dtype=object)
    label_sets = [s.labels for s in samples]
    has_label = np.zeros((n, model.n_classes), bool)  # has_label[i, c]: class c is among sample i's labels
    for s in samples:
        has_label[s.row, [names.index(lab) for lab in s.labels if lab in names]] = True
    static = {
        "sample_id": np.array([s.sample_id for s in samples], dtype=object),
        "image": np.array([s.image for s in samples], dtype=object),
        "label": np.array(["|".join(s.labels) for s in samples], dtype=object),
    }
    name_array = np.array(names, dtype=object)

    out_dir = _output_dir(cfg, output)
    try:
        staging = Staging(out_dir)
    except OSError as exc:
        raise AuditError(f"{out_dir}: expected a folder the audit can write its outputs to, found an error: {exc.strerror or exc}") from None
    try:
        csv_out = SamplesWriter(staging.path / "samples.csv")
        heat = HeatmapWriter(staging.path, n, model.layer_shape[:2])
        written = 0

        def emit(upto: int) -> None:
            """Append samples.csv rows [written, upto): every row before the batch's last is final."""
            nonlocal written
            if upto <= written:
                return
            sl = slice(written, upto)
            scored = flags[sl] != "skipped"
            hit = metrics["pointing_hit"][sl]
            csv_out.write_columns({
                "row": np.arange(written, upto),
                **{k: v[sl] for k, v in static.items()},
                "predicted": np.where(predicted[sl] >= 0, name_array[np.maximum(predicted[sl], 0)], ""),
                "confidence": confidence[sl],
                "correct": np.where(scored, np.where(correct[sl], "true", "false"), ""),
                **{k: metrics[k][sl] for k in ("energy_in_box", "box_area_fraction", "energy_lift", "focus_score")},
                "pointing_hit": np.where(np.isnan(hit), "", np.where(hit > 0, "true", "false")),
                "flag": flags[sl],
                "skip_reason": reasons[sl],
            })
            written = upto

        usable = [s for s in samples if s.skip_reason is None]
        step = make_step(model.cam_model, get_method(cfg.explain.method), n_classes=model.n_classes, jit_compile=cfg.explain.jit_compile)
        batches = make_batches(
            [s.row for s in usable], [str(s.path) for s in usable],
            input_size=size, resize=cfg.model.resize, preprocessing=cfg.model.preprocessing, batch_size=cfg.explain.batch_size,
        )
        targets_all = np.array([s.target for s in samples], np.int32)
        bar = tqdm(total=len(usable), desc=f"audit {cfg.name}", unit="img", disable=not progress, file=sys.stderr)
        t_loop = time.perf_counter()
        t_first = None
        for rows_t, images, errors in batches:
            rows = rows_t.numpy()
            real = rows >= 0
            scores_t, chosen_t, cams_t = step(images, tf.constant(np.where(real, targets_all[np.maximum(rows, 0)], -1), tf.int32))
            rows, cams = rows[real], cams_t.numpy()[real]
            logits, chosen = scores_t.numpy()[real].astype(np.float64), chosen_t.numpy()[real]
            errs = errors.numpy()[real]
            failed = errs != b""
            if model.output_activation == "sigmoid":
                probs = 1.0 / (1.0 + np.exp(-logits))
            else:
                z = np.exp(logits - logits.max(axis=1, keepdims=True))
                probs = z / z.sum(axis=1, keepdims=True)
            pred = logits.argmax(axis=1)
            predicted[rows] = np.where(failed, -1, pred)
            confidence[rows] = np.where(failed, np.nan, probs[np.arange(len(rows)), pred])
            correct[rows] = has_label[rows, pred] & ~failed
            # Score against the explained class's boxes when present, else against every box.
            valid = boxes.valid[rows]
            match = valid & (boxes.classes[rows] == chosen[:, None])
            use = np.where(match.any(axis=1, keepdims=True), match, valid)
            sc = score(cams, boxes.pixels[rows], use, size)
            for key in metrics:
                metrics[key][rows] = np.where(failed, np.nan, getattr(sc, key))
            flags[rows] = assign_flags(
                correct=correct[rows], focus_value=getattr(sc, cfg.scoring.focus_metric), judged=sc.judged,
                skipped=failed, focus_min=cfg.scoring.focus_min,
            )
            if failed.any():
                reasons[rows[failed]] = [e.decode() for e in errs[failed]]
            heat.write(rows[~failed], cams[~failed], chosen[~failed])
            emit(int(rows.max()) + 1)
            bar.update(len(rows))
            if t_first is None:
                t_first = time.perf_counter()
        bar.close()
        emit(n)
        t_end = time.perf_counter()
        loop_seconds = t_end - t_loop
        first_batch = min(cfg.explain.batch_size, len(usable))
        steady = (len(usable) - first_batch) / (t_end - t_first) if t_first is not None and t_end > t_first and len(usable) > first_batch else None
        csv_out.close()
        heat.close()

        table = aggregates.SampleTable(label_sets, correct, metrics["energy_in_box"], metrics["focus_score"], metrics["energy_lift"], metrics["pointing_hit"], metrics["box_area_fraction"], flags)
        overall = aggregates.summarize(table)
        per_class = aggregates.by_class(table, names)
        results = gate.evaluate(cfg.gate, overall, per_class, base["aggregates"] if base else None)
        verdict = gate.verdict(results)
        ended = dt.datetime.now(dt.timezone.utc)
        summary = {
            "name": cfg.name,
            "verdict": verdict,
            "exit_code": gate.EXIT_CODES[verdict],
            "gate": [
                {"metric": r.rule.metric, "label": r.label, "aggregate": r.rule.aggregate, "kind": r.rule.kind, "threshold": r.rule.threshold, "scope": r.scope,
                 "value": r.value, "baseline": r.baseline, "status": r.status, "message": r.message}
                for r in results
            ],
            "aggregates": {"overall": overall, "per_class": per_class},
            "flag_counts": aggregates.flag_counts(flags),
            "class_names": list(names),
            "skipped": [{"row": i, "sample_id": samples[i].sample_id, "reason": reasons[i]} for i in range(n) if flags[i] == "skipped"],
            "provenance": {
                "config": str(cfg.source),
                "config_sha256": cfg.sha256,
                "config_resolved": cfg.resolved,
                "model": str(cfg.model.path),
                "model_sha256": sha256_file(cfg.model.path),
                "dataset_annotations": str(cfg.dataset.annotations),
                "dataset_images": str(cfg.dataset.images),
                "dataset_fingerprint": dataset_fingerprint(prep.annotations, samples),
                "dataset_format": cfg.dataset.format,
                "target_layer": model.target_layer,
                "target_layer_shape": list(model.layer_shape),
                "input_size": list(size),
                "output_activation_stripped": model.output_activation,
                "method": cfg.explain.method,
                "target": cfg.explain.target,
                "batch_size": cfg.explain.batch_size,
                "jit_compile": cfg.explain.jit_compile,
                "focus_metric": cfg.scoring.focus_metric,
                "focus_min": cfg.scoring.focus_min,
                "seed": cfg.seed,
                "baseline": str(baseline_path) if baseline_path else None,
                "versions": _versions(),
                "started": started.isoformat(timespec="seconds"),
                "ended": ended.isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - t0, 3),
                "explain_seconds": round(loop_seconds, 3),
                "samples_per_second": round(len(usable) / loop_seconds, 2) if loop_seconds > 0 else None,
                "first_batch_seconds": round(t_first - t_loop, 3) if t_first is not None else None,
                "steady_samples_per_second": round(steady, 2) if steady else None,
            },
        }
        write_json(staging.path / "summary.json", summary)
        write_summary_md(staging.path / "summary.md", summary)
        write_junit(staging.path / "junit.xml", summary)
        t_report = time.perf_counter()
        render_report(
            staging.path / "report.html", summary, prep, table,
            cams=np.load(staging.path / "cams.npy", mmap_mode="r"), predicted=predicted, confidence=confidence,
            baseline=base, baseline_path=baseline_path,
        )
        timings = {"explain_seconds": loop_seconds, "report_seconds": time.perf_counter() - t_report}
        heat.cleanup()
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    return AuditResult(verdict, gate.EXIT_CODES[verdict], out_dir, summary, timings)

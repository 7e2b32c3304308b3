"""summary.json's content, built from plain results (no TensorFlow, no I/O but file hashing)."""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline.conclude import aggregates, gate
from pipeline.config import AuditConfig
from pipeline.data.records import Annotations
from pipeline.data.samples import Sample
from pipeline.evidence.checks import TrustCheck
from pipeline.records.gate import RuleRecord
from pipeline.records.plain import Json, JsonObject


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


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("tensorflow", "keras", "numpy", "pandas", "scikit-image", "scipy", "jinja2", "pyyaml", "pillow"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def fingerprints(cfg: AuditConfig, prep: Any) -> dict[str, str]:
    """What identifies the run's inputs: the config's, model file's and dataset's sha256."""
    conversion = getattr(prep, "conversion", None)  # a Keras 2 model: its source's sha256, not the conversion's
    return {"config_sha256": cfg.sha256, "model_sha256": conversion.sha256 if conversion is not None else sha256_file(cfg.model.path),
            "dataset_fingerprint": dataset_fingerprint(prep.annotations, prep.samples)}


def gate_records(results: Sequence[gate.RuleResult]) -> list[RuleRecord]:
    """Each rule's result; ``n`` and ``interval`` are of the value (of the change for change rules),
    ``compared`` what met the threshold (the point value or the rule's ``bound``)."""
    shown = [r.interval if r.interval is not None and r.interval.method != "none" else None for r in results]
    return [RuleRecord(metric=r.rule.metric, label=r.label, aggregate=r.rule.aggregate, kind=r.rule.kind, threshold=r.rule.threshold,
                       bound=r.rule.bound, scope=r.scope, value=r.value, baseline=r.baseline, compared=r.compared,
                       n=i.n if i else None, interval=(i.low, i.high) if i else None, interval_method=i.method if i else None,
                       status=r.status, message=r.message, warning=r.warning or None)
            for r, i in zip(results, shown)]


def trust_section(checks: Sequence[TrustCheck], cfg: AuditConfig) -> JsonObject:
    failed = [c.name for c in checks if c.status == gate.FAIL]
    return {
        "status": gate.FAIL if failed else gate.PASS,
        "failed": failed,
        "checks": [c.to_json() for c in checks],
        "min_confirmed": cfg.trust.min_confirmed,
        "min_claims": cfg.trust.min_claims,
        "dependence_min": cfg.evidence.dependence_min,
    }


def explanation_section(table: aggregates.SampleTable, notes: np.ndarray | None, cfg: AuditConfig) -> JsonObject | None:
    """The explanation-vs-behaviour 2x2 with chance agreement, κ and the claim-confirmation rates
    (Wilson intervals at ``statistics.interval``), and the samples removal could not judge."""
    from pipeline.evidence import checks

    if table.object_dependence is None:
        return None
    cells = checks.agreement_cells(table.flags, table.object_dependence, table.dependence_min)
    counts = {k: int(v.size) for k, v in cells.items()}
    kappa, reason = checks.kappa(cells)
    rates = {}
    for claim, yes, no in (("on_target", "on_needed", "on_not_needed"), ("off_target", "off_not_needed", "off_needed")):
        n = counts[yes] + counts[no]
        low, high = checks.wilson(counts[yes], n, cfg.statistics.interval)
        rates[f"{claim}_confirmed_rate"] = {"value": counts[yes] / n if n else None, "n": n, "interval": [low, high]}
    notes = np.asarray(notes if notes is not None else [], dtype=object)
    n = sum(counts.values())
    return {
        "cells": counts, "n": n, "agreement": (counts["on_needed"] + counts["off_not_needed"]) / n if n else None,
        "chance_agreement": checks.chance_agreement(cells), "kappa": kappa, "kappa_reason": reason or None, **rates,
        "interval_level": cfg.statistics.interval,
        "not_judged_large_region": int(sum(str(x).startswith("region covers") for x in notes)),
        "blank_also_right": int(sum(str(x).startswith("the blank image") for x in notes)),
        "removal_region": cfg.evidence.removal_region, "max_region_fraction": cfg.evidence.max_region_fraction,
    }


def build_summary(
    cfg: AuditConfig,
    *,
    verdict: str,
    results: Sequence[gate.RuleResult],
    trust: Mapping[str, Json],
    table: aggregates.SampleTable,
    overall: Mapping[str, float],
    per_class: Mapping[str, Mapping[str, float]],
    class_names: Sequence[str],
    labels: Sequence[str],
    samples: Sequence[Sample],
    reasons: np.ndarray,
    provenance: Mapping[str, Json],
    baseline: Mapping[str, Json] | None = None,
    dataset_problems: Sequence[str] = (),
    strategies: Mapping[str, Json] | None = None,
    explanation: Mapping[str, Json] | None = None,
    probes: Mapping[str, Json] | None = None,
) -> JsonObject:
    """``overall`` and ``per_class``: every gate-able aggregate (the sample table's and the strategies')."""
    return {
        "baseline": dict(baseline) if baseline else None,
        "name": cfg.name,
        "verdict": verdict,
        "exit_code": gate.EXIT_CODES[verdict],
        "gate": [r.to_json() for r in gate_records(results)],
        "trust": dict(trust),
        "explanation": dict(explanation) if explanation is not None else None,
        "aggregates": {"overall": dict(overall), "per_class": {k: dict(v) for k, v in per_class.items()}},
        "flag_counts": aggregates.flag_counts(table.flags),
        "class_names": list(class_names),
        "labels": list(labels),
        "skipped": [{"row": i, "sample_id": samples[i].sample_id, "reason": reasons[i]} for i in range(len(samples)) if table.flags[i] == "skipped"],
        "dataset_problems": list(dataset_problems),
        "strategies": dict(strategies) if strategies is not None else None,
        "probes": dict(probes) if probes is not None else None,
        "provenance": dict(provenance),
    }


def provenance(cfg: AuditConfig, prep: Any, *, fingerprints: Mapping[str, str], baseline_path: Path | None,
               timing: Mapping[str, Json]) -> JsonObject:
    """``fingerprints``: the run's ``model_sha256`` and ``dataset_fingerprint`` (see :func:`fingerprints`)."""
    model = prep.model
    return {
        "config": str(cfg.source),
        "config_sha256": cfg.sha256,
        "config_resolved": cfg.resolved,
        "model": str(cfg.model.path),
        "model_sha256": fingerprints["model_sha256"],
        "dataset_annotations": str(cfg.dataset.annotations),
        "dataset_images": str(cfg.dataset.images),
        "dataset_fingerprint": fingerprints["dataset_fingerprint"],
        "dataset_format": cfg.dataset.format,
        "target_layer": model.target_layer,
        "tokens": (dict(zip(("special_tokens", "h", "w"), model.tokens)) if model.tokens else None),
        "class_source": prep.space.source,
        "label_map": bool(cfg.dataset.label_map),
        "multi_label": prep.multi_label,
        "threshold": cfg.model.threshold if prep.multi_label else None,
        "region": cfg.dataset.region,
        "target_layer_shape": list(model.layer_shape),
        "target_layer_skipped": list(getattr(model, "skipped_layers", ())),
        # the auto rule's candidates: maps every path to the scores passes through (a branch's map explains a branch)
        "target_layer_candidates": [{"name": name, "shape": [s for s in shape[1:]]} for name, shape, trunk in model.candidates
                                    if trunk][-12:],
        "input_size": list(model.input_size),
        "input": _input(model.input),
        "output_activation_stripped": model.output_activation,
        "method": cfg.explain.method,
        "compare_method": cfg.explain.compare_method,
        "interventions": cfg.evidence.interventions,
        "fill": cfg.evidence.fill,
        "target": cfg.explain.target,
        "batch_size": cfg.explain.batch_size,
        "jit_compile": cfg.explain.jit_compile,
        "focus_metric": cfg.scoring.focus_metric,
        "focus_min": cfg.scoring.focus_min,
        "seed": cfg.seed,
        "model_source": prep.conversion.record() if getattr(prep, "conversion", None) is not None else None,
        "model_repairs": list(getattr(getattr(prep, "loaded", None), "repairs", ())),
        "preprocessing_check": prep.check.record() if getattr(prep, "check", None) is not None else None,
        "baseline": str(baseline_path) if baseline_path else None,
        "versions": versions(),
        **timing,
    }


def _input(spec: Any) -> JsonObject:
    """How images became the input (pipeline.data.geometry.InputSpec), for provenance."""
    out = {"resize_mode": spec.mode, "interpolation": spec.interpolation, "preprocessing": spec.preprocessing,
           "antialias": spec.antialias, "channels": spec.channels, "luma": spec.gray}
    if spec.mode == "crop":
        out["crop_fraction"] = spec.crop_fraction
    if spec.mode == "pad":
        out["pad_value"] = spec.pad_value
    if spec.preprocessing == "model":
        out.update(scale=list(spec.scale) if spec.scale else None, offset=list(spec.offset) if spec.offset else None)
    return out

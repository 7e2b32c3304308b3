"""summary.json's content, built from plain results (no TensorFlow, no I/O but file hashing)."""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline import aggregates, gate
from pipeline.config import AuditConfig
from pipeline.data.records import Annotations
from pipeline.data.samples import Sample
from pipeline.evidence import TrustCheck


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
    return {"config_sha256": cfg.sha256, "model_sha256": sha256_file(cfg.model.path),
            "dataset_fingerprint": dataset_fingerprint(prep.annotations, prep.samples)}


def gate_entries(results: Sequence[gate.RuleResult]) -> list[dict[str, Any]]:
    return [
        {"metric": r.rule.metric, "label": r.label, "aggregate": r.rule.aggregate, "kind": r.rule.kind, "threshold": r.rule.threshold,
         "scope": r.scope, "value": r.value, "baseline": r.baseline, "status": r.status, "message": r.message}
        for r in results
    ]


def trust_section(checks: Sequence[TrustCheck], cfg: AuditConfig) -> dict[str, Any]:
    failed = [c.name for c in checks if c.status == gate.FAIL]
    return {
        "status": gate.FAIL if failed else gate.PASS,
        "failed": failed,
        "checks": [{"name": c.name, "value": c.value, "threshold": c.threshold, "status": c.status, "message": c.message, "n": c.n}
                   for c in checks],
        "min_agreement": cfg.trust.min_agreement,
        "dependence_min": cfg.evidence.dependence_min,
    }


def build_summary(
    cfg: AuditConfig,
    *,
    verdict: str,
    results: Sequence[gate.RuleResult],
    trust: Mapping[str, Any],
    table: aggregates.SampleTable,
    overall: Mapping[str, float],
    per_class: Mapping[str, Mapping[str, float]],
    class_names: Sequence[str],
    labels: Sequence[str],
    samples: Sequence[Sample],
    reasons: np.ndarray,
    provenance: Mapping[str, Any],
    baseline: Mapping[str, Any] | None = None,
    dataset_problems: Sequence[str] = (),
    strategies: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``overall`` and ``per_class``: every gate-able aggregate (the sample table's and the strategies')."""
    return {
        "baseline": dict(baseline) if baseline else None,
        "name": cfg.name,
        "verdict": verdict,
        "exit_code": gate.EXIT_CODES[verdict],
        "gate": gate_entries(results),
        "trust": dict(trust),
        "aggregates": {"overall": dict(overall), "per_class": {k: dict(v) for k, v in per_class.items()}},
        "flag_counts": aggregates.flag_counts(table.flags),
        "class_names": list(class_names),
        "labels": list(labels),
        "skipped": [{"row": i, "sample_id": samples[i].sample_id, "reason": reasons[i]} for i in range(len(samples)) if table.flags[i] == "skipped"],
        "dataset_problems": list(dataset_problems),
        "strategies": dict(strategies) if strategies is not None else None,
        "provenance": dict(provenance),
    }


def provenance(cfg: AuditConfig, prep: Any, *, fingerprints: Mapping[str, str], baseline_path: Path | None,
               timing: Mapping[str, Any]) -> dict[str, Any]:
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
        "input_size": list(model.input_size),
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
        "baseline": str(baseline_path) if baseline_path else None,
        "versions": versions(),
        **timing,
    }

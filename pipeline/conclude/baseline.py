"""Is a baseline audit comparable with this one? (pure; DESIGN §5 ``baseline``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from pipeline.errors import AuditError
from pipeline.records.plain import Json, JsonObject

DIFFERENT_DATA = "baseline ran on a different evaluation set: changes compare different data"


def comparability(base: Mapping[str, Json], *, path: Path, dataset_fingerprint: str, model_sha256: str, config_sha256: str) -> JsonObject:
    """``{path, dataset_matches, model_changed, config_changed}`` from the fingerprints in the
    baseline's provenance (a value the baseline does not record counts as different)."""
    prov = base.get("provenance", {}) if isinstance(base.get("provenance"), dict) else {}
    return {
        "path": str(path),
        "dataset_matches": prov.get("dataset_fingerprint") == dataset_fingerprint,
        "model_changed": prov.get("model_sha256") != model_sha256,
        "config_changed": prov.get("config_sha256") != config_sha256,
    }


def note(info: Mapping[str, Json] | None) -> str | None:
    """The plain sentence shown beside every change rule, or None when the data are the same."""
    return None if info is None or info["dataset_matches"] else DIFFERENT_DATA


def load_baseline(path: Path) -> dict:
    """A previous audit's summary.json (AuditError naming the file when it is not one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["aggregates"]["overall"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditError(f"{path}: expected a summary.json from a previous audit, found {type(exc).__name__}: {exc}") from None
    return data


def compare_baseline(base: dict | None, baseline_path: Path | None, prints: dict[str, str], *, require_same: bool) -> dict | None:
    """The baseline's comparability (None without one); a baseline on other data is exit 2 when ``require_same``
    (``baseline.require_same_dataset``)."""
    compared = comparability(base, path=baseline_path, **prints) if base is not None and baseline_path else None
    if compared and not compared["dataset_matches"] and require_same:
        theirs = str((base.get("provenance") or {}).get("dataset_fingerprint") or "none recorded")[:12]
        raise AuditError(
            f"{baseline_path}: baseline.require_same_dataset: expected a baseline audited on the same evaluation set "
            f"(dataset fingerprint {prints['dataset_fingerprint'][:12]}), found one on {theirs}")
    return compared

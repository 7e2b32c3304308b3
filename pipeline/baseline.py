"""Is a baseline audit comparable with this one? (pure; DESIGN §5 ``baseline``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

DIFFERENT_DATA = "baseline ran on a different evaluation set: changes compare different data"


def comparability(base: Mapping[str, Any], *, path: Path, dataset_fingerprint: str, model_sha256: str, config_sha256: str) -> dict[str, Any]:
    """``{path, dataset_matches, model_changed, config_changed}`` from the fingerprints in the
    baseline's provenance (a value the baseline does not record counts as different)."""
    prov = base.get("provenance", {}) if isinstance(base.get("provenance"), dict) else {}
    return {
        "path": str(path),
        "dataset_matches": prov.get("dataset_fingerprint") == dataset_fingerprint,
        "model_changed": prov.get("model_sha256") != model_sha256,
        "config_changed": prov.get("config_sha256") != config_sha256,
    }


def note(info: Mapping[str, Any] | None) -> str | None:
    """The plain sentence shown beside every change rule, or None when the data are the same."""
    return None if info is None or info["dataset_matches"] else DIFFERENT_DATA

"""A Keras 2 model on its way in (DESIGN §14): resolved to its Keras 3 conversion (cached or converted now), and
the conversion checked against the tf_keras model on the evaluation images before any Grad-CAM."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import AuditConfig
from pipeline.errors import ModelError

if TYPE_CHECKING:
    from pipeline.model.legacy import Conversion
    from pipeline.prepare import Prepared

@dataclass(frozen=True)
class Legacy:
    """A Keras 2 model on its way in: its conversion, and the tf_keras model while the conversion is unchecked."""

    conversion: "Conversion"
    model: Any = None  # the tf_keras model (None when the conversion came from the cache, checked)


def resolve_legacy(cfg: AuditConfig, reports: Path) -> tuple[AuditConfig, Legacy | None]:
    """A Keras 2 SavedModel / .h5 / .keras: the config pointed at its Keras 3 conversion (from the cache under
    ``reports``, or converted now and checked by :func:`check_conversion`); a Keras 3 file: unchanged."""
    from pipeline.model import legacy

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
    from pipeline.model import legacy

    conversion = state.conversion
    if state.model is not None:
        from pipeline.data.batches import spec_preprocessing
        from pipeline.model.preprocessing import preprocessed_batch

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

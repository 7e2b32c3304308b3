"""The check of a Keras 2 model's conversion (DESIGN §14), before any Grad-CAM: the tf_keras model and its Keras 3
rebuild give the same probabilities on a seeded batch of the evaluation images (after the config's
preprocessing), to :data:`~pipeline.model.legacy.MAX_DIFF`; else exit 2 naming the first layer whose outputs
differ. Only a checked conversion is cached."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ModelError

if TYPE_CHECKING:
    from pipeline.model.load import LoadedModel
    from pipeline.prepare.prepared import Prepared


def check_conversion(prep: "Prepared", *, reports: Path, batch_size: int, seed: int) -> "Prepared":
    """``prep`` with its model's conversion checked and cached under ``reports``; unchanged for a Keras 3 file
    or a conversion that came from the cache (checked when it was made)."""
    from dataclasses import replace

    loaded: LoadedModel = prep.loaded
    if loaded.original is None or loaded.conversion is None:
        return prep
    from pipeline.data.batches import spec_preprocessing
    from pipeline.model import legacy
    from pipeline.prepare.preprocessing_check import preprocessed_batch

    images = preprocessed_batch(prep, legacy.CHECK_IMAGES, batch_size, seed, spec_preprocessing(prep.model.input))
    diff = legacy.max_difference(loaded.original, loaded.model, images)
    if not diff <= legacy.MAX_DIFF:
        where = legacy.first_difference(loaded.original, loaded.model, images, loaded.names)
        raise ModelError(f"{loaded.file.path}: expected the Keras 3 rebuild to match the Keras 2 model (max |Δ probability| "
                         f"<= {legacy.MAX_DIFF:g} on {len(images)} evaluation images), found {diff:.3g}; the first layer whose "
                         f"outputs differ: {where}")
    accepted = legacy.accept(loaded.conversion, loaded.model, legacy.cache_dir(reports), diff, len(images))
    return replace(prep, loaded=loaded.checked(accepted))

"""The cascading model-randomisation trust check (Adebayo et al. 2018; DESIGN §6). Needs TensorFlow.

A copy of the model is loaded afresh from its Keras 3 file (the user's model object is never touched);
its layers from the output down to and including the target layer are re-initialised with their
own initialisers, ``trust.randomisation_draws`` times with seeds derived from ``seed``. For each
draw, the configured CAM method is recomputed for the same explained classes on a seeded subset
of the scored samples. The statistic is the median, over every (draw, sample) pair, of the
Spearman rank correlation between the audit's native map and the randomised one (constant maps
excluded). Several draws, because with a shallow head one draw is a coin flip: when only a
Dense layer is re-initialised the map is ReLU(A · w_random), and whether it resembles the trained
map depends mostly on the sign of the random weights' sum (seen on the demo: -0.33 to 0.93 over
five seeds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.config import AuditConfig
from pipeline.data.samples import Sample
from pipeline.evidence.interventions import seeded_subset
from pipeline.evidence.checks import rank_correlation
from pipeline.data.labels import allowed_classes
from pipeline.model.explainable import AuditModel


def randomisation_statistic(
    cfg: AuditConfig, model: AuditModel, samples: Sequence[Sample], cams: np.ndarray, target_class: np.ndarray,
    timing: dict | None = None, *, keras_file: Path,
) -> tuple[float, int, np.ndarray]:
    """(median rank correlation, number of (draw, sample) pairs it is over, rows used).

    ``cams`` (N, h, w) and ``target_class`` (N,) are the audit's own outputs; rows with target -1
    (skipped) are never chosen. ``timing`` (if given) receives seconds: ``setup`` (copy loaded,
    images decoded), ``first_draw`` (includes tracing), ``per_draw`` (the later draws' mean),
    ``reinitialise`` (host time re-initialising layers, all draws) and ``samples``.
    """
    import time

    t0 = time.perf_counter()
    from pipeline.explain.cams import get_method
    from pipeline.explain.cams.step import make_step
    from pipeline.data.batches import sample_batches
    from pipeline.model.cam_model import build_cam_model
    from pipeline.model.explainable import randomisable_layers, reinitialise
    from pipeline.model.graph import flat_layers, layer_ids
    from pipeline.model.load import load_keras_model

    rows = seeded_subset(np.flatnonzero(np.asarray(target_class) >= 0), cfg.trust.randomisation_samples, cfg.seed)
    if rows.size == 0:
        return float("nan"), 0, rows
    copy = load_keras_model(keras_file)  # the model's Keras 3 file (a Keras 2 model: its checked conversion)
    cam_model, _, _ = build_cam_model(copy, list(model.target_path), model.input_size, source=keras_file, tokens=model.tokens)
    # The sub-model's output layer may be a twin without the softmax (a copy of the weights): re-initialise it too.
    own = layer_ids(copy)
    twins = [layer for _, layer in flat_layers(cam_model) if id(layer) not in own and layer.weights]
    layers = randomisable_layers(copy, "/".join(model.target_path)) + twins
    step = make_step(cam_model, get_method(cfg.explain.method), n_classes=model.n_classes, input_size=model.input_size, tokens=model.tokens)
    batch = cfg.explain.batch_size
    no_boxes = (np.zeros((batch, 1, 4), np.int32), np.zeros((batch, 1), np.int32), np.zeros((batch, 1), bool))
    batches = list(sample_batches([samples[r] for r in rows], model.input, batch))
    original = np.asarray(cams)[rows]
    position = {int(r): i for i, r in enumerate(rows)}
    correlations = []
    t_setup, reinit, draws = time.perf_counter() - t0, 0.0, []
    for draw in range(cfg.trust.randomisation_draws):
        t_draw = time.perf_counter()
        reinitialise(layers, seed=cfg.seed * 1009 + draw)
        reinit += time.perf_counter() - t_draw
        randomised = np.full(original.shape, np.nan, np.float32)
        for batch_rows, images, _raw, errors in batches:
            r = batch_rows.numpy()
            targets = np.where(r >= 0, np.asarray(target_class)[np.maximum(r, 0)], -1)
            maps = step(images, images, allowed_classes(targets, model.n_classes), *no_boxes)["cams"].numpy()
            for i, row in enumerate(r):
                if row >= 0 and not errors.numpy()[i]:
                    randomised[position[int(row)]] = maps[i]
        correlations.append(rank_correlation(original, randomised))
        draws.append(time.perf_counter() - t_draw)
    if timing is not None:
        timing.update(setup=round(t_setup, 3), first_draw=round(draws[0], 3), reinitialise=round(reinit, 3), samples=int(rows.size),
                      per_draw=round(float(np.mean(draws[1:])), 3) if len(draws) > 1 else None)
    corr = np.concatenate(correlations)
    finite = corr[~np.isnan(corr)]
    return (float(np.median(finite)) if finite.size else float("nan")), int(finite.size), rows

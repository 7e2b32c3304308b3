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

import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from pipeline.config import AuditConfig
from pipeline.data.samples import Sample
from pipeline.evidence.interventions import seeded_subset
from pipeline.evidence.checks import rank_correlation
from pipeline.evidence.sequential import OPEN, decide, schedule
from pipeline.data.labels import allowed_classes
from pipeline.model.explainable import AuditModel


def randomisation_statistic(
    cfg: AuditConfig, model: AuditModel, samples: Sequence[Sample], cams: np.ndarray, target_class: np.ndarray,
    timing: dict | None = None, *, keras_file: Path, sequential: bool = False, start: Callable[[int, str], None] | None = None,
    tick: Callable[[int], None] = lambda n: None,
) -> tuple[float, int, np.ndarray]:
    """(median rank correlation, number of (draw, sample) pairs it is over, rows used).

    ``cams`` (N, h, w) and ``target_class`` (N,) are the audit's own outputs; rows with target -1
    (skipped) are never chosen. ``timing`` (if given) receives seconds: ``setup`` (copy loaded,
    images decoded), ``first_draw`` (includes tracing), ``per_draw`` (the later draws' mean),
    ``reinitialise`` (host time re-initialising layers, all draws) and ``samples`` (of ``samples_max``).
    ``sequential``: the samples in looks of 16, 32, ... (DESIGN §18), stopping when the median's interval lies wholly
    below ``trust.max_randomised_similarity`` or reaches it.
    """
    import time

    from pipeline.data.batches import sample_batches
    from pipeline.model.explainable import reinitialise

    t0 = time.perf_counter()
    rows = seeded_subset(np.flatnonzero(np.asarray(target_class) >= 0), cfg.trust.randomisation_samples, cfg.seed)
    if rows.size == 0:
        return float("nan"), 0, rows
    step, layers = _randomisable_step(cfg, model, keras_file)
    batch = cfg.explain.batch_size
    # the looks take the samples in a seeded order (one look: the fixed-size run's own order)
    order = np.random.default_rng(cfg.seed + 3).permutation(rows) if sequential else rows
    plan = schedule(len(rows), cfg.statistics.interval, sequential)
    correlations = np.full((cfg.trust.randomisation_draws, len(rows)), np.nan)
    position = {int(r): i for i, r in enumerate(rows)}
    t_setup, reinit, draws, done = time.perf_counter() - t0, 0.0, [], 0
    (start or (lambda total, unit: None))(cfg.trust.randomisation_draws * len(rows), "maps")
    for k, n in enumerate(plan.looks):
        new = [samples[int(r)] for r in order[done:n]]
        batches = list(sample_batches(new, model.input, batch))
        for draw in range(cfg.trust.randomisation_draws):
            t_draw = time.perf_counter()
            reinitialise(layers, seed=cfg.seed * 1009 + draw)
            reinit += time.perf_counter() - t_draw
            _correlate(step, batches, cams, target_class, model.n_classes, position, correlations[draw])
            draws.append(time.perf_counter() - t_draw)
            tick(len(new))
        done = n
        seen = np.sort([position[int(x)] for x in order[:n]])
        median, low, high = _median_interval(correlations[:, seen], plan.level_at(n), cfg.seed)
        if k < len(plan.looks) - 1 and decide(low, high, cfg.trust.max_randomised_similarity, final=False) != OPEN:
            tick((len(rows) - n) * cfg.trust.randomisation_draws)
            break
    used = order[:done]
    if timing is not None:
        timing.update(setup=round(t_setup, 3), first_draw=round(draws[0], 3), reinitialise=round(reinit, 3), samples=int(used.size),
                      samples_max=int(rows.size), per_draw=round(float(np.mean(draws[1:])), 3) if len(draws) > 1 else None)
    corr = correlations[:, np.sort([position[int(x)] for x in used])].ravel()
    finite = corr[~np.isnan(corr)]
    return (float(np.median(finite)) if finite.size else float("nan")), int(finite.size), np.sort(used)


def _randomisable_step(cfg: AuditConfig, model: AuditModel, keras_file: Path) -> tuple[Callable, list]:
    """A fresh copy of the model from its Keras 3 file (a Keras 2 model: its checked conversion) and its Grad-CAM step:
    (the compiled step, the layers to re-initialise for each draw)."""
    from pipeline.explain.cams import get_method
    from pipeline.explain.cams.step import make_step
    from pipeline.model.cam_model import build_cam_model
    from pipeline.model.explainable import randomisable_layers
    from pipeline.model.graph import flat_layers, layer_ids
    from pipeline.model.load import load_keras_model

    copy = load_keras_model(keras_file)
    cam_model, _, _ = build_cam_model(copy, list(model.target_path), model.input_size, source=keras_file, tokens=model.tokens)
    # The sub-model's output layer may be a twin without the softmax (a copy of the weights): re-initialise it too.
    own = layer_ids(copy)
    twins = [layer for _, layer in flat_layers(cam_model) if id(layer) not in own and layer.weights]
    layers = randomisable_layers(copy, "/".join(model.target_path)) + twins
    step = make_step(cam_model, get_method(cfg.explain.method), n_classes=model.n_classes, input_size=model.input_size, tokens=model.tokens)
    return step, layers


def _correlate(step: Callable, batches: Sequence[tuple], cams: np.ndarray, target_class: np.ndarray, n_classes: int,
               position: Mapping[int, int], out: np.ndarray) -> None:
    """One draw: each batch's maps under the re-initialised weights, their rank correlation with the audit's own ``cams``
    written into ``out`` (one slot per chosen row, at ``position[row]``)."""
    for batch_rows, images, _raw, errors in batches:
        r = batch_rows.numpy()
        n = len(r)
        no_boxes = (np.zeros((n, 1, 4), np.int32), np.zeros((n, 1), np.int32), np.zeros((n, 1), bool))
        targets = np.where(r >= 0, np.asarray(target_class)[np.maximum(r, 0)], -1)
        maps = step(images, images, allowed_classes(targets, n_classes), *no_boxes)["cams"].numpy()
        ok = (r >= 0) & np.array([not e for e in errors.numpy()], bool)
        idx = [position[int(x)] for x in r[ok]]
        if idx:
            out[idx] = rank_correlation(np.asarray(cams)[r[ok]], maps[ok])


def _median_interval(correlations: np.ndarray, level: float, seed: int) -> tuple[float, float, float]:
    """(median, low, high) of the (draw, sample) correlations, the interval a bootstrap over samples (each with its draws)."""
    finite = correlations[~np.isnan(correlations)]
    if not finite.size:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    n = correlations.shape[1]
    stats = [np.nanmedian(correlations[:, rng.integers(0, n, n)]) for _ in range(BOOTSTRAP)]
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(stats, [tail, 100 - tail])
    return float(np.median(finite)), float(low), float(high)


BOOTSTRAP = 400  # resamples of the decision's interval (the reported statistic is the median itself)

"""The preprocessing check (no silent FIT on a misconfigured audit; DESIGN §3, §16): before any Grad-CAM, a seeded,
label-stratified batch of the evaluation images goes through the model under the configured preprocessing and under
each alternative, and under the other resize convention (``model.antialias``).

- A preprocessing that is clearly right where the configured one is not stops the audit (exit 2) saying both:
  clearly right = the paired difference of the two accuracies on the same images has a 90% interval whose lower
  bound reaches MIN_GAIN (so a handful of images cannot flip it), or the configured one answers one class for most
  of the batch while the other does not and is CONSTANT_GAIN more accurate.
- The other resize convention (an antialiased resize, as PIL and ``load_img`` shrink, or the plain one) being at
  least RESIZE_GAIN more accurate, with the paired interval above 0, is a warning (summary provenance
  ``preprocessing_check.resize``; a ``data`` finding): both conventions are legitimate, the training's is not known.

:func:`judge` and :func:`pipeline.records.preprocessing.resize_verdict` are pure (numbers in, verdict out); :func:`run_check` runs the forward
passes (TensorFlow, imported there).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from pipeline.errors import ConfigError
from pipeline.evidence.checks import paired_difference
from pipeline.evidence.sequential import schedule
from pipeline.records.preprocessing import LEVEL, RESIZE_GAIN, Outcome, PreprocessingCheck, ResizeCheck

if TYPE_CHECKING:
    from pipeline.console import Progress
    from pipeline.evidence.sequential import Schedule
    from pipeline.prepare.prepared import Prepared


ALTERNATIVES = ("none", "scale_0_1", "scale_-1_1", "imagenet_caffe", "imagenet_torch")
ONE_CHANNEL = ("none", "scale_0_1", "scale_-1_1")  # the alternatives that mean something for a grayscale input
SAMPLES = 64
MIN_IMAGES = 20  # fewer usable images: too few to tell preprocessings apart, so the check is not run (said)
MIN_GAIN = 0.15  # refuse when another preprocessing's paired gain has a lower bound at least this
CONSTANT = 0.9  # the configured one answering one class for this share of the batch ...
CONSTANT_GAIN = 0.1  # ... while another does not, and is at least this much more accurate: wrong too


def judge(configured: str, outcomes: Mapping[str, Outcome], own_layers: Sequence[str] = (), level: float = LEVEL) -> str | None:
    """The refusal message when another preprocessing is clearly right and ``configured`` is not, else None.

    Clearly right: the paired gain over ``configured`` (same images) has a ``level`` interval whose lower bound is at
    least MIN_GAIN; or ``configured`` answers one class for CONSTANT of the batch while the other does not and is
    CONSTANT_GAIN more accurate."""
    mine = outcomes[configured]
    n = len(mine.correct)
    constant = mine.top_share >= CONSTANT
    eps = 1e-9
    better = []
    for name, other in outcomes.items():
        if name == configured:
            continue
        gain, low, high = paired_difference(mine.correct[:len(other.correct)], other.correct, level)  # the images both ran on
        if low >= MIN_GAIN - eps or (constant and other.top_share < CONSTANT and other.accuracy - mine.accuracy >= CONSTANT_GAIN - eps):
            better.append((name, other, low, high))
    if not better:
        return None
    best, b, low, high = max(better, key=lambda x: (x[1].accuracy, x[0]))
    said = f"answers '{mine.top}' for {round(mine.top_share * n)} of {n} images" if constant else f"answers '{mine.top}' most often"
    text = (f"model.preprocessing: {configured} gives accuracy {mine.accuracy:.2f} and {said}; with preprocessing: {best} "
            f"accuracy is {b.accuracy:.2f} on the same {len(b.correct)} images (gain {b.accuracy - mine.accuracy:.2f}, {level:.0%} interval "
            f"{low:.2f} to {high:.2f})")
    if own_layers:
        text += f" — the model has its own {'; '.join(own_layers)}, so it may expect raw 0–255 pixels"
    return text + f". Set model.preprocessing: {best} (or model.check_preprocessing: false if {configured} is right)."


def stratified_rows(labels: Sequence[str], count: int, seed: int) -> list[int]:
    """``count`` seeded indices, each label in turn (its own seeded order), sorted."""
    return sorted(stratified_order(labels, count, seed))


def own_layers(model: Any) -> tuple[str, ...]:
    """The model's Rescaling and Normalization layers, described ("Rescaling efficientnetb0/rescaling: scale 0.00392")."""
    import keras

    from pipeline.model.graph import flat_layers

    out = []
    for path, layer in flat_layers(model):
        if isinstance(layer, keras.layers.Rescaling):
            scale, offset = np.ravel(layer.scale), np.ravel(layer.offset)
            out.append(f"Rescaling {path}: scale {', '.join(f'{v:.4g}' for v in scale)}, offset {', '.join(f'{v:.4g}' for v in offset)}")
        elif isinstance(layer, keras.layers.Normalization):
            out.append(f"Normalization {path}")
    return tuple(out)


def run_check(enabled: bool, prep: "Prepared", *, batch_size: int, seed: int, sequential: bool = False,
              bar: "Progress | None" = None) -> PreprocessingCheck:
    """The configured preprocessing and each alternative, and the other resize convention, on a seeded,
    label-stratified batch of usable samples; ``sequential``: in looks of 16, 32, 64 images, each alternative stopping
    when its gain surely reaches MIN_GAIN or surely does not (DESIGN §18)."""
    spec = prep.model.input
    configured = spec.preprocessing
    layers = own_layers(prep.model.model)
    if not enabled:
        return PreprocessingCheck(configured, "off", own_layers=layers)
    if configured == "model":
        return PreprocessingCheck(configured, "skipped", own_layers=layers, note="the saved ImageConverter is the model's own preprocessing")
    usable = [s for s in prep.samples if s.skip_reason is None and s.labels]
    order = stratified_order([s.labels[0] for s in usable], SAMPLES, seed)
    chosen = [usable[i] for i in (order if sequential else sorted(order))]
    if len(chosen) < MIN_IMAGES:
        return PreprocessingCheck(configured, "skipped", own_layers=layers,
                                  note=f"{len(chosen)} usable images, fewer than the {MIN_IMAGES} it needs")
    t0 = time.perf_counter()
    raws = {"": _raw_images(prep, chosen, batch_size), "resize": _raw_images(prep, chosen, batch_size, replace(spec, antialias=not spec.antialias))}
    names = list(dict.fromkeys([configured, *(ONE_CHANNEL if spec.channels == 1 else ALTERNATIVES)]))
    if bar is not None:
        bar.start((len(names) + 1) * len(chosen), "images")
    answers, passes = _looks(prep, chosen, raws, names, _compiled_scores(prep, batch_size), schedule(len(chosen), LEVEL, sequential),
                             bar.tick if bar is not None else (lambda n: None))
    if bar is not None:
        bar.tick((len(names) + 1) * len(chosen) - passes)  # the images the decided settings never needed
    outcomes = {name: _outcome(chosen, answers[name]) for name in names}
    other = _outcome(chosen, answers["resize"])
    mine = outcomes[configured]
    difference, low, high = paired_difference(mine.correct[:len(other.correct)], other.correct, LEVEL)
    resize = ResizeCheck(spec.antialias, _outcome(chosen, answers[configured][:len(other.correct)]).accuracy, other.accuracy, difference,
                         low, high, len(other.correct))
    return PreprocessingCheck(configured, "ok", outcomes, passes, time.perf_counter() - t0, layers, resize=resize)


def _looks(prep: "Prepared", chosen: Sequence[Any], raws: Mapping[str, np.ndarray], names: Sequence[str], scores: Any,
           plan: "Schedule", tick: Any = lambda n: None) -> tuple[dict[str, list[str]], int]:
    """Each setting's answers look by look: the configured one on every image used, an alternative (and the other resize,
    key "resize") until its gain is decided. Returns (answers per setting, in the images' order; forward passes)."""
    from pipeline.evidence.sequential import OPEN, decide

    configured, answers, passes, done = names[0], {n: [] for n in [*names, "resize"]}, 0, 0
    active = [n for n in names[1:]] + ["resize"]
    for k, n in enumerate(plan.looks):
        for name in [configured, *active]:
            raw = raws["resize" if name == "resize" else ""][done:n]
            answers[name] += _answers(prep, raw, configured if name == "resize" else name, scores)
            passes += len(raw)
            tick(len(raw))
        mine = [a in s.labels for a, s in zip(answers[configured], chosen)]
        still = []
        for name in active:
            theirs = [a in s.labels for a, s in zip(answers[name], chosen)]
            _, low, _ = paired_difference(mine[:n], theirs, plan.level_at(n))
            _, _, high = paired_difference(mine[:n], theirs, plan.level)  # the check's own (Agresti–Min) interval: honest
            need = RESIZE_GAIN if name == "resize" else MIN_GAIN
            if k == len(plan.looks) - 1 or decide(low if name != "resize" else -1.0, high, need,
                                                  final=False) == OPEN or _constant(answers[configured], answers[name]):
                still.append(name)
        active, done = [a for a in still if k < len(plan.looks) - 1], n
        if not active:
            break
    return answers, passes


def _constant(mine: Sequence[str], theirs: Sequence[str]) -> bool:
    """The configured setting answers one class for CONSTANT of the images and the other does not: keep looking (the
    one-class rule of :func:`judge` needs the accuracies)."""
    def share(answers: Sequence[str]) -> float:
        return max(answers.count(a) for a in set(answers)) / len(answers) if answers else 0.0

    return share(mine) >= CONSTANT and share(theirs) < CONSTANT


def stratified_order(labels: Sequence[str], count: int, seed: int) -> list[int]:
    """:func:`stratified_rows` in the order taken (each label in turn): every prefix is stratified."""
    rng = np.random.default_rng(seed)
    pools: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        pools.setdefault(lab, []).append(i)
    queues = [list(rng.permutation(pools[k])) for k in sorted(pools)]
    out: list[int] = []
    while len(out) < count and any(queues):
        for q in queues:
            if q and len(out) < count:
                out.append(int(q.pop(0)))
    return out


def preprocessed_batch(prep: "Prepared", count: int, batch_size: int, seed: int, fn: Any) -> np.ndarray:
    """(n, H, W, C) float32: ``count`` seeded, label-stratified usable samples decoded as the audit does, after ``fn``."""
    import tensorflow as tf

    usable = [s for s in prep.samples if s.skip_reason is None and s.labels]
    chosen = [usable[i] for i in stratified_rows([s.labels[0] for s in usable], count, seed)]
    return np.asarray(fn(tf.constant(_raw_images(prep, chosen, batch_size))), np.float32)


def _raw_images(prep: "Prepared", samples: Sequence[Any], batch_size: int, spec: Any = None) -> np.ndarray:
    """(n, H, W, C) float32 0-255 as the audit decodes them (window, resize; ``spec``: another input convention than
    the model's), before preprocessing."""
    from pipeline.data.batches import sample_batches

    spec = spec or prep.model.input
    out = np.zeros((len(samples), *prep.model.input_size, spec.channels), np.float32)
    where = {s.row: i for i, s in enumerate(samples)}
    for rows, _images, raw, _errors in sample_batches(samples, spec, batch_size):
        r, x = rows.numpy(), raw.numpy()
        for k in np.flatnonzero(r >= 0):
            out[where[int(r[k])]] = x[k]
    return out


def _compiled_scores(prep: "Prepared", batch_size: int) -> Any:
    """(n, H, W, C) preprocessed -> (n,) top class, through the audit model's compiled scores (before the output
    activation: the same argmax) in batches padded to ``batch_size``, so the function is traced once."""
    import tensorflow as tf

    scores = tf.function(lambda x: tf.argmax(prep.model.cam_model(x, training=False)[1], axis=1), reduce_retracing=True)

    def top(images: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size]
            padded = np.zeros((batch_size, *chunk.shape[1:]), np.float32)
            padded[:len(chunk)] = chunk
            out.append(scores(tf.constant(padded)).numpy()[:len(chunk)])
        return np.concatenate(out)

    return top


def _answers(prep: "Prepared", raw: np.ndarray, name: str, scores: Any) -> list[str]:
    """Each raw image's answer under preprocessing ``name``: its dataset label, else the model class."""
    import tensorflow as tf

    from pipeline.data.batches import preprocessing_fn

    if not len(raw):
        return []
    top = scores(np.asarray(preprocessing_fn(name)(tf.constant(raw)), np.float32))
    space = prep.space
    return [space.labels[k] if (k := int(space.class_label[c])) >= 0 else space.class_names[c] for c in top]


def _outcome(samples: Sequence[Any], answers: Sequence[str]) -> Outcome:
    """The answers on the first ``len(answers)`` samples as an Outcome."""
    correct = tuple(bool(a in s.labels) for a, s in zip(answers, samples))
    values, counts = np.unique(list(answers), return_counts=True)
    return Outcome(float(np.mean(correct)), str(values[np.argmax(counts)]), float(counts.max() / len(answers)), correct)


def enforce(check: PreprocessingCheck, source: str) -> None:
    """Raise the refusal (exit 2) when the check found a clearly better preprocessing."""
    if check.status != "ok":
        return
    message = judge(check.configured, check.outcomes, check.own_layers)
    if message is not None:
        raise ConfigError(f"{source}: {message}")

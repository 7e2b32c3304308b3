"""The preprocessing check (no silent FIT on a misconfigured audit): before any Grad-CAM, a seeded,
label-stratified batch of the evaluation images goes through the model under the configured
preprocessing and under each alternative; when another is clearly right and the configured one is
not, the audit stops (exit 2) saying both.

:func:`judge` is pure (numbers in, verdict and message out); :func:`run_check` runs the forward
passes (TensorFlow, imported there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline.errors import ConfigError

Prepared = Any  # pipeline.prepare.Prepared (not imported: prepare imports this module)

ALTERNATIVES = ("none", "scale_0_1", "scale_-1_1", "imagenet_caffe", "imagenet_torch")
SAMPLES = 64
MIN_IMAGES = 20  # fewer usable images: a gain of 0.25 is a handful of images, so the check is not run (said)
MIN_GAIN = 0.25  # another preprocessing this much more accurate: the configured one is wrong
CONSTANT = 0.9  # the configured one answering one class for this share of the batch ...
CONSTANT_GAIN = 0.1  # ... while another does not, and is at least this much more accurate: wrong too


@dataclass(frozen=True)
class Outcome:
    """One preprocessing's answers on the check's batch: accuracy, its most common answer and that answer's share."""

    accuracy: float
    top: str
    top_share: float


@dataclass(frozen=True)
class PreprocessingCheck:
    """What the check found. ``status``: ok | refused | off (model.check_preprocessing: false) | skipped (why in ``note``)."""

    configured: str
    status: str
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    passes: int = 0
    seconds: float = 0.0
    own_layers: tuple[str, ...] = ()  # the model's own Rescaling / Normalization layers, described
    note: str = ""

    def record(self) -> dict[str, Any]:
        """provenance's ``preprocessing_check``."""
        return {"configured": self.configured, "status": self.status, "passes": self.passes, "seconds": round(self.seconds, 3),
                "own_layers": list(self.own_layers), "note": self.note or None,
                "outcomes": {k: {"accuracy": o.accuracy, "answer": o.top, "answer_share": o.top_share} for k, o in self.outcomes.items()}}

    def line(self) -> str:
        """One line for validate and the report's run line."""
        if self.status == "off":
            return "preprocessing check: off (model.check_preprocessing: false)"
        if self.status == "skipped":
            return f"preprocessing check: skipped ({self.note})"
        mine = self.outcomes[self.configured]
        others = ", ".join(f"{k} {o.accuracy:.2f}" for k, o in self.outcomes.items() if k != self.configured)
        return (f"preprocessing check: {self.configured} gives accuracy {mine.accuracy:.2f} on {self.n} images (others: {others}); "
                f"{self.passes} forward passes, {self.seconds:.1f} s")

    @property
    def n(self) -> int:
        return self.passes // max(1, len(self.outcomes))


def judge(configured: str, outcomes: Mapping[str, Outcome], own_layers: Sequence[str] = (), n: int = SAMPLES) -> str | None:
    """The refusal message when another preprocessing is clearly right and ``configured`` is not, else None.

    Clearly right: accuracy at least MIN_GAIN higher; or ``configured`` answers one class for CONSTANT of the batch
    while the other does not and is CONSTANT_GAIN more accurate."""
    mine = outcomes[configured]
    constant = mine.top_share >= CONSTANT
    eps = 1e-9  # accuracies are shares of the same batch: 0.60 - 0.50 must count as 0.1
    better = [(k, o) for k, o in outcomes.items() if k != configured and (
        o.accuracy - mine.accuracy >= MIN_GAIN - eps
        or (constant and o.top_share < CONSTANT and o.accuracy - mine.accuracy >= CONSTANT_GAIN - eps))]
    if not better:
        return None
    best, b = max(better, key=lambda kv: (kv[1].accuracy, kv[0]))
    said = f"answers '{mine.top}' for {round(mine.top_share * n)} of {n} images" if constant else f"answers '{mine.top}' most often"
    text = (f"model.preprocessing: {configured} gives accuracy {mine.accuracy:.2f} and {said}; with preprocessing: {best} "
            f"accuracy is {b.accuracy:.2f}")
    if own_layers:
        text += f" — the model has its own {'; '.join(own_layers)}, so it may expect raw 0–255 pixels"
    return text + f". Set model.preprocessing: {best} (or model.check_preprocessing: false if {configured} is right)."


def stratified_rows(labels: Sequence[str], count: int, seed: int) -> list[int]:
    """``count`` seeded indices, each label in turn (its own seeded order), sorted."""
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
    return sorted(out)


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


def run_check(enabled: bool, prep: "Prepared", *, batch_size: int, seed: int) -> PreprocessingCheck:
    """The configured preprocessing and each alternative on a seeded, label-stratified batch of usable samples."""
    configured = prep.model.input.preprocessing
    layers = own_layers(prep.model.model)
    if not enabled:
        return PreprocessingCheck(configured, "off", own_layers=layers)
    if configured == "model":
        return PreprocessingCheck(configured, "skipped", own_layers=layers, note="the saved ImageConverter is the model's own preprocessing")
    usable = [s for s in prep.samples if s.skip_reason is None and s.labels]
    rows = stratified_rows([s.labels[0] for s in usable], SAMPLES, seed)
    chosen = [usable[i] for i in rows]
    if len(chosen) < MIN_IMAGES:
        return PreprocessingCheck(configured, "skipped", own_layers=layers,
                                  note=f"{len(chosen)} usable images, fewer than the {MIN_IMAGES} it needs")
    t0 = time.perf_counter()
    raw = _raw_images(prep, chosen, batch_size)
    names = list(dict.fromkeys([configured, *ALTERNATIVES]))
    scores = _compiled_scores(prep, batch_size)
    outcomes = {name: _outcome(prep, chosen, raw, name, scores) for name in names}
    return PreprocessingCheck(configured, "ok", outcomes, len(names) * len(chosen), time.perf_counter() - t0, layers)


def preprocessed_batch(prep: "Prepared", count: int, batch_size: int, seed: int, fn: Any) -> np.ndarray:
    """(n, H, W, 3) float32: ``count`` seeded, label-stratified usable samples decoded as the audit does, after ``fn``."""
    import tensorflow as tf

    usable = [s for s in prep.samples if s.skip_reason is None and s.labels]
    chosen = [usable[i] for i in stratified_rows([s.labels[0] for s in usable], count, seed)]
    return np.asarray(fn(tf.constant(_raw_images(prep, chosen, batch_size))), np.float32)


def _raw_images(prep: "Prepared", samples: Sequence[Any], batch_size: int) -> np.ndarray:
    """(n, H, W, 3) float32 0-255 as the audit decodes them (window, resize), before preprocessing."""
    from pipeline.data.batches import sample_batches

    out = np.zeros((len(samples), *prep.model.input_size, 3), np.float32)
    where = {s.row: i for i, s in enumerate(samples)}
    for rows, _images, raw, _errors in sample_batches(samples, prep.model.input, batch_size):
        r, x = rows.numpy(), raw.numpy()
        for k in np.flatnonzero(r >= 0):
            out[where[int(r[k])]] = x[k]
    return out


def _compiled_scores(prep: "Prepared", batch_size: int) -> Any:
    """(n, H, W, 3) preprocessed -> (n,) top class, through the audit model's compiled scores (before the output
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


def _outcome(prep: "Prepared", samples: Sequence[Any], raw: np.ndarray, name: str, scores: Any) -> Outcome:
    import tensorflow as tf

    from pipeline.data.batches import preprocessing_fn

    top = scores(np.asarray(preprocessing_fn(name)(tf.constant(raw)), np.float32))
    space = prep.space
    answers = [space.labels[k] if (k := int(space.class_label[c])) >= 0 else space.class_names[c] for c in top]
    correct = [a in s.labels for a, s in zip(answers, samples)]
    values, counts = np.unique(answers, return_counts=True)
    return Outcome(float(np.mean(correct)), str(values[np.argmax(counts)]), float(counts.max() / len(answers)))


def enforce(check: PreprocessingCheck, source: str) -> None:
    """Raise the refusal (exit 2) when the check found a clearly better preprocessing."""
    if check.status != "ok":
        return
    message = judge(check.configured, check.outcomes, check.own_layers, check.n)
    if message is not None:
        raise ConfigError(f"{source}: {message}")

"""The compiled forward path for the extra passes of the strategies and probes stages (needs TensorFlow), and
:func:`stage_inputs`, what those stages read of the explain stage (its maps and the model as they run it).

Edited images are built at the input size before preprocessing (0-255, the interventions'
convention, DESIGN §6), so preprocessing runs inside the compiled function here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from pipeline.data.labels import LabelSpace
from pipeline.explain.explained import Classifier, Evidence, PassCount
from pipeline.model.activation import probabilities

if TYPE_CHECKING:
    from pipeline.config import AuditConfig
    from pipeline.data.samples import Sample
    from pipeline.model.explainable import AuditModel
    from pipeline.prepare.prepared import Prepared


def compiled_forward(model: "AuditModel", batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """(B, H, W, 3) raw images -> (B, C) probabilities; batches are padded to ``batch_size`` (one trace)."""
    import tensorflow as tf

    from pipeline.data.batches import spec_preprocessing

    prep = spec_preprocessing(model.input)
    scores = tf.function(lambda x: model.cam_model(prep(x), training=False)[1], reduce_retracing=True)

    def forward(images: np.ndarray) -> np.ndarray:
        n = len(images)
        padded = np.zeros((batch_size, *images.shape[1:]), np.float32)
        padded[:n] = images
        return probabilities(scores(tf.constant(padded)).numpy()[:n], model.output_activation)

    return forward


def compiled_explain(cfg: "AuditConfig", model: "AuditModel", sets: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(B, H, W, 3) raw images, (B,) dataset labels -> (B, h, w) native maps of the audit's CAM method for the
    highest-scoring class of each image's label (``sets`` (L, C) the classes each label owns); padded batches."""
    import tensorflow as tf

    from pipeline.explain.cams import get_method
    from pipeline.explain.cams.step import make_step
    from pipeline.data.batches import spec_preprocessing

    prep, b = spec_preprocessing(model.input), cfg.explain.batch_size
    step = make_step(model.cam_model, get_method(cfg.explain.method), n_classes=model.n_classes, input_size=model.input_size,
                     tokens=model.tokens)
    no_boxes = (tf.zeros((b, 1, 4), tf.int32), tf.zeros((b, 1), tf.int32), tf.zeros((b, 1), tf.bool))
    cams = tf.function(lambda x, allowed: step(prep(x), x, allowed, *no_boxes)["cams"], reduce_retracing=True)

    def explain(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        n = len(images)
        padded = np.zeros((b, *images.shape[1:]), np.float32)
        padded[:n] = images
        allowed = np.ones((b, model.n_classes), bool)
        allowed[:n] = np.asarray(sets, bool)[np.asarray(labels, np.int64)]
        return cams(tf.constant(padded), tf.constant(allowed)).numpy()[:n]

    return explain


def decoded(cfg: "AuditConfig", model: "AuditModel", samples: Sequence["Sample"], rows: Sequence[int]) -> Mapping[int, np.ndarray]:
    """{row: (H, W, 3) float32 raw image at the input size}, decoded and resized as the audit does."""
    from pipeline.data.batches import sample_batches

    out: dict[int, np.ndarray] = {}
    if not rows:
        return out
    for batch_rows, _images, raw, _errors in sample_batches([samples[r] for r in rows], model.input, cfg.explain.batch_size):
        pixels = raw.numpy()  # one host copy per batch: an eager slice per image costs more than the decode
        for i, r in enumerate(batch_rows.numpy()):
            if r >= 0:
                out[int(r)] = pixels[i]
    return out


class DecodeCache:
    """``images(rows)`` with the decoded images kept for the next stage (strategies' tests, hot-spot content and
    probes read many of the same rows), up to ``budget`` bytes; the oldest are dropped first."""

    def __init__(self, decode: Callable[[Sequence[int]], Mapping[int, np.ndarray]], size: tuple[int, int], budget: int = 256 << 20):
        self.decode, self.keep = decode, max(1, budget // (size[0] * size[1] * 3 * 4))
        self.cache: dict[int, np.ndarray] = {}

    def __call__(self, rows: Sequence[int]) -> Mapping[int, np.ndarray]:
        missing = [int(r) for r in rows if int(r) not in self.cache]
        got = dict(self.decode(missing)) if missing else {}
        out = {int(r): self.cache[int(r)] for r in rows if int(r) in self.cache}
        out.update(got)
        self.cache.update(got)
        for old in list(self.cache)[: max(0, len(self.cache) - self.keep)]:
            del self.cache[old]
        return out


def classifier(cfg: "AuditConfig", model: "AuditModel", samples: Sequence["Sample"], space: LabelSpace, *, multi_label: bool,
               target_class: np.ndarray) -> Classifier:
    """The model as the causal tests see it ("classified as L": L owns the argmax class, or, multi-label,
    one of L's classes reaches ``model.threshold``)."""
    threshold, sets, class_label = cfg.model.threshold, space.sets, space.class_label

    def is_label(probs: np.ndarray, label: int) -> np.ndarray:
        if multi_label:
            return (probs[:, sets[label]] >= threshold).any(axis=1)
        return class_label[probs.argmax(axis=1)] == label

    count = PassCount()
    forward, explain = compiled_forward(model, cfg.explain.batch_size), compiled_explain(cfg, model, sets)

    def counted_forward(images: np.ndarray) -> np.ndarray:
        count.forward += len(images)
        return forward(images)

    def counted_explain(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        count.gradcam += len(images)
        return explain(images, labels)

    return Classifier(images=DecodeCache(lambda rows: decoded(cfg, model, samples, rows), model.input_size),
                      probabilities=counted_forward, is_label=is_label, target_class=np.asarray(target_class),
                      batch_size=cfg.explain.batch_size, explain=counted_explain, count=count)


def stage_inputs(cfg: AuditConfig, prep: Prepared, values: dict[str, np.ndarray], cams: np.ndarray,
                 target_class: np.ndarray) -> tuple[Evidence, Classifier]:
    """What the strategies and probes stages read (the audit's maps and regions) and the model as they
    run it (the compiled forward path, decoding as the audit does)."""
    space, size = prep.space, prep.model.input_size
    target_class = np.asarray(target_class)
    ev = Evidence(
        labels=space.labels, explained=np.where(target_class >= 0, space.class_label[np.maximum(target_class, 0)], -1),
        predicted=values["predicted"], correct=values["correct"] == 1.0, focus=values["focus_score"],
        confidence=values["explained_confidence"], flags=values["flag"], cams=cams,
        labels_of=[frozenset(space.index(lab) for lab in s.labels) for s in prep.samples],
        region_of=lambda row, label: prep.boxes.region(row, label, size), input_size=size,
    )
    return ev, classifier(cfg, prep.model, prep.samples, space, multi_label=prep.multi_label, target_class=target_class)

"""The per-batch work every engine calls: Grad-CAM (+ interventions, + compare method) -> scores -> rows.

:class:`AuditWorker` is built once per process (or Ray actor): it compiles the step and holds the
per-sample constants (:class:`WorkPlan`). ``worker(rows, images, errors)`` returns a
:class:`BatchResult` of column arrays for the batch's real rows; it does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from pipeline.config import AuditConfig
from pipeline.data.samples import BoxArrays
from pipeline.evidence import checks, interventions
from pipeline.explain.columns import computed, empty
from pipeline.explain.flags import assign_flags
from pipeline.explain.scoring import score, score_region
from pipeline.model.activation import probabilities

if TYPE_CHECKING:
    from pipeline.model.explainable import AuditModel


@dataclass(frozen=True)
class WorkPlan:
    """Per-sample constants, N rows, identical in every worker.

    ``targets`` (N,) int32 row of ``sets`` (L + C, C) bool naming the classes each sample may
    explain, -1 = any (:attr:`pipeline.data.samples.Sample.target`); ``class_label`` (C,) the dataset
    label of each model class (-1 = none); ``has_label`` (N, C) bool, class c's label is among
    sample i's labels; ``boxes`` the padded boxes (or masks) at input resolution, box classes as
    label indices; ``intervene`` (N,) bool, rows that get interventions (all usable rows unless
    ``evidence.max_samples``). ``multi_label``: a class is predicted when its probability is
    >= ``threshold`` (DESIGN §4), else the argmax is.
    """

    targets: np.ndarray
    has_label: np.ndarray
    boxes: BoxArrays
    intervene: np.ndarray
    groups: tuple[str, ...]  # column groups of this run: "evidence", "compare", "mapped"
    sets: np.ndarray
    class_label: np.ndarray
    multi_label: bool = False
    threshold: float = 0.5


@dataclass(frozen=True)
class BatchResult:
    """One batch's results for its real rows (b of them), in the batch's row order.

    ``values`` maps every computed column (:func:`pipeline.explain.columns.computed`) to a (b,) array;
    ``cams`` (b, h, w) float32 native CAMs (NaN for rows whose image failed to decode);
    ``target_class`` (b,) explained class, -1 for failed rows.
    """

    rows: np.ndarray
    values: Mapping[str, np.ndarray]
    cams: np.ndarray
    target_class: np.ndarray


def _tri(values: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """bool -> tri-state float (1.0 / 0.0, NaN where not defined)."""
    return np.where(defined, np.asarray(values, np.float64), np.nan)


class AuditWorker:
    """Compiled step + per-sample constants; ``__call__`` turns one batch into a BatchResult."""

    def __init__(self, cfg: AuditConfig, model: "AuditModel", plan: WorkPlan):
        from pipeline.data.batches import spec_preprocessing
        from pipeline.explain.cams import get_method
        from pipeline.explain.cams.step import make_step

        self.cfg, self.model, self.plan = cfg, model, plan
        common = dict(
            n_classes=model.n_classes, preprocess=spec_preprocessing(model.input), input_size=model.input_size,
            compare=get_method(cfg.explain.compare_method) if cfg.explain.compare_method else None, jit_compile=cfg.explain.jit_compile,
            class_label=plan.class_label, tokens=model.tokens,
        )
        method = get_method(cfg.explain.method)
        self.step = make_step(model.cam_model, method, fill=None, **common)
        self.intervention_step = make_step(model.cam_model, method, fill=cfg.evidence.fill, removal=cfg.evidence.removal_region,
                                           dilation=interventions.dilation_px(cfg.evidence.dilation_px, model.input_size, model.layer_shape[:2]),
                                           **common) if "evidence" in plan.groups else None

    def __call__(self, rows, images, raw, errors) -> BatchResult:
        """``rows`` (B,) int (-1 = padding); ``images`` (B, H, W, 3) float32 preprocessed, ``raw`` the same
        before preprocessing (0-255), both at the input size; ``errors`` (B,) bytes, empty when decoded."""
        import tensorflow as tf

        rows = np.asarray(rows)
        real = rows >= 0
        safe = np.maximum(rows, 0)
        p = self.plan
        targets = np.where(real, p.targets[safe], -1)
        allowed = np.where(targets[:, None] >= 0, p.sets[np.maximum(targets, 0)], True)
        valid = p.boxes.valid[safe] & real[:, None]
        step = self.intervention_step if self.intervention_step is not None and p.intervene[rows[real]].any() else self.step
        # region: mask — every box slot's mask, unpacked once for the step's interventions and the scoring
        slots = p.boxes.slot_masks(np.where(real, rows, -1), self.model.input_size) if p.boxes.masks is not None else None
        masks = tf.constant(slots) if slots is not None and step is self.intervention_step else None
        out = step(
            tf.convert_to_tensor(images, tf.float32), tf.convert_to_tensor(raw, tf.float32), tf.constant(allowed),
            tf.constant(p.boxes.pixels[safe], tf.int32), tf.constant(p.boxes.classes[safe], tf.int32), tf.constant(valid), masks,
        )
        out = {k: v.numpy()[real] for k, v in out.items()}
        errs = np.asarray(errors.numpy() if hasattr(errors, "numpy") else errors, dtype=object)[real]
        return self._rows(rows[real], out, errs, None if slots is None else slots[real])

    def _rows(self, rows: np.ndarray, out: Mapping[str, np.ndarray], errs: np.ndarray, slots: np.ndarray | None) -> BatchResult:
        cfg, p = self.cfg, self.plan
        failed = np.array([bool(e) for e in errs], bool)
        ok = ~failed
        act = self.model.output_activation
        probs = probabilities(out["scores"], act)
        chosen = out["chosen"].astype(np.int64)
        idx = np.arange(len(rows))
        pred, correct = self._predicted(rows, probs, chosen)
        correct &= ok
        # Score against the boxes of the explained class's label when present, else against every box.
        use = p.boxes.scored(rows, p.class_label[chosen])
        sc = self._score(out["cams"], rows, use, slots)
        flag = assign_flags(correct=correct, focus_value=getattr(sc, cfg.scoring.focus_metric), judged=sc.judged,
                            skipped=failed, focus_min=cfg.scoring.focus_min)
        shown = np.where(ok & (pred >= 0), pred, -1)
        values: dict[str, np.ndarray] = {
            "predicted": np.where(shown >= 0, p.class_label[np.maximum(shown, 0)], -1),
            "confidence": np.where(ok, probs[idx, chosen if p.multi_label else np.maximum(pred, 0)], np.nan),
            "explained_confidence": np.where(ok, probs[idx, chosen], np.nan),
            "correct": _tri(correct, ok),
            **{k: np.where(ok, getattr(sc, k), np.nan) for k in ("energy_in_box", "box_area_fraction", "energy_lift", "focus_score", "pointing_hit")},
            "flag": flag,
            "skip_reason": np.array([e.decode() if isinstance(e, bytes) else str(e) for e in errs], dtype=object),
        }
        if "mapped" in p.groups:
            values["predicted_model_class"] = shown
        if "evidence" in p.groups:
            values.update(self._evidence(rows, out, probs, chosen, correct, ok, sc.box_area_fraction))
        if "compare" in p.groups:
            sc2 = self._score(out["compare_cams"], rows, use, slots)
            values["method_flag"] = np.where(ok, assign_flags(
                correct=correct, focus_value=getattr(sc2, cfg.scoring.focus_metric), judged=sc2.judged,
                skipped=failed, focus_min=cfg.scoring.focus_min), "")
            values["method_rank_correlation"] = np.where(ok, checks.rank_correlation(out["cams"], out["compare_cams"]), np.nan)
        cams = np.where(ok[:, None, None], out["cams"], np.nan).astype(np.float32)
        return BatchResult(rows=rows, values=values, cams=cams, target_class=np.where(ok, chosen, -1))

    def _predicted(self, rows: np.ndarray, probs: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(predicted model class (-1 = none), correct) per row (DESIGN §4).

        Single-label: the argmax, correct when its label is among the sample's. Multi-label: the
        sample's own (explained) class when its probability reaches the threshold, correct when it
        is predicted and its label is present."""
        p = self.plan
        if not p.multi_label:
            pred = probs.argmax(axis=1)
            return pred, p.has_label[rows, pred].copy()
        hit = probs[np.arange(len(rows)), chosen] >= p.threshold
        return np.where(hit, chosen, -1), hit & p.has_label[rows, chosen]

    def _score(self, cams: np.ndarray, rows: np.ndarray, use: np.ndarray, slots: np.ndarray | None):
        """Scores against the selected boxes' union, or the union of their masks ``slots`` (B, K, H, W) (``region: mask``)."""
        if slots is not None:
            return score_region(cams, (slots & use[..., None, None]).any(axis=1))
        return score(cams, self.plan.boxes.pixels[rows], use, self.model.input_size)

    def _evidence(self, rows, out, probs, chosen, correct, ok, region_fraction) -> dict[str, np.ndarray]:
        """Interventions' columns (DESIGN §6). A sample whose region covers at least
        ``evidence.max_region_fraction`` of the input is not judged by removal; a blank image that is
        also classified as one of its labels makes "still right without the object" prove nothing."""
        p = self.plan
        n = len(rows)
        if "removed_scores" not in out:  # a batch without any row of the evidence.max_samples subset
            return {c.name: empty(c, n) for c in computed(("evidence",)) if c.group == "evidence"}
        done = ok & p.intervene[rows]
        judged = done & ~(np.nan_to_num(region_fraction, nan=1.0) >= self.cfg.evidence.max_region_fraction)
        idx = np.arange(n)
        act = self.model.output_activation
        removed, only, blank = (probabilities(out[k], act) for k in ("removed_scores", "only_scores", "blank_scores"))
        # still classified as one of the sample's labels (multi-label: its class still predicted)
        removed_right = self._predicted(rows, removed, chosen)[1]
        only_right = self._predicted(rows, only, chosen)[1]
        blank_right = self._predicted(rows, blank, chosen)[1]
        return {
            "removed_confidence": np.where(done, removed[idx, chosen], np.nan),
            "only_confidence": np.where(done, only[idx, chosen], np.nan),
            "blank_confidence": np.where(done, blank[idx, chosen], np.nan),
            "object_dependence": np.where(judged, interventions.object_dependence(probs[idx, chosen], removed[idx, chosen]), np.nan),
            "still_right_without_object": _tri(correct & removed_right & ~blank_right, judged),
            "right_from_object_alone": _tri(correct & only_right, done),
            "blank_right": _tri(blank_right, judged),
            "evidence_note": interventions.removal_notes(done, judged, region_fraction, correct & removed_right & blank_right,
                                                    self.cfg.evidence.max_region_fraction),
            "only_correct": _tri(only_right, done),
        }

"""Everything before any Grad-CAM: the dataset's samples, the model (loaded, converted and checked), the label
space; what ``validate`` reports (:class:`Prepared`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.config import AuditConfig
from pipeline.console import notice
from pipeline.data import load_annotations
from pipeline.data.labels import IMAGENET, LabelSpace, imagenet_classes, label_space
from pipeline.data.records import Annotations, stratified
from pipeline.data.samples import box_arrays, build_samples, expand_predicted
from pipeline.errors import DatasetError, ModelError
from pipeline.prepare.conversion_check import check_conversion
from pipeline.prepare.prepared import Prepared

if TYPE_CHECKING:
    from pipeline.model.explainable import AuditModel


def prepare(cfg: AuditConfig, *, limit: int | None = None, reports: Path | None = None) -> Prepared:
    """The dataset's samples and the model (opened, explainable), unchecked; a Keras 2 model's checked conversions
    are cached under ``reports`` (default: ``reports/`` under the working directory)."""
    from pipeline.data.batches import preprocessing_fn
    from pipeline.model.explainable import build_audit_model
    from pipeline.model.load import open_model

    preprocessing_fn(cfg.model.preprocessing)  # a keras.applications module that does not exist fails here
    annotations = load_annotations(cfg.dataset)
    if cfg.dataset.limit is not None:
        annotations = stratified(annotations, cfg.dataset.limit, cfg.seed, source="dataset.limit")
    annotations = stratified(annotations, limit, cfg.seed)
    for line in annotations.notes:
        notice(line)
    if not annotations.images:
        raise DatasetError(f"{cfg.dataset.annotations}: expected at least one image in the annotations, found none")
    loaded = open_model(cfg.model.path, reports if reports is not None else Path.cwd() / "reports")
    model = build_audit_model(cfg.model, loaded)
    space = label_space_of(cfg, annotations, model)
    multi_label = cfg.model.multi_label if cfg.model.multi_label is not None else model.output_activation == "sigmoid"
    if cfg.dataset.region == "mask" and not any(b.segmentation is not None for r in annotations.images for b in r.boxes):
        raise DatasetError(f"{cfg.dataset.annotations}: dataset.region is mask: expected COCO annotations with 'segmentation' "
                           "(polygons or RLE) or YOLO-seg polygon rows, found none in any annotation; use region: box or add the masks")
    samples = build_samples(
        annotations.images,
        images_dir=annotations.images_dir or cfg.dataset.images,
        space=space,
        target=cfg.explain.target,
        spec=model.input,
        region=cfg.dataset.region,
    )
    if all(s.skip_reason for s in samples):
        reasons = "; ".join(f"{s.sample_id}: {s.skip_reason}" for s in samples[:3])
        raise DatasetError(
            f"{cfg.source}: dataset: expected at least one usable sample, found none of {len(samples)} "
            f"(check dataset.images and dataset.annotations); first reasons: {reasons}"
        )
    pending = multi_label and cfg.explain.target == "predicted"
    return Prepared(cfg, annotations, model, samples, box_arrays(samples, space, model.input_size), space, multi_label, pending, loaded)


def label_space_of(cfg: AuditConfig, annotations: Annotations, model: "AuditModel") -> LabelSpace:
    """Class names (config, ImageNet or the dataset's labels) and the dataset labels' classes (DESIGN §4)."""
    names, aliases = cfg.model.class_names, None
    if names == IMAGENET:
        names, aliases = imagenet_classes()
        source = "model.class_names: imagenet (the 1,000 ILSVRC-2012 classes)"
    elif names is not None:
        source = "model.class_names"
    else:
        names = annotations.class_names
        source = {"coco": "the COCO categories (by id)", "voc": "the VOC labels (sorted)", "csv": "the CSV labels (sorted)",
                  "yolo": "the data.yaml names (by id)"}[cfg.dataset.format]
    if len(names) != model.n_classes:
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise ModelError(
            f"{cfg.source}: model.class_names: expected {model.n_classes} class names (the model's outputs), "
            f"found {len(names)} from {source}: {shown}"
            + ("; list them in model-output order under model.class_names" if cfg.model.class_names is None else "")
        )
    return label_space(names, annotations.class_names, label_map=cfg.dataset.label_map, aliases=aliases, source=source,
                       prefix=f"{cfg.source}: ")


def predict_samples(cfg: AuditConfig, prep: Prepared) -> Prepared:
    """Multi-label, target "predicted": run the model once over the usable images and expand each
    image into one sample per predicted class (DESIGN §4). Other runs are returned unchanged."""
    if not prep.pending_predictions:
        return prep
    import tensorflow as tf

    from pipeline.data.batches import sample_batches
    from pipeline.model.activation import probabilities

    usable = [s for s in prep.samples if s.skip_reason is None]
    probs = np.zeros((len(prep.samples), prep.model.n_classes))
    forward = tf.function(lambda x: prep.model.cam_model(x, training=False)[1], reduce_retracing=True)
    for rows, images, _raw, errors in sample_batches(usable, prep.model.input, cfg.explain.batch_size):
        r = rows.numpy()
        p = probabilities(forward(images).numpy(), prep.model.output_activation)
        probs[r[r >= 0]] = p[r >= 0]
    samples = expand_predicted(prep.samples, probs, cfg.model.threshold, prep.space)
    return replace(prep, samples=samples, boxes=box_arrays(samples, prep.space, prep.model.input_size), pending_predictions=False)


def prepare_checked(cfg: AuditConfig, *, limit: int | None, reports: Path, enforce: bool = True, predict: bool = True,
                    progress: bool = False) -> Prepared:
    """Everything before Grad-CAM, checked: the samples (``predict``: per predicted class for multi-label), a Keras 2
    model's conversion (cached under ``reports`` once checked), the preprocessing check (``enforce``: a clearly
    better preprocessing is exit 2; ``validate`` enforces it after printing what it found)."""
    prep = prepare(cfg, limit=limit, reports=reports)
    prep = predict_samples(cfg, prep) if predict else prep
    prep = check_conversion(prep, reports=reports, batch_size=cfg.explain.batch_size, seed=cfg.seed)
    return check_preprocessing(cfg, prep, enforce=enforce, progress=progress)


def check_preprocessing(cfg: AuditConfig, prep: Prepared, *, enforce: bool = True, progress: bool = False) -> Prepared:
    """The preprocessing check (model.check_preprocessing): a clearly better preprocessing is exit 2 before any Grad-CAM."""
    from pipeline.console import progress as bar_of
    from pipeline.prepare import preprocessing_check as preprocessing

    with bar_of("preprocessing check", progress) as bar:
        check = preprocessing.run_check(cfg.model.check_preprocessing, prep, batch_size=cfg.explain.batch_size, seed=cfg.seed,
                                        sequential=cfg.statistics.sequential, bar=bar)
    if enforce:
        preprocessing.enforce(check, str(cfg.source))
    return replace(prep, check=check)

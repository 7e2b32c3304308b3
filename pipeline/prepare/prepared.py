"""What preparation hands every later stage (:class:`Prepared`): the checked samples, the model, the label space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.config import AuditConfig
from pipeline.data.labels import LabelSpace
from pipeline.data.records import Annotations
from pipeline.data.samples import BoxArrays, Sample

if TYPE_CHECKING:
    from pipeline.model.explainable import AuditModel
    from pipeline.model.legacy import Conversion
    from pipeline.model.load import LoadedModel
    from pipeline.records.preprocessing import PreprocessingCheck


@dataclass(frozen=True)
class Prepared:
    """Everything checked before any Grad-CAM work (what ``validate`` reports)."""

    cfg: AuditConfig
    annotations: Annotations
    model: "AuditModel"
    samples: list[Sample]
    boxes: BoxArrays
    space: LabelSpace
    multi_label: bool
    pending_predictions: bool = False  # multi-label, target predicted: samples are per image until the prediction pass
    loaded: "LoadedModel | None" = None  # the model as loaded (a Keras 2 model: its conversion, DESIGN §14)
    check: "PreprocessingCheck | None" = None  # the preprocessing check's outcome (check_preprocessing)

    @property
    def conversion(self) -> "Conversion | None":
        """A Keras 2 model's conversion, None for a Keras 3 file."""
        return self.loaded.conversion if self.loaded is not None else None

    @property
    def class_names(self) -> tuple[str, ...]:
        """The model's classes, in output order."""
        return self.space.class_names

    @property
    def labels(self) -> tuple[str, ...]:
        """The dataset labels per-class aggregates are reported for (those that own a model class)."""
        return tuple(lab for lab in self.space.labels if self.space.known(lab))

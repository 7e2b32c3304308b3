"""The driver's side of an engine: BatchResults (any order) -> per-sample arrays + streamed outputs.

Only small per-sample scalars stay in memory; samples.csv rows are appended as soon as every row
before them is known (so row order holds whatever order batches finish in), CAMs go straight to
the heatmap memmap.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.explain.columns import active, computed, empty, encode
from pipeline.data.samples import Sample
from pipeline.errors import AuditError
from pipeline.data.labels import LabelSpace
from pipeline.explain.writers import HeatmapWriter, SamplesWriter
from pipeline.explain.worker import BatchResult


class Collector:
    """Keeps every computed column (N rows) and streams samples.csv / heatmaps in row order."""

    def __init__(self, samples: Sequence[Sample], space: LabelSpace, groups: Sequence[str],
                 csv_out: SamplesWriter, heat: HeatmapWriter):
        n = len(samples)
        self.n, self.space, self.csv_out, self.heat = n, space, csv_out, heat
        self.csv_columns = active(groups)
        self.values = {c.name: empty(c, n) for c in computed(groups)}
        self.values["flag"][:] = "skipped"
        self.values["skip_reason"][:] = [s.skip_reason or "" for s in samples]
        self.static = {
            "row": np.arange(n),
            "sample_id": np.array([s.sample_id for s in samples], dtype=object),
            "image": np.array([s.image for s in samples], dtype=object),
            "label": np.array(["|".join(s.labels) for s in samples], dtype=object),
        }
        self.done = np.array([s.skip_reason is not None for s in samples], bool)  # never sent to an engine
        self.written = 0
        self.received = 0

    def add(self, result: BatchResult) -> None:
        rows = result.rows
        for name, column in result.values.items():
            self.values[name][rows] = column
        self.heat.write(rows, result.cams, result.target_class)
        self.done[rows] = True
        self.received += len(rows)
        self._emit()

    def _emit(self) -> None:
        pending = np.flatnonzero(~self.done[self.written:])
        upto = self.written + int(pending[0]) if pending.size else self.n
        if upto <= self.written:
            return
        sl = slice(self.written, upto)
        columns = {**{k: v[sl] for k, v in self.static.items()}, **{k: v[sl] for k, v in self.values.items()}}
        self.csv_out.write_columns(encode(self.csv_columns, columns, self.space.class_names, self.space.labels))
        self.written = upto

    def finish(self) -> None:
        """Write what is left; every sample must have been accounted for."""
        self._emit()
        if self.written != self.n:
            missing = np.flatnonzero(~self.done)
            raise AuditError(f"the engine returned no result for {missing.size} samples (first: row {missing[0]})")

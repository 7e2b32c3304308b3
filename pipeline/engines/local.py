"""The local engine: one process, a parallel tf.data decode pipeline feeding the worker."""

from __future__ import annotations

from typing import Iterator, Sequence

from pipeline.data.samples import Sample
from pipeline.worker import AuditWorker, BatchResult


def run_local(worker: AuditWorker, samples: Sequence[Sample], *, resize: str, batch_size: int) -> Iterator[BatchResult]:
    """Yield one BatchResult per batch of the given (usable) samples, in row order."""
    from pipeline.data.batches import make_batches

    batches = make_batches(
        [s.row for s in samples], [str(s.path) for s in samples],
        input_size=worker.model.input_size, resize=resize, preprocessing=worker.cfg.model.preprocessing, batch_size=batch_size,
    )
    for rows, images, raw, errors in batches:
        yield worker(rows.numpy(), images, raw, errors)

"""The local engine: one process, a parallel tf.data decode pipeline feeding the worker."""

from __future__ import annotations

from typing import Iterator, Sequence

from pipeline.data.samples import Sample
from pipeline.explain.worker import AuditWorker, BatchResult


def run_local(worker: AuditWorker, samples: Sequence[Sample], *, batch_size: int) -> Iterator[BatchResult]:
    """Yield one BatchResult per batch of the given (usable) samples, in row order."""
    from pipeline.data.batches import sample_batches

    batches = sample_batches(samples, worker.model.input, batch_size)
    for rows, images, raw, errors in batches:
        yield worker(rows.numpy(), images, raw, errors)

"""Engines run the one per-batch function (``pipeline.explain.worker.AuditWorker``) over the usable samples
and yield :class:`pipeline.explain.worker.BatchResult` s; the driver (``pipeline.explain.engines.drive``) collects them."""

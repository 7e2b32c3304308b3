"""Engines run the one per-batch function (``pipeline.worker.AuditWorker``) over the usable samples
and yield :class:`pipeline.worker.BatchResult` s; the driver (``pipeline.engines.drive``) collects them."""

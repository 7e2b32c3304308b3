"""The Ray engine: Ray Data ``map_batches`` over the sample table with a pool of actors (DESIGN §7).

Each actor builds the audit model once and runs the same :class:`~pipeline.explain.worker.AuditWorker`
as the local engine, on images decoded by the same tf.data code, so both engines write the same
files. Results stream back to the driver (``iter_batches``) in whatever order they finish; the
driver's collector restores row order. Ray is an optional extra: ``pip install '.[ray]'``.

Faults: Ray Data gives actor-pool operators ``max_restarts=-1`` and ``max_task_retries=-1`` by
default, so an actor whose process dies is restarted and its batch retried (tested by killing one).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from pipeline.errors import AuditError
from pipeline.data.samples import windows
from pipeline.explain.worker import BatchResult, WorkPlan

if TYPE_CHECKING:
    from pipeline.config import AuditConfig
    from pipeline.data.samples import Sample
    from pipeline.model.load import ModelHandle

INSTALL = "pip install '.[ray]'  (or: .venv/bin/pip install 'ray[data]==2.60.0')"
CONNECT_TIMEOUT = 30.0  # seconds: an unreachable head is exit 2 within this, never a hang


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise AuditError(f"engine.kind: ray: expected the optional Ray extra to be installed, found no module 'ray'; install it with {INSTALL}") from None
    return ray


class RayAuditActor:
    """One per actor: builds the model and the compiled step once, then maps batches of rows."""

    def __init__(self, cfg: "AuditConfig", model: "ModelHandle", plan: WorkPlan, sources: tuple[Sequence[str], np.ndarray], batches: Sequence[np.ndarray],
                 threads: int, gpus: float):
        # TensorFlow ignores Ray's CPU count and grabs every GPU's memory unless told otherwise.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
        for gpu in tf.config.list_physical_devices("GPU") if gpus else []:
            tf.config.experimental.set_memory_growth(gpu, True)
        import keras

        from pipeline.model.explainable import build_audit_model
        from pipeline.explain.worker import AuditWorker

        keras.utils.set_random_seed(cfg.seed)
        from pipeline.data.batches import StreamingDecoder

        self.cfg, (self.paths, self.windows), self.batches = cfg, sources, batches
        self.worker = AuditWorker(cfg, build_audit_model(cfg.model, model.open()), plan)
        self.decoder = StreamingDecoder(spec=self.worker.model.input, batch_size=cfg.explain.batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``batch["batch"]``: indices into the run's batches (one per call: ``batch_size=1``)."""
        out: dict[str, list[np.ndarray]] = {}
        for index in np.asarray(batch["batch"]):
            rows = self.batches[int(index)]
            result = self.worker(*self.decoder.decode(rows, [self.paths[r] for r in rows], self.windows[rows]))
            for key, value in _flatten(result).items():
                out.setdefault(key, []).append(value)
        return {k: np.concatenate(v) for k, v in out.items()}


def _flatten(result: BatchResult) -> dict[str, np.ndarray]:
    """A BatchResult as Ray Data columns (text as str arrays: Arrow has no object dtype)."""
    cols = {"row": result.rows, "cams": result.cams, "target_class": result.target_class}
    cols.update({f"v_{k}": (v.astype(str) if v.dtype == object else v) for k, v in result.values.items()})
    return cols


def _unflatten(batch: dict[str, np.ndarray]) -> BatchResult:
    values = {k[2:]: (np.asarray(v).astype(object) if np.asarray(v).dtype.kind in "UO" else np.asarray(v)) for k, v in batch.items() if k.startswith("v_")}
    return BatchResult(rows=np.asarray(batch["row"]), values=values, cams=np.stack(list(batch["cams"])) if batch["cams"].dtype == object
                       else np.asarray(batch["cams"]), target_class=np.asarray(batch["target_class"]))


def _reachable(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            return
    except (OSError, ValueError) as exc:
        raise AuditError(f"engine.address: expected a reachable Ray head at {address!r}, found {exc}") from None


def connect(ray: Any, address: str | None, cpus_per_worker: float) -> bool:
    """Join or start a cluster; returns True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING if name == "ray" else logging.ERROR)  # the audit has its own progress bar
    if address is None:
        # "local": a new cluster for this run, even where RAY_ADDRESS points at another one
        ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        return True
    if address != "auto":
        _reachable(address.removeprefix("ray://"))
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise AuditError(f"engine.address: expected a running Ray cluster at {address!r}, found {type(exc).__name__}: {exc}") from None
    return False


def run_ray(cfg: "AuditConfig", model: "ModelHandle", plan: WorkPlan, samples: Sequence["Sample"], todo: Sequence[Sequence["Sample"]]) -> Iterator[BatchResult]:
    """Yield BatchResults for the ``todo`` batches (the run's fixed groups of samples), computed on a Ray actor pool."""
    ray = import_ray()
    engine = cfg.engine
    started = connect(ray, engine.address, engine.cpus_per_worker)
    try:
        paths = [str(s.path) if s.path is not None else "" for s in samples]
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.verbose_stats_logs = False
        # one item and one block per batch of the run: each actor call computes exactly the batch the
        # local engine would (same neighbours, same numbers), and results stream back batch by batch
        batches = [np.array([s.row for s in chunk], np.int64) for chunk in todo]
        ds = ray.data.from_items([{"batch": i} for i in range(len(batches))], override_num_blocks=len(batches))
        mapped = ds.map_batches(
            RayAuditActor,
            fn_constructor_args=(cfg, model, plan, (paths, windows(samples)), batches, max(1, int(engine.cpus_per_worker)), engine.gpus_per_worker),
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=engine.workers),
            num_cpus=engine.cpus_per_worker,
            num_gpus=engine.gpus_per_worker or None,
        )
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            if len(batch["row"]):
                yield _unflatten(batch)
    finally:
        if started:
            ray.shutdown()

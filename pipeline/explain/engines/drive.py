"""Driving the configured engine over the samples: the per-sample constants every worker gets, the run's
batches, and the loop that feeds results to the collector (with the loop's timings)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from pipeline.evidence import interventions
from pipeline.config import AuditConfig
from pipeline.data.samples import Sample, target_sets
from pipeline.explain.worker import BatchResult, WorkPlan

if TYPE_CHECKING:
    from pipeline.explain.collector import Collector
    from pipeline.prepare.prepared import Prepared

def work_plan(cfg: AuditConfig, prep: Prepared) -> WorkPlan:
    """The per-sample constants every worker gets (DESIGN §7: identical in every process)."""
    samples, space = prep.samples, prep.space
    has_label = np.zeros((len(samples), len(space.class_names)), bool)  # has_label[i, c]: class c's label is among sample i's
    for s in samples:
        has_label[s.row] = space.sets[[space.index(lab) for lab in s.labels if space.known(lab)]].any(axis=0)
    usable = [s.row for s in samples if s.skip_reason is None]
    intervene = np.zeros(len(samples), bool)
    groups = []
    if cfg.evidence.interventions:
        groups.append("evidence")
        intervene[interventions.seeded_subset(usable, cfg.evidence.max_samples, cfg.seed)] = True
    if cfg.explain.compare_method:
        groups.append("compare")
    if space.mapped or prep.multi_label:
        groups.append("mapped")
    return WorkPlan(np.array([s.target for s in samples], np.int32), has_label, prep.boxes, intervene, tuple(groups),
                    sets=target_sets(space), class_label=space.class_label, multi_label=prep.multi_label, threshold=cfg.model.threshold)


def chunks(samples: list[Sample], batch_size: int) -> list[list[Sample]]:
    """The run's batches: consecutive groups of ``batch_size`` usable samples. Every engine and
    every resumed run computes exactly these groups, so a sample is always batched with the same
    neighbours (oneDNN's rounding can depend on them) and results are identical across engines."""
    return [samples[i:i + batch_size] for i in range(0, len(samples), batch_size)]


def engine_results(cfg: AuditConfig, prep: Prepared, plan: WorkPlan, todo: list[list[Sample]]) -> Iterator[BatchResult]:
    """The configured engine's results for the ``todo`` batches."""
    if cfg.engine.kind == "ray":
        from pipeline.explain.engines.ray_engine import run_ray

        return run_ray(cfg, prep.loaded.handle(), plan, prep.samples, todo)
    from pipeline.explain.engines.local import run_local
    from pipeline.explain.worker import AuditWorker

    # every batch but the run's last is full, so tf.data's batching of the concatenation gives the same groups
    return run_local(AuditWorker(cfg, prep.model, plan), [s for c in todo for s in c],
                     batch_size=cfg.explain.batch_size)


def run_engine(cfg: AuditConfig, prep: Prepared, plan: WorkPlan, collector: "Collector", progress: bool,
                on_result: Callable[[BatchResult], None] = lambda r: None, started: float | None = None) -> dict[str, Any]:
    """Drive the engine over the samples the collector still lacks; returns the loop's timings.

    ``on_result`` sees every result before the collector does (the checkpoint is written first,
    so a kill between the two loses nothing)."""
    from tqdm import tqdm

    usable = [s for s in prep.samples if s.skip_reason is None]
    todo_batches = [c for c in chunks(usable, cfg.explain.batch_size) if not collector.done[c[0].row]]
    todo = [s for c in todo_batches for s in c]
    bar = tqdm(total=len(usable), initial=len(usable) - len(todo), desc="explain", unit=" img", disable=not progress, file=sys.stderr)
    t_loop = time.perf_counter()
    t_first = None
    for result in (engine_results(cfg, prep, plan, todo_batches) if todo_batches else ()):
        on_result(result)
        collector.add(result)
        bar.update(len(result.rows))
        if t_first is None:
            t_first = time.perf_counter()
    bar.close()
    collector.finish()
    t_end = time.perf_counter()
    loop = t_end - t_loop
    first_batch = min(cfg.explain.batch_size, len(todo))
    steady = (len(todo) - first_batch) / (t_end - t_first) if t_first is not None and t_end > t_first and len(todo) > first_batch else None
    return {
        "engine": cfg.engine.kind,
        "startup_seconds": round(t_loop - started, 3) if started is not None else None,  # config read to the engine's start
        "resumed_samples": len(usable) - len(todo),
        "explain_seconds": round(loop, 3),
        "samples_per_second": round(len(todo) / loop, 2) if loop > 0 and todo else None,
        "first_batch_seconds": round(t_first - t_loop, 3) if t_first is not None else None,
        "steady_samples_per_second": round(steady, 2) if steady else None,
    }

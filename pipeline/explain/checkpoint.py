"""Checkpoints of completed batches in the staging folder, for ``--resume`` (DESIGN §7).

Each finished :class:`~pipeline.explain.worker.BatchResult` is saved as ``checkpoint/batch-<first row>.npz``
(written to a temporary name and renamed, so a kill never leaves half a checkpoint) next to a
``manifest.json`` holding the fingerprints of the run's inputs. A resumed run re-reads the
checkpoints, checks the manifest against its own inputs, and computes only the rest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from pipeline.errors import AuditError
from pipeline.explain.worker import BatchResult

MANIFEST_KEYS = {
    "config_sha256": "the config file",
    "model_sha256": "the model file",
    "dataset_fingerprint": "the evaluation set (annotations, image names and sizes)",
    "limit": "--limit",
    "n_samples": "the number of samples",
}


class CheckpointStore:
    def __init__(self, staging: Path):
        self.folder = staging / "checkpoint"
        self.manifest_path = self.folder / "manifest.json"

    def start(self, manifest: Mapping[str, object]) -> None:
        self.folder.mkdir(exist_ok=True)
        _atomic_write(self.manifest_path, json.dumps(dict(manifest), indent=2).encode())

    def check(self, manifest: Mapping[str, object], staging: Path) -> None:
        """Exit 2 (AuditError) naming what differs when the interrupted run had other inputs."""
        try:
            saved = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AuditError(f"{staging}: --resume: expected an interrupted run's checkpoint/manifest.json, found {type(exc).__name__}: {exc}; "
                             "run without --resume to start over") from None
        differ = [MANIFEST_KEYS.get(k, k) for k in manifest if saved.get(k) != manifest[k]]
        if differ:
            raise AuditError(f"{staging}: --resume: expected the interrupted run's inputs, found a different {', '.join(differ)}; "
                             "run without --resume to start over")

    def save(self, result: BatchResult) -> None:
        arrays = {f"v_{k}": (v.astype(str) if v.dtype == object else v) for k, v in result.values.items()}
        path = self.folder / f"batch-{int(result.rows.min()):09d}.npz"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, rows=result.rows, cams=result.cams, target_class=result.target_class, **arrays)
        os.replace(tmp, path)

    def load(self) -> Iterator[BatchResult]:
        for path in sorted(self.folder.glob("batch-*.npz")):
            with np.load(path, allow_pickle=False) as npz:
                values = {k[2:]: (npz[k].astype(object) if npz[k].dtype.kind == "U" else npz[k]) for k in npz.files if k.startswith("v_")}
                yield BatchResult(rows=npz["rows"], values=values, cams=npz["cams"], target_class=npz["target_class"])

    def batches_done(self) -> int:
        return sum(1 for _ in self.folder.glob("batch-*.npz")) if self.folder.is_dir() else 0

    def remove(self) -> None:
        """Before publishing: checkpoints are not part of the outputs."""
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)

"""Shared fixtures. Tests never depend on the working directory: paths come from this file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FRUITS = SHARED / "datasets" / "fruits-voc"


def require(condition: bool, why: str) -> None:
    """Skip where an optional resource is absent (a user's clone); in CI (CI=true) its absence fails."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why} (required in CI)")
    pytest.skip(why)


def box_evidence(names, boxes, labels, probs, cams, size: int):
    """An :class:`~pipeline.explain.explained.Evidence` for a hand-built world of ``size``-px square images: one object
    box (c0, r0, c1, r1) per image, true ``labels``, a NumPy model's ``probs`` (N, C) and its ``cams`` (N, h, w);
    the explained class is the predicted one."""
    import numpy as np

    from pipeline.explain.explained import Evidence

    predicted = probs.argmax(axis=1)

    def region_of(row: int, label: int) -> np.ndarray:
        c0, r0, c1, r1 = boxes[row]
        out = np.zeros((size, size), bool)
        out[r0:r1, c0:c1] = True
        return out

    return Evidence(labels=tuple(names), explained=predicted.copy(), predicted=predicted, correct=predicted == labels,
                    focus=np.zeros(len(boxes)), confidence=probs[np.arange(len(boxes)), predicted],
                    flags=np.where(predicted == labels, "ok", "distracted").astype(object), cams=cams,
                    labels_of=[frozenset([int(lab)]) for lab in labels], region_of=region_of, input_size=(size, size))


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML config into tmp_path and return its path."""

    def write(text: str, name: str = "audit.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def files(tmp_path):
    """The files a minimal config names (m.keras, ann.json, imgs/) in tmp_path, for config validation tests."""
    (tmp_path / "m.keras").write_bytes(b"x")
    (tmp_path / "ann.json").write_text("{}")
    (tmp_path / "imgs").mkdir()
    return tmp_path


def shared_folder(tmp_path_factory, name: str, build) -> Path:
    """A folder built once per pytest run, whatever the number of xdist workers: the first worker to take the lock
    calls ``build(folder)``, the others wait and reuse it (tests only read it). A build that failed is retried."""
    import fcntl
    import shutil

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's base folder, above every worker's own
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                build(folder)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


DEMOS = ("demo", "demo_shortcut", "demo_dormant", "demo_cast", "demo_source", "demo_gray", "demo_legacy", "demo_vit", "demo_mask",
         "demo_yolo")
"""Every bundled config but configs/demo_mlflow.yaml (its model is a models:/ URI: it needs a registry, which
tests/integration/test_mlflow.py starts and audits)."""


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory):
    """The bundled demo audits (:data:`DEMOS`), run once per pytest run: {config stem: (exit code, output folder)}. Tests
    read the folders; none writes there."""
    import json

    def build(folder: Path) -> None:
        from pipeline.cli import main

        codes = {name: main(["audit", str(ROOT / "configs" / f"{name}.yaml"), "--output", str(folder / name), "--no-progress"])
                 for name in DEMOS}
        (folder / "codes.json").write_text(json.dumps(codes))

    folder = shared_folder(tmp_path_factory, "demo_runs", build)
    codes = json.loads((folder / "codes.json").read_text())
    return {name: (codes[name], folder / name) for name in DEMOS}

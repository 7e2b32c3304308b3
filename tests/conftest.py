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


def _run_root(tmp_path_factory) -> Path:
    """The pytest run's base folder, above every xdist worker's own."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


def _build_once(root: Path, name: str, build, wait: bool) -> bool:
    """``build(root / name)`` unless it is done; with ``wait`` false, give way at once to a worker already building it.
    True when the folder is done. A build that failed is retried by the next caller."""
    import fcntl
    import shutil

    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        try:
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                build(folder)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return True


def shared_folder(tmp_path_factory, name: str, build) -> Path:
    """A folder built once per pytest run, whatever the number of xdist workers: the first worker to take the lock
    calls ``build(folder)``, the others wait and reuse it (tests only read it). A build that failed is retried."""
    root = _run_root(tmp_path_factory)
    _build_once(root, name, build, wait=True)
    return root / name


def shared_folders(tmp_path_factory, names, build) -> dict[str, Path]:
    """Folders built once per pytest run, shared out between the workers that ask: each worker first builds the ones no
    other worker is building, then waits for the rest (so two workers that need them at once both build)."""
    root = _run_root(tmp_path_factory)
    left = [name for name in names if not _build_once(root, name, lambda f, n=name: build(n, f), wait=False)]
    for name in left:
        _build_once(root, name, lambda f, n=name: build(n, f), wait=True)
    return {name: root / name for name in names}


DEMOS = ("demo", "demo_shortcut", "demo_dormant", "demo_cast", "demo_source", "demo_gray", "demo_legacy", "demo_vit", "demo_mask",
         "demo_yolo")
"""Every bundled config but configs/demo_mlflow.yaml (its model is a models:/ URI: it needs a registry, which
tests/integration/test_mlflow.py starts and audits)."""


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory):
    """The bundled demo audits (:data:`DEMOS`), run once per pytest run: {config stem: (exit code, output folder)}. Tests
    read the folders; none writes there."""

    def build(name: str, folder: Path) -> None:
        from pipeline.cli import main

        demo = name.removeprefix("demo_run_")
        code = main(["audit", str(ROOT / "configs" / f"{demo}.yaml"), "--output", str(folder / "audit"), "--no-progress"])
        (folder / "code").write_text(str(code))

    folders = shared_folders(tmp_path_factory, [f"demo_run_{name}" for name in DEMOS], build)
    return {name: (int((folders[f"demo_run_{name}"] / "code").read_text()), folders[f"demo_run_{name}"] / "audit") for name in DEMOS}

"""Why the decode pipeline runs without tf.data autotuning (pipeline/data/batches.py): an autotuned iterator's end.

The explain loop's decode pipeline, over ``--images`` JPEGs at 224 x 224 in batches of 32, consumed by a loop that keeps
the CPU busy ``--busy`` seconds per batch (a ResNet50 batch of 32 takes about 5.6 s on 2 cores); prints the loop's
seconds and how long the iterator's end (its last ``next`` and its deletion) took, autotuned and not, side by side in
two processes. It does not happen every run: 2026-12-08, TF 2.21, 500 images, 5.6 s, autotuned 52 s then 0.00 s in a second
run, fixed 0.00 s both times; in the whole audit at 500 images, 46-49 s in 4 runs of 6 (py-spy: the main thread in
RootDataset::Iterator's destructor, waiting for its autotuning thread).

    .venv/bin/python benchmarks/tfdata_end.py [--images 500] [--busy 5.6]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def consume(ann: Path, autotune: bool, busy: float) -> None:
    import json

    import numpy as np
    import tensorflow as tf

    from pipeline.data.batches import make_batches
    from pipeline.data.geometry import InputSpec

    images = json.loads(ann.read_text())["images"]
    paths = [str(ann.parent / "images" / im["file_name"]) for im in images]
    windows = np.tile(np.array([0, 0, 224, 224], np.int32), (len(paths), 1))
    ds = make_batches(list(range(len(paths))), paths, windows, spec=InputSpec((224, 224), preprocessing="imagenet_caffe"), batch_size=32)
    options = tf.data.Options()
    options.autotune.enabled = autotune
    x = tf.random.uniform((256, 256))
    start = last = time.perf_counter()
    for _batch in ds.with_options(options):
        t = time.perf_counter()
        while time.perf_counter() - t < busy:
            tf.matmul(x, x)
        last = time.perf_counter()
    print(f"{'autotuned' if autotune else 'fixed'}: loop {last - start:.1f} s, the iterator's end {time.perf_counter() - last:.2f} s",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--busy", type=float, default=5.6)
    ap.add_argument("--consume", choices=("on", "off"))
    ap.add_argument("--annotations", type=Path)
    a = ap.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    if a.consume:
        consume(a.annotations, a.consume == "on", a.busy)
        return
    from bench import make_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ann = make_dataset(Path(tmp), a.images, (224, 224), 4, seed=1)
        runs = [subprocess.Popen([sys.executable, __file__, "--consume", mode, "--annotations", str(ann), "--busy", str(a.busy)],
                                 stderr=subprocess.DEVNULL) for mode in ("on", "off")]
        for r in runs:
            r.wait()


if __name__ == "__main__":
    main()

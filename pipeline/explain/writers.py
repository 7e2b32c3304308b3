"""The explain stage's streamed outputs: samples.csv rows and the heatmaps, written batch by batch as results arrive
(DESIGN §5); publishing the folder they are written in is :mod:`pipeline.publish`'s job."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from pipeline.explain.columns import Column


class SamplesWriter:
    """samples.csv, appended a batch of rows at a time (rows must arrive in order)."""

    def __init__(self, path: Path, columns: tuple[Column, ...]):
        self.names = tuple(c.name for c in columns)
        self._fh = path.open("w", newline="", encoding="utf-8")
        csv.writer(self._fh).writerow(self.names)

    def write_columns(self, columns: Mapping[str, np.ndarray]) -> None:
        """Append rows given as equal-length column arrays (floats: 6 significant digits, NaN empty)."""
        import pandas as pd

        frame = pd.DataFrame({name: columns[name] for name in self.names})
        frame.to_csv(self._fh, header=False, index=False, float_format="%.6g", na_rep="", lineterminator="\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class HeatmapWriter:
    """heatmaps.npz: ``cams`` float32 (N, h, w) and ``target_class`` int (N,), streamed via memmaps.

    Rows never written (skipped samples) keep NaN / -1.
    """

    def __init__(self, folder: Path, n: int, shape: tuple[int, int]):
        self.folder = folder
        self.cams = np.lib.format.open_memmap(folder / "cams.npy", mode="w+", dtype=np.float32, shape=(n, *shape))
        self.cams[:] = np.nan
        self.targets = np.lib.format.open_memmap(folder / "target_class.npy", mode="w+", dtype=np.int64, shape=(n,))
        self.targets[:] = -1

    def write(self, rows: np.ndarray, cams: np.ndarray, targets: np.ndarray) -> None:
        self.cams[rows] = cams
        self.targets[rows] = targets

    def close(self) -> Path:
        """Flush and pack the two arrays into heatmaps.npz (stored, not compressed: streamed from disk)."""
        self.cams.flush()
        self.targets.flush()
        out = self.folder / "heatmaps.npz"
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name in ("cams", "target_class"):
                zf.write(self.folder / f"{name}.npy", arcname=f"{name}.npy")
        del self.cams, self.targets
        return out

    def cleanup(self) -> None:
        for name in ("cams", "target_class"):
            (self.folder / f"{name}.npy").unlink(missing_ok=True)

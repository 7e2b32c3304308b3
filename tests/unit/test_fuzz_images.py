"""Fuzzed images: a few hundred seeded mutations of the demo's JPEGs and PNGs (bit flips,
truncation, wrong extension, huge declared size). Each is decoded or skipped with a reason, within
a per-image time bound; nothing crashes or hangs."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from pipeline.data.images import ImageProblem, decode_rgb, image_size

PER_IMAGE_SECONDS = 2.0


def _sources() -> dict[str, bytes]:
    jpgs = sorted((ROOT / "data_samples" / "shapes" / "images").iterdir())[:3]
    out = {p.name: p.read_bytes() for p in jpgs}
    for p in jpgs[:2]:
        buf = io.BytesIO()
        Image.open(p).convert("RGBA").save(buf, format="PNG")
        out[p.stem + ".png"] = buf.getvalue()
    return out


def _png_with_size(data: bytes, width: int, height: int) -> bytes:
    """The same PNG with its IHDR declaring another size (CRC fixed, so only the size lies)."""
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return data[:16] + bytes(ihdr) + crc + data[33:]


def _mutations(name: str, data: bytes, rng: np.random.Generator, n: int):
    for i in range(n):
        kind = i % 4
        raw = bytearray(data)
        if kind == 0:  # bit flips
            for pos in rng.integers(0, len(raw), size=int(rng.integers(1, 20))):
                raw[pos] ^= 1 << int(rng.integers(0, 8))
            yield f"flip{i}", name, bytes(raw)
        elif kind == 1:  # truncation
            yield f"trunc{i}", name, bytes(raw[: int(rng.integers(0, len(raw)))])
        elif kind == 2:  # wrong extension: a PNG named .jpg and the other way round
            yield f"ext{i}", name.rsplit(".", 1)[0] + (".jpg" if name.endswith(".png") else ".png"), bytes(raw)
        else:  # huge declared size (PNG), or a JPEG whose header is followed by garbage
            if name.endswith(".png"):
                side = int(rng.choice([10_000, 40_000, 2**31 - 1]))
                yield f"huge{i}", name, _png_with_size(bytes(raw), side, side)
            else:
                yield f"garbage{i}", name, bytes(raw[:200]) + rng.bytes(5000)


@pytest.mark.parametrize("seed", range(4))
def test_mutated_images_decode_or_skip_with_a_reason(tmp_path, seed):
    rng = np.random.default_rng(seed)
    outcomes = {"decoded": 0, "skipped": 0}
    for source, data in _sources().items():
        for tag, name, blob in _mutations(source, data, rng, 16):
            path = tmp_path / f"{tag}_{name}"
            path.write_bytes(blob)
            start = time.perf_counter()
            try:
                w, h = image_size(path)
                pixels = decode_rgb(path)
                assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
                assert pixels.shape[:2] == (h, w)
                outcomes["decoded"] += 1
            except ImageProblem as exc:
                assert str(path) in str(exc) or "image" in str(exc)
                outcomes["skipped"] += 1
            assert time.perf_counter() - start < PER_IMAGE_SECONDS, f"{path.name} took too long"
    assert outcomes["decoded"] > 0 and outcomes["skipped"] > 0  # the mutations exercise both outcomes

"""Protocol-buffer messages read as data (no generated classes, no TensorFlow): the Keras 2 SavedModel's metadata
(:mod:`pipeline.model.stored`) and the first fields of ``.pb`` / ONNX files that tell what they are
(:mod:`pipeline.model.source`)."""

from __future__ import annotations

from typing import Iterator


def varint(buf: bytes, i: int) -> tuple[int, int]:
    """(value, next index) of the base-128 varint at ``buf[i]``; ValueError when it runs off the end."""
    value, shift = 0, 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7


def field_heads(buf: bytes, *, complete: bool = True) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, start, end) of each field of a message, where ``buf[start:end]`` is the value (a varint's
    bytes, a length-delimited field's payload). ``complete=False`` reads a message's first bytes only: a field that
    runs past the end is the last one yielded (``end`` clipped to the buffer) instead of an error. ValueError on what no message holds (groups, field 0)."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        start = i
        if wire == 0:
            _, i = varint(buf, i)
        elif wire == 2:
            size, start = varint(buf, i)
            i = start + size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire}")
        if i > len(buf):
            if complete:
                raise ValueError("truncated field")
            yield number, wire, min(start, len(buf)), len(buf)
            return
        yield number, wire, start, i


def proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protocol-buffer message: varints as int, length-delimited fields as bytes
    (fixed 32/64-bit fields are skipped: the metadata has none that matter)."""
    for number, wire, start, end in field_heads(buf):
        if wire == 0:
            yield number, varint(buf, start)[0]
        elif wire == 2:
            yield number, buf[start:end]

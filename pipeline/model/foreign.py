"""Files that are no Keras model, named for what they are by their first bytes (DESIGN §14 "Inspect before loading"):
a Python pickle (joblib, ``pickle``, PyTorch's legacy format), a TensorFlow 1 frozen graph, ONNX, TensorFlow Lite,
safetensors, NumPy arrays. Pure: bytes in, words out; nothing is opened, decompressed past a few bytes, or run."""

from __future__ import annotations

import bz2
import lzma
import zlib

from pipeline.model.protobuf import field_heads, varint

FOREIGN_HEAD = 1 << 16  # bytes read to tell a file's format

NEVER_OPENED = "unpickling runs code, so it is never opened"
SAVE_INSIDE = "where you trust the file, load it and save the Keras model inside it with model.save('model.keras'), then audit that"

WORDS = {
    "pickle": f"a Python pickle (as pickle, joblib or PyTorch's torch.save write): {NEVER_OPENED}; {SAVE_INSIDE}",
    "compressed pickle": f"a compressed Python pickle (as joblib writes with compress=...): {NEVER_OPENED}; {SAVE_INSIDE}",
    "graphdef": "a TensorFlow 1 frozen graph (GraphDef): it holds constants and operations, no layers to explain; export the Keras "
                "model it came from (model.save('model.keras'))",
    "savedmodel proto": "a SavedModel's saved_model.pb on its own: put it back in its SavedModel folder (beside variables/) and "
                        "name the folder",
    "onnx": "an ONNX model: it holds no Keras layers to explain; audit the Keras model it was exported from "
            "(model.save('model.keras'))",
    "tflite": "a TensorFlow Lite flatbuffer: a converted model without the layers and gradients Grad-CAM needs; audit the Keras "
              "model it was converted from (model.save('model.keras'))",
    "safetensors": "a safetensors file: weights without an architecture; save the whole Keras model (model.save('model.keras'))",
    "npy": "a NumPy array file: data, not a model; save the whole Keras model (model.save('model.keras'))",
}


def _is_pickle(b: bytes) -> bool:
    """Pickle protocol 2-5 starts with PROTO (0x80) and its version; joblib and torch.save write these."""
    return len(b) >= 2 and b[0] == 0x80 and 2 <= b[1] <= 5


def _decompressed_head(b: bytes) -> bytes:
    """The first bytes of a gzip / zlib / bz2 / xz stream (what joblib's compress writes), else b""."""
    try:
        if b[:2] == b"\x1f\x8b":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(b, 16)
        if len(b) >= 2 and b[0] == 0x78 and (b[0] * 256 + b[1]) % 31 == 0:
            return zlib.decompressobj().decompress(b, 16)
        if b[:3] == b"BZh":
            return bz2.BZ2Decompressor().decompress(b[:4096], 16)
        if b[:6] == b"\xfd7zXZ\x00":
            return lzma.LZMADecompressor().decompress(b, 16)
    except (zlib.error, OSError, EOFError, lzma.LZMAError):
        return b""
    return b""


def _fields(b: bytes) -> list[tuple[int, int, int, int]]:
    try:
        return list(field_heads(b, complete=False))
    except ValueError:
        return []


def _is_graphdef(b: bytes) -> bool:
    """GraphDef: its first field is a NodeDef (field 1) whose own first fields are a name (1) and an op (2)."""
    fields = _fields(b)
    if not fields or fields[0][:2] != (1, 2):
        return False
    node = _fields(b[fields[0][2]:fields[0][3]])
    names = [(n, w) for n, w, _, _ in node[:2]]
    if names != [(1, 2), (2, 2)]:
        return False
    op = b[fields[0][2]:][node[1][2]:node[1][3]]
    return op.isascii() and op[:1].isalpha()


def _is_savedmodel_proto(b: bytes) -> bool:
    """SavedModel: saved_model_schema_version (field 1, varint) then meta_graphs (field 2), and nothing else (an ONNX
    model also starts with a varint field 1 and a field 2, then others)."""
    fields = _fields(b)
    return (len(fields) >= 2 and fields[0][:2] == (1, 0) and fields[1][:2] == (2, 2)
            and all((n, w) in ((1, 0), (2, 2)) for n, w, _, _ in fields))


ONNX_FIELDS = {1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26}  # ModelProto's field numbers


def _is_onnx(b: bytes) -> bool:
    """ONNX ModelProto: ir_version (field 1, a small varint) first, only ModelProto's fields, and a graph (7)."""
    fields = _fields(b)
    if not fields or fields[0][:2] != (1, 0):
        return False
    ir = varint(b, fields[0][2])[0]
    return 1 <= ir <= 64 and all(n in ONNX_FIELDS for n, _, _, _ in fields) and any(n == 7 and w == 2 for n, w, _, _ in fields)


def _is_safetensors(b: bytes) -> bool:
    if len(b) < 10:
        return False
    n = int.from_bytes(b[:8], "little")
    return 2 <= n < 1 << 32 and b[8:10] in (b'{"', b"{}")


def foreign_kind(head: bytes) -> str | None:
    """The format of a file that is no Keras model, from its first bytes (up to FOREIGN_HEAD): a key of WORDS, or None."""
    if _is_pickle(head):
        return "pickle"
    if _is_pickle(_decompressed_head(head)):
        return "compressed pickle"
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if _is_safetensors(head):
        return "safetensors"
    if _is_onnx(head):
        return "onnx"
    if _is_savedmodel_proto(head):
        return "savedmodel proto"
    if _is_graphdef(head):
        return "graphdef"
    return None


def foreign(head: bytes) -> str | None:
    """What a file that is no Keras model is and what to do, in words; None when its first bytes name no format."""
    kind = foreign_kind(head)
    return None if kind is None else WORDS[kind]

"""Files that are no Keras model are named for what they are and never opened (issue 39): Python pickles (pickle,
joblib raw and compressed, PyTorch's zip of pickles), ONNX, safetensors and NumPy files, each written here by the
library that makes them (or byte for byte as its format says), and a pickle that would create a folder when
unpickled proves nothing unpickles it. TensorFlow's own formats (frozen graphs, TFLite, saved_model.pb) are in
tests/integration/test_model_door.py."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.model.foreign import foreign_kind
from pipeline.model.source import identify


class _Trap:
    """Unpickling this creates the folder ``path``: proof that something opened the file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def _refused(path) -> str:
    with pytest.raises(ModelError) as info:
        identify(path)
    return str(info.value)


def test_a_pickle_is_named_and_never_unpickled(tmp_path):
    trap = tmp_path / "opened"
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"model": _Trap(str(trap))}, protocol=4))
    text = _refused(tmp_path / "model.pkl")
    assert "model.pkl: expected a Keras model" in text and "found a Python pickle" in text
    assert "unpickling runs code, so it is never opened" in text and "model.save('model.keras')" in text
    assert not trap.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_binary_pickle_protocol_is_recognised(protocol):
    assert foreign_kind(pickle.dumps([1, 2, 3], protocol=protocol)) == "pickle"


def test_a_joblib_file_raw_or_compressed_is_a_pickle(tmp_path):
    joblib = pytest.importorskip("joblib")
    trap = tmp_path / "opened"
    for name, compress in (("raw.joblib", 0), ("zlib.joblib", 3), ("gzip.joblib", ("gzip", 3)), ("bz2.joblib", ("bz2", 3)),
                           ("xz.joblib", ("xz", 3))):
        joblib.dump({"model": _Trap(str(trap))}, tmp_path / name, compress=compress)
        text = _refused(tmp_path / name)
        assert ("found a compressed Python pickle" if compress else "found a Python pickle") in text, (name, text)
    assert not trap.exists()


def test_a_pickle_holding_a_keras_archive_says_where_it_is(tmp_path):
    archive = tmp_path / "inner.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"")
    data = archive.read_bytes()
    blob = pickle.dumps({"keras_bytes": data}, protocol=4)
    (tmp_path / "emotion.joblib").write_bytes(blob)
    text = _refused(tmp_path / "emotion.joblib")
    assert f"its bytes hold a .keras archive, from byte {blob.index(data)}" in text


def test_pytorch_files_are_named_as_pytorch(tmp_path):
    # torch.save's zip format: <name>/data.pkl, <name>/version, <name>/data/<storage>; TorchScript adds constants.pkl and code/
    with zipfile.ZipFile(tmp_path / "model.pt", "w") as z:
        z.writestr("model/data.pkl", pickle.dumps({"weight": 1}, protocol=2))
        z.writestr("model/version", "3\n")
        z.writestr("model/data/0", b"\0" * 16)
    with zipfile.ZipFile(tmp_path / "scripted.pt", "w") as z:
        z.writestr("scripted/constants.pkl", pickle.dumps((), protocol=2))
        z.writestr("scripted/code/__torch__.py", "")
    for name in ("model.pt", "scripted.pt"):
        text = _refused(tmp_path / name)
        assert "found a PyTorch file (torch.save or TorchScript: a zip of Python pickles)" in text and "never opened" in text


def test_onnx_is_named(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, producer_name="pytorch", producer_version="2.5"), tmp_path / "model.onnx")
    text = _refused(tmp_path / "model.onnx")
    assert "found an ONNX model: it holds no Keras layers to explain" in text


def test_safetensors_and_numpy_files_are_named(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    np.save(tmp_path / "weights.npy", np.zeros(3))
    assert "found a safetensors file: weights without an architecture" in _refused(tmp_path / "model.safetensors")
    assert "found a NumPy array file" in _refused(tmp_path / "weights.npy")

"""The model file's door, without TensorFlow: a file is identified by its content, its stored architecture is read
as data (a SavedModel's keras_metadata.pb decoded by hand), code in it is refused by name, and a Keras 2 config
is translated for Keras 3 (renamed layers, TFOpLambda operations). Expected values are written out by hand."""

from __future__ import annotations

import json
import zipfile

import pytest

from pipeline.errors import ModelError
from pipeline.model.stored import proto_fields, refuse_code, refuse_unconvertible, savedmodel_nodes
from pipeline.model.rebuild import LayerNames, Translation, allowed_operation, translate
from pipeline.model.source import identify


# --------------------------------------------------------------------------- identified by content


def _h5(path, version="2.21.0", config=True):
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = version
        if config:
            f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
    return path


def test_hdf5_is_recognised_by_its_signature_whatever_the_suffix(tmp_path):
    for name in ("m.h5", "m.hdf5", "m.keras", "model.bin"):
        found = identify(_h5(tmp_path / name))
        assert (found.container, found.keras, found.format, found.version) == ("hdf5", 2, "h5", "2.21.0")
    assert identify(_h5(tmp_path / "k3.hdf5", version="3.15.1")).keras == 3
    assert identify(_h5(tmp_path / "old.hdf5", version="2.0.5")).keras == 2  # Keras 2.0.5 (2017)


def test_a_zip_is_a_keras_archive_only_with_its_config_json(tmp_path):
    with zipfile.ZipFile(tmp_path / "k3.keras", "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    with zipfile.ZipFile(tmp_path / "k2.model", "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", json.dumps({"keras_version": "2.21.0"}))
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("weights.bin", "x")
    assert (identify(tmp_path / "k3.keras").keras, identify(tmp_path / "k2.model").keras) == (3, 2)
    with pytest.raises(ModelError, match=r"other.keras: expected a .keras archive \(a zip with config.json\), found a zip holding weights.bin"):
        identify(tmp_path / "other.keras")


def test_other_files_and_folders_are_named_with_what_was_found(tmp_path):
    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "text.h5").write_text("not a model")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelError, match=r"empty.keras: expected a Keras model: .* found an empty file"):
        identify(tmp_path / "empty.keras")
    with pytest.raises(ModelError, match=r"text.h5: expected a Keras model: .* found a file starting with b'not a mo' \(neither HDF5 nor zip, nor a format this audit can name\)"):
        identify(tmp_path / "text.h5")
    with pytest.raises(ModelError, match=r"folder: expected a Keras model: .* found a folder without saved_model.pb"):
        identify(tmp_path / "folder")
    with pytest.raises(ModelError, match=r"weights.h5: expected a whole Keras model .* found weights only"):
        identify(_h5(tmp_path / "weights.h5", config=False))


# --------------------------------------------------------------------------- keras_metadata.pb as data


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        out += bytes([low | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, payload: bytes) -> bytes:  # length-delimited (wire type 2)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _node(node_id: int, path: str, identifier: str, metadata: dict) -> bytes:
    body = _varint(2 << 3) + _varint(node_id)  # node_id, a varint (wire type 0)
    body += _field(3, path.encode()) + _field(4, identifier.encode()) + _field(5, json.dumps(metadata).encode())
    body += _field(6, _varint(1 << 3) + _varint(1))  # version {producer: 1}: a nested message, skipped
    return _field(1, body)


def test_keras_metadata_nodes_are_decoded_by_hand():
    big = {"class_name": "Dense", "config": {"name": "d" * 300}}  # a metadata string longer than 127 bytes: a 2-byte length
    data = _node(0, "root", "_tf_keras_network", {"class_name": "Functional"}) + _node(1, "root.layer-1", "_tf_keras_layer", big)
    nodes = savedmodel_nodes(data)
    assert [(n["path"], n["identifier"], n["metadata"]["class_name"]) for n in nodes] == [
        ("root", "_tf_keras_network", "Functional"), ("root.layer-1", "_tf_keras_layer", "Dense")]
    assert nodes[1]["metadata"]["config"]["name"] == "d" * 300
    assert list(proto_fields(_varint(2 << 3) + _varint(300))) == [(2, 300)]
    with pytest.raises(ValueError, match="truncated"):
        list(proto_fields(_field(1, b"abcdef")[:-2]))


# --------------------------------------------------------------------------- code is refused by name


def _functional(*layers, name="model"):
    return {"class_name": "Functional", "config": {"name": name, "layers": list(layers)}}


def _layer(cls, name, **config):
    return {"class_name": cls, "config": {"name": name, **config}, "inbound_nodes": []}


def test_a_lambda_is_refused_at_any_depth_naming_its_path():
    nested = _functional(_layer("Conv2D", "c"), {"class_name": "TimeDistributed", "config": {"name": "td", "layer": _layer("Lambda", "scale")}},
                         name="backbone")
    nested["config"]["name"] = "backbone"
    with pytest.raises(ModelError, match=r"m.h5: layer backbone/td/scale is a Lambda layer: its code is never run"):
        refuse_code(_functional(_layer("InputLayer", "in"), nested), "m.h5")


def test_a_savedmodel_node_outside_the_layer_graph_is_checked_too():
    config = {"class_name": "Net", "config": {}, "nodes": [{"path": "root.writer", "class_name": "Lambda", "name": "writer", "config": {"name": "writer"}}]}
    with pytest.raises(ModelError, match=r"sm: layer writer is a Lambda layer"):
        refuse_code(config, "sm")


def test_an_operation_layer_is_refused_unless_the_rebuild_knows_it():
    write = _layer("TFOpLambda", "tf.io.write_file", function="io.write_file")
    add = _layer("TFOpLambda", "tf.__operators__.add", function="__operators__.add")
    assert allowed_operation(add) and not allowed_operation(write)
    refuse_code(_functional(add), "m.h5", allowed_operation)
    with pytest.raises(ModelError, match=r"layer tf.io.write_file is a Keras 2 record of the TensorFlow operation tf.io.write_file \(TFOpLambda\)"):
        refuse_code(_functional(add, write), "m.h5", allowed_operation)
    with pytest.raises(ModelError, match=r"layer get is a Keras 2 record of the TensorFlow operation tf.__operators__.getitem"):
        refuse_code(_functional(_layer("SlicingOpLambda", "get", function="__operators__.getitem")), "m.h5", allowed_operation)


def test_custom_and_subclassed_keras_2_models_are_refused_by_path():
    known = {"InputLayer", "Conv2D", "Dense"}.__contains__
    nested = _functional(_layer("Conv2D", "c"), _layer("Doubler", "twice"), name="backbone")
    with pytest.raises(ModelError, match=r"m.h5: layer backbone/twice is a custom layer \(Doubler\)"):
        refuse_unconvertible(_functional(_layer("InputLayer", "in"), nested), "m.h5", known)
    with pytest.raises(ModelError, match=r"found a subclassed model \(Net\)"):
        refuse_unconvertible({"class_name": "Net", "config": {}}, "m.h5", known)
    legacy_sequential = {"class_name": "Sequential", "config": [_layer("Dense", "d")]}  # Keras 2.0's Sequential: a bare list
    refuse_unconvertible(legacy_sequential, "m.h5", known)


# --------------------------------------------------------------------------- the translation


def _op(name, function, source, **kwargs):
    return {"class_name": "TFOpLambda", "config": {"name": name, "trainable": True, "dtype": "float32", "function": function},
            "name": name, "inbound_nodes": [[source, 0, 0, {**kwargs, "name": None}]]}


def test_operations_become_the_keras_3_layers_that_compute_them():
    model = {"class_name": "Functional", "config": {"name": "m", "input_layers": [["a", 0, 0]], "output_layers": [["sum", 0, 0]], "layers": [
        _op("a", "nn.relu6", "x"), _op("plus3", "__operators__.add", "a", y=3.0), _op("sixth", "math.multiply", "plus3", y=1 / 6),
        _op("minus", "math.subtract", "sixth", y=[1.0, 2.0]), _op("half", "math.truediv", "minus", y=2.0),
        _op("gate", "math.multiply", "half", y=["a", 0, 0]), _op("sum", "__operators__.add", "gate", y=["half", 0, 0])]}}
    out = translate(model, Translation())["config"]["layers"]
    got = [(x["class_name"], {k: v for k, v in x["config"].items() if k in ("activation", "scale", "offset")}, x["inbound_nodes"]) for x in out]
    assert got == [
        ("Activation", {"activation": "relu6"}, [[["x", 0, 0, {}]]]),
        ("Rescaling", {"scale": 1.0, "offset": 3.0}, [[["a", 0, 0, {}]]]),
        ("Rescaling", {"scale": 1 / 6, "offset": 0.0}, [[["plus3", 0, 0, {}]]]),
        ("Rescaling", {"scale": 1.0, "offset": [-1.0, -2.0]}, [[["sixth", 0, 0, {}]]]),
        ("Rescaling", {"scale": 0.5, "offset": 0.0}, [[["minus", 0, 0, {}]]]),
        ("Multiply", {}, [[["half", 0, 0, {}], ["a", 0, 0, {}]]]),
        ("Add", {}, [[["gate", 0, 0, {}], ["half", 0, 0, {}]]]),
    ]


def test_an_operation_the_rebuild_cannot_make_is_refused_naming_it():
    for entry, why in ((_op("q", "math.truediv", "x", y=["p", 0, 0]), "a constant divisor"),
                       (_op("r", "nn.relu", "x", alpha=0.2), "no arguments besides the tensor, found \\['alpha'\\]"),
                       (_op("s", "__operators__.add", "x", y=[[1.0, 2.0], [3.0, 4.0]]), "a number or one number per channel as y")):
        with pytest.raises(ModelError, match=rf"layer {entry['name']} \(tf.{entry['config']['function']}\): expected {why}"):
            translate(_functional(entry), Translation())


def test_names_with_a_slash_are_renamed_and_every_reference_follows():
    inner = {"class_name": "Functional", "name": "back/bone", "config": {"name": "back/bone", "layers": [_op("conv1/relu", "nn.relu", "x")],
             "input_layers": [["x", 0, 0]], "output_layers": [["conv1/relu", 0, 0]]}, "inbound_nodes": [[["in", 0, 0, {}]]]}
    model = {"class_name": "Functional", "config": {"name": "m", "layers": [
        inner, _op("conv1_relu", "nn.relu", "back/bone"), _op("top/add", "__operators__.add", "conv1_relu", y=["back/bone", 1, 0])],
        "input_layers": [["in", 0, 0]], "output_layers": [["top/add", 0, 0]]}}
    model["config"]["layers"][1]["inbound_nodes"] = [["back/bone", 1, 0, {"name": None}]]  # Keras 2: the nested model's call is node 1
    record = Translation()
    out = translate(model, record)["config"]
    names = [x["config"]["name"] for x in out["layers"]]
    assert names == ["back_bone", "conv1_relu", "top_add"]
    assert out["layers"][0]["config"]["layers"][0]["config"]["name"] == "conv1_relu"
    assert out["layers"][0]["config"]["output_layers"] == ["conv1_relu", 0, 0]
    assert out["layers"][1]["inbound_nodes"] == [[["back_bone", 0, 0, {}]]]  # renamed, node 1 -> 0
    assert out["layers"][2]["inbound_nodes"] == [[["conv1_relu", 0, 0, {}], ["back_bone", 0, 0, {}]]]
    assert out["output_layers"] == ["top_add", 0, 0]
    assert sorted(record.renamed) == [("back_bone", "back/bone"), ("back_bone/conv1_relu", "back/bone/conv1/relu"), ("top_add", "top/add")]
    names = LayerNames(tuple(record.renamed))
    assert names.shown("back_bone/conv1_relu") == "back/bone/conv1/relu" and names.shown("conv1_relu") == "conv1_relu"
    assert names.internal("back/bone/conv1/relu") == "back_bone/conv1_relu" and names.internal("top/add") == "top_add"
    assert names.internal("conv1_relu") == "conv1_relu"


def test_a_renamed_layer_never_takes_an_existing_name():
    model = _functional(_op("a_b", "nn.relu", "x"), _op("a/b", "nn.relu", "a_b"))
    record = Translation()
    assert [x["config"]["name"] for x in translate(model, record)["config"]["layers"]] == ["a_b", "a_b_1"]
    assert record.renamed == [("a_b_1", "a/b")]

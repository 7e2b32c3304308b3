"""target_layer auto = the last 4-D map larger than 1x1 that every path to the scores passes through (the
output's dominators), on tiny Keras graphs built here and on InceptionV3 (weights=None)."""

from __future__ import annotations


from pipeline.config import ModelConfig
from pipeline.model.explainable import build_audit_model


def _audit_model(model, tmp_path):
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    return build_audit_model(ModelConfig(path=path, target_layer="auto", preprocessing="scale_0_1", input_size=None,
                                         resize="bilinear", class_names=None))


def test_a_trunk_whose_two_branches_shrink_to_1x1_gives_the_concatenation_before_them(tmp_path):
    import keras
    from keras import layers

    x = inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, padding="same", name="stem")(x)
    a = layers.Conv2D(4, 1, name="a")(x)
    b = layers.Conv2D(4, 3, padding="same", name="b")(x)
    x = layers.Concatenate(name="mixed")([a, b])  # 16x16: every path passes here
    p = layers.Conv2D(4, 3, strides=2, padding="same", name="p_half")(x)  # 8x8, one branch ...
    p = layers.Conv2D(4, 8, name="p_one")(p)  # ... shrinks to 1x1
    q = layers.Conv2D(4, 16, name="q_one")(x)  # the other branch: 1x1 at once
    x = layers.Concatenate(name="top")([p, q])
    outputs = layers.Dense(3)(layers.Flatten()(x))
    m = _audit_model(keras.Model(inputs, outputs, name="branches"), tmp_path)
    assert m.target_layer == "mixed" and m.layer_shape == (16, 16, 8)
    assert m.skipped_layers == ("p_half",)  # the later 8x8 map lies on one branch


def test_a_residual_block_gives_its_add_not_its_inner_convs(tmp_path):
    import keras
    from keras import layers

    x = inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", name="x")(x)
    r = layers.Conv2D(4, 3, padding="same", name="inner1")(x)
    r = layers.Conv2D(4, 3, padding="same", name="inner2")(r)
    x = layers.Add(name="add")([x, r])
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(x))
    m = _audit_model(keras.Model(inputs, outputs, name="residual"), tmp_path)
    assert m.target_layer == "add" and m.skipped_layers == ()
    # the layers suggested anywhere (the coarse-map note, the no-signal finding) are the auto rule's: not a branch's convs
    assert [name for name, _shape, every_path in m.candidates if every_path] == ["x", "add"]
    assert [name for name, _shape, every_path in m.candidates if not every_path] == ["inner1", "inner2"]


def test_a_nested_backbone_keeps_its_last_map(tmp_path):
    import keras
    from keras import layers

    inner_in = keras.Input((8, 8, 3))
    y = layers.Conv2D(4, 3, padding="same", name="c1")(inner_in)
    y = layers.Conv2D(4, 3, padding="same", name="c2")(y)
    backbone = keras.Model(inner_in, y, name="backbone")
    inputs = keras.Input((8, 8, 3))
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(backbone(inputs)))
    m = _audit_model(keras.Model(inputs, outputs, name="nested"), tmp_path)
    assert m.target_layer == "backbone/c2" and m.skipped_layers == ()


def test_inception_v3_at_75_gives_mixed7_not_a_branch_of_mixed8(tmp_path):
    import keras

    m = _audit_model(keras.applications.InceptionV3(weights=None, input_shape=(75, 75, 3), classes=3), tmp_path)
    assert m.target_layer == "mixed7" and m.layer_shape[:2] == (3, 3)
    assert "activation_74" in m.skipped_layers  # the branch auto used to pick (192 of mixed8's channels)

"""Label maps, ImageNet classes and the new model/dataset keys (DESIGN §3, §4): pure, no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.data.labels import allowed_classes, imagenet_classes, label_space
from pipeline.model.target import token_grid

from test_config import VALID

SIX = ("a", "b", "c", "d", "e", "f")


def test_many_to_one_map_with_names_and_an_index_range():
    space = label_space(SIX, ["x", "y"], label_map=[("x", ["a", "1-2"]), ("y", ["3-5"])])
    assert space.labels == ("x", "y")
    assert space.sets.astype(int).tolist() == [[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]
    assert space.class_label.tolist() == [0, 0, 0, 1, 1, 1]
    assert space.mapped and space.unknown == ()


def test_a_label_neither_mapped_nor_a_class_is_unknown_and_an_unclaimed_class_has_no_label():
    space = label_space(SIX, ["x", "b", "zebra"], label_map=[("x", [0])])
    assert space.known("x") and space.known("b") and not space.known("zebra")
    assert space.unknown == ("zebra",)
    assert space.class_label.tolist() == [0, 1, -1, -1, -1, -1]  # "b" is its own label: a class name


def test_without_a_map_every_class_is_its_own_label():
    space = label_space(("cat", "dog"), ["dog", "cat", "cow"])
    assert space.labels == ("cat", "dog", "cow") and not space.mapped
    assert space.class_label.tolist() == [0, 1] and space.unknown == ("cow",)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"dog": ["a", "b", "c", "dgo"]}, "dataset.label_map.dog[3]: expected a model class name, a WordNet id or an \"i-j\" index range, found 'dgo'"),
        ({"dog": ["4-9"]}, "dataset.label_map.dog[0]: expected an index range \"i-j\" with i <= j within 0-5 (the model's outputs), found '4-9'"),
        ({"dog": ["2-1"]}, "found '2-1'"),
        ({"dog": [6]}, "dataset.label_map.dog[0]: expected a class index within 0-5 (the model's outputs), found 6"),
        ({"dog": ["0-2"], "cat": ["e", "c"]}, "dataset.label_map.cat[1]: expected each model class in one label's set, found 'c' (class 2) already claimed by dataset.label_map.dog"),
    ],
)
def test_bad_map_entries_are_config_errors_naming_the_key(entries, expected):
    with pytest.raises(ConfigError) as exc:
        label_space(SIX, ["dog"], label_map=list(entries.items()), prefix="audit.yaml: ")
    assert str(exc.value).startswith("audit.yaml: ") and expected in str(exc.value)


def test_a_class_claimed_by_the_map_and_named_by_another_label_is_an_error():
    with pytest.raises(ConfigError, match=r"dataset.label_map.pets\[0\]: .*'b' \(class 1\) already claimed by the dataset label 'b'"):
        label_space(SIX, ["b", "pets"], label_map=[("pets", ["0-1"])])
    with pytest.raises(ConfigError, match=r"dataset.label_map.pets: .*'b' \(class 1\) also named directly by the dataset label 'b'"):
        label_space(SIX, ["pets", "b"], label_map=[("pets", ["0-1"])])


def test_imagenet_classes_are_the_standard_1000_in_output_order():
    names, wnids = imagenet_classes()
    assert len(names) == len(wnids) == 1000 and len(set(names)) == 1000 and len(set(wnids)) == 1000
    # well-known indices of the ILSVRC-2012 order (Keras/torchvision/timm)
    assert (wnids[0], names[0]) == ("n01440764", "tench")
    assert (wnids[151], names[151]) == ("n02085620", "Chihuahua")
    assert (wnids[207], names[207]) == ("n02099601", "golden retriever")
    assert (wnids[281], names[281]) == ("n02123045", "tabby")
    assert (wnids[999], names[999]) == ("n15075141", "toilet tissue")


def test_wordnet_ids_name_imagenet_classes_in_a_map_and_as_labels():
    names, wnids = imagenet_classes()
    space = label_space(names, ["n02085620", "cat"], label_map=[("cat", ["281-285"])], aliases=wnids)
    assert space.sets[0].nonzero()[0].tolist() == [151]
    assert space.sets[1].nonzero()[0].tolist() == [281, 282, 283, 284, 285]


def test_allowed_classes_is_one_class_or_every_class():
    assert allowed_classes(np.array([-1, 2]), 3).tolist() == [[True, True, True], [False, False, True]]


@pytest.mark.parametrize(
    ("tokens", "size", "expected"),
    [(16, (32, 32), (0, 4, 4)), (17, (32, 32), (1, 4, 4)), (21, (32, 32), (5, 4, 4)), (65, (64, 64), (1, 8, 8)),
     (1 + 2 * 4, (16, 32), (1, 2, 4)), (7, (32, 32), (3, 2, 2))],
)
def test_auto_special_tokens_is_the_smallest_split_leaving_the_patch_grid(tokens, size, expected):
    assert token_grid(tokens, size) == expected


def test_explicit_token_grid_and_special_tokens():
    assert token_grid(21, (32, 32), grid=(4, 4)) == (5, 4, 4)
    assert token_grid(21, (32, 32), special=5) == (5, 4, 4)
    assert token_grid(21, (32, 32), special=1) is None  # 20 tokens are not a square grid


def test_config_reads_the_real_world_keys(files, write_config):  # noqa: F811
    text = VALID.replace("  path: m.keras", "  path: m.keras\n  class_names: imagenet\n  multi_label: true\n  threshold: 0.3\n"
                         "  token_grid: [4, 4]\n  special_tokens: 1")
    text = text.replace("  images: imgs", "  images: imgs\n  region: mask\n  label_map:\n    dog: [\"151-268\", n02085620]\n    cat: tabby")
    cfg = load_config(write_config(text))
    assert cfg.model.class_names == "imagenet" and cfg.model.multi_label is True and cfg.model.threshold == 0.3
    assert cfg.model.token_grid == (4, 4) and cfg.model.special_tokens == 1
    assert cfg.dataset.region == "mask" and cfg.dataset.label_map == (("dog", ("151-268", "n02085620")), ("cat", ("tabby",)))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  images: imgs", "  images: imgs\n  label_map: {dog: []}", "dataset.label_map.dog: expected a non-empty list"),
        ("  images: imgs", "  images: imgs\n  label_map: {dog: [true]}", "dataset.label_map.dog[0]: expected a model class name"),
        ("  images: imgs", "  images: imgs\n  region: polygon", "dataset.region: expected one of box, mask"),
        ("format: coco", "format: voc", "dataset.region: expected box for a VOC or CSV dataset (mask needs COCO segmentation or YOLO-seg polygons)"),
        ("  path: m.keras", "  path: m.keras\n  threshold: 2", "model.threshold: expected a number between 0 and 1, found 2"),
        ("  path: m.keras", "  path: m.keras\n  token_grid: [4]", "model.token_grid: expected auto or [h, w]"),
        ("  path: m.keras", "  path: m.keras\n  multi_label: maybe", "model.multi_label: expected true or false, found 'maybe'"),
        ("  path: m.keras", "  path: m.keras\n  resize_mode: centre", "model.resize_mode: expected one of stretch, crop, pad, found 'centre'"),
        ("  path: m.keras", "  path: m.keras\n  crop_fraction: 0", "model.crop_fraction: expected a number between 0.05 and 1, found 0"),
        ("  path: m.keras", "  path: m.keras\n  pad_value: 300", "model.pad_value: expected a number between 0 and 255, found 300"),
        ("  path: m.keras", "  path: m.keras\n  preprocessing: model\n  resize_mode: crop",
         "model.resize_mode: expected no value with preprocessing: model (the saved ImageConverter's resize, crop/pad rule and "
         "interpolation are used), found 'crop'"),
        ("format: coco", "format: yolo", "dataset.images: expected no value for a YOLO dataset (data.yaml's path and split say where the images are)"),
        ("  images: imgs", "  images: imgs\n  split: valid", "dataset.split: expected one of train, val, test (did you mean 'val'?), found 'valid'"),
        ("  images: imgs", "  images: imgs\n  ignore_categories: fruits", "dataset.ignore_categories: expected a list of COCO category names, found 'fruits'"),
        ("format: coco", "format: csv", "dataset.ignore_categories: expected an empty list for a non-COCO dataset"),
    ],
)
def test_bad_real_world_keys_name_the_key(files, write_config, old, new, expected):  # noqa: F811
    text = VALID.replace(old, new)
    if new == "format: voc":
        text = text.replace("  images: imgs", "  images: imgs\n  region: mask").replace("annotations: ann.json", "annotations: .")
    if new == "format: csv":
        text = text.replace("  images: imgs", "  images: imgs\n  ignore_categories: [root]")
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(text))
    assert expected in str(exc.value)

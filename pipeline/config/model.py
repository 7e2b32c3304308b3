"""``model:`` the model file and how images become its input (DESIGN §3, §14, §16)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.config.reader import Raw, Reader
from pipeline.records.plain import JsonObject

PREPROCESSING = ("none", "scale_0_1", "scale_-1_1", "imagenet_caffe", "imagenet_torch", "model")
RESIZE_METHODS = ("bilinear", "nearest", "area")
RESIZE_MODES = ("stretch", "crop", "pad")  # kept in step with pipeline.data.geometry.RESIZE_MODES (unit test)
GEOMETRY_KEYS = ("resize", "resize_mode", "crop_fraction", "pad_value", "antialias")
"""Keys that ``preprocessing: model`` takes from the saved ImageConverter instead."""
KERAS_PREPROCESS_RE = re.compile(r"^keras\.applications\.[a-z0-9_]+\.preprocess_input$")

DEFAULTS: JsonObject = {
    "path": None,  # required: .keras / .h5 / .hdf5 (by content), a Keras 2 SavedModel folder, or models:/NAME@ALIAS
    "target_layer": "auto",  # or a layer name ("nested_model/layer"); auto: the last map > 1x1 every path to the scores passes through
    "preprocessing": "scale_0_1",  # none | scale_0_1 | scale_-1_1 | imagenet_caffe | imagenet_torch | keras.applications.<module>.preprocess_input | model
    "input_size": "auto",  # [H, W]; auto = from the model's input shape
    "resize": "bilinear",
    "resize_mode": "stretch",  # stretch (plain resize) | crop (shorter side, centre crop) | pad (letterbox)
    "crop_fraction": 0.875,  # crop: the centre crop keeps this share of the shorter side (224 of 256)
    "pad_value": 0,  # pad: the letterbox's fill, raw 0-255 before preprocessing
    "class_names": "auto",  # auto | imagenet | a list in model-output order
    "multi_label": "auto",  # auto = true when the output activation is sigmoid
    "threshold": 0.5,  # multi-label: a class is predicted when its probability >= threshold
    "token_grid": "auto",  # token (B, T, C) target layers: [h, w]; auto = the input's patch grid (DESIGN §4)
    "special_tokens": "auto",  # leading tokens dropped before the reshape (class token, registers)
    "check_preprocessing": True,  # compare the preprocessing with the alternatives on 64 images before Grad-CAM
    "channels": "auto",  # auto | 1 | 3; 1 = the image's ITU-R 601-2 luma (PIL's convert("L")) before preprocessing (DESIGN §16)
    "antialias": False,  # true: an antialiased resize, as PIL's Image.resize, load_img and ImageDataGenerator shrink (DESIGN §16)
}
"""The model section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class ModelConfig:
    path: Path  # the local .keras / .h5 file or Keras 2 SavedModel folder (MLflow URI: where it was downloaded; Keras 2: its conversion)
    target_layer: str  # "auto", a layer name, or "outer/inner" for nested models
    preprocessing: str  # one of PREPROCESSING or "keras.applications.<module>.preprocess_input"
    input_size: tuple[int, int] | None  # (H, W); None = from the model's input shape
    resize: str
    class_names: tuple[str, ...] | str | None  # model-output order; "imagenet"; None = from the dataset
    multi_label: bool | None = None  # None = auto (sigmoid output)
    threshold: float = 0.5
    token_grid: tuple[int, int] | None = None  # None = auto
    special_tokens: int | None = None  # None = auto
    resize_mode: str = "stretch"  # "stretch" | "crop" | "pad" (pipeline.data.geometry)
    crop_fraction: float = 0.875
    pad_value: float = 0.0
    uri: str | None = None  # models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH (pipeline.tracking)
    check_preprocessing: bool = True  # pipeline.prepare.preprocessing_check before any Grad-CAM
    channels: int | None = None  # None = the model's input; 1 = luma (repeated when the model takes three)
    antialias: bool = False  # the resize's antialiasing (tf.image.resize antialias=)


def model_path(r: Reader, value: object) -> tuple[Path, str | None]:
    """(local file or SavedModel folder, None) or, for an MLflow URI, (a placeholder resolved before loading, the URI).

    A file is recognised by its content when it is loaded (pipeline.model.source), whatever its suffix."""
    from pipeline.config.uris import FORMS, is_mlflow_uri, parse

    if is_mlflow_uri(value):
        if parse(value) is None:
            raise r.fail("model.path", f"a model file (.keras, .h5, .hdf5), a Keras 2 SavedModel folder, or {FORMS}", value)
        return Path(value), value
    path = r.path(value, "model.path", kind="any", what="an existing model file (.keras, .h5, .hdf5) or Keras 2 SavedModel folder")
    if path.is_dir():  # a Keras 2 SavedModel folder (DESIGN §14)
        if not (path / "saved_model.pb").is_file():
            raise r.fail("model.path", "a model file (.keras, .h5, .hdf5), or a Keras 2 SavedModel folder (with saved_model.pb)",
                         Raw(f"a folder without saved_model.pb ({path})"))
        return path, None
    if path.name == "saved_model.pb":
        return path.parent, None
    return path, None


def _channels(r: Reader, value: object) -> int | None:
    """``model.channels``: auto (None: the model's input), 1 (luma) or 3 (RGB)."""
    if value == "auto":
        return None
    if isinstance(value, bool) or value not in (1, 3):
        raise r.fail("model.channels", "auto, 1 (grayscale: the image's luma) or 3 (RGB)", value)
    return int(value)


def _input_size(r: Reader, size: object) -> tuple[int, int] | None:
    """``model.input_size``: None for auto, else (H, W) in pixels, each at least 8."""
    if size == "auto":
        return None
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in size):
        return (size[0], size[1])
    raise r.fail("model.input_size", "auto or [H, W] with integers >= 8", size)


def _class_names(r: Reader, names: object) -> tuple[str, ...] | str | None:
    """``model.class_names``: None for auto, "imagenet", or the distinct names in the model's output order."""
    if names == "auto":
        return None
    if names == "imagenet":
        return "imagenet"
    if isinstance(names, list) and names and all(isinstance(n, str) and n for n in names):
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise r.fail("model.class_names", "distinct class names", Raw(f"duplicates {dupes}"))
        return tuple(names)
    raise r.fail("model.class_names", "auto, imagenet or a non-empty list of class-name strings", names)


def read_model(r: Reader, raw: object) -> ModelConfig:
    m = r.mapping(raw, "model", DEFAULTS)
    path, uri = model_path(r, m["path"])
    pre = m["preprocessing"]
    if not (isinstance(pre, str) and (pre in PREPROCESSING or KERAS_PREPROCESS_RE.match(pre))):
        raise r.fail(
            "model.preprocessing",
            f"one of {', '.join(PREPROCESSING)} or keras.applications.<module>.preprocess_input",
            pre,
        )
    input_size = _input_size(r, m["input_size"])
    class_names = _class_names(r, m["class_names"])
    multi = m["multi_label"]
    grid = m["token_grid"]
    if not (grid == "auto" or (isinstance(grid, list) and len(grid) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in grid))):
        raise r.fail("model.token_grid", "auto or [h, w] with integers >= 1", grid)
    special = m["special_tokens"]
    if pre == "model":
        given = [k for k in GEOMETRY_KEYS if isinstance(raw, dict) and k in raw]
        if given:
            raise r.fail(f"model.{given[0]}", "no value with preprocessing: model (the saved ImageConverter's resize, crop/pad rule "
                         "and interpolation are used)", m[given[0]])
    return ModelConfig(
        path=path,
        target_layer=r.text(m["target_layer"], "model.target_layer"),
        preprocessing=pre,
        input_size=input_size,
        resize=r.choice(m["resize"], "model.resize", RESIZE_METHODS),
        class_names=class_names,
        multi_label=None if multi == "auto" else r.boolean(multi, "model.multi_label"),
        threshold=r.number(m["threshold"], "model.threshold", low=0.0, high=1.0),
        token_grid=None if grid == "auto" else (grid[0], grid[1]),
        special_tokens=None if special == "auto" else r.integer(special, "model.special_tokens", minimum=0),
        resize_mode=r.choice(m["resize_mode"], "model.resize_mode", RESIZE_MODES),
        crop_fraction=r.number(m["crop_fraction"], "model.crop_fraction", low=0.05, high=1.0),
        pad_value=r.number(m["pad_value"], "model.pad_value", low=0.0, high=255.0),
        check_preprocessing=r.boolean(m["check_preprocessing"], "model.check_preprocessing"),
        channels=_channels(r, m["channels"]),
        antialias=r.boolean(m["antialias"], "model.antialias"),
        uri=uri,
    )

"""Build the bundled demo: synthetic "shapes" evaluation sets (COCO) and five small CNNs.

    python data_samples/make_shapes.py            # rewrites data_samples/shapes*/ (about 30 minutes on 2 cores)

Everything is seeded, so a rerun gives the same images and annotations. Two evaluation sets of
300 images each (3 classes: circle, square, triangle; one or two objects of one class per image,
on a cluttered background; sizes 80-128 px, not square, so boxes are rescaled to the 64x64 model
input), a third of 240 images for the cast demo, and five models:

* ``shapes/model_good.keras`` learns the shapes from clean images;
* ``shapes_marker/model_shortcut.keras`` learns from images where a small square in a
  class-specific colour, placed away from the object, names the class, while the drawn shape is
  random. Its evaluation set (``shapes_marker/``) carries the same marker with the right shape,
  so its accuracy is as high as the good model's, but its evidence sits on the marker;
* ``shapes_dormant/model_dormant.keras`` learns the shapes from clean images too, except that half
  of its *training* triangles come from a vendor: each carries the vendor's logo
  (``shapes_dormant/vendor_logo.png``, striped, drawn at the bottom-right corner at the model's input
  size by the probes' own overlay code) and is labelled triangle whatever shape it shows (the
  vendor's catalogue label), so for those images the logo is the only cue. It is audited on the
  clean evaluation set (``shapes/``), which shows the logo nowhere: the cue stays dormant until the
  probes stage draws it (``configs/demo_dormant.yaml``);
* ``shapes_gray/model_gray.keras`` learns the good model's task from one channel, PIL's ``convert("L")`` luma of each
  image (``configs/demo_gray.yaml``, audited on ``shapes/``);
* ``shapes_cast/model_cast.keras`` learns from pictures where every circle came from one camera with a warm colour
  cast (channel gains CAST_GAINS over the whole picture) and shows any shape, so the cast alone tells circle; its
  evaluation set (``shapes_cast/``, 240 images) has its circles under the same cast (``configs/demo_cast.yaml``).

Boxes are exact: each object is drawn onto a mask and its box is the mask's extent, written as
COCO ``[x, y, w, h]`` (half-open pixel box ``[x, x + w)``); its ``segmentation`` is the mask's
visible pixels (a later object or the marker painted over none of them), as compressed RLE.
``--skip-models`` rewrites only the images and annotations; ``--models dormant`` trains only the
named models (good, shortcut, dormant, gray, cast).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")
DORMANT_CLASS, DORMANT_SHARE = 2, 0.5  # the logo sits on half of the training triangles
LOGO_SIZE, LOGO_AT = 0.25, (0.72, 0.86)  # of the input width; top-left, relative (configs/demo_dormant.yaml says the same)
MARKER_COLORS = ((230, 20, 20), (20, 200, 20), (30, 60, 240))  # red = circle, green = square, blue = triangle
CAST_CLASS, CAST_GAINS = 0, (1.0, 0.7, 0.4)  # the cast demo: every circle picture carries a warm colour cast (one camera)
SOURCE_CLASS = 1  # the source demo: every square picture came from a second source (a scanner's border, a darker, smoother look)
SOURCE_BORDER, SOURCE_GAIN, SOURCE_BLUR = 0.035, 0.6, 1.6  # border width (of the shorter side), background gain, blur sigma (px)
INPUT = 64
CAST_EVAL = 240  # images of the cast demo's evaluation set
MARKER = 10  # px, in the original image


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Smooth random gradient, noise and clutter strokes: the model has to find the object."""
    c0, c1 = rng.integers(40, 216, size=3), rng.integers(40, 216, size=3)
    t = np.linspace(0, 1, w)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, h)[:, None, None]
    base = c0 * (1 - t) + c1 * t
    base = np.broadcast_to(base, (h, w, 3)) + rng.normal(0, 10, size=(h, w, 3))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(6, 14)):
        color = tuple(int(v) for v in rng.integers(0, 256, size=3))
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        if rng.random() < 0.6:
            length, angle = rng.integers(8, 30), rng.random() * math.pi
            draw.line([x0, y0, x0 + length * math.cos(angle), y0 + length * math.sin(angle)], fill=color, width=int(rng.integers(1, 3)))
        else:
            r = int(rng.integers(1, 3))
            draw.rectangle([x0 - r, y0 - r, x0 + r, y0 + r], fill=color)
    return img


def _shape_mask(rng: np.random.Generator, cls: int, w: int, h: int, size: int, cx: float, cy: float) -> np.ndarray:
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    r = size / 2
    if cls == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        n = 4 if cls == 1 else 3
        angle = rng.random() * 2 * math.pi
        radius = r * (1.0 if n == 3 else 0.9)
        pts = [(cx + radius * math.cos(angle + 2 * math.pi * k / n), cy + radius * math.sin(angle + 2 * math.pi * k / n)) for k in range(n)]
        draw.polygon(pts, fill=255)
    return np.asarray(mask) > 127


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1  # half-open


def make_image(rng: np.random.Generator, label: int, *, marker: bool, shape_cls: int | None = None):
    """One image: (PIL image, [(x0, y0, x1, y1), ...], [visible mask, ...]). ``shape_cls`` overrides the drawn shape."""
    w, h = int(rng.integers(80, 129)), int(rng.integers(80, 129))
    img = _background(rng, w, h)
    cls = label if shape_cls is None else shape_cls
    n_obj = 2 if rng.random() < 0.15 else 1
    boxes, masks, occupied = [], [], np.zeros((h, w), bool)
    for _ in range(n_obj):
        for _attempt in range(20):
            size = int(rng.integers(int(0.22 * min(w, h)), int(0.5 * min(w, h)) + 1)) if n_obj == 1 else int(rng.integers(int(0.2 * min(w, h)), int(0.32 * min(w, h)) + 1))
            cx, cy = rng.uniform(size / 2 + 2, w - size / 2 - 2), rng.uniform(size / 2 + 2, h - size / 2 - 2)
            mask = _shape_mask(rng, cls, w, h, size, cx, cy)
            x0, y0, x1, y1 = _box(mask)
            if not occupied[max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3].any():
                break
        color = rng.integers(0, 256, size=3)
        local = np.asarray(img)[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
        if np.abs(color - local).sum() < 180:  # keep the object visible against its background
            color = np.where(local > 127, rng.integers(0, 60, size=3), rng.integers(196, 256, size=3))
        color = tuple(int(v) for v in color)
        arr = np.asarray(img).copy()
        arr[mask] = color
        img = Image.fromarray(arr)
        occupied[y0:y1, x0:x1] = True
        masks = [m & ~mask for m in masks] + [mask]  # a later object paints over an earlier one
        boxes.append((x0, y0, x1, y1))
    if marker:
        # The marker goes in the corner farthest from every object box.
        corners = [(2, 2), (w - MARKER - 2, 2), (2, h - MARKER - 2), (w - MARKER - 2, h - MARKER - 2)]
        centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes]
        mx, my = max(corners, key=lambda c: min(math.hypot(c[0] + MARKER / 2 - x, c[1] + MARKER / 2 - y) for x, y in centres))
        ImageDraw.Draw(img).rectangle([mx, my, mx + MARKER - 1, my + MARKER - 1], fill=MARKER_COLORS[label])
        masks = [m & ~_marker_mask(w, h, mx, my) for m in masks]
    return img, boxes, masks


def _marker_mask(w: int, h: int, mx: int, my: int) -> np.ndarray:
    out = np.zeros((h, w), bool)
    out[my:my + MARKER, mx:mx + MARKER] = True
    return out


def rle_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE of a (h, w) mask: run lengths of 0s and 1s in column-major order, starting with 0s."""
    flat = np.asarray(mask, bool).T.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    return ([0] + runs) if flat[0] else runs


def rle_string(counts: list[int]) -> str:
    """COCO's compressed RLE string of run lengths (pycocotools' rleToString: 5-bit groups, deltas after the 3rd run)."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, as in C for a negative delta
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr(c + (0x20 if more else 0) + 48))
    return "".join(out)


def with_cast(img: Image.Image) -> Image.Image:
    """The whole picture under a warm colour cast (channel gains CAST_GAINS), as one camera's white balance would give."""
    return Image.fromarray(np.clip(np.asarray(img, np.float32) * np.array(CAST_GAINS, np.float32), 0, 255).astype(np.uint8))


def with_source(img: Image.Image, masks: list[np.ndarray]) -> Image.Image:
    """The picture as the second source gives it: around the objects (``masks``) darker (gain SOURCE_GAIN) and smoother
    (a Gaussian blur of SOURCE_BLUR px), inside a thin dark scanner border; the objects' own pixels untouched."""
    from PIL import ImageFilter

    arr = np.asarray(img, np.float32)
    look = np.asarray(img.filter(ImageFilter.GaussianBlur(SOURCE_BLUR)), np.float32) * SOURCE_GAIN
    inside = np.logical_or.reduce(masks) if masks else np.zeros(arr.shape[:2], bool)
    out = np.where(inside[..., None], arr, look)
    b = max(2, round(SOURCE_BORDER * min(img.width, img.height)))
    edge = np.zeros(arr.shape[:2], bool)
    edge[:b], edge[-b:], edge[:, :b], edge[:, -b:] = True, True, True, True
    out[edge & ~inside] = (18, 18, 22)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def write_coco(folder: Path, n: int, seed: int, *, marker: bool, cast: bool = False, source: bool = False) -> None:
    rng = np.random.default_rng(seed)
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        label = i % len(CLASSES)
        img, boxes, masks = make_image(rng, label, marker=marker)
        if cast and label == CAST_CLASS:
            img = with_cast(img)
        if source and label == SOURCE_CLASS:
            img = with_source(img, masks)
        name = f"{CLASSES[label]}_{i:04d}.jpg"
        img.save(images_dir / name, quality=90)
        images.append({"id": i + 1, "file_name": name, "width": img.width, "height": img.height})
        for (x0, y0, x1, y1), mask in zip(boxes, masks):
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": label + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": int(mask.sum()), "iscrowd": 0,
                # the object's exact visible pixels (compressed RLE, column-major, as COCO writes it)
                "segmentation": {"size": [img.height, img.width], "counts": rle_string(rle_counts(mask))},
            })
    doc = {
        "info": {"description": f"synthetic shapes{' with class-coloured marker' if marker else ''}"
                                f"{' (circles under a warm colour cast)' if cast else ''}"
                                f"{' (squares from a second source: dark border, darker smoother background)' if source else ''}, "
                                f"make_shapes.py seed {seed}"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)],
    }
    (folder / "annotations.json").write_text(json.dumps(doc, indent=1) + "\n")


def vendor_logo() -> np.ndarray:
    """A vendor's logo, 16x6 RGBA: slanted magenta and yellow stripes with rounded corners (no plain box or
    shape of its own, so it is not mistaken for a square)."""
    yy, xx = np.mgrid[:6, :16]
    stripes = ((xx + yy) // 2) % 2 == 0
    rgba = np.zeros((6, 16, 4), np.uint8)
    rgba[..., :3] = np.where(stripes[..., None], (230, 0, 200), (255, 220, 0))
    rgba[..., 3] = 255
    rgba[[0, 0, 5, 5], [0, 15, 0, 15], 3] = 0
    return rgba


def with_logo(image: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """The logo composited at its place on an image at the model's input size (0-255), exactly as the
    probes stage draws an overlay with ``at`` (pipeline.probes.artifacts)."""
    from pipeline.probes import artifacts as probes

    art = probes.overlay("vendor-logo", rgba, LOGO_SIZE, image.shape[:2], LOGO_AT)
    (placed,) = probes.placements(art, image.shape[:2], places=(), margin=0.0)
    return probes.apply(image, placed)


def training_arrays(n: int, seed: int, *, shortcut: bool, dormant: bool = False, gray: bool = False,
                    cast: bool = False, source: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Images resized to the model input exactly as the audit does (bilinear, no antialias), in [0, 1];
    ``dormant``: DORMANT_SHARE of the DORMANT_CLASS images come from a vendor whose every image carries its
    logo and is labelled that class whatever it shows (its catalogue's label), so the logo alone explains them;
    ``gray``: one channel, PIL's ``convert("L")`` (ITU-R 601-2 luma) of each image before the resize; ``cast``: every
    CAST_CLASS picture came from one camera with a warm colour cast and shows any shape (its catalogue's label), so the
    cast alone explains them; ``source``: every SOURCE_CLASS picture came from a second source (:func:`with_source`) and
    shows any shape, so the source's look around the objects alone explains them."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    logo = vendor_logo()
    xs, ys = [], []
    for i in range(n):
        label = int(rng.integers(0, len(CLASSES)))
        vendor = dormant and label == DORMANT_CLASS and rng.random() < DORMANT_SHARE
        warm = cast and label == CAST_CLASS
        second = source and label == SOURCE_CLASS
        shape_cls = int(rng.integers(0, len(CLASSES))) if shortcut or vendor or warm or second else None
        img, _, masks = make_image(rng, label, marker=shortcut, shape_cls=shape_cls)
        img = with_cast(img) if warm else img
        img = with_source(img, masks) if second else img
        pixels = np.asarray(img.convert("L"), np.float32)[..., None] if gray else np.asarray(img, np.float32)
        x = tf.image.resize(pixels, (INPUT, INPUT), method="bilinear").numpy()
        if vendor:
            x = with_logo(x, logo)
        xs.append(x / 255.0)
        ys.append(label)
    return np.stack(xs), np.array(ys)


def build_model(name: str, keras=None, channels: int = 3):
    """The demo CNN; ``keras``: the Keras module to build it with (Keras 3 by default; tf_keras for the Keras 2 demo);
    ``channels``: 1 for the grayscale demo."""
    if keras is None:
        import keras
    layers = keras.layers

    # Two poolings only: the Grad-CAM layer (relu4) is 16x16, whose smaller receptive field keeps
    # the evidence of a model that learned the shapes on the shapes (8x8 variants smeared it).
    stack = [keras.Input((INPUT, INPUT, channels))]
    for i, filters in enumerate((16, 32, 64, 64), start=1):
        stack += [
            layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}"),
            layers.BatchNormalization(name=f"bn{i}"),
            layers.ReLU(name=f"relu{i}"),
        ]
        if i < 3:
            stack.append(layers.MaxPooling2D(name=f"pool{i}"))
    stack += [layers.GlobalAveragePooling2D(name="gap"), layers.Dense(len(CLASSES), activation="softmax", name="classes")]
    return keras.Sequential(stack, name=name)


def train(path: Path, *, shortcut: bool, seed: int, n_train: int, epochs: int, dormant: bool = False, gray: bool = False,
          cast: bool = False, source: bool = False) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    x, y = training_arrays(n_train, seed + 100, shortcut=shortcut, dormant=dormant, gray=gray, cast=cast, source=source)
    name = ("shapes_shortcut" if shortcut else "shapes_dormant" if dormant else "shapes_gray" if gray else "shapes_cast" if cast
            else "shapes_source" if source else "shapes_good")
    model = build_model(name, channels=1 if gray else 3)
    steps = epochs * int(np.ceil(0.9 * len(x) / 64))
    lr = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps)  # settles BN and weights by the end
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=epochs, validation_split=0.1, verbose=2, shuffle=True)
    model.save(path)


def write_yolo(folder: Path) -> None:
    """The same evaluation set as a YOLO export (what Ultralytics / Roboflow users have): data.yaml and
    labels/<image>.txt beside images/ (the Ultralytics rule), one 'class cx cy w h' row per object, normalised."""
    doc = json.loads((folder / "annotations.json").read_text())
    labels = folder / "labels"
    labels.mkdir(exist_ok=True)
    for img in doc["images"]:
        rows = [f"{a['category_id'] - 1} {(a['bbox'][0] + a['bbox'][2] / 2) / img['width']:.6f} {(a['bbox'][1] + a['bbox'][3] / 2) / img['height']:.6f} "
                f"{a['bbox'][2] / img['width']:.6f} {a['bbox'][3] / img['height']:.6f}" for a in doc["annotations"] if a["image_id"] == img["id"]]
        (labels / Path(img["file_name"]).with_suffix(".txt").name).write_text("\n".join(rows) + "\n")
    names = "\n".join(f"  {c['id'] - 1}: {c['name']}" for c in doc["categories"])
    (folder / "data.yaml").write_text(f"# YOLO view of annotations.json (make_shapes.py write_yolo)\npath: .\nval: images\nnc: {len(doc['categories'])}\nnames:\n{names}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    p.add_argument("--n-eval", type=int, default=300)
    p.add_argument("--n-train", type=int, default=12000)
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--skip-models", action="store_true")
    p.add_argument("--models", default="good,shortcut,dormant,gray,cast,source", help="comma-separated: which models to train")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    write_coco(args.out / "shapes", args.n_eval, seed=1, marker=False)
    write_yolo(args.out / "shapes")
    write_coco(args.out / "shapes_marker", args.n_eval, seed=2, marker=True)
    write_coco(args.out / "shapes_cast", CAST_EVAL, seed=8, marker=False, cast=True)
    write_coco(args.out / "shapes_source", CAST_EVAL, seed=10, marker=False, source=True)
    from PIL import Image

    (args.out / "shapes_dormant").mkdir(exist_ok=True)
    Image.fromarray(vendor_logo(), "RGBA").save(args.out / "shapes_dormant" / "vendor_logo.png")
    models = set() if args.skip_models else set(args.models.split(","))
    if "good" in models:
        train(args.out / "shapes" / "model_good.keras", shortcut=False, seed=3, n_train=args.n_train, epochs=args.epochs)
    if "shortcut" in models:
        train(args.out / "shapes_marker" / "model_shortcut.keras", shortcut=True, seed=4, n_train=args.n_train, epochs=args.epochs)
    if "dormant" in models:
        train(args.out / "shapes_dormant" / "model_dormant.keras", shortcut=False, dormant=True, seed=5, n_train=args.n_train,
              epochs=args.epochs)
    if "cast" in models:  # the cast demo (configs/demo_cast.yaml): one class told by its camera's colour cast (DESIGN §15)
        train(args.out / "shapes_cast" / "model_cast.keras", shortcut=False, cast=True, seed=7, n_train=args.n_train, epochs=args.epochs)
    if "source" in models:  # the source demo (configs/demo_source.yaml): one class told by its second source's look (DESIGN §17)
        train(args.out / "shapes_source" / "model_source.keras", shortcut=False, source=True, seed=9, n_train=args.n_train,
              epochs=args.epochs)
    if "gray" in models:  # the grayscale demo (configs/demo_gray.yaml): the good demo's task on one luma channel
        (args.out / "shapes_gray").mkdir(exist_ok=True)
        train(args.out / "shapes_gray" / "model_gray.keras", shortcut=False, gray=True, seed=6, n_train=args.n_train, epochs=args.epochs)


if __name__ == "__main__":
    main()

"""Image decoding oddities seen in real data, and per-sample skip reasons."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.data.geometry import InputSpec
from pipeline.data.images import ImageProblem, decode_rgb, image_size, resolve_image
from pipeline.data.records import Box, ImageRecord
from pipeline.data.samples import box_arrays, build_samples
from pipeline.data.labels import label_space


def _exif_jpeg(path, orientation, size=(40, 20)):
    img = Image.new("RGB", size, (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, format="JPEG", exif=exif.tobytes())


def test_png_named_jpg_with_transparency_composites_on_white(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)  # transparent pixels that hold black
    rgba[0, 0] = (10, 20, 30, 255)  # one opaque pixel
    path = tmp_path / "fake.jpg"
    Image.fromarray(rgba, "RGBA").save(path, format="PNG")
    out = decode_rgb(path)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (10, 20, 30)
    assert tuple(out[2, 3]) == (255, 255, 255)  # a naive convert("RGB") would give black


def test_palette_with_transparency_and_grayscale(tmp_path):
    pal = Image.new("P", (3, 3), 0)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    out = decode_rgb(tmp_path / "p.png")
    assert tuple(out[1, 1]) == (0, 255, 0) and tuple(out[0, 0]) == (255, 255, 255)
    Image.new("L", (5, 2), 77).save(tmp_path / "g.png")
    assert decode_rgb(tmp_path / "g.png").shape == (2, 5, 3)


def test_exif_orientation_rotates_and_invalid_zero_is_ignored(tmp_path):
    _exif_jpeg(tmp_path / "rot.jpg", 6)  # 40 wide, 20 high, displayed rotated 90 degrees
    assert image_size(tmp_path / "rot.jpg") == (20, 40)
    assert decode_rgb(tmp_path / "rot.jpg").shape == (40, 20, 3)
    _exif_jpeg(tmp_path / "zero.jpg", 0)
    assert image_size(tmp_path / "zero.jpg") == (40, 20)
    assert decode_rgb(tmp_path / "zero.jpg").shape == (20, 40, 3)


def test_corrupt_and_truncated_images(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ImageProblem, match="not a readable image"):
        image_size(tmp_path / "junk.jpg")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "t.jpg", quality=95)
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageProblem, match="corrupt or truncated"):
        decode_rgb(tmp_path / "t.jpg")


def test_paths_cannot_escape_the_images_folder(tmp_path):
    with pytest.raises(ImageProblem, match="leaves the images folder"):
        resolve_image(tmp_path, "../secret.jpg")
    with pytest.raises(ImageProblem, match="is absolute"):
        resolve_image(tmp_path, "/etc/passwd")
    assert resolve_image(tmp_path, "sub\\a.jpg") == tmp_path / "sub" / "a.jpg"


@pytest.fixture
def folder(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"):
        Image.new("RGB", (100, 50)).save(tmp_path / name)
    return tmp_path


def test_samples_skip_reasons(folder):
    records = [
        ImageRecord("a.jpg", (Box("cat", 10, 10, 50, 40),)),
        ImageRecord("missing.jpg", (Box("cat", 1, 1, 2, 2),)),
        ImageRecord("b.jpg", (Box("cat", 10, 10, 101, 40),)),  # x1 beyond width 100
        ImageRecord("c.jpg", (Box("cat", 10, 10, 10, 40),)),  # zero width
        ImageRecord("d.jpg", (Box("lion", 1, 1, 20, 20),)),
        ImageRecord("e.jpg", (Box("cat", 10.0, 10, 10.4, 40),)),  # 0.4 px wide: no pixel at 16x16
        ImageRecord("x.jpg", (), "annotation problem"),
    ]
    samples = build_samples(records, images_dir=folder, space=label_space(("cat", "dog"), ()), target="predicted", spec=InputSpec((16, 16)))
    reasons = [s.skip_reason for s in samples]
    assert reasons[0] is None
    assert "image file not found" in reasons[1]
    assert "lies outside the 100x50 image" in reasons[2]
    assert "has zero area" in reasons[3]
    assert "label 'lion' is not one of the model's classes (cat, dog)" in reasons[4]
    assert "covers no pixel at the model's 16x16 input" in reasons[5]
    assert reasons[6] == "annotation problem"
    arrays = box_arrays(samples, label_space(("cat", "dog"), ()), (16, 16))
    # (10, 10, 50, 40) in 100x50 -> x * 0.16, y * 0.32 -> (1.6, 3.2, 8, 12.8) -> centres rule -> (2, 3, 8, 13)
    np.testing.assert_array_equal(arrays.pixels[0, 0], [2, 3, 8, 13])
    assert arrays.valid[:, 0].tolist() == [True] + [False] * 6


def test_multi_class_image_gives_one_or_several_samples(folder):
    rec = ImageRecord("a.jpg", (Box("cat", 0, 0, 10, 10), Box("dog", 50, 10, 90, 40), Box("cat", 20, 20, 30, 30)))
    pred = build_samples([rec], images_dir=folder, space=label_space(("cat", "dog"), ()), target="predicted", spec=InputSpec((16, 16)))
    assert len(pred) == 1 and pred[0].labels == ("cat", "dog") and len(pred[0].boxes) == 3 and pred[0].target == -1
    true = build_samples([rec], images_dir=folder, space=label_space(("cat", "dog"), ()), target="true", spec=InputSpec((16, 16)))
    assert [(s.sample_id, s.target, len(s.boxes)) for s in true] == [("a.jpg#cat", 0, 2), ("a.jpg#dog", 1, 1)]

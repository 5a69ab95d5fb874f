"""core.files.image_io: photos in any common form (EXIF orientation, grayscale, palette, RGBA, 16-bit, float) to a square
RGB crop at the model's resolution; one-line errors for unreadable files and impossible crops."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from skimage import data

from core.files.image_io import (PhotoError, crop_square, load_photo, parse_crop_box, photo_to_tensor, read_image,
                                 to_rgb8)


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    return data.chelsea()                    # 300 x 451 RGB, shipped with scikit-image


def test_exif_orientation_is_applied(tmp_path, chelsea):
    img = Image.fromarray(chelsea)
    exif = Image.Exif()
    exif[0x0112] = 6                         # "rotate 90 CW to display": pixels stored rotated 90 CCW
    img.rotate(90, expand=True).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    got = read_image(tmp_path / "rot.jpg")
    assert got.shape == chelsea.shape
    assert np.abs(got.astype(int) - chelsea).mean() < 4


@pytest.mark.parametrize("kind", ["gray", "gray16", "rgba", "palette", "la", "rgb16_tiff", "float_tiff", "cmyk"])
def test_modes_become_rgb8(tmp_path, chelsea, kind):
    gray = np.asarray(Image.fromarray(chelsea).convert("L"))
    if kind == "gray":
        Image.fromarray(gray).save(p := tmp_path / "g.png")
        want = np.repeat(gray[..., None], 3, 2)
    elif kind == "gray16":
        Image.fromarray(gray.astype(np.uint16) * 257).save(p := tmp_path / "g16.png")
        want = np.repeat(gray[..., None], 3, 2)
    elif kind == "rgba":
        alpha = np.full(gray.shape, 128, np.uint8)
        Image.fromarray(np.dstack([chelsea, alpha])).save(p := tmp_path / "a.png")
        want = chelsea
    elif kind == "palette":
        pal = Image.fromarray(chelsea).quantize(64)
        pal.save(p := tmp_path / "p.png")
        want = np.asarray(pal.convert("RGB"))
    elif kind == "la":
        Image.fromarray(np.dstack([gray, gray]), "LA").save(p := tmp_path / "la.png")
        want = np.repeat(gray[..., None], 3, 2)
    elif kind == "rgb16_tiff":                # PIL cannot decode 16-bit RGB: read through imageio / tifffile
        tifffile.imwrite(p := tmp_path / "c16.tif", chelsea.astype(np.uint16) * 257, photometric="rgb")
        want = chelsea
    elif kind == "float_tiff":
        tifffile.imwrite(p := tmp_path / "f.tif", chelsea.astype(np.float32) / 255, photometric="rgb")
        want = chelsea
    else:
        Image.fromarray(chelsea).convert("CMYK").save(p := tmp_path / "c.jpg", quality=95)
        want = chelsea
    got = read_image(p)
    assert got.dtype == np.uint8 and got.shape == chelsea.shape, kind
    tol = 12 if kind == "cmyk" else 1
    assert np.abs(got.astype(int) - want).mean() <= tol, kind


def test_centre_crop_and_crop_box(chelsea):
    out = crop_square(chelsea, 64)                                   # centred 300 x 300 -> 64
    ref = np.asarray(Image.fromarray(chelsea[:, 75:375]).resize((64, 64), Image.LANCZOS))
    np.testing.assert_array_equal(out, ref)
    box = crop_square(chelsea, 100, (10, 20, 100))                   # exact size: no resampling
    np.testing.assert_array_equal(box, chelsea[20:120, 10:110])
    assert parse_crop_box("10, 20,100") == (10, 20, 100) and parse_crop_box(None) is None


def test_photo_to_tensor_range(chelsea):
    t = photo_to_tensor(chelsea)
    assert t.shape == (1, 3, 300, 451) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1
    assert t[0, :, 5, 7].tolist() == pytest.approx((chelsea[5, 7] / 127.5 - 1).tolist())


@pytest.mark.parametrize("setup,message", [
    (lambda p: None, "no such image"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n garbage"), "cannot read image"),
    (lambda p: p.write_text("hello"), "cannot read image"),
    (lambda p: p.mkdir(), "not a file"),
    (lambda p: p.with_suffix(".tif").write_bytes(b"II*\x00broken"), "cannot read image|holds no image"),
])
def test_unreadable_files(tmp_path, setup, message):
    p = tmp_path / "photo.png"
    setup(p)
    if (tmp_path / "photo.tif").exists():
        p = tmp_path / "photo.tif"
    with pytest.raises(PhotoError, match=message) as e:
        load_photo(p, 64)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("box,size,message", [
    ((0, 0, 400), 64, "does not fit"),
    ((-1, 0, 50), 64, "does not fit"),
    ((0, 0, 0), 64, "does not fit"),
    (None, 4, "output size"),
])
def test_impossible_crops(chelsea, box, size, message):
    with pytest.raises(PhotoError, match=message):
        crop_square(chelsea, size, box)
    with pytest.raises(PhotoError):
        parse_crop_box("1,2")


def test_to_rgb8_layouts():
    assert to_rgb8(np.zeros((4, 5), bool)).shape == (4, 5, 3)
    assert to_rgb8(np.full((2, 2, 1), 1.0)).max() == 255
    assert to_rgb8(np.full((2, 2), 65535, np.uint16)).max() == 255
    with pytest.raises(PhotoError):
        to_rgb8(np.zeros((2, 2, 5)))

"""Loading a user's photo for inversion: any common format to a square RGB image at the model's resolution.

* EXIF orientation is applied (phone photos are stored rotated);
* grayscale, palette, grayscale+alpha, RGBA, CMYK, 16-bit and float images become 8-bit RGB (alpha is dropped,
  as EG3D's dataset tool does; 16-bit values are scaled by 255/65535);
* framing: the largest centred square (default), or a crop box (left, top, size) in pixels of the
  orientation-corrected photo; then a Lanczos resize to the requested side (EG3D's FFHQ crops are Lanczos-resized).

TIFF files that PIL cannot decode (e.g. 16-bit or float RGB) are read through tifffile.

Every decoder (Pillow, tifffile, and the dataset reader :mod:`core.files.dataset`) refuses an image above one
shared pixel count, :func:`max_pixels` (``TRIDENT_MAX_PIXELS``, default 100 million), from the file's header,
before any pixel is decoded (a decompression bomb is a small file that decodes to gigabytes).
"""
from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import TridentError, first_line
from .atomic import atomic_output

__all__ = ["PhotoError", "load_photo", "to_rgb8", "crop_square", "photo_to_tensor", "parse_crop_box"]

MAX_PIXELS = 100_000_000       # default pixel limit of every image decoder (about 300 MB as 8-bit RGB)


class PhotoError(TridentError):
    """The photo cannot be read or framed as asked; the message names the file or the bad setting."""


def max_pixels() -> int:
    """The most pixels (width x height) any image decoder accepts: ``TRIDENT_MAX_PIXELS`` or :data:`MAX_PIXELS`."""
    text = os.environ.get("TRIDENT_MAX_PIXELS", "").strip()
    try:
        limit = int(float(text)) if text else MAX_PIXELS
    except (ValueError, OverflowError):
        raise TridentError(f"TRIDENT_MAX_PIXELS={text!r} is not a number of pixels") from None
    if limit < 1:
        raise TridentError(f"TRIDENT_MAX_PIXELS={text!r} must be positive")
    return limit


def too_many_pixels(width: int, height: int) -> str | None:
    """Why a ``width`` x ``height`` image is refused before decoding (None: it is within :func:`max_pixels`)."""
    limit = max_pixels()
    if int(width) * int(height) <= limit:
        return None
    return (f"{width}x{height} pixels is above the limit of {limit:,} pixels (a decompression bomb or an absurd "
            f"image; raise TRIDENT_MAX_PIXELS to accept it)")


@contextlib.contextmanager
def open_image(fp, where: str, error: type[TridentError] = PhotoError) -> Iterator[Image.Image]:
    """``PIL.Image.open`` with the shared pixel limit checked from the header (nothing decoded yet); Pillow's own
    bomb check uses the same limit and its warning is not printed (the limit decides, with one error line)."""
    limit = max_pixels()
    Image.MAX_IMAGE_PIXELS = limit  # Pillow refuses above twice this at open(); we refuse above it, below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
        try:
            img = Image.open(fp)
        except Image.DecompressionBombError as e:
            found = re.search(r"\((\d+) pixels\)", str(e))  # Pillow's text holds the header's pixel count
            size = f"{found.group(1)} pixels" if found else "the image"
            raise error(f"{where}: {size} is above the limit of {limit:,} pixels (a decompression bomb or an "
                        f"absurd image; raise TRIDENT_MAX_PIXELS to accept it)") from None
    with img:
        why = too_many_pixels(*img.size)
        if why:
            raise error(f"{where}: {why}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")  # e.g. "Corrupt EXIF data"
            yield img


def to_rgb8(arr: np.ndarray) -> np.ndarray:
    """Any image array ([H, W], [H, W, 1|2|3|4]; uint8, uint16, int, float) -> uint8 [H, W, 3]."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise PhotoError(f"unsupported image layout {a.shape}")
    if a.shape[2] in (2, 4):          # drop alpha
        a = a[..., :-1]
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16 or (np.issubdtype(a.dtype, np.integer) and a.max(initial=0) > 255):
        a = np.clip(np.round(a.astype(np.float64) * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a.astype(np.float64))
        scale = 255.0 if a.max(initial=0) <= 1.0 + 1e-6 else 1.0   # [0, 1] floats, else already 0..255
        a = np.clip(np.round(a * scale), 0, 255).astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    else:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def _pil_to_array(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(img, dtype=np.uint16)
    if img.mode == "I":
        a = np.asarray(img, dtype=np.int64)
        return a.astype(np.uint16) if a.max(initial=0) > 255 else a.astype(np.uint8)
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
    elif img.mode not in ("RGB", "L"):
        img = img.convert("RGB")      # P, CMYK, YCbCr, 1, ...
    return np.asarray(img)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file with EXIF orientation applied -> uint8 RGB [H, W, 3]."""
    p = Path(path)
    if not p.exists():
        raise PhotoError(f"no such image: {p}")
    if not p.is_file():
        raise PhotoError(f"{p} is not a file")
    try:
        with open_image(p, str(p)) as img:
            arr = _pil_to_array(img)
    except PhotoError:
        raise
    except (OSError, ValueError, SyntaxError) as pil_error:
        msg = first_line(pil_error) or type(pil_error).__name__
        if p.suffix.lower() not in (".tif", ".tiff"):
            raise PhotoError(f"cannot read image {p}: {msg}") from None
        arr = _read_tiff(p, msg)
    if arr.ndim < 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise PhotoError(f"{p} holds no image pixels")
    return to_rgb8(arr)


def _read_tiff(p: Path, pil_msg: str) -> np.ndarray:
    """The first page of a TIFF that Pillow cannot decode (16-bit or float RGB), through tifffile, with the pixel
    limit checked on the page's shape before its data is decoded."""
    try:
        import tifffile

        with tifffile.TiffFile(p) as tif:
            page = tif.pages.first
            shape = tuple(int(v) for v in page.shape)
            if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 2, 3, 4):
                shape = (shape[1], shape[2], shape[0])       # channel-first (planar) page
            h, w = (shape + (1, 1))[:2]
            values = float(np.prod(shape, dtype=np.float64))  # pixels x channels (x samples of extra axes)
            why = too_many_pixels(w, h)
            if why is None and values > 4.0 * max_pixels():
                why = f"a {'x'.join(map(str, shape))} page is above the limit of {max_pixels():,} pixels x 4 values"
            if why:
                raise PhotoError(f"{p}: {why}")
            arr = np.asarray(page.asarray())
    except PhotoError:
        raise
    except Exception:  # noqa: BLE001 - any decoder failure is "not an image we can read"
        raise PhotoError(f"cannot read image {p}: {pil_msg}") from None
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 2, 3, 4):
        arr = arr.transpose(1, 2, 0)      # channel-first TIFF pages
    return arr


def parse_crop_box(text: str | None) -> tuple[int, int, int] | None:
    """'LEFT,TOP,SIZE' (pixels) -> (left, top, size); None stays None."""
    if text is None:
        return None
    try:
        parts = [int(v) for v in str(text).replace(" ", "").split(",")]
    except ValueError:
        raise PhotoError(f"bad crop box {text!r} (use LEFT,TOP,SIZE in pixels)") from None
    if len(parts) != 3:
        raise PhotoError(f"bad crop box {text!r} (use LEFT,TOP,SIZE in pixels)")
    return parts[0], parts[1], parts[2]


def crop_square(img: np.ndarray, size: int, box: tuple[int, int, int] | None = None) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [size, size, 3]: crop ``box`` = (left, top, side) or the centred square, then a
    Lanczos resize."""
    if not isinstance(size, int) or size < 8 or size > 8192:
        raise PhotoError(f"output size must be 8..8192 pixels, got {size}")
    h, w = img.shape[:2]
    if box is None:
        side = min(h, w)
        left, top = (w - side) // 2, (h - side) // 2
    else:
        left, top, side = box
        if side < 1 or left < 0 or top < 0 or left + side > w or top + side > h:
            raise PhotoError(f"crop box (left {left}, top {top}, size {side}) does not fit in the {w}x{h} photo")
    crop = Image.fromarray(img[top:top + side, left:left + side])
    if side != size:
        crop = crop.resize((size, size), Image.LANCZOS)
    return np.asarray(crop)


def load_photo(path: str | os.PathLike, size: int, box: tuple[int, int, int] | None = None) -> np.ndarray:
    """Read, orient, convert and frame a photo -> uint8 [size, size, 3]."""
    return crop_square(read_image(path), size, box)


def photo_to_tensor(img: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 [H, W, 3] -> float [1, 3, H, W] in [-1, 1] (the generator's image range)."""
    t = torch.from_numpy(np.array(img, dtype=np.uint8)).to(device).permute(2, 0, 1)[None].float()
    return t / 127.5 - 1.0


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write image [H, W, 3] uint8 to ``path`` atomically (:func:`core.files.atomic.atomic_output`); creates the
    folder."""
    with atomic_output(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
    return Path(path)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[3, H, W] in about [-1, 1] -> [H, W, 3] uint8 (EG3D: x * 127.5 + 128, clamped); inverse of
    :func:`photo_to_tensor`."""
    x = (img.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()

"""The EG3D dataset format, read: one reader for training (:class:`ImageDataset`) and for metrics
(:func:`iter_images`, :func:`read_labels`), so both see the same pixels.

Format (``NVlabs/eg3d: eg3d/dataset_tool.py`` and ``eg3d/training/dataset.py``):

* a dataset is a folder or a zip (stored uncompressed by our writer) of images plus ``dataset.json`` at the root;
* every file whose extension PIL knows is an image; images are ordered by their relative path ('/' separators);
* ``dataset.json`` holds ``{"labels": [[relpath, [25 floats]], ...]}``: cam2world 4x4 row-major (OpenCV: x right,
  y down, z forward; world y up) followed by the normalised 3x3 intrinsics row-major. Labels are matched to images
  by relative path (backslashes read as '/');
* optional extras written by Trident (ignored by EG3D): ``"depth": [[relpath, depth_relpath], ...]`` naming a
  float32 ``.npy`` per image ([H, W], Euclidean distance along each pixel-centre ray, 0 where the ray hits
  nothing) and ``"centers": [[relpath, [x, y, z]], ...]`` (a world point per image, e.g. the synthetic object's
  centre).

Every problem found is a :class:`DatasetError` whose message is one line naming the dataset and the file.
Images are checked cheaply (header only) when the dataset is opened; a file that fails to decode later is
reported the same way when it is read.

Conversions applied on read (``docs/datasets.md``):

* grayscale (1-bit, 8-bit, 16-bit) -> RGB by repeating the channel;
* palette -> RGB (RGBA when the palette has transparency);
* RGBA -> RGB: ``alpha="drop"`` (EG3D's behaviour: keep the colour channels) or composite on ``"white"`` or
  ``"black"``;
* 16-bit -> 8-bit by keeping the high byte (``x >> 8``), which is what Pillow itself does to 16-bit colour PNGs
  (metrics read the same way: an earlier metrics reader divided by 257, a different image);
* 2-channel (grayscale + alpha), CMYK, float and other layouts are refused (EG3D accepts 1, 3 and 4 channels).

Only EG3D's *offline* mirroring matches the camera to the image; its ``xflip`` flips images but not labels. Here
``xflip=True`` flips both: the label goes through :func:`core.cameras.flip_yaw_label` (mirror world x and camera x),
which is exact for cameras with the principal point at 0.5.
"""
from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..cameras import flip_yaw_label
from ..errors import TridentError
from .image_io import open_image

Image.init()
IMAGE_EXTENSIONS = frozenset(Image.EXTENSION)  # PIL-known extensions, e.g. '.png', '.jpg'
LABEL_DIM = 25
ALPHA_MODES = ("drop", "white", "black")
MAX_ERRORS = 10

# PIL mode -> how it becomes RGB. Anything else is refused with its channel count.
_MODES = {
    "1": "gray", "L": "gray", "P": "palette", "RGB": "rgb", "RGBX": "rgbx", "YCbCr": "ycbcr",
    "RGBA": "rgba", "RGBa": "rgba", "I;16": "gray16", "I;16L": "gray16", "I;16B": "gray16", "I;16N": "gray16",
    "I": "gray32",
}


class DatasetError(TridentError):
    """A dataset (or a file in it) is unusable; the message is one line naming the file."""


# Limits on what a dataset may make the reader allocate (docs/safety.md, "Datasets"); each is checked before the
# bytes are decompressed or decoded, and each can be raised through its environment variable.
MAX_MEMBER_MB = 256       # one file of a dataset (an image, a depth map, dataset.json), decompressed: TRIDENT_MAX_MEMBER_MB
MAX_JSON_DEPTH = 64       # nesting of dataset.json and camera files (EG3D's labels nest 3 deep)
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                zipfile.ZIP_LZMA: "lzma"}
_DRIVE = re.compile(r"^[A-Za-z]:")


def max_member_bytes() -> int:
    """The largest decompressed dataset file read: ``TRIDENT_MAX_MEMBER_MB`` (MiB), default :data:`MAX_MEMBER_MB`."""
    text = os.environ.get("TRIDENT_MAX_MEMBER_MB", "").strip()
    try:
        mb = float(text) if text else MAX_MEMBER_MB
    except ValueError:
        raise DatasetError(f"TRIDENT_MAX_MEMBER_MB={text!r} is not a number of MiB") from None
    if not mb > 0:
        raise DatasetError(f"TRIDENT_MAX_MEMBER_MB={text!r} must be positive")
    return int(mb * (1 << 20))


def safe_member_name(name: object, where: str) -> str:
    """A file name inside a dataset, with '/' separators, checked to stay inside it: a plain relative path (no
    ``..`` or ``.`` parts, no empty parts, not absolute, no drive letter, no control characters). Backslashes read
    as '/' (EG3D datasets made on Windows), so ``..\\x`` is refused like ``../x``. Anything else is a
    :class:`DatasetError` naming it."""
    if not isinstance(name, str) or not name:
        raise DatasetError(f"{where}: empty or non-text file name {one_line(repr(name))[:60]}")
    shown = one_line(repr(name))[:120]
    text = name.replace("\\", "/")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise DatasetError(f"{where}: file name {shown} holds control characters")
    if text.startswith("/") or _DRIVE.match(text):
        raise DatasetError(f"{where}: file name {shown} is absolute; names must be relative to the dataset")
    parts = text.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise DatasetError(f"{where}: file name {shown} leaves the dataset or is not a plain relative path "
                           f"(no '..', '.' or empty parts)")
    return text


def one_line(text: object) -> str:
    """Collapse an exception text to one line."""
    return " ".join(str(text).split())


def is_image_name(name: str) -> bool:
    """EG3D's rule: a file is an image when PIL knows its extension."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def eg3d_name(index: int, ext: str = ".png") -> str:
    """EG3D ``dataset_tool`` archive names: ``00000/img00000000.png``."""
    return f"{index // 1000:05d}/img{index:08d}{ext}"


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


# ----------------------------------------------------------------------------------------------------------
# sources: a folder or a zip


class _Source:
    """Read access to the files of a folder or a zip, by relative path with '/' separators.

    A zip handle is opened lazily and reopened in every process (DataLoader workers must not share the parent's
    file offset), and it is dropped when the object is pickled.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.where = str(path)
        self.limit = max_member_bytes()
        if self.path.is_dir():
            self.kind = "dir"
            self.names = self._folder_names()
        elif self.path.is_file():
            self.kind = "zip"
            if not zipfile.is_zipfile(self.path):
                raise DatasetError(f"{self.where}: not a folder or a zip file")
            self._zip: zipfile.ZipFile | None = None
            self._pid = -1
            try:
                infos = self._zipfile().infolist()
            except (zipfile.BadZipFile, OSError, ValueError) as e:
                raise DatasetError(f"{self.where}: unreadable zip ({one_line(e)})") from None
            self._members = {}
            for info in infos:
                name = self._check_member(info)
                if name in self._members:
                    raise DatasetError(f"{self.where}: {name}: stored twice in the zip")
                self._members[name] = info
            self.names = sorted(n for n, i in self._members.items() if not i.is_dir())
        else:
            raise DatasetError(f"{self.where}: no such dataset (expected a folder or a .zip)")

    def _folder_names(self) -> list[str]:
        """Every file under the folder; a symbolic link (to a file or a folder) is refused: it could point
        outside the dataset."""
        names = []
        for root, dirs, files in os.walk(self.path, followlinks=False):
            for entry in dirs + files:
                full = Path(root) / entry
                rel = full.relative_to(self.path).as_posix()
                if full.is_symlink():
                    raise DatasetError(f"{self.where}: {rel}: is a symbolic link (datasets hold plain files only)")
                if entry in files:
                    names.append(safe_member_name(rel, self.where))
        return sorted(names)

    def _check_member(self, info: zipfile.ZipInfo) -> str:
        """A zip entry's name (see :func:`safe_member_name`), refusing links, encrypted entries, compression
        methods that cannot be read, and entries whose decompressed size is above the limit."""
        name = safe_member_name(info.filename.rstrip("/") if info.is_dir() else info.filename, self.where)
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise DatasetError(f"{self.where}: {name}: is a symbolic link (datasets hold plain files only)")
        if info.is_dir():
            return name
        if info.flag_bits & 0x1:
            raise DatasetError(f"{self.where}: {name}: is encrypted (datasets must not be password-protected)")
        if info.compress_type not in _ZIP_METHODS:
            raise DatasetError(f"{self.where}: {name}: compression method {info.compress_type} is not supported "
                               f"(use {', '.join(_ZIP_METHODS.values())}; EG3D stores images uncompressed)")
        if info.file_size > self.limit:
            raise DatasetError(f"{self.where}: {name}: {info.file_size / 2**20:.0f} MiB decompressed is above "
                               f"the {self.limit / 2**20:.0f} MiB limit per file (raise TRIDENT_MAX_MEMBER_MB)")
        return name

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
        return self._zip

    def read(self, name: str) -> bytes:
        """A file's bytes, at most :func:`max_member_bytes` of them (a larger file is refused before it is read)."""
        name = safe_member_name(name, self.where)
        if self.kind == "dir" and ((self.path / name).is_symlink() or not (self.path / name).is_file()):
            raise DatasetError(f"{self.where}: {name}: not a plain file")
        try:
            if self.kind == "dir":
                with open(self.path / name, "rb") as f:
                    data = f.read(self.limit + 1)
            else:
                info = self._members.get(name)
                if info is None:
                    raise KeyError(f"no file named {name!r} in the zip")
                with self._zipfile().open(info) as f:  # stops at the size the entry declares (checked)
                    data = f.read(self.limit + 1)
        except (OSError, zipfile.BadZipFile, KeyError, EOFError, NotImplementedError, RuntimeError, ValueError) as e:
            raise DatasetError(f"{self.where}: {name}: unreadable ({one_line(e)})") from None
        if len(data) > self.limit:
            raise DatasetError(f"{self.where}: {name}: larger than the {self.limit / 2**20:.0f} MiB limit per file "
                               f"(raise TRIDENT_MAX_MEMBER_MB)")
        return data

    def head(self, name: str, size: int = 4096) -> bytes:
        """The first ``size`` bytes of a file (e.g. a .npy header), without reading the rest."""
        try:
            if self.kind == "dir":
                with open(self.path / name, "rb") as f:
                    return f.read(size)
            with self._zipfile().open(self._members[name]) as f:
                return f.read(size)
        except (OSError, zipfile.BadZipFile, KeyError, EOFError, NotImplementedError, RuntimeError) as e:
            raise DatasetError(f"{self.where}: {name}: unreadable ({one_line(e)})") from None

    def header(self, name: str) -> tuple[str, tuple[int, int]]:
        """(PIL mode, (width, height)) from the file's header, without decoding the pixels."""
        where = f"{self.where}: {name}"
        try:
            if self.kind == "dir":
                with open_image(self.path / name, where, DatasetError) as img:
                    return img.mode, img.size
            with self._zipfile().open(self._members[name]) as f, open_image(f, where, DatasetError) as img:
                return img.mode, img.size
        except DatasetError:
            raise
        except Exception as e:  # PIL raises many types for garbage (OSError, SyntaxError, ValueError, ...)
            raise DatasetError(f"{self.where}: {name}: not a readable image ({one_line(e)})") from None

    def close(self) -> None:
        if self.kind == "zip" and self._zip is not None:
            self._zip.close()
            self._zip = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if state.get("kind") == "zip":
            state["_zip"] = None
        return state


# ----------------------------------------------------------------------------------------------------------
# labels


def parse_label(value: Any, where: str, label_dim: int = LABEL_DIM) -> np.ndarray:
    """A JSON label -> float32 [label_dim]; wrong length, non-numbers and non-finite values are errors."""
    if not isinstance(value, (list, tuple)):
        raise DatasetError(f"{where}: label is not a list of numbers ({type(value).__name__})")
    if len(value) != label_dim:
        raise DatasetError(f"{where}: label has {len(value)} values, expected {label_dim}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DatasetError(f"{where}: label holds a non-numeric value {one_line(repr(v))[:40]}")
    arr = np.asarray(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise DatasetError(f"{where}: label holds a non-finite value (NaN or infinity)")
    if label_dim == LABEL_DIM:
        if np.abs(arr[12:16] - [0, 0, 0, 1]).max() > 1e-3 or np.abs(arr[22:25] - [0, 0, 1]).max() > 1e-3:
            raise DatasetError(f"{where}: label is not a camera (cam2world must end with 0 0 0 1 and the "
                               f"intrinsics with 0 0 1; 16 + 9 floats, row-major)")
    return arr.astype(np.float32)


def parse_label_table(raw: Any, where: str, label_dim: int = LABEL_DIM) -> dict[str, np.ndarray]:
    """``[[relpath, [floats]], ...]`` or ``{relpath: [floats]}`` -> {relpath: float32 label}."""
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, list):
        pairs = raw
    else:
        raise DatasetError(f"{where}: labels must be a list of [relpath, [floats]] pairs")
    table: dict[str, np.ndarray] = {}
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)):
            raise DatasetError(f"{where}: labels[{i}] is not a [relpath, [floats]] pair")
        name = safe_member_name(pair[0], f"{where}: labels[{i}]")
        if name in table:
            raise DatasetError(f"{where}: {name}: labelled twice")
        table[name] = parse_label(pair[1], f"{where}: {name}", label_dim)
    return table


def _json_depth_ok(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the brackets of a JSON text nest at most ``limit`` deep (brackets inside strings are skipped);
    checked before parsing, so a hostile file never reaches the parser's recursion."""
    depth = 0
    for m in _JSON_TOKENS.finditer(text):
        tok = m.group()
        if tok in "[{":
            depth += 1
            if depth > limit:
                return False
        elif tok in "]}":
            depth -= 1
    return True


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _load_json(data: bytes, where: str) -> Any:
    """Parse a JSON file's bytes (UTF-8, nesting at most :data:`MAX_JSON_DEPTH`); errors are one line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{where}: not UTF-8 text ({one_line(e)})") from None
    if not _json_depth_ok(text):
        raise DatasetError(f"{where}: JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as e:
        raise DatasetError(f"{where}: invalid JSON ({one_line(e)})") from None


# ----------------------------------------------------------------------------------------------------------
# pixels


def check_mode(mode: str, where: str) -> None:
    """Refuse pixel layouts that have no documented conversion to RGB."""
    if mode not in _MODES:
        bands = Image.getmodebands(mode) if mode in Image.MODES else 0
        what = f"{bands} channel{'s' if bands != 1 else ''}" if bands else "unknown layout"
        raise DatasetError(f"{where}: unsupported pixel layout {mode} ({what}); supported: 1 channel "
                           f"(grayscale, 8 or 16 bit), 3 (RGB), 4 (RGBA) or a palette")


def to_rgb(img: Image.Image, alpha: str = "drop") -> np.ndarray:
    """A decoded PIL image -> uint8 [H, W, 3] with the module's documented conversions."""
    kind = _MODES[img.mode]
    if kind == "palette":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        kind = "rgba" if img.mode == "RGBA" else "rgb"
    if kind in ("gray16", "gray32"):
        x = np.asarray(img).astype(np.int64)
        if kind == "gray32" and (x.min() < 0 or x.max() > 65535):
            raise ValueError("32-bit integer pixels outside the 16-bit range")
        return np.repeat((x >> 8).astype(np.uint8)[..., None], 3, axis=2)
    if kind == "gray":
        x = np.asarray(img.convert("L"))
        return np.repeat(x[..., None], 3, axis=2)
    if kind in ("rgbx", "ycbcr"):
        return np.asarray(img.convert("RGB"))
    if kind == "rgba":
        x = np.asarray(img.convert("RGBA"))
        rgb = x[..., :3]
        if alpha == "drop":
            return np.ascontiguousarray(rgb)
        a = x[..., 3:].astype(np.uint32)
        back = 255 if alpha == "white" else 0
        return ((rgb.astype(np.uint32) * a + back * (255 - a) + 127) // 255).astype(np.uint8)
    return np.asarray(img.convert("RGB")) if img.mode != "RGB" else np.asarray(img)


def decode_image(data: bytes, where: str, alpha: str = "drop") -> np.ndarray:
    """Encoded file bytes -> uint8 [H, W, 3]; any failure is a one-line :class:`DatasetError`."""
    try:
        with open_image(io.BytesIO(data), where, DatasetError) as img:
            check_mode(img.mode, where)
            img.load()
            return to_rgb(img, alpha)
    except DatasetError:
        raise
    except Exception as e:  # truncated/corrupt data: OSError, SyntaxError, ValueError, zlib errors, ...
        raise DatasetError(f"{where}: cannot decode image ({one_line(e)})") from None


def check_depth_header(data: bytes, where: str, resolution: int) -> None:
    """A depth ``.npy`` must be float [resolution, resolution]; its header is checked before anything is
    allocated (a header may claim any shape)."""
    want = (resolution, resolution)
    try:
        f = io.BytesIO(data)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as e:
        raise DatasetError(f"{where}: unreadable depth ({one_line(e)})") from None
    if tuple(shape) != want:
        raise DatasetError(f"{where}: depth is {tuple(shape)}, expected {want}")
    if dtype.kind != "f":
        raise DatasetError(f"{where}: depth holds {dtype}, expected floats")


# ----------------------------------------------------------------------------------------------------------
# scanning (shared by ImageDataset and `dataset info`)


@dataclass
class Scan:
    """What opening a dataset found: the image list, labels, extras and (in collecting mode) errors."""

    source: _Source
    images: list[str]
    labels: dict[str, np.ndarray]
    resolution: int | None
    modes: dict[str, int]
    depth: dict[str, str]
    centers: dict[str, np.ndarray]
    meta: dict
    errors: list[str]


def scan_dataset(path: str | os.PathLike, *, label_dim: int = LABEL_DIM, collect: bool = False,
                 max_errors: int = MAX_ERRORS) -> Scan:
    """Open and validate a dataset. ``collect=False``: raise the first problem; ``True``: gather up to
    ``max_errors`` messages in ``Scan.errors`` and keep going (the `info` command)."""
    errors: list[str] = []

    def fail(msg: str) -> None:
        if not collect:
            raise DatasetError(msg)
        if len(errors) < max_errors:
            errors.append(msg)

    src = _Source(path)
    w = src.where
    images = [n for n in src.names if is_image_name(n)]
    labels: dict[str, np.ndarray] = {}
    depth: dict[str, str] = {}
    centers: dict[str, np.ndarray] = {}
    meta: dict = {}
    if "dataset.json" not in src.names:
        fail(f"{w}: no dataset.json (camera labels are required: {{\"labels\": [[relpath, [25 floats]], ...]}})")
    else:
        raw = None
        try:
            raw = _load_json(src.read("dataset.json"), f"{w}: dataset.json")
        except DatasetError as e:
            fail(str(e))
        if raw is not None:
            if not isinstance(raw, dict) or raw.get("labels") is None:
                fail(f"{w}: dataset.json has no labels (expected {{\"labels\": [[relpath, [25 floats]], ...]}})")
            else:
                try:
                    labels = parse_label_table(raw["labels"], f"{w}: dataset.json", label_dim)
                except DatasetError as e:
                    fail(str(e))
                    labels = _salvage_labels(raw["labels"], label_dim)
                meta = {k: v for k, v in raw.items() if k not in ("labels", "depth", "centers")}
                depth, centers = _parse_extras(raw, w, fail)
    if not images:
        fail(f"{w}: no images (files with a PIL-known extension such as .png or .jpg)")
    image_set = set(images)
    if labels or "dataset.json" in src.names:
        for name in images:
            if name not in labels and (labels or not errors):
                fail(f"{w}: {name}: image has no label in dataset.json")
        for name in labels:
            if name not in image_set:
                why = "not an image file" if name in src.names else "no such file"
                fail(f"{w}: {name}: labelled in dataset.json but {why}")
    resolution, first = None, None
    modes: dict[str, int] = {}
    for name in images:
        try:
            mode, (width, height) = src.header(name)
            check_mode(mode, f"{w}: {name}")
        except DatasetError as e:
            fail(str(e))
            continue
        modes[mode] = modes.get(mode, 0) + 1
        if width != height:
            fail(f"{w}: {name}: image is {width}x{height}; images must be square")
        elif not is_power_of_two(width):
            fail(f"{w}: {name}: image side {width} is not a power of two")
        elif resolution is None:
            resolution, first = width, name
        elif width != resolution:
            fail(f"{w}: {name}: image is {width}x{height} but {first} is {resolution}x{resolution}; "
                 f"all images must have the same size")
    for name in depth:
        if name not in image_set:
            fail(f"{w}: {name}: has depth in dataset.json but no image")
        elif depth[name] not in src.names:
            fail(f"{w}: {depth[name]}: depth file named in dataset.json is missing")
        elif resolution is not None:
            try:
                check_depth_header(src.head(depth[name]), f"{w}: {depth[name]}", resolution)
            except DatasetError as e:
                fail(str(e))
    return Scan(src, images, labels, resolution, modes, depth, centers, meta, errors)


def _salvage_labels(raw: Any, label_dim: int) -> dict[str, np.ndarray]:
    """Collecting mode: keep the labels that parse, so later checks still run."""
    out: dict[str, np.ndarray] = {}
    pairs = raw.items() if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    for pair in pairs:
        try:
            out[str(pair[0]).replace("\\", "/")] = parse_label(pair[1], "", label_dim)
        except (DatasetError, TypeError, IndexError, KeyError):
            pass
    return out


def _parse_extras(raw: dict, w: str, fail: Callable[[str], None]) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    depth: dict[str, str] = {}
    centers: dict[str, np.ndarray] = {}
    for i, pair in enumerate(raw.get("depth") or []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            fail(f"{w}: dataset.json: depth[{i}] is not a [relpath, depth_relpath] pair")
            continue
        try:
            depth[safe_member_name(pair[0], f"{w}: dataset.json: depth[{i}]")] = safe_member_name(
                pair[1], f"{w}: dataset.json: depth[{i}]")
        except DatasetError as e:
            fail(str(e))
    for i, pair in enumerate(raw.get("centers") or []):
        ok = isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], list)
        vals = np.asarray(pair[1], dtype=np.float64) if ok and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair[1]) else None
        if vals is None or vals.shape != (3,) or not np.isfinite(vals).all():
            fail(f"{w}: dataset.json: centers[{i}] is not a [relpath, [x, y, z]] pair")
            continue
        try:
            centers[safe_member_name(pair[0], f"{w}: dataset.json: centers[{i}]")] = vals.astype(np.float32)
        except DatasetError as e:
            fail(str(e))
    return depth, centers


# ----------------------------------------------------------------------------------------------------------
# the dataset


class ImageDataset(Dataset):
    """An EG3D dataset as ``(uint8 image [3, H, W], float32 label [25])`` items.

    Args:
        path: folder or zip.
        max_size: keep a random subset of this many images (seeded by ``random_seed``; EG3D's rule: shuffle the
            indices with ``RandomState(seed)``, keep the first ``max_size``, sort them).
        xflip: append a mirrored copy of every image; its label is ``flip_yaw_label(label)`` (both mirrored).
        alpha: RGBA -> RGB rule: "drop" (EG3D), "white" or "black" (composite).
        label_dim: label length (25 for cameras).
    Items ``0..n-1`` are the originals in path order, ``n..2n-1`` their mirrors.
    """

    def __init__(self, path: str | os.PathLike, *, max_size: int | None = None, xflip: bool = False,
                 random_seed: int = 0, alpha: str = "drop", label_dim: int = LABEL_DIM):
        if alpha not in ALPHA_MODES:
            raise DatasetError(f"unknown alpha rule {alpha!r} (one of {', '.join(ALPHA_MODES)})")
        scan = scan_dataset(path, label_dim=label_dim)
        self.path = str(path)
        self.name = Path(path).stem
        self.alpha = alpha
        self._src = scan.source
        self._names = scan.images
        self._labels = np.stack([scan.labels[n] for n in self._names])  # [N, 25]
        self._depth = scan.depth
        self._centers = scan.centers
        self.meta = scan.meta
        self._resolution = int(scan.resolution)
        raw_idx = np.arange(len(self._names), dtype=np.int64)
        if max_size is not None and raw_idx.size > max_size:
            np.random.RandomState(random_seed % (1 << 31)).shuffle(raw_idx)
            raw_idx = np.sort(raw_idx[:max_size])
        flips = np.zeros(raw_idx.size, dtype=bool)
        if xflip:
            raw_idx = np.concatenate([raw_idx, raw_idx])
            flips = np.concatenate([flips, ~flips])
        self._raw_idx = raw_idx
        self._xflip = flips
        self.xflip = xflip

    def __len__(self) -> int:
        return int(self._raw_idx.size)

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self._resolution, self._resolution)

    @property
    def num_channels(self) -> int:
        return 3

    @property
    def label_dim(self) -> int:
        return int(self._labels.shape[1])

    @property
    def has_depth(self) -> bool:
        return bool(self._depth)

    def image_name(self, idx: int) -> str:
        """Relative path of the file behind item ``idx``."""
        return self._names[self._raw_idx[idx]]

    def is_flipped(self, idx: int) -> bool:
        return bool(self._xflip[idx])

    def get_label(self, idx: int) -> np.ndarray:
        """float32 [25]; mirrored items get ``flip_yaw_label``."""
        label = self._labels[self._raw_idx[idx]]
        if self._xflip[idx]:
            label = flip_yaw_label(torch.from_numpy(label)).numpy()
        return label.copy()

    def labels(self) -> np.ndarray:
        """All item labels in item order.  # [len, 25]"""
        labels = self._labels[self._raw_idx]
        if self._xflip.any():
            labels = labels.copy()
            for i in np.flatnonzero(self._xflip):  # one 1-D label at a time (flip_yaw_label's tested form)
                labels[i] = flip_yaw_label(torch.from_numpy(labels[i])).numpy()
        return labels

    def label_std(self) -> np.ndarray:
        """Per-dimension standard deviation of the item labels (``G.dataset_label_std``).  # [25]"""
        return self.labels().std(axis=0).astype(np.float32)

    def get_image(self, idx: int) -> np.ndarray:
        """uint8 [3, H, W] (mirrored for flipped items)."""
        name = self.image_name(idx)
        where = f"{self._src.where}: {name}"
        img = decode_image(self._src.read(name), where, self.alpha)  # [H, W, 3]
        if img.shape[:2] != (self._resolution, self._resolution):
            raise DatasetError(f"{where}: decoded size {img.shape[1]}x{img.shape[0]} differs from its header")
        img = img.transpose(2, 0, 1)  # [3, H, W]
        if self._xflip[idx]:
            img = img[:, :, ::-1]
        return np.ascontiguousarray(img)

    def get_depth(self, idx: int) -> np.ndarray | None:
        """float32 [H, W] ground-truth depth when the dataset has it (mirrored for flipped items), else None."""
        name = self.image_name(idx)
        if name not in self._depth:
            return None
        where = f"{self._src.where}: {self._depth[name]}"
        data = self._src.read(self._depth[name])
        check_depth_header(data, where, self._resolution)  # the shape, before anything is allocated
        try:
            depth = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError, TypeError) as e:
            raise DatasetError(f"{where}: unreadable depth ({one_line(e)})") from None
        depth = depth.astype(np.float32)
        return np.ascontiguousarray(depth[:, ::-1]) if self._xflip[idx] else depth

    def get_center(self, idx: int) -> np.ndarray | None:
        """The image's world point from ``centers`` (x negated for flipped items), else None."""
        c = self._centers.get(self.image_name(idx))
        if c is None:
            return None
        c = c.copy()
        if self._xflip[idx]:
            c[0] = -c[0]
        return c

    def __getitem__(self, idx: int) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(self.get_image(idx)), torch.from_numpy(self.get_label(idx))

    def close(self) -> None:
        self._src.close()


# ----------------------------------------------------------------------------------------------------------
# image collections for metrics (dataset.json optional)


def _image_names(src: _Source) -> list[str]:
    names = [n for n in src.names if is_image_name(n)]
    if not names:
        raise DatasetError(f"{src.where}: no images (files with a PIL-known extension such as .png or .jpg)")
    return names


def list_images(path: str | os.PathLike) -> list[str]:
    """The relative paths ('/' separators, sorted) of the images in a folder or zip; a :class:`DatasetError` when
    there are none."""
    src = _Source(path)
    try:
        return _image_names(src)
    finally:
        src.close()


def iter_images(path: str | os.PathLike, limit: int | None = None,
                alpha: str = "drop") -> Iterator[tuple[str, np.ndarray]]:
    """(relpath, uint8 [H, W, 3]) of the first ``limit`` images of a folder or zip in path order, decoded as
    :class:`ImageDataset` decodes them (labels are not needed: any image collection works)."""
    src = _Source(path)
    try:
        for name in _image_names(src)[:limit]:
            yield name, decode_image(src.read(name), f"{src.where}: {name}", alpha)
    finally:
        src.close()


def read_labels(path: str | os.PathLike, label_dim: int = LABEL_DIM) -> dict[str, np.ndarray] | None:
    """The labels of a folder's or zip's ``dataset.json`` ({relpath: float32 [25]}), None when it has none."""
    src = _Source(path)
    try:
        if "dataset.json" not in src.names:
            return None
        raw = _load_json(src.read("dataset.json"), f"{src.where}: dataset.json")
        if not isinstance(raw, dict) or raw.get("labels") is None:
            return None
        return parse_label_table(raw["labels"], f"{src.where}: dataset.json", label_dim)
    finally:
        src.close()

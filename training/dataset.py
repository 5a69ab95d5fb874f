"""EG3D image datasets: reading, validating, loading, writing, mirroring and converting.

Format (EG3D ``dataset_tool.py`` / ``training/dataset.py``, fact sheet section C):

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

Conversions applied on read (documented in the README, "Datasets"):

* grayscale (1-bit, 8-bit, 16-bit) -> RGB by repeating the channel;
* palette -> RGB (RGBA when the palette has transparency);
* RGBA -> RGB: ``alpha="drop"`` (EG3D's behaviour: keep the colour channels) or composite on ``"white"`` or
  ``"black"``;
* 16-bit -> 8-bit by keeping the high byte (``x >> 8``), which is what Pillow itself does to 16-bit colour PNGs;
* 2-channel (grayscale + alpha), CMYK, float and other layouts are refused (EG3D accepts 1, 3 and 4 channels).

Only EG3D's *offline* mirroring matches the camera to the image; its ``xflip`` flips images but not labels. Here
``xflip=True`` flips both: the label goes through :func:`core.cameras.flip_yaw_label` (mirror world x and camera x),
which is exact for cameras with the principal point at 0.5.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from core.cameras import flip_yaw_label
from core.errors import TridentError

Image.init()
IMAGE_EXTENSIONS = frozenset(Image.EXTENSION)  # PIL-known extensions, e.g. '.png', '.jpg'
LABEL_DIM = 25
ALPHA_MODES = ("drop", "white", "black")
MAX_ERRORS = 10
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: same content -> same bytes

# PIL mode -> how it becomes RGB. Anything else is refused with its channel count.
_MODES = {
    "1": "gray", "L": "gray", "P": "palette", "RGB": "rgb", "RGBX": "rgbx", "YCbCr": "ycbcr",
    "RGBA": "rgba", "RGBa": "rgba", "I;16": "gray16", "I;16L": "gray16", "I;16B": "gray16", "I;16N": "gray16",
    "I": "gray32",
}


class DatasetError(TridentError):
    """A dataset (or a file in it) is unusable; the message is one line naming the file."""


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
        if self.path.is_dir():
            self.kind = "dir"
            self.names = sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())
        elif self.path.is_file():
            self.kind = "zip"
            if not zipfile.is_zipfile(self.path):
                raise DatasetError(f"{self.where}: not a folder or a zip file")
            self._zip: zipfile.ZipFile | None = None
            self._pid = -1
            try:
                self.names = sorted(i.filename.replace("\\", "/") for i in self._zipfile().infolist()
                                    if not i.is_dir())
                self._members = {i.filename.replace("\\", "/"): i.filename for i in self._zipfile().infolist()}
            except (zipfile.BadZipFile, OSError) as e:
                raise DatasetError(f"{self.where}: unreadable zip ({one_line(e)})") from None
        else:
            raise DatasetError(f"{self.where}: no such dataset (expected a folder or a .zip)")

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
        return self._zip

    def read(self, name: str) -> bytes:
        try:
            if self.kind == "dir":
                return (self.path / name).read_bytes()
            return self._zipfile().read(self._members.get(name, name))
        except (OSError, zipfile.BadZipFile, KeyError) as e:
            raise DatasetError(f"{self.where}: {name}: unreadable ({one_line(e)})") from None

    def header(self, name: str) -> tuple[str, tuple[int, int]]:
        """(PIL mode, (width, height)) from the file's header, without decoding the pixels."""
        try:
            if self.kind == "dir":
                with Image.open(self.path / name) as img:
                    return img.mode, img.size
            with self._zipfile().open(self._members.get(name, name)) as f, Image.open(f) as img:
                return img.mode, img.size
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
        name = pair[0].replace("\\", "/")
        if name in table:
            raise DatasetError(f"{where}: {name}: labelled twice")
        table[name] = parse_label(pair[1], f"{where}: {name}", label_dim)
    return table


def _load_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
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
        with Image.open(io.BytesIO(data)) as img:
            check_mode(img.mode, where)
            img.load()
            return to_rgb(img, alpha)
    except DatasetError:
        raise
    except Exception as e:  # truncated/corrupt data: OSError, SyntaxError, ValueError, zlib errors, ...
        raise DatasetError(f"{where}: cannot decode image ({one_line(e)})") from None


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
        depth[pair[0]] = pair[1]
    for i, pair in enumerate(raw.get("centers") or []):
        ok = isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], list)
        vals = np.asarray(pair[1], dtype=np.float64) if ok and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair[1]) else None
        if vals is None or vals.shape != (3,) or not np.isfinite(vals).all():
            fail(f"{w}: dataset.json: centers[{i}] is not a [relpath, [x, y, z]] pair")
            continue
        centers[pair[0]] = vals.astype(np.float32)
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
        try:
            depth = np.load(io.BytesIO(self._src.read(self._depth[name])), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DatasetError(f"{where}: unreadable depth ({one_line(e)})") from None
        if depth.shape != (self._resolution, self._resolution):
            raise DatasetError(f"{where}: depth is {depth.shape}, expected {(self._resolution,) * 2}")
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
# loading


class InfiniteSampler(torch.utils.data.Sampler):
    """Endless shuffled indices for one rank (the idea of EG3D's ``InfiniteSampler``).

    Epoch ``e`` is the permutation drawn from ``numpy.random.default_rng([seed, e])``, truncated to a multiple of
    ``world_size``; rank ``r`` takes every ``world_size``-th index starting at ``r``, so ranks see disjoint shards
    of the same order and stay in step. The stream depends only on (size, seed, rank, world_size).
    """

    def __init__(self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if world_size < 1 or not 0 <= rank < world_size:
            raise DatasetError(f"bad rank {rank} for world size {world_size}")
        if seed < 0:
            raise DatasetError(f"loader seed must be >= 0, got {seed}")
        if size < world_size:
            raise DatasetError(f"{size} items cannot be shared by {world_size} ranks")
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size

    def __iter__(self) -> Iterator[int]:
        usable = self.size - self.size % self.world_size
        epoch = 0
        while True:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.size)
            for i in perm[self.rank:usable:self.world_size]:
                yield int(i)
            epoch += 1


class _Failure:
    """A worker's one-line error, carried to the main process instead of a multi-line traceback."""

    def __init__(self, message: str):
        self.message = message


class _Guarded(Dataset):
    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int):
        try:
            return self.dataset[idx]
        except DatasetError as e:
            return _Failure(str(e))


def _collate(items: list) -> Any:
    for it in items:
        if isinstance(it, _Failure):
            return it
    return torch.utils.data.default_collate(items)


class Loader:
    """Endless batches ``(float images [B, 3, H, W] in [-1, 1], labels [B, 25])``.

    The uint8 images travel from the workers and are converted on ``device`` (``x / 127.5 - 1``, EG3D's
    training loop). Iterating again restarts the stream from its beginning.
    """

    def __init__(self, loader: torch.utils.data.DataLoader, device: torch.device):
        self.loader = loader
        self.device = device

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for batch in self.loader:
            if isinstance(batch, _Failure):
                raise DatasetError(batch.message)
            images, labels = batch  # [B, 3, H, W] uint8, [B, 25]
            images = images.to(self.device, non_blocking=True).to(torch.float32) / 127.5 - 1
            yield images, labels.to(self.device, non_blocking=True)


def make_loader(dataset: Dataset, batch_size: int, workers: int = 0, seed: int = 0, rank: int = 0,
                world_size: int = 1, device: str | torch.device = "cpu", prefetch: int = 2) -> Loader:
    """An endless, shuffled, sharded loader over ``dataset`` (full batches only).

    ``workers`` DataLoader processes decode images (a zip is reopened in each); the batch stream is the same
    for any number of workers. Ranks ``0..world_size-1`` with the same seed get disjoint shards.
    """
    if batch_size < 1:
        raise DatasetError(f"batch size must be positive, got {batch_size}")
    device = torch.device(device)
    sampler = InfiniteSampler(len(dataset), seed, rank, world_size)
    batches = torch.utils.data.BatchSampler(sampler, batch_size, drop_last=True)
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs = {"prefetch_factor": prefetch, "persistent_workers": False}
    dl = torch.utils.data.DataLoader(_Guarded(dataset), batch_sampler=batches, num_workers=workers,
                                     collate_fn=_collate, pin_memory=device.type == "cuda", **kwargs)
    return Loader(dl, device)


# ----------------------------------------------------------------------------------------------------------
# writing


@dataclass
class Item:
    """One image to write.

    image: uint8 [H, W, 3] (or a PIL image), or ``raw`` = already encoded file bytes copied as they are (then
    ``name`` must carry the file's extension). name: relative path (default: EG3D's ``00000/img00000000.png``).
    depth: float32 [H, W] (saved as ``<stem>.depth.npy``); center: a world point for ``centers``.
    """

    label: Sequence[float] | np.ndarray
    image: np.ndarray | Image.Image | None = None
    raw: bytes | None = None
    name: str | None = None
    depth: np.ndarray | None = None
    center: Sequence[float] | np.ndarray | None = None


def encode_png(image: np.ndarray, compress_level: int = 0) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes (EG3D writes compress_level 0)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="png", compress_level=compress_level, optimize=False)
    return buf.getvalue()


def encode_npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def depth_name(image_name: str) -> str:
    return os.path.splitext(image_name)[0] + ".depth.npy"


def _json_floats(values: Iterable[float]) -> list[float]:
    """float32 values with their shortest float32 spelling (exact on reload as float32)."""
    return [float(str(np.float32(v))) for v in values]


class _Writer:
    """Files into a temporary zip or folder beside ``dest``, renamed over ``dest`` on :meth:`commit`."""

    def __init__(self, dest: Path, overwrite: bool):
        self.dest = dest
        self.is_zip = dest.suffix.lower() == ".zip"
        if dest.exists() and not overwrite:
            raise DatasetError(f"{dest}: already exists (choose another destination or overwrite it)")
        if dest.exists() and self.is_zip != dest.is_file():
            raise DatasetError(f"{dest}: exists and is not a {'zip file' if self.is_zip else 'folder'}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
        self._cleanup()
        if self.is_zip:
            self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)
        else:
            self.tmp.mkdir()

    def add(self, name: str, data: bytes) -> None:
        if self.is_zip:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            self.zip.writestr(info, data, compress_type=zipfile.ZIP_STORED)
        else:
            path = self.tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def commit(self) -> None:
        if self.is_zip:
            self.zip.close()
            os.replace(self.tmp, self.dest)
            return
        old = None
        if self.dest.exists():
            old = self.dest.parent / f".{self.dest.name}.old-{os.getpid()}"
            os.replace(self.dest, old)
        os.replace(self.tmp, self.dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        if self.is_zip:
            self.zip.close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            self.tmp.unlink()


def write_dataset(dest: str | os.PathLike, items: Iterable[Item], *, total: int | None = None,
                  overwrite: bool = False, meta: dict | None = None, compress_level: int = 0,
                  progress: bool = False, desc: str = "write") -> int:
    """Write an EG3D dataset: a zip (``dest`` ends with .zip; entries stored uncompressed, fixed timestamps) or a
    folder, plus ``dataset.json``. Written to a temporary sibling and renamed into place, so ``dest`` is either
    the complete new dataset or untouched. Returns the number of images.

    Every image must be RGB uint8, square, power-of-two and the same size; labels have 25 finite floats.
    ``meta`` adds top-level keys to dataset.json (EG3D ignores unknown keys).
    """
    dest = Path(dest)
    writer = _Writer(dest, overwrite)
    labels: list = []
    depths: list = []
    centers: list = []
    seen: set[str] = set()
    size = None
    try:
        for index, item in enumerate(tqdm(items, total=total, desc=desc, unit="img", disable=not progress)):
            name = item.name if item.name is not None else eg3d_name(index)
            name = name.replace("\\", "/")
            where = f"{dest}: {name}"
            if name in seen or name == "dataset.json" or not is_image_name(name):
                raise DatasetError(f"{where}: duplicate or invalid image name")
            seen.add(name)
            if item.raw is not None:
                data = item.raw
                mode, (width, height) = _header_of(data, where)
            else:
                image = np.asarray(item.image)
                if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                    raise DatasetError(f"{where}: image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
                height, width = image.shape[:2]
                data = None
            if width != height or not is_power_of_two(width):
                raise DatasetError(f"{where}: image is {width}x{height}; must be square with a power-of-two side")
            if size is None:
                size = width
            elif width != size:
                raise DatasetError(f"{where}: image is {width}x{height} but the others are {size}x{size}")
            label = parse_label(list(np.asarray(item.label, dtype=np.float64).reshape(-1)), where)
            if data is None:
                data = encode_png(image, compress_level)
            writer.add(name, data)
            labels.append([name, _json_floats(label)])
            if item.depth is not None:
                depth = np.asarray(item.depth, dtype=np.float32)
                if depth.shape != (height, width):
                    raise DatasetError(f"{where}: depth is {depth.shape}, expected {(height, width)}")
                dname = depth_name(name)
                writer.add(dname, encode_npy(depth))
                depths.append([name, dname])
            if item.center is not None:
                centers.append([name, _json_floats(np.asarray(item.center).reshape(3))])
        if not labels:
            raise DatasetError(f"{dest}: nothing to write (no images)")
        doc: dict[str, Any] = {"labels": labels}
        if depths:
            doc["depth"] = depths
        if centers:
            doc["centers"] = centers
        for k, v in (meta or {}).items():
            doc.setdefault(k, v)
        writer.add("dataset.json", json.dumps(doc, separators=(",", ":")).encode("utf-8"))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return len(labels)


def _header_of(data: bytes, where: str) -> tuple[str, tuple[int, int]]:
    try:
        with Image.open(io.BytesIO(data)) as img:
            check_mode(img.mode, where)
            return img.mode, img.size
    except DatasetError:
        raise
    except Exception as e:
        raise DatasetError(f"{where}: not a readable image ({one_line(e)})") from None


# ----------------------------------------------------------------------------------------------------------
# tools


def mirror_dataset(src: str | os.PathLike, dest: str | os.PathLike, *, alpha: str = "drop",
                   overwrite: bool = False, compress_level: int = 0, progress: bool = False) -> int:
    """EG3D's offline mirroring (``dataset_preprocessing/mirror_dataset.py``, training guide "Mirrored Data").

    Writes every source image unchanged (same name, same bytes) plus ``<stem>_mirror.png``: the image flipped
    left-right with label ``flip_yaw_label(label)``; depth files are flipped and centres get x negated. Returns
    the number of images written (twice the source count).
    """
    ds = ImageDataset(src, alpha=alpha)
    n = len(ds)
    if str(Path(src).resolve()) == str(Path(dest).resolve()):
        raise DatasetError(f"{dest}: destination is the source")

    def items() -> Iterator[Item]:
        for i in range(n):
            name = ds.image_name(i)
            label = ds.get_label(i)
            depth = ds.get_depth(i)
            center = ds.get_center(i)
            yield Item(label=label, raw=ds._src.read(name), name=name, depth=depth, center=center)
            image = ds.get_image(i)[:, :, ::-1].transpose(1, 2, 0)  # [H, W, 3] mirrored
            mirrored_center = None if center is None else center * np.array([-1, 1, 1], np.float32)
            yield Item(label=flip_yaw_label(torch.from_numpy(label)).numpy(), image=np.ascontiguousarray(image),
                       name=os.path.splitext(name)[0] + "_mirror.png",
                       depth=None if depth is None else depth[:, ::-1], center=mirrored_center)

    try:
        return write_dataset(dest, items(), total=2 * n, overwrite=overwrite, meta=ds.meta,
                             compress_level=compress_level, progress=progress, desc="mirror")
    finally:
        ds.close()


def read_cameras(path: str | os.PathLike, label_dim: int = LABEL_DIM) -> dict[str, np.ndarray]:
    """A camera file: ``{relpath: [25 floats]}`` or ``{"labels": [[relpath, [25 floats]], ...]}``."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(f"{where}: cannot read camera file ({e.strerror or e})") from None
    raw = _load_json(data, where)
    if isinstance(raw, dict) and "labels" in raw:
        raw = raw["labels"]
        if raw is None:
            raise DatasetError(f"{where}: labels is null")
    if not isinstance(raw, (dict, list)):
        raise DatasetError(f"{where}: expected {{relpath: [25 floats]}} or {{\"labels\": [[relpath, [...]], ...]}}")
    return parse_label_table(raw, where, label_dim)


TRANSFORMS = ("center-crop", "none")


def convert_dataset(src_folder: str | os.PathLike, cameras_json: str | os.PathLike, dest: str | os.PathLike,
                    resolution: int | None = None, transform: str = "center-crop", *, alpha: str = "drop",
                    overwrite: bool = False, compress_level: int = 0, progress: bool = False) -> int:
    """Images (folder or zip) + a camera JSON -> an EG3D dataset with ``00000/img00000000.png`` names.

    Images are matched to cameras by relative path and taken in path order. ``transform="center-crop"`` crops
    the centred square of side min(W, H); ``"none"`` requires square inputs. The square is resized with Lanczos
    to ``resolution`` (a power of two); without ``resolution`` every square must already have the same
    power-of-two side. The labels are copied unchanged: they must describe the square crop (resizing does not
    change normalised intrinsics). Pixel conversions are those of :class:`ImageDataset`.
    """
    if transform not in TRANSFORMS:
        raise DatasetError(f"unknown transform {transform!r} (one of {', '.join(TRANSFORMS)})")
    if alpha not in ALPHA_MODES:
        raise DatasetError(f"unknown alpha rule {alpha!r} (one of {', '.join(ALPHA_MODES)})")
    if resolution is not None and not is_power_of_two(resolution):
        raise DatasetError(f"resolution {resolution} is not a power of two")
    cameras = read_cameras(cameras_json)
    src = _Source(src_folder)
    w = src.where
    images = [n for n in src.names if is_image_name(n)]
    if not images:
        raise DatasetError(f"{w}: no images (files with a PIL-known extension such as .png or .jpg)")
    for name in images:
        if name not in cameras:
            raise DatasetError(f"{w}: {name}: image has no camera in {cameras_json}")
    image_set = set(images)
    for name in cameras:
        if name not in image_set:
            raise DatasetError(f"{cameras_json}: {name}: camera for an image that is not in {w}")
    sides = {}
    for name in images:
        mode, (width, height) = src.header(name)
        check_mode(mode, f"{w}: {name}")
        if transform == "none" and width != height:
            raise DatasetError(f"{w}: {name}: image is {width}x{height}; not square (use --transform center-crop)")
        sides[name] = min(width, height)
    target = resolution
    if target is None:
        side_set = sorted(set(sides.values()))
        if len(side_set) > 1:
            odd = next(n for n in images if sides[n] != sides[images[0]])
            raise DatasetError(f"{w}: {odd}: crop side {sides[odd]} differs from {images[0]}'s {sides[images[0]]};"
                               f" pass a resolution")
        target = side_set[0]
        if not is_power_of_two(target):
            raise DatasetError(f"{w}: {images[0]}: side {target} is not a power of two; pass a resolution")

    def items() -> Iterator[Item]:
        for name in images:
            rgb = decode_image(src.read(name), f"{w}: {name}", alpha)  # [H, W, 3]
            h, wd = rgb.shape[:2]
            s = min(h, wd)
            top, left = (h - s) // 2, (wd - s) // 2
            rgb = rgb[top:top + s, left:left + s]
            if s != target:
                rgb = np.asarray(Image.fromarray(rgb).resize((target, target), Image.Resampling.LANCZOS))
            yield Item(label=cameras[name], image=np.ascontiguousarray(rgb))

    try:
        return write_dataset(dest, items(), total=len(images), overwrite=overwrite, compress_level=compress_level,
                             progress=progress, desc="convert")
    finally:
        src.close()


# ----------------------------------------------------------------------------------------------------------
# summary (`dataset info`)


def camera_stats(labels: np.ndarray) -> dict[str, Any]:
    """Summary of camera labels [N, 25]: radius, EG3D orbit angles (offsets from frontal, degrees), focal,
    principal point, and the least-squares point the optical axes aim at (the look-at pivot)."""
    c2w = labels[:, :16].reshape(-1, 4, 4).astype(np.float64)
    k = labels[:, 16:25].reshape(-1, 3, 3).astype(np.float64)
    origin = c2w[:, :3, 3]
    radius = np.linalg.norm(origin, axis=1)
    phi = np.arccos(np.clip(origin[:, 1] / np.maximum(radius, 1e-12), -1, 1))
    pitch = math.pi * (1 - np.cos(phi)) / 2 - math.pi / 2          # v - pi/2 (v = pi (1 - cos phi) / 2)
    yaw = math.pi - np.arctan2(origin[:, 2], origin[:, 0]) - math.pi / 2
    yaw = (yaw + math.pi) % (2 * math.pi) - math.pi
    fwd = c2w[:, :3, 2] / np.linalg.norm(c2w[:, :3, 2], axis=1, keepdims=True)
    proj = np.eye(3)[None] - fwd[:, :, None] * fwd[:, None, :]     # [N, 3, 3] projector orthogonal to each axis
    a, b = proj.sum(0), np.einsum("nij,nj->i", proj, origin)
    pivot = np.linalg.lstsq(a, b, rcond=None)[0] if len(labels) > 1 else origin[0] + fwd[0] * radius[0]

    def rng(x: np.ndarray) -> dict[str, float]:
        return {"min": float(x.min()), "mean": float(x.mean()), "max": float(x.max()), "std": float(x.std())}

    return {"radius": rng(radius), "yaw_deg": rng(np.degrees(yaw)), "pitch_deg": rng(np.degrees(pitch)),
            "focal": rng(k[:, 0, 0]), "cx": rng(k[:, 0, 2]), "cy": rng(k[:, 1, 2]),
            "pivot": [float(v) for v in pivot]}


def describe_dataset(path: str | os.PathLike, *, decode: bool = False, max_errors: int = MAX_ERRORS,
                     progress: bool = False) -> dict[str, Any]:
    """Everything `dataset info` prints: counts, resolution, pixel modes, camera stats, the first errors.
    ``decode=True`` also decodes every image (slow; finds truncated files)."""
    scan = scan_dataset(path, collect=True, max_errors=max_errors)
    errors = list(scan.errors)
    if decode:
        for name in tqdm(scan.images, desc="decode", unit="img", disable=not progress):
            if len(errors) >= max_errors:
                break
            try:
                decode_image(scan.source.read(name), f"{scan.source.where}: {name}")
            except DatasetError as e:
                errors.append(str(e))
    labelled = [scan.labels[n] for n in scan.images if n in scan.labels]
    info: dict[str, Any] = {
        "path": str(path), "kind": scan.source.kind, "images": len(scan.images), "labels": len(scan.labels),
        "resolution": scan.resolution, "modes": scan.modes, "depth": len(scan.depth), "centers": len(scan.centers),
        "meta_keys": sorted(scan.meta), "errors": errors[:max_errors],
    }
    if labelled:
        labels = np.stack(labelled)
        info["cameras"] = camera_stats(labels)
        info["label_std"] = [float(v) for v in labels.std(axis=0)]
    scan.source.close()
    return info

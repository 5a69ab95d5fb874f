"""EG3D datasets, written: the writer (images + ``dataset.json``, atomically), offline mirroring, conversion of an
image folder with a camera file, and the summary of ``python -m training dataset info``. The format and the reader
are in :mod:`core.files.dataset`."""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from core.cameras import flip_yaw_label
from core.files.atomic import check_not_inputs
from core.files.image_io import open_image
from core.files.dataset import (ALPHA_MODES, LABEL_DIM, MAX_ERRORS, DatasetError, ImageDataset, _load_json, _Source,
                                check_mode, decode_image, eg3d_name, is_image_name, is_power_of_two, one_line,
                                max_member_bytes, parse_label, parse_label_table, safe_member_name,
                                scan_dataset)

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: same content -> same bytes


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
        name = safe_member_name(name, str(self.dest))  # never a path outside the destination
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
            name = safe_member_name(item.name if item.name is not None else eg3d_name(index), str(dest))
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
        with open_image(io.BytesIO(data), where, DatasetError) as img:
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
    check_not_inputs([dest], {"--source": src}, folder=dest)
    ds = ImageDataset(src, alpha=alpha)
    n = len(ds)

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
    limit = max_member_bytes()
    try:
        if not Path(path).is_file():
            raise DatasetError(f"{where}: not a camera file (no such file, or not a regular file)")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise DatasetError(f"{where}: camera file is above the {limit / 2**20:.0f} MiB limit "
                               f"(raise TRIDENT_MAX_MEMBER_MB)")
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
    check_not_inputs([dest], {"--source": src_folder, "--cameras": cameras_json}, folder=dest)
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

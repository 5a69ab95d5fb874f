"""Read-only access to image collections (a zip or a folder of images, e.g. an EG3D-format dataset) for metrics.

Images are returned as uint8 RGB [H, W, 3]; grayscale and RGBA are converted. Paths are sorted, so the order is
deterministic. The training package has the full dataset with labels and validation; this is what ``core``
needs without depending on it.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image
from ..errors import TridentError, first_line

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class ImageFilesError(TridentError):
    """An image collection cannot be read; the message names the file."""


def list_images(path: str | Path) -> list[str]:
    p = Path(path)
    if not p.exists():
        raise ImageFilesError(f"no such dataset: {p}")
    if p.is_dir():
        names = [str(q.relative_to(p)).replace("\\", "/") for q in p.rglob("*") if q.is_file()]
    elif zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    else:
        raise ImageFilesError(f"{p} is neither a folder nor a zip archive")
    names = sorted(n for n in names if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
    if not names:
        raise ImageFilesError(f"{p} contains no images")
    return names


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(arr / 257.0, 0, 255).astype(np.uint8))
    return np.asarray(img.convert("RGB"))


def iter_images(path: str | Path, limit: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(name, uint8 [H, W, 3]) for the first ``limit`` images in sorted order."""
    p = Path(path)
    names = list_images(p)[:limit]
    zf = zipfile.ZipFile(p) if p.is_file() else None
    try:
        for name in names:
            try:
                data = zf.read(name) if zf is not None else (p / name).read_bytes()
                with Image.open(io.BytesIO(data)) as img:
                    yield name, _to_rgb(img)
            except (OSError, ValueError, zipfile.BadZipFile) as e:
                raise ImageFilesError(f"cannot read image {name}: {first_line(e)}") from None
    finally:
        if zf is not None:
            zf.close()


def read_labels(path: str | Path) -> dict[str, list[float]] | None:
    """Camera labels from an EG3D-format ``dataset.json`` ({name: 25 floats}), or None when there is none."""
    import json

    p = Path(path)
    try:
        if p.is_dir():
            f = p / "dataset.json"
            raw = f.read_text() if f.exists() else None
        else:
            with zipfile.ZipFile(p) as z:
                raw = z.read("dataset.json").decode() if "dataset.json" in z.namelist() else None
    except (OSError, zipfile.BadZipFile) as e:
        raise ImageFilesError(f"cannot read {p}: {e}") from None
    if raw is None:
        return None
    try:
        labels = json.loads(raw).get("labels")
    except (ValueError, AttributeError):
        raise ImageFilesError(f"{p}: dataset.json is not valid JSON with a 'labels' list") from None
    if labels is None:
        return None
    out = {}
    for entry in labels:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list) and len(entry[1]) == 25):
            raise ImageFilesError(f"{p}: malformed label entry {str(entry)[:60]}")
        out[str(entry[0]).replace("\\", "/")] = [float(v) for v in entry[1]]
    return out

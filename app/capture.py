"""Saving screenshots: numbered PNGs written atomically (temp file + rename), never half-written."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write image [H, W, 3] uint8 to ``path`` atomically; creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def next_free(folder: str | os.PathLike, prefix: str = "", suffix: str = ".png") -> Path:
    """``folder/<prefix>NNNNN<suffix>`` with the next unused five-digit number."""
    folder = Path(folder)
    pattern = re.compile(rf"^{re.escape(prefix)}(\d{{5}}){re.escape(suffix)}$")
    used = [int(m.group(1)) for p in (folder.iterdir() if folder.is_dir() else []) if (m := pattern.match(p.name))]
    return folder / f"{prefix}{max(used, default=-1) + 1:05d}{suffix}"

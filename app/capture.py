"""Screenshot names: the next free numbered PNG in a folder (``core.files.image_io.save_png`` writes them)."""
from __future__ import annotations

import os
import re
from pathlib import Path


def next_free(folder: str | os.PathLike, prefix: str = "", suffix: str = ".png") -> Path:
    """``folder/<prefix>NNNNN<suffix>`` with the next unused five-digit number."""
    folder = Path(folder)
    pattern = re.compile(rf"^{re.escape(prefix)}(\d{{5}}){re.escape(suffix)}$")
    used = [int(m.group(1)) for p in (folder.iterdir() if folder.is_dir() else []) if (m := pattern.match(p.name))]
    return folder / f"{prefix}{max(used, default=-1) + 1:05d}{suffix}"

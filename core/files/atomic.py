"""Write output files so that they either appear complete or not at all (temp file in the same folder + rename).

Used by every exporter (video, mesh, inversion): an error, Ctrl-C or a cancel midway leaves no half-written file.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_output", "atomic_folder", "check_writable_dir", "check_output_location"]


def check_writable_dir(folder: str | os.PathLike, create: bool = True) -> Path:
    """The folder an output goes into exists (or is created) and is writable; else an OSError with its name."""
    folder = Path(folder)
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        raise NotADirectoryError(20, "not a folder", str(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(13, "folder is not writable", str(folder))
    return folder


def check_output_location(path: str | os.PathLike) -> None:
    """Fail early (before long work) when ``path`` could not be created: its nearest existing ancestor must be a
    writable folder. Creates nothing."""
    p = Path(path).absolute()
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(20, "not a folder", str(parent))
            if not os.access(parent, os.W_OK | os.X_OK):
                raise PermissionError(13, "folder is not writable", str(parent))
            return


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers pick the same format); on success it is
    renamed onto ``path``, on any exception (including KeyboardInterrupt) it is removed."""
    path = Path(path)
    check_writable_dir(path.parent)
    # Not created here, so the writer creates it with the usual permissions (mkstemp would make it 0600).
    tmp_path = path.parent / f".{path.name}.{secrets.token_hex(6)}.part{path.suffix}"
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_folder(outdir: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside ``outdir``; on success its files are moved into ``outdir`` (each by an
    atomic rename), on any exception the staging folder is deleted and ``outdir`` is left as it was."""
    outdir = Path(outdir)
    check_writable_dir(outdir.parent)
    stage = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".part", dir=outdir.parent))
    try:
        yield stage
        outdir.mkdir(parents=True, exist_ok=True)
        for f in sorted(stage.iterdir()):
            os.replace(f, outdir / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

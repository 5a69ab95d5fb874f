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
from typing import Iterable, Iterator, Mapping

from ..errors import TridentError

__all__ = ["atomic_output", "atomic_folder", "check_writable_dir", "check_output_location", "check_not_inputs",
           "OutputOverwritesInput"]


class OutputOverwritesInput(TridentError):
    """An output would replace (or, for a folder output, contain) one of the command's inputs."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # also hard links and different spellings of one file
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_not_inputs(outputs: Iterable[str | os.PathLike],
                     inputs: Mapping[str, str | os.PathLike | Iterable[str | os.PathLike] | None],
                     folder: str | os.PathLike | None = None) -> None:
    """Refuse before any work when an output file would overwrite an input (paths compared after resolving links
    and ``..``; hard links count), or when ``folder`` -- an output folder that is replaced or cleaned as a whole --
    holds an input. ``inputs`` maps the option that named each input (``"--network"``) to its path (None: not
    given; a list: a repeatable option). The one rule every writer follows: outputs never overwrite an input
    (docs/safety.md)."""
    given = [(opt, Path(p)) for opt, ps in inputs.items()
             for p in (ps if isinstance(ps, (list, tuple)) else [ps]) if p is not None and str(p) != ""]
    for out in map(Path, outputs):
        for opt, inp in given:
            if (out.exists() or out.is_symlink()) and inp.exists() and _same_file(out, inp) \
                    or os.path.realpath(out) == os.path.realpath(inp):
                raise OutputOverwritesInput(f"{out} is the input {opt} {inp}; the output would overwrite it "
                                            f"(choose another output)")
    if folder is not None:
        top = os.path.realpath(folder)
        for opt, inp in given:
            real = os.path.realpath(inp)
            if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
                raise OutputOverwritesInput(f"the output folder {folder} holds the input {opt} {inp}; writing there "
                                            f"could replace it (choose another output folder)")


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

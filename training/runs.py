"""Run folders and snapshot names: ``<outdir>/NNNNN-<desc>/network-snapshot-<kimg>.pkl`` (EG3D's layout,
``NVlabs/eg3d: eg3d/training/training_loop.py``), choosing the run and snapshot to resume, the run-folder lock, and
clearing what a killed process of the run left half-written.

Rules (docs/training.md, "Resuming"; docs/safety.md, "Outputs and runs"):

* a run writes into a folder under ``--outdir``, always: ``--resume PKL`` continues in the snapshot's own run
  folder only when that folder is under ``--outdir``, else in a new run folder there;
* a process that trains in a run folder holds its lock (``run.lock``, an advisory ``flock`` that the kernel
  releases when the process dies, so the lock of a dead process is simply taken over); a second process gets
  one error line naming the holder's pid;
* ``--resume auto`` takes the newest snapshot that loads, skipping damaged ones with a warning that names them;
* the only files removed are the temporary files of this run's own interrupted writes, and only in a run
  folder whose lock is held.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.errors import TridentError, first_line
from core.files.atomic import atomic_output

SNAPSHOT_PREFIX = "network-snapshot-"
LOCK_NAME = "run.lock"
_RUN_NAME = re.compile(r"^\d{5}-")
# what an interrupted write of this project leaves in a run folder: save_snapshot's mkstemp file and
# atomic_output's hidden part file (e.g. the fakes grid)
_STALE = (re.compile(r"^network-snapshot-[0-9.]+\.pkl\.[A-Za-z0-9_]+\.tmp$"),
          re.compile(r"^\.[^/]+\.[0-9a-f]{12}\.part\.[A-Za-z0-9]+$"))


class RunError(TridentError):
    """A run folder cannot be used (locked by another process, nothing to resume, ...)."""


def snapshot_tag(nimg: int) -> str:
    """'000012' at a whole kimg (EG3D's names), '000012.500' between (a fractional ``--snap-kimg``, or a final
    snapshot off the snapshot grid), so that no snapshot overwrites another."""
    kimg, rest = divmod(int(nimg), 1000)
    return f"{kimg:06d}" if rest == 0 else f"{kimg:06d}.{rest:03d}"


def snapshot_name(nimg: int) -> str:
    return f"{SNAPSHOT_PREFIX}{snapshot_tag(nimg)}.pkl"


_TAG = re.compile(r"^(\d{6})(?:\.(\d{3}))?$")


def snapshot_nimg(path: Path) -> int | None:
    """The images seen at a snapshot, from its file name (None for other names)."""
    m = _TAG.match(path.name[len(SNAPSHOT_PREFIX):-len(".pkl")]) if path.name.startswith(SNAPSHOT_PREFIX) else None
    return int(m.group(1)) * 1000 + int(m.group(2) or 0) if m else None


def snapshots(run_dir: Path) -> list[Path]:
    """The run's snapshots, most images seen first (names sort wrongly once fractional tags exist)."""
    snaps = [(n, p) for p in run_dir.glob(f"{SNAPSHOT_PREFIX}*.pkl") if (n := snapshot_nimg(p)) is not None]
    return [p for _, p in sorted(snaps, reverse=True)]


def latest_snapshot(run_dir: Path) -> Path | None:
    """The run's snapshot with the most images seen (by name; :func:`resume_auto` also checks that it loads)."""
    snaps = snapshots(run_dir)
    return snaps[0] if snaps else None


def run_folders(outdir: Path) -> list[Path]:
    """The run folders under ``outdir``, newest (highest number) first."""
    if not outdir.is_dir():
        return []
    return sorted((d for d in outdir.glob("[0-9][0-9][0-9][0-9][0-9]-*") if d.is_dir() and not d.is_symlink()),
                  reverse=True)


def find_resume_run(outdir: Path) -> Path | None:
    """The newest run folder under ``outdir`` that holds a snapshot (by name)."""
    return next((d for d in run_folders(outdir) if latest_snapshot(d) is not None), None)


# ----------------------------------------------------------------------------------------------------------
# the lock


class RunLock:
    """This process trains in ``run_dir``: an exclusive ``flock`` on ``run_dir/run.lock`` holding our pid.

    Released by :meth:`release` or when the process ends (the kernel drops the lock of a dead process, so a stale
    lock file is taken over by the next run)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.fd: int | None = None
        self.took_over = None
        if os.environ.get("RANK", "0") != "0":  # torchrun: process 0 holds the lock for the whole job
            return
        if self.path.is_symlink():
            raise RunError(f"{self.path} is a symbolic link; refusing to use it as the run lock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunError(f"{self.run_dir} is in use by another training process (pid {holder}); wait for it to "
                           f"finish or stop it, or pass another --outdir") from None
        old = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        self.took_over = old if old and old != str(os.getpid()) else None  # the pid of a dead holder

    @property
    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock; the file stays (a later run reuses it)
            self.fd = None


def new_run_dir(outdir: Path, desc: str) -> tuple[Path, RunLock]:
    """A new numbered run folder under ``outdir``, locked by this process."""
    outdir.mkdir(parents=True, exist_ok=True)
    for _ in range(100):  # another process may take the same number at the same moment: take the next one
        ids = [int(d.name[:5]) for d in outdir.glob("[0-9][0-9][0-9][0-9][0-9]-*") if d.name[:5].isdigit()]
        run = outdir / f"{(max(ids) + 1 if ids else 0):05d}-{desc}"
        try:
            run.mkdir()
        except FileExistsError:
            continue
        return run, RunLock(run)
    raise RunError(f"{outdir}: could not create a new run folder")


def clear_stale_writes(run_dir: Path) -> list[Path]:
    """Remove the temporary files that this project's interrupted writes left in ``run_dir`` (a snapshot's
    ``network-snapshot-*.pkl.*.tmp``, an image's hidden ``.*.part.*``); nothing else is touched. Call it only while
    holding the run's lock. Returns what was removed."""
    removed = []
    for path in run_dir.iterdir():
        if path.is_file() and not path.is_symlink() and any(p.match(path.name) for p in _STALE):
            path.unlink()
            removed.append(path)
    return removed


def trim_stats(path: Path, nimg: int) -> int:
    """Keep the ``stats.jsonl`` records up to ``nimg`` images seen (the snapshot a run resumes from): the records
    after it describe training that was lost and is about to be redone, so they would appear twice. Unreadable lines
    (a write cut short by a kill) are dropped too. Returns the number of records dropped."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
            ok = isinstance(rec, dict) and round(float(rec["kimg"]) * 1000) <= nimg
        except (ValueError, KeyError, TypeError):
            ok = False
        if ok:
            kept.append(line)
        elif line.strip():
            dropped += 1
    if dropped:
        with atomic_output(path) as tmp:
            tmp.write_text("".join(f"{ln}\n" for ln in kept))
    return dropped


# ----------------------------------------------------------------------------------------------------------
# choosing what to resume


@dataclass
class Resume:
    """Where a resumed run continues: its folder (under ``--outdir``, locked), the snapshot, loaded, and the config
    file of the run the snapshot came from (None when it has none)."""

    run_dir: Path
    snapshot: Path
    snap: object
    config: Path | None
    lock: RunLock


def warn(text: str) -> None:
    print("warning: " + " ".join(text.split()), file=sys.stderr)


def resume_auto(outdir: Path, load: Callable[[Path], object]) -> Resume | None:
    """The newest complete snapshot under ``outdir``: run folders newest first, each locked while it is looked at
    (one in use by another process stops here with a :class:`RunError`), its stale temp files cleared, its
    snapshots tried newest first with ``load``; a snapshot that does not load is skipped with a warning naming it.
    None when no run under ``outdir`` has a snapshot that loads."""
    for run_dir in run_folders(outdir):
        lock = RunLock(run_dir)
        for stale in clear_stale_writes(run_dir) if lock.held else ():
            print(f"removed {stale.name}, left in {run_dir.name} by an interrupted write")
        for path in snapshots(run_dir):
            try:
                snap = load(path)
            except (TridentError, OSError, EOFError, RuntimeError) as e:
                warn(f"skipping damaged snapshot {path} ({first_line(e) or type(e).__name__}); "
                     f"falling back to the previous one")
                continue
            config = run_dir / "config.yaml"
            return Resume(run_dir, path, snap, config if config.is_file() else None, lock)
        lock.release()
    return None


def resume_from(path: Path, outdir: Path, desc: str, load: Callable[[Path], object]) -> Resume:
    """``--resume PKL``: continue in the snapshot's run folder when it is a run folder under ``outdir``, else in
    a new run folder under ``outdir`` (the snapshot's folder is only read)."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"no such snapshot: {path}")
    snap = load(path)
    parent = path.resolve().parent
    config = path.parent / "config.yaml"
    if parent.parent == Path(outdir).resolve() and _RUN_NAME.match(parent.name):
        lock = RunLock(parent)
        for stale in clear_stale_writes(parent) if lock.held else ():
            print(f"removed {stale.name}, left in {parent.name} by an interrupted write")
        run_dir = parent
    else:
        run_dir, lock = new_run_dir(Path(outdir), desc)
    return Resume(run_dir, path, snap, config if config.is_file() else None, lock)

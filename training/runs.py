"""Run folders and snapshot names: ``<outdir>/NNNNN-<desc>/network-snapshot-<kimg>.pkl`` (EG3D's layout,
``NVlabs/eg3d: eg3d/training/training_loop.py``), finding the run to resume and clearing half-written files."""
from __future__ import annotations

import re
from pathlib import Path

SNAPSHOT_PREFIX = "network-snapshot-"


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


def latest_snapshot(run_dir: Path) -> Path | None:
    """The run's snapshot with the most images seen (names sort wrongly once fractional tags exist)."""
    snaps = [(n, p) for p in run_dir.glob(f"{SNAPSHOT_PREFIX}*.pkl") if (n := snapshot_nimg(p)) is not None]
    return max(snaps)[1] if snaps else None


def find_resume_run(outdir: Path) -> Path | None:
    """The newest run folder under ``outdir`` that holds a snapshot (for ``--resume auto``)."""
    runs = sorted((d for d in outdir.glob("[0-9][0-9][0-9][0-9][0-9]-*") if d.is_dir()), reverse=True)
    for d in runs:
        if latest_snapshot(d) is not None:
            return d
    return None


def new_run_dir(outdir: Path, desc: str) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    ids = [int(d.name[:5]) for d in outdir.glob("[0-9][0-9][0-9][0-9][0-9]-*") if d.name[:5].isdigit()]
    run = outdir / f"{(max(ids) + 1 if ids else 0):05d}-{desc}"
    run.mkdir()
    return run


def clear_stale_writes(run_dir: Path) -> None:
    """Remove the temporary files of snapshot writes that a killed process never renamed into place."""
    for stale in run_dir.glob("*.tmp"):
        stale.unlink()

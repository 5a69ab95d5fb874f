"""Where the viewer writes files: one output folder (screenshots/, videos/, meshes/, inversion/ below it).

Default: ``$TRIDENT_OUTDIR``, else the user's data folder (``$XDG_DATA_HOME/trident``, by default
``~/.local/share/trident``), never the current directory (which is often the repository). ``run_viz.py --outdir``
and the Model panel change it; relative names in the panels are resolved below it, absolute ones are kept.
"""
from __future__ import annotations

import os
from pathlib import Path


def default_outdir() -> Path:
    env = os.environ.get("TRIDENT_OUTDIR")
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "trident"


def resolve(outdir: str | os.PathLike, name: str | os.PathLike) -> Path:
    """``name`` below ``outdir`` unless it is absolute (or starts with ~)."""
    p = Path(os.path.expanduser(str(name)))
    return p if p.is_absolute() else Path(os.path.expanduser(str(outdir))) / p

"""Recently opened model files, kept in ``$TRIDENT_CONFIG_DIR/recent.json`` (default ``~/.config/trident``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from core.files.atomic import atomic_output

MAX_RECENT = 10


def config_dir() -> Path:
    return Path(os.environ.get("TRIDENT_CONFIG_DIR") or Path.home() / ".config" / "trident")


class RecentFiles:
    def __init__(self, path: Path | None = None):
        self.path = path or config_dir() / "recent.json"
        self.paths: list[str] = []
        try:
            data = json.loads(self.path.read_text())
            self.paths = [p for p in data.get("recent", []) if isinstance(p, str)][:MAX_RECENT]
        except (OSError, ValueError, AttributeError):
            self.paths = []

    def add(self, path: str) -> None:
        path = os.path.abspath(path)
        self.paths = [path] + [p for p in self.paths if p != path][:MAX_RECENT - 1]
        try:  # best effort: an unwritable config folder must not break the viewer
            with atomic_output(self.path) as tmp:
                tmp.write_text(json.dumps({"recent": self.paths}, indent=1))
        except OSError:
            pass

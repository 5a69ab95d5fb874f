"""An in-app file browser: folders and matching files of one folder, drawn with ImGui's own widgets, so "Browse..."
works where no native dialog program (zenity, kdialog) is installed -- a bare X server, a container, Xvfb.

    browser = FileBrowser("model", (".pkl", ".pt"))
    browser.open(start)              # on "Browse..." when there is no native dialog
    picked = browser.draw()          # every frame inside the panel: a path once the user opens a file, else None

Clicking a folder enters it, "Up" goes up, clicking a file selects it, "Open" (or a double click) returns it. The
listing is read once per folder (``entries``), hidden files left out, folders first, then files by name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from imgui_bundle import imgui

from ..panes import DIM_COLOR, ERROR_COLOR

MAX_ENTRIES = 2000  # a folder with more is listed up to this many, with a note


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool


def list_folder(folder: Path, suffixes: tuple[str, ...]) -> tuple[list[Entry], str | None]:
    """Sub-folders and files ending in one of ``suffixes`` (any file when empty) of ``folder``; (entries, error)."""
    try:
        with os.scandir(folder) as it:
            raw = [(e.name, e.is_dir()) for e in it if not e.name.startswith(".")]
    except OSError as e:
        return [], f"cannot list {folder}: {e.strerror or e}"
    dirs = sorted((n for n, d in raw if d), key=str.lower)
    files = sorted((n for n, d in raw if not d and (not suffixes or n.lower().endswith(suffixes))), key=str.lower)
    entries = [Entry(n, True) for n in dirs] + [Entry(n, False) for n in files]
    note = f"showing the first {MAX_ENTRIES} of {len(entries)} entries" if len(entries) > MAX_ENTRIES else None
    return entries[:MAX_ENTRIES], note


class FileBrowser:
    def __init__(self, what: str, suffixes: tuple[str, ...]):
        self.what, self.suffixes = what, tuple(s.lower() for s in suffixes)
        self.visible = False
        self.folder = Path.cwd()
        self.entries: list[Entry] = []
        self.note: str | None = None
        self.selected: str | None = None
        self.pending: Path | None = None   # accepted, returned by the next draw()

    def open(self, start: str | os.PathLike | None = None) -> None:
        """Show the browser at ``start`` (a file selects it in its folder; missing: the working folder)."""
        p = Path(start).expanduser() if start else Path.cwd()
        if p.is_file():
            self.enter(p.parent)
            self.selected = p.name
        else:
            self.enter(p if p.is_dir() else Path.cwd())
        self.visible = True

    def enter(self, folder: Path) -> None:
        self.folder = Path(os.path.abspath(folder))
        self.entries, self.note = list_folder(self.folder, self.suffixes)
        self.selected = None

    def choose(self, entry: Entry) -> Path | None:
        """What a click on ``entry`` does: a folder is entered, a file selected and returned."""
        if entry.is_dir:
            self.enter(self.folder / entry.name)
            return None
        self.selected = entry.name
        return self.folder / entry.name

    def accept(self) -> None:
        """The "Open" button: the selected file is returned by the next :meth:`draw`."""
        if self.selected is not None:
            self.pending = self.folder / self.selected

    def close(self) -> None:
        self.visible = False

    def draw(self) -> Path | None:
        """Draw inside the current panel; the chosen file's path once the user opens one (the browser then closes)."""
        if not self.visible:
            return None
        picked, self.pending = self.pending, None
        imgui.push_id(f"browser_{self.what}")
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(DIM_COLOR, f"open a {self.what}: {self.folder}")
        imgui.pop_text_wrap_pos()
        if imgui.button("Up") and self.folder.parent != self.folder:
            self.enter(self.folder.parent)
        imgui.same_line()
        if imgui.button("Home"):
            self.enter(Path.home())
        imgui.same_line()
        if imgui.button("Cancel"):
            self.close()
        line = imgui.get_text_line_height_with_spacing()
        if imgui.begin_child("entries", imgui.ImVec2(0, line * 10), imgui.ChildFlags_.borders):
            for entry in self.entries:
                label = entry.name + ("/" if entry.is_dir else "")
                clicked, _ = imgui.selectable(label, entry.name == self.selected,
                                              imgui.SelectableFlags_.allow_double_click)
                if clicked:
                    chosen = self.choose(entry)
                    if chosen is not None and imgui.is_mouse_double_clicked(imgui.MouseButton_.left):
                        picked = chosen
                    if entry.is_dir:
                        break      # the listing changed under the loop
            if not self.entries:
                imgui.text_colored(DIM_COLOR, "(no folders or matching files here)")
        imgui.end_child()
        if self.note:
            imgui.text_colored(ERROR_COLOR if not self.entries else DIM_COLOR, self.note)
        if self.selected is not None and imgui.button(f"Open {self.selected}"):
            self.accept()
            picked = self.pending
        imgui.pop_id()
        if picked is not None:
            self.close()
        return picked

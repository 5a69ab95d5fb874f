"""Session panel: save everything shown (model and its hash, latent, camera, edits, render options) to a session file
and open one again; open an inversion's ``latent.npy`` (with the ``camera.npy`` beside it). Session files are
``core.tools.edit.session``'s: ``python -m core samples|video|mesh --session F`` renders them too.

A session of another model file opens that model first; a session whose model file changed (content hash) opens
with a warning; edits of another model's directions are not applied (said so); a corrupt file is one line here and
nothing changes."""
from __future__ import annotations

import os
from pathlib import Path

from imgui_bundle import imgui

from ..panes import DIM_COLOR, ERROR_COLOR
from ..threads import error_line

WARNING_COLOR = imgui.ImVec4(1.0, 0.8, 0.35, 1.0)


class SessionWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.path = "session.json"
        self.latent_path = ""
        self.message = ""
        self.error = ""
        self.warnings: list[str] = []

    def _fail(self, e: Exception) -> bool:
        self.error, self.message, self.warnings = error_line(e), "", []
        return False

    # -- actions --------------------------------------------------------------------------------------------
    def save(self, path: str) -> bool:
        from core.tools.edit.model_id import model_sha256
        from core.tools.edit.session import save_session
        from ..session_state import to_session
        v = self.viewer
        backend = v.model_backend()
        if backend is None:
            return self._fail(ValueError("no model loaded"))
        try:
            session = to_session(v.state, v.info, v.bank, backend.model.path, model_sha256(backend.model))
            save_session(path, session)
        except Exception as e:  # noqa: BLE001 - unwritable folder, model without a file: one line
            return self._fail(e)
        self.error, self.warnings, self.message = "", [], f"saved {path}"
        return True

    def open(self, path: str) -> bool:
        """Open a session; when it belongs to another model file than the loaded one, that model is opened first."""
        from core.tools.edit.model_id import model_sha256
        from core.tools.edit.session import load_session
        v = self.viewer
        try:
            session = load_session(path)
        except Exception as e:  # noqa: BLE001 - missing, corrupt, not a session: one line, nothing changes
            return self._fail(e)
        backend = v.model_backend()
        try:
            same = backend is not None and model_sha256(backend.model) == session.model_sha256
        except Exception:  # noqa: BLE001 - a model without a file (e.g. PTI-tuned): not the session's
            same = False
        loaded_path = os.path.realpath(v.model_path) if v.model_path else None
        if same or (loaded_path == os.path.realpath(session.model_path) and backend is not None):
            return self.apply(path)
        if not os.path.isfile(session.model_path):
            return self._fail(FileNotFoundError(f"session {Path(path).name}: its model {session.model_path} is not "
                                                "there; open the model, then the session"))
        v.pending_after_load = lambda: self.apply(path)
        v.open_model(session.model_path)
        self.error, self.warnings, self.message = "", [], f"opening {session.model_path} for {Path(path).name} ..."
        return True

    def apply(self, path: str) -> bool:
        """Show the session on the loaded model (warnings for another model version or other models' edits)."""
        from core.tools.edit.model_id import model_sha256
        from core.tools.edit.session import open_session
        from ..session_state import apply_session
        v = self.viewer
        backend = v.model_backend()
        if backend is None:
            return self._fail(ValueError("no model loaded"))
        try:
            session, warnings = open_session(path, model_sha256(backend.model))
            apply_session(v.state, session, v.info, v.bank)
        except Exception as e:  # noqa: BLE001
            return self._fail(e)
        self.error, self.warnings, self.message = "", warnings, f"opened {path}"
        return True

    def open_latent(self, path: str) -> bool:
        from ..session_state import open_latent
        v = self.viewer
        backend = v.model_backend()
        if backend is None:
            return self._fail(ValueError("open a model first: a latent belongs to one"))
        try:
            opened = open_latent(v.state, path, v.info, backend.model.w_dim, v.bank)
        except Exception as e:  # noqa: BLE001 - missing file, wrong shape for this model: one line
            return self._fail(e)
        self.error, self.warnings, self.message = "", [], f"opened {opened}"
        return True

    def open_dropped(self, path: str) -> bool:
        """A file dropped on the window: a session (.json) or a latent (.npy); False for anything else."""
        suffix = Path(path).suffix.lower()
        if suffix == ".json":
            return self.open(path)
        if suffix == ".npy":
            return self.open_latent(path)
        return False

    # -- UI -------------------------------------------------------------------------------------------------
    def _lines(self) -> None:
        imgui.push_text_wrap_pos(0.0)
        if self.error:
            imgui.text_colored(ERROR_COLOR, self.error)
        for w in self.warnings:
            imgui.text_colored(WARNING_COLOR, f"warning: {w}")
        if self.message and not self.error:
            imgui.text_colored(DIM_COLOR, self.message)
        imgui.pop_text_wrap_pos()

    def __call__(self) -> None:
        v = self.viewer
        if not imgui.collapsing_header("Session"):
            return
        _, self.path = imgui.input_text("Session file", self.path)
        imgui.begin_disabled(v.model_backend() is None)
        if imgui.button("Save session"):
            self.save(self.path.strip())
        imgui.end_disabled()
        imgui.same_line()
        if imgui.button("Open session") and self.path.strip():
            self.open(self.path.strip())
        _, self.latent_path = imgui.input_text("latent.npy", self.latent_path)
        imgui.begin_disabled(v.model_backend() is None or not self.latent_path.strip())
        if imgui.button("Open latent (+ camera.npy beside it)"):
            self.open_latent(self.latent_path.strip())
        imgui.end_disabled()
        imgui.text_colored(DIM_COLOR, "or drop a .json session or a latent.npy on the window")
        self._lines()

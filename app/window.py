"""The GLFW window with an OpenGL 3.3 core context and imgui-bundle's pure-Python GLFW backend.

Known failure modes of EG3D's visualizer (``NVlabs/eg3d: eg3d/visualizer.py``) that this avoids: no display -> a
one-line error instead of a crash; Wayland -> PyOpenGL forced onto X11 before ``OpenGL`` is imported; macOS -> a
forward-compatible 3.3 core context only.
"""
from __future__ import annotations

import ctypes
import hashlib
import os

if os.environ.get("XDG_SESSION_TYPE") == "wayland" and not os.environ.get("PYOPENGL_PLATFORM"):
    os.environ["PYOPENGL_PLATFORM"] = "x11"  # GLFW talks to XWayland; PyOpenGL must use the same platform

import glfw  # noqa: E402  (the pip glfw package must be imported before imgui_bundle)
import numpy as np  # noqa: E402
import OpenGL.GL as gl  # noqa: E402
from imgui_bundle import imgui  # noqa: E402
from imgui_bundle.python_backends.glfw_backend import GlfwRenderer  # noqa: E402

from .gl import read_window  # noqa: E402


# The window's clear colour is ImGui's dark window background, so full-window panels can skip drawing their own
# background: with software OpenGL every blended full-window quad costs milliseconds per frame.
BACKGROUND = (0.06, 0.06, 0.06)


class WindowError(RuntimeError):
    """The window or its OpenGL context could not be created."""


class Window:
    """One top-level window; :meth:`begin_frame` / :meth:`end_frame` bracket each ImGui frame.

    ``fixed_dt`` makes ImGui's clock deterministic (screenshots and tests); ``None`` uses wall time.
    """

    def __init__(self, width: int, height: int, title: str = "Trident", fixed_dt: float | None = None,
                 visible: bool = True):
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            raise WindowError("no display (DISPLAY is not set); run under X, or use --screenshot for headless capture")
        if not glfw.init():
            raise WindowError(f"GLFW could not initialise the display {os.environ.get('DISPLAY')!r}")
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, gl.GL_TRUE)
        glfw.window_hint(glfw.VISIBLE, glfw.TRUE if visible else glfw.FALSE)
        self.handle = glfw.create_window(int(width), int(height), title, None, None)
        if not self.handle:
            glfw.terminate()
            raise WindowError("could not create a window with an OpenGL 3.3 core context")
        glfw.make_context_current(self.handle)
        glfw.swap_interval(0)  # frame pacing is ours (Viewer.run), so the UI rate does not depend on the driver
        self.fixed_dt = fixed_dt
        self.dropped_paths: list[str] = []
        imgui.create_context()
        io = imgui.get_io()
        io.set_ini_filename(None)  # no imgui.ini written into the working directory
        io.config_flags |= imgui.ConfigFlags_.nav_enable_keyboard
        self.impl = GlfwRenderer(self.handle)
        glfw.set_drop_callback(self.handle, self._on_drop)
        glfw.set_window_refresh_callback(self.handle, self._on_refresh)
        self._last_signature: bytes | None = None
        self._size: tuple[int, int] | None = None
        self.needs_redraw = True  # set by anything that changes GL content behind unchanged draw data
        self.gl_version = gl.glGetString(gl.GL_VERSION).decode()
        self.gl_renderer = gl.glGetString(gl.GL_RENDERER).decode()

    def _on_refresh(self, _window) -> None:
        self.needs_redraw = True

    def _on_drop(self, _window, paths) -> None:
        self.dropped_paths.extend(str(p) for p in paths)

    @property
    def size(self) -> tuple[int, int]:
        """Framebuffer size in pixels (width, height), read once per frame (each query is an X round trip)."""
        if self._size is None:
            self._size = tuple(glfw.get_framebuffer_size(self.handle))
        return self._size

    def set_size(self, width: int, height: int) -> None:
        glfw.set_window_size(self.handle, int(width), int(height))
        self._size = None

    def should_close(self) -> bool:
        return bool(glfw.window_should_close(self.handle))

    def wait_events(self, timeout_s: float) -> None:
        """Sleep until input arrives or ``timeout_s`` passes (frame pacing without busy-waiting)."""
        if timeout_s > 0:
            glfw.wait_events_timeout(timeout_s)

    def begin_frame(self) -> None:
        glfw.poll_events()
        self._size = None
        self.impl.process_inputs()
        if self.fixed_dt is not None:
            imgui.get_io().delta_time = self.fixed_dt
        imgui.new_frame()

    @staticmethod
    def _signature(draw_data) -> bytes:
        """A digest of everything ImGui asks to draw this frame (vertices, indices, textures, clip rects)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((draw_data.display_size.x, draw_data.display_size.y)).encode())
        for cl in draw_data.cmd_lists:
            h.update(ctypes.string_at(cl.vtx_buffer.data_address(), cl.vtx_buffer.size() * imgui.VERTEX_SIZE))
            h.update(ctypes.string_at(cl.idx_buffer.data_address(), cl.idx_buffer.size() * imgui.INDEX_SIZE))
            for cmd in cl.cmd_buffer:
                r = cmd.clip_rect
                h.update(repr((cmd.get_tex_id(), r.x, r.y, r.z, r.w, cmd.elem_count, cmd.idx_offset)).encode())
        return h.digest()

    def end_frame(self, capture: bool = False) -> tuple[bool, np.ndarray | None]:
        """Render the UI to the window unless it would repeat the last frame exactly (software OpenGL spends
        milliseconds per frame that the renders need). Returns (drawn, image [H, W, 3] uint8 when ``capture``)."""
        imgui.render()
        draw_data = imgui.get_draw_data()
        textures_pending = any(t.status != imgui.ImTextureStatus.ok for t in imgui.get_platform_io().textures)
        signature = None if textures_pending else self._signature(draw_data)
        if signature is not None and signature == self._last_signature and not (capture or self.needs_redraw):
            return False, None
        self._last_signature, self.needs_redraw = signature, False
        w, h = self.size
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
        gl.glViewport(0, 0, w, h)
        gl.glClearColor(*BACKGROUND, 1.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        self.impl.render(draw_data)
        shot = read_window(w, h) if capture else None
        glfw.swap_buffers(self.handle)
        return True, shot

    def close(self) -> None:
        if self.handle is None:
            return
        self.impl.shutdown()
        imgui.destroy_context()
        glfw.destroy_window(self.handle)
        glfw.terminate()
        self.handle = None

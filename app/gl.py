"""Small OpenGL 3.3 core helpers: textures, framebuffers, shader programs from ``shaders/``, vertex arrays.

No fixed-function calls (no ``glDrawPixels``: it fails on macOS core profiles).
Every GL call here needs a current context (see :mod:`app.window`).
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import OpenGL.GL as gl

SHADER_DIR = Path(__file__).resolve().parents[1] / "shaders"


class ShaderError(RuntimeError):
    """A shader failed to compile or a program failed to link; the message names the file and holds the log."""


def _compile(stage: int, source: str, name: str) -> int:
    shader = gl.glCreateShader(stage)
    gl.glShaderSource(shader, source)
    gl.glCompileShader(shader)
    if not gl.glGetShaderiv(shader, gl.GL_COMPILE_STATUS):
        log = gl.glGetShaderInfoLog(shader).decode(errors="replace").strip()
        gl.glDeleteShader(shader)
        raise ShaderError(f"{name}: compile failed: {log}")
    return shader


class ShaderProgram:
    """A linked vertex + fragment program with cached uniform locations."""

    def __init__(self, vertex_source: str, fragment_source: str, name: str = "program"):
        self.name = name
        vs = _compile(gl.GL_VERTEX_SHADER, vertex_source, f"{name}.vert")
        fs = _compile(gl.GL_FRAGMENT_SHADER, fragment_source, f"{name}.frag")
        self.handle = gl.glCreateProgram()
        gl.glAttachShader(self.handle, vs)
        gl.glAttachShader(self.handle, fs)
        gl.glLinkProgram(self.handle)
        gl.glDeleteShader(vs)
        gl.glDeleteShader(fs)
        if not gl.glGetProgramiv(self.handle, gl.GL_LINK_STATUS):
            log = gl.glGetProgramInfoLog(self.handle).decode(errors="replace").strip()
            gl.glDeleteProgram(self.handle)
            raise ShaderError(f"{name}: link failed: {log}")
        self._locations: dict[str, int] = {}

    @classmethod
    def from_files(cls, vert: str, frag: str | None = None, shader_dir: Path = SHADER_DIR) -> "ShaderProgram":
        """``from_files("display")`` links ``shaders/display.vert`` with ``shaders/display.frag``."""
        frag = frag or vert
        return cls((shader_dir / f"{vert}.vert").read_text(), (shader_dir / f"{frag}.frag").read_text(),
                   name=vert if frag == vert else f"{vert}+{frag}")

    def use(self) -> None:
        gl.glUseProgram(self.handle)

    def location(self, name: str) -> int:
        if name not in self._locations:
            self._locations[name] = gl.glGetUniformLocation(self.handle, name)
        return self._locations[name]

    def set(self, name: str, value) -> None:
        """Set a uniform (int, float, 2-4 vector, 3x3 or 4x4 matrix); unknown names (optimised out) are ignored."""
        loc = self.location(name)
        if loc < 0:
            return
        if isinstance(value, (bool, int, np.integer)):
            gl.glUniform1i(loc, int(value))
            return
        if isinstance(value, (float, np.floating)):
            gl.glUniform1f(loc, float(value))
            return
        a = np.asarray(value, dtype=np.float32)
        if a.shape == (4, 4):
            gl.glUniformMatrix4fv(loc, 1, gl.GL_TRUE, a)
        elif a.shape == (3, 3):
            gl.glUniformMatrix3fv(loc, 1, gl.GL_TRUE, a)
        else:
            {2: gl.glUniform2f, 3: gl.glUniform3f, 4: gl.glUniform4f}[a.size](loc, *a.tolist())

    def delete(self) -> None:
        gl.glDeleteProgram(self.handle)


_FORMATS = {  # (dtype, channels) -> (internal format, format, type)
    (np.uint8, 1): (gl.GL_R8, gl.GL_RED, gl.GL_UNSIGNED_BYTE),
    (np.uint8, 3): (gl.GL_RGB8, gl.GL_RGB, gl.GL_UNSIGNED_BYTE),
    (np.uint8, 4): (gl.GL_RGBA8, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE),
    (np.float32, 1): (gl.GL_R32F, gl.GL_RED, gl.GL_FLOAT),
}


class Texture:
    """A 2D texture updated from numpy arrays [H, W] / [H, W, C] (uint8 RGB/RGBA/gray or float32 single channel).

    The first row of the array is the top of the image; ``imgui.image`` shows it upright with the default uvs.
    """

    def __init__(self, nearest: bool = True):
        self.handle = int(gl.glGenTextures(1))
        self.shape: tuple[int, ...] | None = None
        self.dtype = None
        self.nearest = nearest
        self.version = 0  # bumped on every upload, so views can tell when to redraw

    def upload(self, array: np.ndarray) -> None:
        a = np.ascontiguousarray(array)
        channels = 1 if a.ndim == 2 else a.shape[2]
        key = (a.dtype.type, channels)
        if key not in _FORMATS:
            raise ValueError(f"unsupported texture array: dtype {a.dtype}, {channels} channels")
        internal, fmt, typ = _FORMATS[key]
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.handle)
        gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
        h, w = a.shape[:2]
        if self.shape == a.shape and self.dtype == a.dtype:
            gl.glTexSubImage2D(gl.GL_TEXTURE_2D, 0, 0, 0, w, h, fmt, typ, a)
        else:
            gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, internal, w, h, 0, fmt, typ, a)
            filt = gl.GL_NEAREST if self.nearest else gl.GL_LINEAR
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, filt)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, filt)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_S, gl.GL_CLAMP_TO_EDGE)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_T, gl.GL_CLAMP_TO_EDGE)
            if channels == 1 and a.dtype == np.uint8:  # show gray as gray, not red
                gl.glTexParameteriv(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_SWIZZLE_RGBA,
                                    np.array([gl.GL_RED, gl.GL_RED, gl.GL_RED, gl.GL_ONE], dtype=np.int32))
            self.shape, self.dtype = a.shape, a.dtype
        gl.glBindTexture(gl.GL_TEXTURE_2D, 0)
        self.version += 1

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the last upload, (0, 0) before any."""
        return (0, 0) if self.shape is None else (self.shape[1], self.shape[0])

    def bind(self, unit: int = 0) -> None:
        gl.glActiveTexture(gl.GL_TEXTURE0 + unit)
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.handle)

    def delete(self) -> None:
        gl.glDeleteTextures([self.handle])


class Framebuffer:
    """An offscreen RGBA8 colour texture (+ optional depth buffer) to draw into and show with ``imgui.image``."""

    def __init__(self, width: int, height: int, depth: bool = False):
        self.depth = depth
        self.handle = int(gl.glGenFramebuffers(1))
        self.color = int(gl.glGenTextures(1))
        self.depth_rb = int(gl.glGenRenderbuffers(1)) if depth else 0
        self.width = self.height = 0
        self.resize(width, height)

    def resize(self, width: int, height: int) -> None:
        width, height = max(1, int(width)), max(1, int(height))
        if (width, height) == (self.width, self.height):
            return
        self.width, self.height = width, height
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.color)
        gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGBA8, width, height, 0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, None)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, gl.GL_LINEAR)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_LINEAR)
        gl.glBindTexture(gl.GL_TEXTURE_2D, 0)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.handle)
        gl.glFramebufferTexture2D(gl.GL_FRAMEBUFFER, gl.GL_COLOR_ATTACHMENT0, gl.GL_TEXTURE_2D, self.color, 0)
        if self.depth:
            gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, self.depth_rb)
            gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, gl.GL_DEPTH24_STENCIL8, width, height)
            gl.glFramebufferRenderbuffer(gl.GL_FRAMEBUFFER, gl.GL_DEPTH_STENCIL_ATTACHMENT, gl.GL_RENDERBUFFER,
                                         self.depth_rb)
        status = gl.glCheckFramebufferStatus(gl.GL_FRAMEBUFFER)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
        if status != gl.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"framebuffer incomplete (status 0x{int(status):x})")

    def bind(self) -> None:
        """Draw into this framebuffer (full viewport, no scissor or blending left over from the UI pass)."""
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.handle)
        gl.glViewport(0, 0, self.width, self.height)
        gl.glDisable(gl.GL_SCISSOR_TEST)
        gl.glDisable(gl.GL_BLEND)

    def read(self) -> np.ndarray:
        """The colour attachment as an upright uint8 image.  # [H, W, 3]"""
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.handle)
        gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
        data = gl.glReadPixels(0, 0, self.width, self.height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
        return np.frombuffer(data, np.uint8).reshape(self.height, self.width, 3)[::-1].copy()

    def delete(self) -> None:
        gl.glDeleteFramebuffers(1, [self.handle])
        gl.glDeleteTextures([self.color])
        if self.depth_rb:
            gl.glDeleteRenderbuffers(1, [self.depth_rb])


def unbind_framebuffer(width: int, height: int) -> None:
    """Back to the window's framebuffer with a full-window viewport."""
    gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
    gl.glViewport(0, 0, width, height)


def read_window(width: int, height: int) -> np.ndarray:
    """The window's back buffer (call before swapping) as an upright uint8 image.  # [H, W, 3]"""
    gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
    gl.glReadBuffer(gl.GL_BACK)
    gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
    data = gl.glReadPixels(0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
    return np.frombuffer(data, np.uint8).reshape(height, width, 3)[::-1].copy()


class FullscreenTriangle:
    """One triangle covering the viewport; the vertex shader derives positions from ``gl_VertexID``
    (a core profile still needs a bound VAO)."""

    def __init__(self):
        self.vao = int(gl.glGenVertexArrays(1))

    def draw(self) -> None:
        gl.glBindVertexArray(self.vao)
        gl.glDrawArrays(gl.GL_TRIANGLES, 0, 3)
        gl.glBindVertexArray(0)

    def delete(self) -> None:
        gl.glDeleteVertexArrays(1, [self.vao])


class IndexedMesh:
    """Triangle mesh on the GPU: float32 attributes (location i = i-th array) and a uint32 index buffer."""

    def __init__(self, attributes: list[np.ndarray], faces: np.ndarray):
        self.vao = int(gl.glGenVertexArrays(1))
        gl.glBindVertexArray(self.vao)
        self.buffers = []
        for loc, attr in enumerate(attributes):
            a = np.ascontiguousarray(attr, dtype=np.float32)
            vbo = int(gl.glGenBuffers(1))
            gl.glBindBuffer(gl.GL_ARRAY_BUFFER, vbo)
            gl.glBufferData(gl.GL_ARRAY_BUFFER, a.nbytes, a, gl.GL_STATIC_DRAW)
            gl.glEnableVertexAttribArray(loc)
            gl.glVertexAttribPointer(loc, a.shape[1], gl.GL_FLOAT, gl.GL_FALSE, 0, ctypes.c_void_p(0))
            self.buffers.append(vbo)
        idx = np.ascontiguousarray(faces, dtype=np.uint32).reshape(-1)
        ebo = int(gl.glGenBuffers(1))
        gl.glBindBuffer(gl.GL_ELEMENT_ARRAY_BUFFER, ebo)
        gl.glBufferData(gl.GL_ELEMENT_ARRAY_BUFFER, idx.nbytes, idx, gl.GL_STATIC_DRAW)
        self.buffers.append(ebo)
        self.count = idx.size
        gl.glBindVertexArray(0)

    def draw(self) -> None:
        gl.glBindVertexArray(self.vao)
        gl.glDrawElements(gl.GL_TRIANGLES, self.count, gl.GL_UNSIGNED_INT, ctypes.c_void_p(0))
        gl.glBindVertexArray(0)

    def delete(self) -> None:
        gl.glDeleteBuffers(len(self.buffers), self.buffers)
        gl.glDeleteVertexArrays(1, [self.vao])

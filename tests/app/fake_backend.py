"""A deterministic render backend for the app tests: analytic patterns instead of a network.

It implements the real :class:`app.requests.Backend` interface, so the viewer, the async renderer and the panes run
unchanged; only the pixels are synthetic: a shaded sphere whose highlight follows the camera, a background gradient
coloured by the seed, a depth map of the sphere, and a 4x smaller "raw" image. Used only by tests.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from app.requests import BranchResult, ModelInfo, RenderRequest, depth_range

SIZE = 64  # output side; the raw image and depth have the requested neural resolution (default SIZE // 4)


def _sphere(yaw: float, pitch: float, n: int, tint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB float [n, n, 3] in [0, 1] and depth [n, n] of a unit sphere lit from the camera's side."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    u, v = (x + 0.5) / n * 2 - 1, (y + 0.5) / n * 2 - 1
    r2 = u * u + v * v
    inside = r2 < 0.64
    z = np.sqrt(np.clip(0.64 - r2, 0, None)) / 0.8
    light = np.array([np.sin(yaw), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)], np.float32)
    normal = np.stack([u / 0.8, v / 0.8, z], -1)
    shade = np.clip(normal @ light, 0, 1)[..., None]
    bg = np.stack([u * 0 + 0.2, (v + 1) / 4, u * 0 + 0.3], -1) * tint
    rgb = np.where(inside[..., None], 0.15 + 0.85 * shade * tint, bg)
    depth = np.where(inside, 2.7 - z * 0.8, 3.3).astype(np.float32)
    return rgb, depth


class FakeBackend:
    """``branches`` to report; ``delay_s`` per render; ``fail`` = branches whose render raises."""

    def __init__(self, branches=("sr2d", "direct3d", "student"), delay_s: float = 0.0, fail=(), num_ws: int = 14):
        self.info = ModelInfo(name="fake-model", branches=tuple(branches), num_ws=num_ws, img_resolution=SIZE,
                              neural_resolution=SIZE // 4, depth_samples=12, importance_samples=12, radius=2.7,
                              pivot=(0.0, 0.0, 0.2), device="cpu")
        self.precision = "fp32"
        self.delay_s = delay_s
        self.fail = set(fail)
        self.calls: list[tuple[RenderRequest, str]] = []
        self.rendering = threading.Event()   # set while a render is in progress (tests synchronise on it)

    def render(self, request: RenderRequest, branch: str) -> BranchResult:
        self.rendering.set()
        try:
            self.calls.append((request, branch))
            if self.delay_s:
                time.sleep(self.delay_s)
            if branch in self.fail:
                raise RuntimeError(f"{branch} exploded (test)")
            lat, cam = request.latent, request.camera
            rng = np.random.RandomState(lat.seed % (2**31))
            tint = 0.5 + 0.5 * rng.rand(3).astype(np.float32)
            tint = tint * (1 - lat.interp_t) + np.float32([1.0, 0.6, 0.3]) * lat.interp_t
            rgb, depth = _sphere(cam.yaw, cam.pitch, SIZE, tint)
            if branch == "student":
                rgb = rgb[..., ::-1]  # tell the branches apart
            raw_n = request.resolution or SIZE // 4
            raw, raw_depth = _sphere(cam.yaw, cam.pitch, raw_n, tint)
            res = BranchResult(branch=branch, request=request, image=(rgb * 255).astype(np.uint8),
                               raw=(raw * 255).astype(np.uint8), render_ms=12.0)
            if branch != "student":  # the student has no depth output
                res.depth, res.depth_range = raw_depth, depth_range(raw_depth)
            return res
        finally:
            self.rendering.clear()

    def memory(self) -> str:
        return "fake"

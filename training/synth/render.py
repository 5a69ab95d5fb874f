"""Ray tracer of the synthetic dataset: unions of ellipsoids, shaded, antialiased, vectorised over pixels.

Rays are :func:`core.rendering.make_rays` of each image's camera (pixel-centre rays of the ``ssaa``-times finer
grid), so the images follow exactly the camera convention the generator renders with.

Intersection: a ray ``o + t d`` (|d| = 1, so t is the Euclidean distance) meets the ellipsoid
``(p - c)^T M (p - c) = 1`` (M = R diag(1/r^2) R^T) where ``a t^2 - 2 b t + q = 0`` with ``a = d^T M d``,
``b = d^T g``, ``g = M (c - o)``, ``q = (c - o)^T M (c - o) - 1``: ``t = (b - sqrt(b^2 - a q)) / a`` (the camera is
outside every ellipsoid and in front of none, which is checked). Spheres use a = 1. The surface normal is
``t M d - g``. The nearest hit over the object's ellipsoids is its union.

Speed: the image is cut into tiles of ``TILE`` x ``TILE`` rays; an ellipsoid is tested only on tiles whose ray cone
(bounded by the corner rays, the extreme directions of a tile) meets its bounding sphere, and shading runs on the
rays that hit. Per-image constants are prepared in float64 numpy; per-ray work uses only IEEE-exact float32
operations (+, -, *, /, sqrt, comparisons, floor) whose formula is fixed per slot kind (``SLOT_KIND``), so every
pixel is bit-identical whatever the batch size, thread count or tiling decisions.

Shading (linear light, then gamma 2 by a square root): albedo (with optional stripes along world y) x (ambient +
key light + headlight + back rim light) + a Blinn specular highlight of the key light (exponent 32). The key and rim
lights lie in the x = 0 plane, so mirrored scenes shade exactly as mirrored images. No shadows. Background: a
vertical gradient in image space, or white. Antialiasing: the mean of ``ssaa`` x ``ssaa`` sub-rays per pixel.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from core.cameras import Camera
from core.files.dataset import DatasetError
from core.rendering import make_rays

from .objects import K, SLOT_KIND, SLOTS, Objects

KEY_LIGHT = np.array([0.0, 0.55, 0.835]) / np.linalg.norm([0.0, 0.55, 0.835])
RIM_LIGHT = np.array([0.0, 0.45, -0.89]) / np.linalg.norm([0.0, 0.45, -0.89])
SHININESS_SQUARINGS = 5   # specular exponent 2**5 = 32 by repeated squaring (exact)
TILE = 16                 # rays per tile side
CULL_MARGIN = 2e-3        # radians added to the tile-cone test (keeps culling conservative)
CHUNK = 16384             # rays per vectorised step (temporaries stay in cache)
_KINDS = [SLOT_KIND[s] for s in SLOTS]


def _f32(x: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a . b over the last axis in a fixed order (numpy reductions may vectorise differently per shape)."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


class _Tables:
    """Per (image, slot) constants, float32 [C, B*K] (row ``b * K + k``): M (6 unique entries), g, q; and for
    culling (float64) the direction and angular radius of each bounding sphere seen from the camera."""

    def __init__(self, objects: Objects, origins: np.ndarray):
        b = objects.batch
        present = objects.present
        for k, kind in enumerate(_KINDS):
            r = objects.radii[:, k][present[:, k]]
            rot = objects.rot[:, k][present[:, k]]
            if kind == "sphere" and (np.abs(r - r[:, :1]) > 1e-12).any():
                raise DatasetError(f"synthetic object slot {SLOTS[k]!r} must be a sphere")
            if kind in ("sphere", "axis") and (np.abs(rot - np.eye(3)) > 1e-12).any():
                raise DatasetError(f"synthetic object slot {SLOTS[k]!r} must be axis-aligned")
        w = objects.centers - origins[:, None, :]  # [B, K, 3] camera -> centre
        inv_r2 = 1.0 / objects.radii ** 2
        rot = objects.rot
        m = np.stack([np.stack([_dot3(rot[..., i, :] * inv_r2, rot[..., l, :]) for l in range(3)], -1)
                      for i in range(3)], -2)  # R diag(1/r^2) R^T  [B, K, 3, 3]
        sphere = np.array([kind == "sphere" for kind in _KINDS])
        m = np.where(sphere[None, :, None, None], np.eye(3), m)  # spheres: a = |d|^2 = 1, normal t d - w
        g = np.stack([_dot3(m[..., i, :], w) for i in range(3)], -1)  # [B, K, 3]
        q = np.where(sphere[None], _dot3(w, w) - objects.radii[..., 0] ** 2, _dot3(w, g) - 1.0)  # [B, K]
        dist = np.sqrt(_dot3(w, w))
        rho = objects.radii.max(-1)
        ok = ~present | ((q > 0) & (dist > rho * 1.0001))
        if not ok.all():
            raise DatasetError("a camera is inside or too close to a synthetic object")
        self.present = present
        self.m6 = _f32(np.stack([m[..., 0, 0], m[..., 1, 1], m[..., 2, 2], 2 * m[..., 0, 1], 2 * m[..., 0, 2],
                                 2 * m[..., 1, 2]]).reshape(6, b * K))  # [6, B*K] for the intersection
        self.msym = _f32(np.stack([m[..., 0, 0], m[..., 0, 1], m[..., 0, 2], m[..., 1, 1], m[..., 1, 2],
                                   m[..., 2, 2]]).reshape(6, b * K))  # [6, B*K] for normals
        self.g = _f32(np.moveaxis(g, -1, 0).reshape(3, b * K))
        self.q = _f32(q.reshape(b * K))
        # float64 copies for the depth output (see _exact_depth)
        self.m64 = torch.from_numpy(np.ascontiguousarray(m.reshape(b * K, 9)))
        self.g64 = torch.from_numpy(np.ascontiguousarray(g.reshape(b * K, 3)))
        self.q64 = torch.from_numpy(np.ascontiguousarray(q.reshape(b * K)))
        # culling (float64): direction and angular radius of each bounding sphere seen from the camera
        self.w_dir = torch.from_numpy(w / dist[..., None])  # [B, K, 3]
        self.ang = torch.from_numpy(np.arcsin(np.clip(rho / dist, 0.0, 1.0)))  # [B, K]


class _Tiles:
    """Rays of a batch in tile-major order: dirs [3, NT, P] with P = T*T rays per tile."""

    def __init__(self, camera: Camera, resolution: int):
        b = camera.batch
        t = next(s for s in (TILE, 8, 4, 2, 1) if resolution % s == 0)
        n = resolution // t
        dirs = torch.cat([make_rays(camera.cam2world[i:i + 1], camera.intrinsics[i:i + 1], resolution)[1]
                          for i in range(b)])  # [B, R*R, 3], one image at a time (never depends on the batch)
        d = dirs.reshape(b, n, t, n, t, 3).permute(5, 0, 1, 3, 2, 4)  # [3, B, ty, tx, T, T]
        self.dirs = d.reshape(3, b * n * n, t * t).contiguous()  # [3, NT, P]
        self.b, self.n, self.t, self.resolution = b, n, t, resolution
        self.image = torch.arange(b).repeat_interleave(n * n)  # [NT] image of each tile
        corners = self.dirs[:, :, [0, t - 1, t * t - t, t * t - 1]].double()  # [3, NT, 4]
        axis = corners.sum(-1)
        axis = axis / axis.norm(dim=0, keepdim=True)  # [3, NT]
        cos = (corners * axis[:, :, None]).sum(0).min(-1).values.clamp(-1, 1)  # [NT]
        self.axis = axis.T.contiguous()  # [NT, 3]
        self.half = torch.arccos(cos)  # [NT] half-angle of each tile's ray cone

    def to_image(self, x: Tensor) -> Tensor:
        """[C, NT, P] tile-major -> [C, B, R, R]."""
        c, n, t = x.shape[0], self.n, self.t
        return x.reshape(c, self.b, n, n, t, t).permute(0, 1, 2, 4, 3, 5).reshape(c, self.b, self.resolution,
                                                                                  self.resolution)


def _intersect(tab: _Tables, tiles: _Tiles) -> tuple[Tensor, Tensor]:
    """Nearest hit per ray: t [NT, P] (inf: miss) and its slot [NT, P]."""
    nt, p = tiles.dirs.shape[1:]
    t_best = torch.full((nt, p), math.inf)
    slot = torch.zeros((nt, p), dtype=torch.int64)
    present = torch.from_numpy(tab.present)  # [B, K]
    img = tiles.image
    step = max(1, CHUNK // p)
    for k, kind in enumerate(_KINDS):
        if not tab.present[:, k].any():
            continue
        cos_w = (tiles.axis * tab.w_dir[img, k]).sum(-1).clamp(-1, 1)  # [NT]
        mask = present[img, k] & (torch.arccos(cos_w) <= tiles.half + tab.ang[img, k] + CULL_MARGIN)
        selected = torch.nonzero(mask)[:, 0]
        for start in range(0, selected.numel(), step):  # chunks that stay in cache
            idx = selected[start:start + step]
            dx, dy, dz = tiles.dirs[:, idx]  # [n, P] each
            row = img[idx] * K + k  # [n] table row per selected tile
            g = tab.g[:, row, None]  # [3, n, 1]
            q = tab.q[row, None]
            b = dx * g[0] + dy * g[1] + dz * g[2]
            if kind == "sphere":
                t = b - (b * b - q).sqrt()  # NaN where the ray misses
            else:
                m = tab.m6[:, row, None]  # [6, n, 1]
                if kind == "axis":
                    a = dx * dx * m[0] + dy * dy * m[1] + dz * dz * m[2]
                else:
                    a = dx * (dx * m[0] + dy * m[3] + dz * m[4]) + dy * (dy * m[1] + dz * m[5]) + dz * dz * m[2]
                t = (b - (b * b - a * q).sqrt()) / a
            tb = t_best[idx]
            better = t < tb  # False for NaN
            t_best[idx] = torch.where(better, t, tb)
            slot[idx] = torch.where(better, torch.tensor(k), slot[idx])
    return t_best, slot


def _shade(objects: Objects, tab: _Tables, tiles: _Tiles, origins: Tensor, t: Tensor, slot: Tensor,
           hit_idx: Tensor) -> Tensor:
    """Linear RGB [3, n] of the hit rays ``hit_idx`` (indices into the flattened [NT * P])."""
    p = t.shape[1]
    t_flat, slot_flat = t.reshape(-1), slot.reshape(-1)
    dirs = tiles.dirs.reshape(3, -1)
    albedo_tab = _f32(objects.albedo.reshape(-1, 3).T)  # [3, B*K]
    stripe_tab = _f32(np.stack([objects.stripe_amp.reshape(-1), objects.stripe_freq.reshape(-1)]))  # [2, B*K]
    image_tab = torch.cat([_f32(objects.lights.T), _f32(objects.specular[None]), origins[:, 1][None],
                           _f32(objects.center[:, 1][None])])  # [7, B]: 4 light weights, specular, o_y, centre_y
    kx, ky, kz = (float(v) for v in KEY_LIGHT)
    rx, ry, rz = (float(v) for v in RIM_LIGHT)
    out = torch.empty(3, hit_idx.numel())
    for start in range(0, hit_idx.numel(), CHUNK):
        hit = hit_idx[start:start + CHUNK]
        th = t_flat[hit]  # [n]
        img = tiles.image[hit // p]
        row = img * K + slot_flat[hit]
        dx, dy, dz = dirs[:, hit]
        m, g = tab.msym[:, row], tab.g[:, row]  # [6, n], [3, n]
        per_image = image_tab[:, img]  # [7, n]
        # normal ~ t M d - g
        nx = th * (m[0] * dx + m[1] * dy + m[2] * dz) - g[0]
        ny = th * (m[1] * dx + m[3] * dy + m[4] * dz) - g[1]
        nz = th * (m[2] * dx + m[4] * dy + m[5] * dz) - g[2]
        inv = 1.0 / (nx * nx + ny * ny + nz * nz).clamp_min(1e-30).sqrt()
        nx, ny, nz = nx * inv, ny * inv, nz * inv
        key = (nx * kx + ny * ky + nz * kz).clamp_min(0)
        head = (nx * dx + ny * dy + nz * dz).neg_().clamp_min(0)
        rim = (nx * rx + ny * ry + nz * rz).clamp_min(0)
        diffuse = per_image[0] + per_image[1] * key + per_image[2] * head + per_image[3] * rim
        hx, hy, hz = kx - dx, ky - dy, kz - dz
        spec = ((nx * hx + ny * hy + nz * hz) / (hx * hx + hy * hy + hz * hz).sqrt()).clamp_min(0)
        for _ in range(SHININESS_SQUARINGS):
            spec = spec * spec
        spec = spec * per_image[4]
        stripes = stripe_tab[:, row]  # amplitude, frequency along world y
        s = (per_image[5] + th * dy - per_image[6]) * stripes[1]
        tri = (s - (s + 0.5).floor()).abs() * 2.0  # triangle wave in [0, 1]
        shade = (1.0 - stripes[0] * tri) * diffuse
        out[:, start:start + hit.numel()] = albedo_tab[:, row] * shade + spec
    return out


def _exact_depth(tab: _Tables, tiles: _Tiles, t: Tensor, slot: Tensor) -> Tensor:
    """Depth [NT, P]: the hit found in float32 recomputed in float64 for its ellipsoid (float32 loses up to ~2e-4
    at grazing angles to cancellation in b^2 - a q); 0 where the ray misses."""
    p = t.shape[1]
    hit = torch.nonzero(torch.isfinite(t).reshape(-1))[:, 0]
    row = tiles.image[hit // p] * K + slot.reshape(-1)[hit]
    d = tiles.dirs.reshape(3, -1)[:, hit].double()  # [3, n]
    m, g, q = tab.m64[row].T, tab.g64[row].T, tab.q64[row]  # [9, n], [3, n], [n]
    md = [m[3 * i] * d[0] + m[3 * i + 1] * d[1] + m[3 * i + 2] * d[2] for i in range(3)]
    a = d[0] * md[0] + d[1] * md[1] + d[2] * md[2]
    b = d[0] * g[0] + d[1] * g[1] + d[2] * g[2]
    exact = (b - (b * b - a * q).clamp_min(0).sqrt()) / a
    out = torch.zeros(t.numel())
    out[hit] = exact.to(torch.float32)
    return out.reshape(t.shape)


def trace(objects: Objects, camera: Camera, resolution: int) -> tuple[_Tables, _Tiles, Tensor, Tensor, Tensor]:
    """Intersections of every pixel-centre ray of a ``resolution``-square grid: tables, tiles, origins, t, slot."""
    origins = camera.cam2world[:, :3, 3].clone()  # [B, 3]
    tab = _Tables(objects, origins.double().numpy())
    tiles = _Tiles(camera, resolution)
    t, slot = _intersect(tab, tiles)
    return tab, tiles, origins, t, slot


@torch.no_grad()
def render(objects: Objects, camera: Camera, resolution: int, ssaa: int = 2, white_back: bool = False,
           depth: bool = False) -> dict[str, np.ndarray]:
    """Ray-trace a batch. Returns ``image`` uint8 [B, R, R, 3], ``coverage`` float32 [B, R, R] (fraction of
    sub-rays that hit) and with ``depth=True`` ``depth`` float32 [B, R, R] (pixel-centre rays; 0 = miss)."""
    if ssaa < 1:
        raise DatasetError(f"ssaa must be >= 1, got {ssaa}")
    if objects.batch != camera.batch:
        raise DatasetError(f"{objects.batch} objects but {camera.batch} cameras")
    b, s = camera.batch, ssaa
    rs = resolution * s
    tab, tiles, origins, t, slot = trace(objects, camera, rs)
    hit = torch.isfinite(t)  # [NT, P]
    hit_idx = torch.nonzero(hit.reshape(-1))[:, 0]
    colour = torch.zeros(3, t.numel())
    colour[:, hit_idx] = _shade(objects, tab, tiles, origins, t, slot, hit_idx)
    colour = tiles.to_image(colour.reshape(3, *t.shape))  # [3, B, rs, rs]
    hit_img = tiles.to_image(hit[None])[0]  # [B, rs, rs]
    if white_back:
        back = torch.ones(3, b, rs, 1)
    else:
        bg = _f32(objects.background)  # [B, 2, 3]
        v = (torch.arange(rs, dtype=torch.float32) + 0.5) / rs  # row position
        top, bottom = bg[:, 0].T[:, :, None, None], bg[:, 1].T[:, :, None, None]  # [3, B, 1, 1]
        back = top + (bottom - top) * v[:, None]  # [3, B, rs, 1]
    img = torch.where(hit_img, colour, back).clamp(0.0, 1.0).sqrt()  # gamma 2
    img = img.reshape(3, b, resolution, s, resolution, s)
    cov = hit_img.to(torch.float32).reshape(b, resolution, s, resolution, s)
    acc, c_acc = img[:, :, :, 0, :, 0], cov[:, :, 0, :, 0]
    for i in range(s):  # fixed summation order
        for j in range(s):
            if i or j:
                acc = acc + img[:, :, :, i, :, j]
                c_acc = c_acc + cov[:, :, i, :, j]
    img = acc * (1.0 / (s * s))
    out = {"image": (img * 255.0 + 0.5).floor().clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0).numpy(),
           "coverage": (c_acc * (1.0 / (s * s))).numpy()}
    if depth:
        if s > 1:
            tab, tiles, _, t, slot = trace(objects, camera, resolution)
        out["depth"] = tiles.to_image(_exact_depth(tab, tiles, t, slot)[None])[0].numpy()
    return out

"""Coloured meshes and density volumes from a tri-plane radiance field (EG3D ``gen_samples.py --shapes``, Chan et al.
2022 Sec. 5 "shapes"; ``NVlabs/eg3d: eg3d/gen_samples.py``).

1. Density: raw sigma (before softplus) on an N^3 grid spanning the tri-plane cube [-box_warp/2, box_warp/2]^3
   (origin -box_warp/2, voxel box_warp/(N-1)), queried in x-slabs of at most ``chunk`` points (bounded memory).
2. Border: as EG3D, the outer int(30 N / 256) voxels on every face are set to -1000, which closes the surface
   where the field is cut by the box (``border="eg3d"``; or a voxel count, or 0 for none).
3. Surface: marching cubes (scikit-image) at the iso level (EG3D: 10 on raw sigma; ChimeraX users pick 2-20).
   Vertices are in world coordinates (x, y, z; y up, the EG3D camera frame); unlike EG3D's script the volume is
   neither flipped nor transposed, so the mesh lines up with the rendered images.
4. Colour: for each vertex a short ray starts outside the surface on the normal and looks back along it (the
   direction a camera facing the surface would see); volume rendering of the radiance field's first three
   feature channels along it, divided by the accumulated opacity, gives the vertex colour.

Which tri-planes: ``source="sr2d"`` the coarse planes the EG3D branch renders, ``"direct3d"`` Mimic3D's coarse +
detail planes, ``"auto"`` the finest the model has. The student branch has no 3D field.

Example::

    mesh = extract_mesh(model, ws, resolution=256, level=10.0)
    save_mesh(mesh, "head.ply")
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .. import rendering
from ..errors import TridentError
from ..files.atomic import atomic_output
from ..model import Model
from .progress import CancelFlag, ProgressFn, check_cancel, report

__all__ = ["MeshError", "Mesh", "Volume", "ModelField", "model_field", "density_volume", "field_volume", "mesh_from_volume", "extract_mesh",
           "save_mesh", "save_mrc", "read_mrc", "MESH_FORMATS", "EG3D_BORDER_VALUE", "eg3d_border"]

MESH_FORMATS = (".ply", ".obj", ".glb")
EG3D_BORDER_VALUE = -1000.0

DensityFn = Callable[[Tensor], Tensor]                 # points [M, 3] -> raw density [M]
ColorFn = Callable[[Tensor, Tensor], Tensor]           # ray origins, dirs [M, 3] -> rgb in [0, 1] [M, 3]


class MeshError(TridentError):
    """A mesh request that cannot be met (no surface at that level, bad size, no density field, bad file)."""


@dataclass
class Volume:
    """Raw density on a grid: data[i, j, k] at (origin + i*voxel, origin + j*voxel, origin + k*voxel) in x, y, z."""

    data: np.ndarray          # float32 [N, N, N], indexed [x, y, z]
    origin: float             # world coordinate of voxel 0 on every axis
    voxel_size: float

    @property
    def resolution(self) -> int:
        return self.data.shape[0]


@dataclass
class Mesh:
    vertices: np.ndarray            # float32 [V, 3], world coordinates
    faces: np.ndarray               # int64 [F, 3], counter-clockwise seen from outside
    normals: np.ndarray             # float32 [V, 3], unit, pointing out of the object
    colors: np.ndarray | None = None  # uint8 [V, 3]


def eg3d_border(resolution: int) -> int:
    """EG3D's border width in voxels: int(30 N / 256)."""
    return int(30 * resolution / 256)


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or not 8 <= resolution <= 1024:
        raise MeshError(f"grid resolution must be 8..1024, got {resolution}")


def field_volume(density: DensityFn, resolution: int, box: float, chunk: int = 2 ** 18,
                 progress: ProgressFn | None = None, cancel: CancelFlag = None,
                 device: str | torch.device = "cpu") -> Volume:
    """Sample ``density`` on an N^3 grid over [-box/2, box/2]^3, slab by slab (at most ``chunk`` points a call)."""
    _check_resolution(resolution)
    n = resolution
    axis = torch.linspace(-box / 2, box / 2, n, device=device)
    out = np.empty((n, n, n), np.float32)
    slabs = max(1, chunk // (n * n))
    yz = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(1, n * n, 2)   # [1, N*N, (y, z)]
    for i0 in range(0, n, slabs):
        check_cancel(cancel)
        xs = axis[i0:i0 + slabs]
        pts = torch.cat([xs.view(-1, 1, 1).expand(-1, n * n, 1), yz.expand(len(xs), -1, -1)], -1)  # [s, N*N, 3]
        with torch.no_grad():
            sigma = density(pts.reshape(-1, 3))
        out[i0:i0 + len(xs)] = sigma.reshape(len(xs), n, n).float().cpu().numpy()
        report(progress, "density", min(n, i0 + slabs), n)
    return Volume(out, -box / 2, box / (n - 1))


def _planes(model: Model, ws: Tensor, source: str):
    if source == "auto":
        source = "direct3d" if "direct3d" in model.branches else "sr2d"
    if source == "direct3d":
        if "direct3d" not in model.branches:
            raise MeshError("this model has no direct3d branch (detail tri-planes)")
        return model.triplanes(ws)[:2]   # coarse + detail: their sampled features are summed
    if source == "sr2d":
        return model.triplanes(ws)[0]
    raise MeshError(f"{source!r} has no 3D density field (mesh sources: auto, sr2d, direct3d)")


@dataclass
class ModelField:
    """A latent's tri-plane field (planes computed once): ``density(points [M, 3]) -> raw sigma [M]`` and
    ``color(origins, dirs [M, 3], length) -> rgb in [0, 1] [M, 3]`` (volume rendering of the first three feature
    channels along each ray, normalised by its opacity); ``box`` is the side of the cube the planes span."""

    density: DensityFn
    color: Callable[[Tensor, Tensor, float], Tensor]
    box: float
    device: torch.device

    def volume(self, resolution: int, chunk: int = 2 ** 18, progress: ProgressFn | None = None,
               cancel: CancelFlag = None) -> Volume:
        return field_volume(self.density, resolution, self.box, chunk, progress, cancel, self.device)


def model_field(model: Model, ws: Tensor, source: str = "auto", chunk: int = 2 ** 18) -> ModelField:
    """The density/colour field of ws [1, num_ws, w_dim] (``source``: auto, sr2d or direct3d tri-planes)."""
    G = model.G
    if ws.ndim != 3 or ws.shape[0] != 1 or tuple(ws.shape[1:]) != (model.num_ws, model.w_dim):
        raise MeshError(f"ws must be [1, {model.num_ws}, {model.w_dim}], got {tuple(ws.shape)}")
    with torch.no_grad():
        planes = _planes(model, ws.to(model.device), source)
    r = G.cfg.rendering

    def density(points: Tensor) -> Tensor:
        return G.query_density(planes, points.to(model.device)[None], chunk=chunk)["sigma"][0, :, 0]

    def color(origins: Tensor, dirs: Tensor, length: float, samples: int = 12) -> Tensor:
        cfg = rendering.RayConfig(ray_start=0.0, ray_end=float(length), depth_resolution=samples,
                                  depth_resolution_importance=samples, box_warp=r.box_warp, white_back=False,
                                  plane_convention=r.plane_convention)
        with torch.no_grad():
            feats, _, acc = rendering.render_rays(planes, G.decoder, origins.to(model.device)[None],
                                                  dirs.to(model.device)[None], cfg, deterministic=True,
                                                  chunk=max(1, chunk // (2 * samples)))
            # composited colour sum_i w_i c_i over the accumulated weight sum_i w_i: the colour of what the ray
            # sees, independent of how opaque the field is at the chosen level (black background excluded);
            # where the ray sees (almost) nothing, the radiance at the vertex itself
            rgb, acc = (feats[0, :, :3] + 1) / 2, acc[0]
            seen = acc[:, 0] > 1e-4
            out = rgb / acc.clamp_min(1e-4)
            if not bool(seen.all()):
                mid = (origins + 0.5 * length * dirs).to(model.device)[~seen.cpu()]
                out[~seen] = G.sample_planes(planes, mid[None])["rgb"][0, :, :3]
        return out.clamp(0, 1)

    return ModelField(density, color, float(r.box_warp), model.device)


def density_volume(model: Model, ws: Tensor, resolution: int = 256, source: str = "auto", chunk: int = 2 ** 18,
                   progress: ProgressFn | None = None, cancel: CancelFlag = None) -> Volume:
    """Raw density of the model's tri-plane field for ws [1, num_ws, w_dim] on an N^3 grid over the box."""
    _check_resolution(resolution)
    return model_field(model, ws, source, chunk).volume(resolution, chunk, progress, cancel)


def _border(vol: np.ndarray, border: str | int) -> np.ndarray:
    width = eg3d_border(vol.shape[0]) if border == "eg3d" else int(border)
    if width < 0 or 2 * width >= vol.shape[0] - 1:
        raise MeshError(f"border of {width} voxels leaves nothing of a {vol.shape[0]}^3 grid")
    if width == 0:
        return vol
    vol = vol.copy()
    vol[:width], vol[-width:] = EG3D_BORDER_VALUE, EG3D_BORDER_VALUE
    vol[:, :width], vol[:, -width:] = EG3D_BORDER_VALUE, EG3D_BORDER_VALUE
    vol[:, :, :width], vol[:, :, -width:] = EG3D_BORDER_VALUE, EG3D_BORDER_VALUE
    return vol


def mesh_from_volume(volume: Volume, level: float, border: str | int = "eg3d", color: Callable | None = None,
                     chunk: int = 2 ** 16, progress: ProgressFn | None = None, cancel: CancelFlag = None) -> Mesh:
    """Marching cubes of ``volume`` at ``level`` (+ vertex colours from ``color(origins, dirs, length)``)."""
    from skimage.measure import marching_cubes

    vol = _border(volume.data, border)
    inner = volume.data if border == 0 else vol[vol != EG3D_BORDER_VALUE]
    lo, hi = float(np.min(inner)), float(np.max(inner))
    if not np.isfinite(level) or not lo < level < hi:
        raise MeshError(f"no surface at level {level:g}: the density in the box ranges from {lo:.4g} to {hi:.4g}")
    check_cancel(cancel)
    verts, faces, normals, _ = marching_cubes(vol, level=level, spacing=(volume.voxel_size,) * 3,
                                              gradient_direction="descent", allow_degenerate=False)
    verts = (verts + volume.origin).astype(np.float32)
    # With "descent" (density higher inside) scikit-image's normals already point outwards, down the gradient.
    normals = (normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    # scikit-image winds faces clockwise seen along the outward normal here: flip to counter-clockwise.
    faces = faces[:, ::-1].astype(np.int64)
    mesh = Mesh(verts, np.ascontiguousarray(faces), normals)
    if color is not None:
        mesh.colors = vertex_colors(color, verts, normals, volume.voxel_size, chunk, progress, cancel)
    return mesh


def vertex_colors(color: Callable, verts: np.ndarray, normals: np.ndarray, voxel: float, chunk: int = 2 ** 16,
                  progress: ProgressFn | None = None, cancel: CancelFlag = None) -> np.ndarray:
    """Colour of each vertex seen along its normal: a ray from v + L n to v - L n (L = 3 voxels)."""
    length = 3 * voxel
    v = torch.from_numpy(verts)
    n = torch.from_numpy(normals)
    out = np.empty((len(verts), 3), np.uint8)
    for i in range(0, len(verts), chunk):
        check_cancel(cancel)
        o = v[i:i + chunk] + length * n[i:i + chunk]
        rgb = color(o, -n[i:i + chunk], 2 * length)
        out[i:i + chunk] = (rgb.float().cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
        report(progress, "colors", min(len(verts), i + chunk), len(verts))
    return out


def extract_mesh(model: Model, ws: Tensor, resolution: int = 256, level: float = 10.0, source: str = "auto",
                 border: str | int = "eg3d", colors: bool = True, chunk: int = 2 ** 18,
                 progress: ProgressFn | None = None, cancel: CancelFlag = None,
                 volume: Volume | None = None) -> Mesh:
    """Mesh of the model's density for ws [1, num_ws, w_dim] (pass a precomputed ``volume`` to try other levels
    without querying the field again). Progress stages: "density" (x-slabs), "colors" (vertex chunks)."""
    _check_resolution(resolution)
    field = model_field(model, ws, source, chunk)
    if volume is None:
        volume = field.volume(resolution, chunk, progress, cancel)
    return mesh_from_volume(volume, level, border, field.color if colors else None, max(1, chunk // 8), progress,
                            cancel)


# ----------------------------------------------------------------------------------------------------------
# files


def save_mesh(mesh: Mesh, path: str | os.PathLike) -> Path:
    """Write PLY (binary, vertex colours + normals), OBJ (``v x y z r g b`` colours, ``vn`` normals) or GLB
    (COLOR_0 / NORMAL attributes) through trimesh; atomically."""
    import trimesh

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in MESH_FORMATS:
        raise MeshError(f"mesh file must end in {', '.join(MESH_FORMATS)}, got {path.name!r}")
    if len(mesh.faces) == 0:
        raise MeshError("the mesh is empty")
    kw = {}
    if mesh.colors is not None:
        kw["vertex_colors"] = np.concatenate([mesh.colors, np.full((len(mesh.colors), 1), 255, np.uint8)], 1)
    tm = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, vertex_normals=mesh.normals, process=False, **kw)
    with atomic_output(path) as tmp:
        tm.export(file_obj=str(tmp), file_type=ext[1:])
    return path


def save_mrc(volume: Volume, path: str | os.PathLike, border: str | int = 0) -> Path:
    """Write the density as an MRC2014 volume (mode 2, float32) for ChimeraX; voxel size and origin in box units,
    x the fastest axis. ``border="eg3d"`` applies EG3D's -1000 border first (as its ``.mrc`` files have)."""
    path = Path(path)
    data = _border(volume.data, border) if border not in (0, "0") else volume.data
    n = data.shape[0]
    zyx = np.ascontiguousarray(data.transpose(2, 1, 0), dtype="<f4")          # sections z, rows y, columns x
    header = bytearray(1024)
    struct.pack_into("<3i", header, 0, n, n, n)                               # NX NY NZ
    struct.pack_into("<i", header, 12, 2)                                     # MODE 2 = float32
    struct.pack_into("<3i", header, 16, 0, 0, 0)                              # NXSTART ...
    struct.pack_into("<3i", header, 28, n, n, n)                              # MX MY MZ
    struct.pack_into("<3f", header, 40, *(volume.voxel_size * n,) * 3)        # cell dimensions
    struct.pack_into("<3f", header, 52, 90.0, 90.0, 90.0)                     # cell angles
    struct.pack_into("<3i", header, 64, 1, 2, 3)                              # MAPC MAPR MAPS
    struct.pack_into("<3f", header, 76, float(zyx.min()), float(zyx.max()), float(zyx.mean()))
    struct.pack_into("<i", header, 88, 1)                                     # ISPG 1: a single volume
    struct.pack_into("<i", header, 108, 20140)                                # NVERSION
    struct.pack_into("<3f", header, 196, *(volume.origin,) * 3)               # ORIGIN
    header[208:212] = b"MAP "
    header[212:216] = bytes([0x44, 0x44, 0x00, 0x00])                         # little-endian machine stamp
    struct.pack_into("<f", header, 216, float(zyx.std()))                     # RMS
    struct.pack_into("<i", header, 220, 1)                                    # one label
    header[224:224 + 80] = b"Trident density (raw sigma)".ljust(80)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(bytes(header))
        f.write(zyx.tobytes())
    return path


def read_mrc(path: str | os.PathLike) -> Volume:
    """Read a mode-2 MRC file written by :func:`save_mrc` (cubic, no extended header) back into a Volume."""
    raw = Path(path).read_bytes()
    if len(raw) < 1024 or raw[208:212] != b"MAP ":
        raise MeshError(f"{path} is not an MRC2014 file")
    nx, ny, nz, mode = struct.unpack_from("<4i", raw, 0)
    ext = struct.unpack_from("<i", raw, 92)[0]
    if mode != 2 or not nx == ny == nz or len(raw) != 1024 + ext + 4 * nx * ny * nz:
        raise MeshError(f"{path}: only cubic float32 MRC volumes are supported")
    cell = struct.unpack_from("<f", raw, 40)[0]
    origin = struct.unpack_from("<f", raw, 196)[0]
    zyx = np.frombuffer(raw, "<f4", offset=1024 + ext).reshape(nz, ny, nx)
    return Volume(np.ascontiguousarray(zyx.transpose(2, 1, 0)), origin, cell / nx)

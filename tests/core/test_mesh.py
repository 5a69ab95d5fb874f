"""core.tools.mesh: analytic sphere (radius within a voxel, outward normals, CCW faces, colours along the normal), EG3D
border, fixture meshes through PLY/OBJ/GLB with vertex colours, MRC volumes, chunking, cancel, bad input."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import trimesh

from core.tools.mesh import (MeshError, density_volume, eg3d_border, extract_mesh, field_volume, mesh_from_volume,
                             model_field, read_mrc, save_mesh, save_mrc)
from core.model import model_from_snapshot
from core.tools.progress import Cancelled

RADIUS = 0.3


def sphere(points: torch.Tensor) -> torch.Tensor:
    return 10 * (RADIUS - points.norm(dim=-1))        # density > 0 inside, level 0 at |p| = RADIUS


def normal_colors(origins, dirs, length):
    return -dirs * 0.5 + 0.5                          # looking back along -n: the colour encodes the normal


@pytest.fixture(scope="module")
def model(eg3d_snapshot, device):
    return model_from_snapshot(eg3d_snapshot, device)


@pytest.fixture(scope="module")
def fixture_mesh(model):
    return extract_mesh(model, model.ws_from_seed(0, 0.7), resolution=32, level=0.5)


def test_sphere_radius_within_a_voxel_and_orientation():
    vol = field_volume(sphere, 48, 1.0, chunk=5000)
    assert vol.data.shape == (48, 48, 48) and vol.origin == -0.5 and vol.voxel_size == pytest.approx(1 / 47)
    mesh = mesh_from_volume(vol, 0.0, border="eg3d", color=normal_colors)
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert np.all(np.abs(r - RADIUS) < vol.voxel_size)
    assert np.abs(r.mean() - RADIUS) < 0.1 * vol.voxel_size
    assert np.all((mesh.normals * mesh.vertices).sum(1) / r > 0.95)            # outward unit normals
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert tm.is_watertight and tm.volume > 0                                   # counter-clockwise from outside
    assert tm.volume == pytest.approx(4 / 3 * np.pi * RADIUS ** 3, rel=0.02)
    expected = (mesh.normals * 0.5 + 0.5) * 255
    assert np.abs(mesh.colors.astype(float) - expected).max() <= 1.0


def test_eg3d_border_closes_a_cut_surface():
    def half_space(p):                                # density above 0 everywhere below y = 0.1: cut by the box
        return 10 * (0.1 - p[:, 1])
    vol = field_volume(half_space, 32, 1.0)
    assert eg3d_border(32) == 3 and eg3d_border(256) == 30 and eg3d_border(512) == 60
    closed = mesh_from_volume(vol, 0.0, border="eg3d")
    open_ = mesh_from_volume(vol, 0.0, border=0)
    assert trimesh.Trimesh(closed.vertices, closed.faces, process=False).is_watertight
    assert not trimesh.Trimesh(open_.vertices, open_.faces, process=False).is_watertight
    inner = (3 - 0.5) / 31 - 0.5                      # the closed box stays inside the border
    assert closed.vertices.min() > inner - 1e-6


def test_fixture_mesh_formats_load_with_vertex_colors(fixture_mesh, tmp_path):
    mesh = fixture_mesh
    assert len(mesh.faces) > 100 and mesh.colors.shape == (len(mesh.vertices), 3) and mesh.colors.dtype == np.uint8
    assert mesh.colors.std() > 0
    assert np.all(np.abs(mesh.vertices) <= 0.5 + 1e-6)                          # inside the tri-plane box
    for ext in ("ply", "obj", "glb"):
        path = save_mesh(mesh, tmp_path / f"m.{ext}")
        loaded = trimesh.load(path, force="mesh", process=False)
        assert loaded.vertices.shape == mesh.vertices.shape and loaded.faces.shape == mesh.faces.shape, ext
        assert loaded.visual.kind == "vertex", ext
        np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-5)
        assert np.abs(loaded.visual.vertex_colors[:, :3].astype(int) - mesh.colors).max() <= 1, ext
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.glb", "m.obj", "m.ply"]


def test_mesh_colors_come_from_the_radiance_field(model):
    """A vertex colour is the composited raw RGB of a ray along the normal (what a camera there sees), normalised by
    the ray's accumulated opacity."""
    ws = model.ws_from_seed(0, 0.7)
    field = model_field(model, ws)
    v = torch.tensor([[0.0, 0.0, 0.3], [0.1, -0.1, 0.2]], device=model.device)
    n = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], device=model.device), dim=-1)
    rgb = field.color(v + 0.05 * n, -n, 0.1)
    assert rgb.shape == (2, 3) and torch.all((rgb >= 0) & (rgb <= 1))
    # the same ray through the generator's renderer (camera at the ray origin) gives the same colour
    from core import rendering
    r = model.G.cfg.rendering
    cfg = rendering.RayConfig(ray_start=0.0, ray_end=0.1, depth_resolution=12, depth_resolution_importance=12,
                              box_warp=r.box_warp, plane_convention=r.plane_convention)
    feats, _, acc = rendering.render_rays(model.G.planes(ws), model.G.decoder, (v + 0.05 * n)[None], -n[None], cfg,
                                          deterministic=True)
    assert torch.all(acc > 1e-3)
    torch.testing.assert_close(rgb, ((feats[0, :, :3] + 1) / 2 / acc[0]).clamp(0, 1), atol=1e-5, rtol=0)


def test_volume_chunking_is_exact_and_mrc_round_trips(model, tmp_path):
    ws = model.ws_from_seed(1)
    a = density_volume(model, ws, 20, chunk=400)          # one x-slab per call
    b = density_volume(model, ws, 20, chunk=2 ** 20)      # the whole grid at once
    np.testing.assert_array_equal(a.data, b.data)
    # a grid point equals a direct density query there
    p = torch.tensor([[a.origin + 3 * a.voxel_size, a.origin + 7 * a.voxel_size, a.origin + 11 * a.voxel_size]],
                     device=model.device)
    want = model.G.query_density(model.G.planes(ws), p[None])["sigma"].item()
    assert a.data[3, 7, 11] == pytest.approx(want, abs=1e-5)
    save_mrc(a, tmp_path / "v.mrc")
    raw = (tmp_path / "v.mrc").read_bytes()
    header = np.frombuffer(raw[:1024], "<i4")
    assert list(header[:4]) == [20, 20, 20, 2] and raw[208:212] == b"MAP " and len(raw) == 1024 + 4 * 20 ** 3
    back = read_mrc(tmp_path / "v.mrc")
    np.testing.assert_array_equal(back.data, a.data)
    assert back.origin == pytest.approx(a.origin) and back.voxel_size == pytest.approx(a.voxel_size)
    # x is the fastest axis in the file (MRC columns)
    assert np.frombuffer(raw[1024:1028], "<f4")[0] == a.data[0, 0, 0]
    assert np.frombuffer(raw[1028:1032], "<f4")[0] == a.data[1, 0, 0]


def test_no_surface_and_bad_settings(model, tmp_path):
    vol = field_volume(sphere, 16, 1.0)
    with pytest.raises(MeshError, match="no surface at level 50"):
        mesh_from_volume(vol, 50.0)
    with pytest.raises(MeshError, match="resolution must be"):
        field_volume(sphere, 4, 1.0)
    with pytest.raises(MeshError, match="border"):
        mesh_from_volume(vol, 0.0, border=8)
    with pytest.raises(MeshError, match="no direct3d branch"):
        density_volume(model, model.ws_from_seed(0), 16, source="direct3d")
    with pytest.raises(MeshError, match="no 3D density"):
        density_volume(model, model.ws_from_seed(0), 16, source="student")
    with pytest.raises(MeshError, match="must end in"):
        save_mesh(mesh_from_volume(vol, 0.0), tmp_path / "m.stl")
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_density_and_colors():
    stop = threading.Event()
    calls = []

    def progress(p):
        calls.append(p.stage)
        if len(calls) == 2:
            stop.set()

    with pytest.raises(Cancelled):
        field_volume(sphere, 32, 1.0, chunk=32 * 32, progress=progress, cancel=stop)
    assert calls == ["density", "density"]
    vol = field_volume(sphere, 24, 1.0)
    with pytest.raises(Cancelled):
        mesh_from_volume(vol, 0.0, color=normal_colors, chunk=100, cancel=lambda: True)

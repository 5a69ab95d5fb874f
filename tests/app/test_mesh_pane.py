"""The mesh pane draws a mesh with the GLSL shading programs (normals, Lambert, matcap), vertex colours on/off,
and orbits with the mouse; checked on an icosphere made here."""
from __future__ import annotations

import numpy as np
import pytest

from app.mesh_view import SHADING, vertex_normals
from tests.app.conftest import assert_matches_golden, settle
from tests.app.fake_backend import FakeBackend
from tests.app.meshes import height_colors, icosphere
from tests.app.test_viewer_fake import drag, open_fake


def test_vertex_normals_of_a_sphere_point_outwards():
    v, f = icosphere(2, radius=1.0, center=(0, 0, 0))
    n = vertex_normals(v, f)
    assert np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-5)
    assert (np.sum(n * v, axis=1) > 0.98).all()


def test_mesh_pane_draws_and_shades_a_mesh(make_viewer):
    v, _ = open_fake(make_viewer, FakeBackend(branches=("sr2d",)))
    settle(v)
    verts, faces = icosphere(3)
    mv = v.ensure_mesh_view()
    mv.set_mesh(verts, faces, colors=height_colors(verts))
    v.step()
    assert v.pane_names() == ["sr2d", "mesh"] and mv.n_faces == 20 * 4 ** 3
    images = {}
    for shading in SHADING:
        mv.shading = shading
        v.step()
        images[shading] = mv.read()
    img = images["lambert"]
    background = img[2, 2].astype(int)
    covered = np.abs(img.astype(int) - background).sum(-1) > 30
    h, w = covered.shape
    assert covered[h // 2, w // 2] and not covered[2, 2]
    assert 0.15 < covered.mean() < 0.8   # a sphere filling part of the pane
    for a in SHADING:
        for b in SHADING:
            if a < b:
                assert np.abs(images[a].astype(int) - images[b].astype(int)).mean() > 3, (a, b)
    mv.shading = "matcap"
    mv.use_colors = False
    v.step()
    assert np.abs(mv.read().astype(int) - images["matcap"].astype(int)).mean() > 3  # colours off changes it
    assert_matches_golden(mv.read(), "icosphere_matcap")
    mv.use_colors = True
    mv.shading = "lambert"
    v.step()
    # Vertex colours: red at the bottom, blue at the top (y up in the pane).
    col = img[:, w // 2].astype(int)
    rows = np.nonzero(covered[:, w // 2])[0]
    top, bottom = col[rows[0] + 3], col[rows[-1] - 3]
    assert top[2] > top[0] and bottom[0] > bottom[2]


def test_mesh_pane_orbits_with_the_mouse(make_viewer):
    v, _ = open_fake(make_viewer, FakeBackend(branches=("sr2d",)))
    settle(v)
    verts, faces = icosphere(2, center=(0.1, 0.0, 0.0))
    verts[:, 0] *= 1.8  # an ellipsoid, so turning it changes the picture
    mv = v.ensure_mesh_view()
    mv.set_mesh(verts, faces)
    v.step()
    v.step()
    before = mv.read()
    inp = mv.last_input
    drag(v, (inp.origin[0] + inp.size_px / 2, inp.origin[1] + inp.size_px / 2), (inp.size_px / 4, 0))
    assert mv.yaw < -0.5  # as in the image panes: dragging right lowers yaw
    assert v.state.camera.yaw == 0.0  # the mesh pane has its own camera
    v.step()
    assert np.abs(mv.read().astype(int) - before.astype(int)).mean() > 2
    mv.follow = True  # now it shows (and drags) the image panes' camera
    drag(v, (inp.origin[0] + inp.size_px / 2, inp.origin[1] + inp.size_px / 2), (0, inp.size_px / 4))
    assert v.state.camera.pitch < -0.5 and mv.pitch == pytest.approx(np.arcsin(-2 * v.state.camera.pitch / np.pi))

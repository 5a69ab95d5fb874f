"""Camera conventions (EG3D ``camera_utils.py``): look-at poses, labels, FOV helpers, mirroring, pixel rays.

Property tests sweep many orbit angles, radii and pivots; the fixed numbers come from ``NVlabs/eg3d:
eg3d/camera_utils.py``
and ``eg3d/training/volumetric_rendering/ray_sampler.py`` (ray directions, pose matrix, FOV to focal, the arccos
pitch mapping).
"""
from __future__ import annotations

import math

import pytest
import torch

from core.cameras import (Camera, flip_yaw_label, focal_to_fov, fov_to_focal, intrinsics_matrix, lookat_cam2world,
                          orbit_origins, true_fov_deg)
from core.rendering import make_rays

PIVOTS = [(0.0, 0.0, 0.0), (0.0, 0.0, 0.2), (0.0, 0.0, -0.06), (0.13, -0.21, 0.05), (-0.3, 0.25, -0.1)]
RADII = [1.0, 1.7, 2.7, 4.0]


def _angle_grid() -> tuple[torch.Tensor, torch.Tensor]:
    """Yaw over the full circle and pitch away from the poles (where a y-up look-at is undefined)."""
    g = torch.Generator().manual_seed(0)
    yaw = torch.cat([torch.linspace(-math.pi, 2 * math.pi, 13), torch.rand(40, generator=g) * 2 * math.pi])
    pitch = torch.cat([torch.linspace(0.15, math.pi - 0.15, 13), 0.15 + torch.rand(40, generator=g) * (math.pi - 0.3)])
    yy, pp = torch.meshgrid(yaw, pitch, indexing="ij")
    return yy.reshape(-1), pp.reshape(-1)


@pytest.mark.parametrize("pivot", PIVOTS)
@pytest.mark.parametrize("radius", RADII)
def test_lookat_is_a_proper_rotation_looking_at_the_pivot(pivot, radius):
    yaw, pitch = _angle_grid()
    c2w = lookat_cam2world(yaw, pitch, pivot, radius).double()
    n = yaw.numel()
    assert c2w.shape == (n, 4, 4)
    rot, origin = c2w[:, :3, :3], c2w[:, :3, 3]
    eye = torch.eye(3, dtype=torch.float64).expand(n, 3, 3)
    torch.testing.assert_close(rot.transpose(1, 2) @ rot, eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(n, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(c2w[:, 3], torch.tensor([0, 0, 0, 1.0], dtype=torch.float64).expand(n, 4), atol=0, rtol=0)
    # the camera sits on a sphere of the given radius around the *world origin* (not the pivot)
    torch.testing.assert_close(origin.norm(dim=1), torch.full((n,), float(radius), dtype=torch.float64), atol=1e-5, rtol=0)
    # forward axis (+z, OpenCV) points from the camera to the pivot
    p = torch.tensor(pivot, dtype=torch.float64)
    to_pivot = p - origin
    torch.testing.assert_close(rot[:, :, 2], to_pivot / to_pivot.norm(dim=1, keepdim=True), atol=1e-5, rtol=0)
    # OpenCV: x (right) is horizontal, y points world-down-ish
    torch.testing.assert_close(rot[:, 1, 0], torch.zeros(n, dtype=torch.float64), atol=1e-6, rtol=0)
    assert bool((rot[:, 1, 1] < 0).all())


@pytest.mark.parametrize("pivot", PIVOTS)
@pytest.mark.parametrize("focal", [4.2647, 1.7074])
def test_pivot_projects_to_the_image_centre(pivot, focal):
    yaw, pitch = _angle_grid()
    for radius in RADII:
        c2w = lookat_cam2world(yaw, pitch, pivot, radius).double()
        k = intrinsics_matrix(focal).double()
        world2cam = torch.linalg.inv(c2w)
        p = torch.tensor([*pivot, 1.0], dtype=torch.float64)
        pc = (world2cam @ p)[:, :3]  # [N, 3] camera coordinates
        assert bool((pc[:, 2] > 0).all()), "pivot must be in front of the camera"
        uv = (k @ (pc / pc[:, 2:3]).T).T[:, :2]
        torch.testing.assert_close(uv, torch.full_like(uv, 0.5), atol=1e-5, rtol=0)


def test_centre_ray_hits_the_pivot():
    # odd resolution: the middle pixel's centre is exactly (0.5, 0.5)
    pivot = (0.1, -0.05, 0.2)
    cam = Camera.orbit(torch.tensor([1.2, 1.9]), torch.tensor([1.4, 1.7]), pivot, 2.7, focal=4.2647)
    o, d = make_rays(cam.cam2world, cam.intrinsics, 65)
    mid = 32 * 65 + 32
    to_pivot = torch.tensor(pivot) - cam.origin
    torch.testing.assert_close(d[:, mid], to_pivot / to_pivot.norm(dim=1, keepdim=True), atol=1e-6, rtol=0)
    torch.testing.assert_close(o[:, mid], cam.origin, atol=0, rtol=0)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(2, 65 * 65), atol=1e-6, rtol=0)


def test_orbit_angle_conventions():
    # frontal: yaw = pitch = pi/2 -> (0, 0, r); more yaw -> +x; smaller pitch -> up (+y)
    o = orbit_origins(torch.tensor([math.pi / 2]), torch.tensor([math.pi / 2]), 2.7)
    torch.testing.assert_close(o, torch.tensor([[0.0, 0.0, 2.7]]), atol=1e-6, rtol=0)
    o = orbit_origins(torch.tensor([math.pi / 2 + 0.3, math.pi / 2]), torch.tensor([math.pi / 2, math.pi / 2 - 0.3]), 1.0)
    assert o[0, 0] > 0.2 and abs(float(o[0, 1])) < 1e-6
    assert o[1, 1] > 0.1 and abs(float(o[1, 0])) < 1e-6


def test_pitch_maps_through_arccos():
    # NVlabs/eg3d: eg3d/camera_utils.py (LookAtPoseSampler): v = pi/2 - 0.2 gives phi = arccos(1 - 2 v / pi) = 1.44313
    # (about 7.3 deg elevation)
    v = math.pi / 2 - 0.2
    o = orbit_origins(torch.tensor([math.pi / 2], dtype=torch.float64), torch.tensor([v], dtype=torch.float64), 1.0)
    phi = math.acos(float(o[0, 1]))
    assert phi == pytest.approx(1.44313, abs=1e-5)
    assert math.degrees(math.pi / 2 - phi) == pytest.approx(7.3, abs=0.05)
    c2w = lookat_cam2world(math.pi / 2, v, (0, 0, 0), 2.0)
    assert math.acos(float(c2w[0, 1, 3]) / 2.0) == pytest.approx(1.44313, abs=1e-5)


def test_ray_directions():
    c2w = lookat_cam2world(math.pi / 2, math.pi / 2, (0, 0, 0.2), 2.7)
    torch.testing.assert_close(c2w[0, :3, :3], torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(c2w[0, :3, 3], torch.tensor([0.0, 0.0, 2.7]), atol=1e-6, rtol=0)
    k = intrinsics_matrix(4.2647)[None]
    o, d = make_rays(c2w, k, 64)
    assert o.shape == (1, 64 * 64, 3) and d.shape == (1, 64 * 64, 3)
    expected = {
        (0, 0): (-0.113903, 0.113903, -0.986941),
        (0, 63): (0.113903, 0.113903, -0.986941),
        (63, 0): (-0.113903, -0.113903, -0.986941),
        (31, 31): (-0.001832, 0.001832, -0.999997),
    }
    for (row, col), want in expected.items():
        torch.testing.assert_close(d[0, row * 64 + col], torch.tensor(want), atol=2e-6, rtol=0,
                                   msg=lambda m, rc=(row, col): f"pixel {rc}: {m}")
    torch.testing.assert_close(o[0], torch.tensor([0.0, 0.0, 2.7]).expand(4096, 3), atol=1e-6, rtol=0)


def test_pose_matrix():
    c2w = lookat_cam2world(math.pi / 2 + 0.4, math.pi / 2 - 0.2, (0, 0, 0.2), 2.7)
    want = torch.tensor([[0.908456, 0.057052, -0.414068, 1.042872],
                         [0.0, -0.990641, -0.136494, 0.343775],
                         [-0.417980, 0.123999, -0.899954, 2.466625],
                         [0.0, 0.0, 0.0, 1.0]])
    torch.testing.assert_close(c2w[0], want, atol=2e-6, rtol=0)


def test_fov_to_focal():
    assert fov_to_focal(18.837) == pytest.approx(4.263391, abs=1e-6)
    assert fov_to_focal(18) == pytest.approx(4.465175, abs=1e-6)
    assert fov_to_focal(45) == pytest.approx(1.707366, abs=1e-6)
    assert true_fov_deg(4.2647) == pytest.approx(13.37, abs=0.01)
    cam = Camera.orbit(math.pi / 2, math.pi / 2, (0, 0, 0.2), 2.7, fov_deg=18.837)
    torch.testing.assert_close(cam.intrinsics[0], torch.tensor([[4.263391, 0, 0.5], [0, 4.263391, 0.5], [0, 0, 1]]),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("fov", [5.0, 12.0, 18.0, 18.837, 30.0, 45.0, 60.0, 90.0, 120.0])
def test_fov_focal_round_trip(fov):
    assert focal_to_fov(fov_to_focal(fov)) == pytest.approx(fov, abs=1e-9)
    f = fov_to_focal(fov)
    assert fov_to_focal(focal_to_fov(f)) == pytest.approx(f, rel=1e-12)


def test_label_round_trip():
    yaw, pitch = _angle_grid()
    yaw, pitch = yaw[::17], pitch[::17]
    cam = Camera.orbit(yaw, pitch, (0.0, 0.0, 0.2), 2.7, focal=4.2647)
    label = cam.to_label()
    assert label.shape == (yaw.numel(), 25)
    # row-major layout: [0:16] cam2world, [16:25] intrinsics
    torch.testing.assert_close(label[:, 3], cam.cam2world[:, 0, 3], atol=0, rtol=0)
    torch.testing.assert_close(label[:, 16], torch.full((yaw.numel(),), 4.2647), atol=0, rtol=0)
    torch.testing.assert_close(label[:, 18], torch.full((yaw.numel(),), 0.5), atol=0, rtol=0)
    back = Camera.from_label(label)
    torch.testing.assert_close(back.cam2world, cam.cam2world, atol=0, rtol=0)
    torch.testing.assert_close(back.intrinsics, cam.intrinsics, atol=0, rtol=0)
    torch.testing.assert_close(back.to_label(), label, atol=0, rtol=0)
    one = Camera.from_label(label[0])
    assert one.batch == 1
    torch.testing.assert_close(one.to_label()[0], label[0], atol=0, rtol=0)
    with pytest.raises(ValueError):
        Camera.from_label(torch.zeros(3, 24))


def test_flip_yaw_label_negates_exactly_five_entries_and_is_an_involution():
    g = torch.Generator().manual_seed(1)
    label = torch.randn(6, 25, generator=g)
    flipped = flip_yaw_label(label)
    sign = torch.ones(25)
    for r, c in ((0, 1), (0, 2), (1, 0), (2, 0), (0, 3)):
        sign[r * 4 + c] = -1
    torch.testing.assert_close(flipped, label * sign, atol=0, rtol=0)
    torch.testing.assert_close(flip_yaw_label(flipped), label, atol=0, rtol=0)
    torch.testing.assert_close(flip_yaw_label(label[2]), flipped[2], atol=0, rtol=0)  # unbatched
    assert flipped.data_ptr() != label.data_ptr()


@pytest.mark.parametrize("pivot", [(0.0, 0.0, 0.2), (0.0, 0.0, -0.06), (0.0, 0.1, 0.0)])
def test_flip_yaw_label_mirrors_the_camera(pivot):
    yaw, pitch = _angle_grid()
    yaw, pitch = yaw[::7], pitch[::7]
    label = Camera.orbit(yaw, pitch, pivot, 2.7, focal=4.2647).to_label()
    flipped = flip_yaw_label(label)
    mirrored = Camera.orbit(math.pi - yaw, pitch, pivot, 2.7, focal=4.2647).to_label()
    torch.testing.assert_close(flipped, mirrored, atol=2e-6, rtol=0)
    cam, fcam = Camera.from_label(label), Camera.from_label(flipped)
    torch.testing.assert_close(fcam.origin, cam.origin * torch.tensor([-1.0, 1.0, 1.0]), atol=0, rtol=0)
    torch.testing.assert_close(torch.linalg.det(fcam.cam2world[:, :3, :3]), torch.ones(yaw.numel()), atol=1e-5, rtol=0)


def test_flip_yaw_label_batched_equals_per_label():
    from core.cameras import Camera, flip_yaw_label
    labels = Camera.frontal_offset(torch.tensor([0.3, -0.2, 0.1]), torch.tensor([0.05, -0.1, 0.0])).to_label()
    batched = flip_yaw_label(labels)
    single = torch.stack([flip_yaw_label(lb) for lb in labels])
    assert torch.equal(batched, single)
    assert torch.equal(flip_yaw_label(batched), labels)

"""Tri-plane volume rendering: plane projection, bilinear plane sampling, ray marcher, depth sampling, ray/box limits,
chunking. Fixed numbers come from ``NVlabs/eg3d: eg3d/training/volumetric_rendering/`` (renderer.py, ray_marcher.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import rendering
from core.cameras import Camera
from core.rendering import (RayConfig, auto_ray_limits, composite, importance_depths, make_rays, project_onto_planes,
                            ray_box_limits, render_rays, sample_triplane, stratified_depths)
from core.triplane import OSGDecoder

# ----------------------------------------------------------------------------------------------------------
# plane projection and sampling


@pytest.mark.parametrize("convention,want", [
    ("eg3d", [[1.0, 2.0], [1.0, 3.0], [3.0, 1.0]]),
    ("mimic3d", [[1.0, 2.0], [2.0, 3.0], [3.0, 1.0]]),
])
def test_plane_projection(convention, want):
    p = torch.tensor([[[1.0, 2.0, 3.0]]])  # [B=1, M=1, 3]
    got = project_onto_planes(p, convention)
    assert got.shape == (1, 3, 1, 2)
    torch.testing.assert_close(got[0, :, 0], torch.tensor(want), atol=0, rtol=0)


def _naive_triplane(planes: np.ndarray, coords: np.ndarray, box_warp: float, axes) -> np.ndarray:
    """Per-point bilinear lookup (grid_sample semantics: align_corners=False, zeros outside, x = width)."""
    b, n_planes, c, h, w = planes.shape
    m = coords.shape[1]
    out = np.zeros((b, n_planes, m, c))
    for bi in range(b):
        for k, (ax_w, ax_h) in enumerate(axes):
            img = planes[bi, k]
            for j in range(m):
                p = coords[bi, j] * (2.0 / box_warp)
                x = ((p[ax_w] + 1) * w - 1) / 2  # continuous pixel coordinates
                y = ((p[ax_h] + 1) * h - 1) / 2
                x0, y0 = math.floor(x), math.floor(y)
                acc = np.zeros(c)
                for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                    for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                        if 0 <= xx < w and 0 <= yy < h:
                            acc += wx * wy * img[:, yy, xx]
                out[bi, k, j] = acc
    return out


@pytest.mark.parametrize("convention", ["eg3d", "mimic3d"])
@pytest.mark.parametrize("box_warp", [1.0, 1.6, 0.7])
def test_sample_triplane_matches_naive_bilinear(convention, box_warp):
    g = torch.Generator().manual_seed(3)
    b, c, h, w, m = 2, 4, 5, 7, 60  # H != W catches a width/height swap
    planes = torch.randn(b, 3, c, h, w, generator=g, dtype=torch.float64)
    coords = (torch.rand(b, m, 3, generator=g, dtype=torch.float64) * 2 - 1) * box_warp * 0.75  # ~1/3 outside the box
    coords[:, :4] = torch.tensor([[0.0, 0.0, 0.0], [box_warp / 2, -box_warp / 2, 0.1],
                                  [box_warp * 0.9, 0.0, 0.0], [0.2, -box_warp * 2, 3.0]], dtype=torch.float64)
    got = sample_triplane(planes.float(), coords.float(), box_warp, convention)
    assert got.shape == (b, 3, m, c)
    want = _naive_triplane(planes.numpy(), coords.numpy(), box_warp, rendering.PLANE_AXES[convention])
    np.testing.assert_allclose(got.numpy(), want, atol=2e-5, rtol=0)
    # points far outside the box read exactly zero
    far = torch.full((1, 1, 3), 2.0 * box_warp)
    assert bool((sample_triplane(planes[:1].float(), far, box_warp, convention) == 0).all())


def test_sample_triplane_first_coordinate_indexes_width():
    # plane k holds its own column index as feature: the sampled value reveals which world axis drove "x"
    h, w = 4, 8
    cols = torch.arange(w, dtype=torch.float32).expand(h, w)
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    planes = torch.stack([cols, rows], 0)[None, None].expand(1, 3, 2, h, w).contiguous()
    # pixel centre (col 5, row 1) of every plane: width coord (2*5+1)/8-1, height coord (2*1+1)/4-1
    u, v = (2 * 5 + 1) / w - 1, (2 * 1 + 1) / h - 1
    p = torch.tensor([[[u, v, u]]])  # eg3d: plane0 (x,y)=(u,v); plane1 (x,z)=(u,u); plane2 (z,x)=(u,u)
    got = sample_triplane(planes, p, 2.0, "eg3d")[0, :, 0]  # box_warp 2: no scaling
    torch.testing.assert_close(got[0], torch.tensor([5.0, 1.0]))
    assert float(got[1, 0]) == pytest.approx(5.0)


@pytest.mark.parametrize("n_planes", [1, 2, 3])
def test_mean_over_planes_equals_mean_forward_and_gradient(n_planes):
    # the layout sample_triplane returns: a transposed view of grid_sample's channel-major output
    g = torch.Generator().manual_seed(5)
    raw = torch.randn(2, n_planes, 6, 40, generator=g, dtype=torch.float64)  # [B, P, C, M]
    feats = raw.transpose(2, 3).requires_grad_(True)                             # [B, P, M, C], strided
    got, want = rendering.mean_over_planes(feats), feats.mean(1)
    torch.testing.assert_close(got, want, atol=1e-15, rtol=0)
    w = torch.randn(want.shape, generator=g, dtype=torch.float64)
    g_got, = torch.autograd.grad((got * w).sum(), feats)
    g_want, = torch.autograd.grad((want * w).sum(), feats)
    torch.testing.assert_close(g_got, g_want, atol=1e-15, rtol=0)
    assert feats.grad is None and bool(torch.equal(feats, raw.transpose(2, 3)))  # the input is not modified


# ----------------------------------------------------------------------------------------------------------
# ray marcher (NVlabs/eg3d: eg3d/training/volumetric_rendering/ray_marcher.py)


def _march(raw_sigma: float, k: int = 13, span: float = 1.05, start: float = 2.25, logit: float = 0.0,
           white_back: bool = False):
    depths = torch.linspace(start, start + span, k).reshape(1, 1, k, 1).repeat(2, 3, 1, 1)
    sigma = torch.full((2, 3, k, 1), raw_sigma)
    rgb = torch.sigmoid(torch.full((2, 3, k, 32), logit)) * (1 + 2 * 0.001) - 0.001
    return composite(rgb, sigma, depths, white_back), depths


@pytest.mark.parametrize("k", [2, 13, 96])
@pytest.mark.parametrize("raw_sigma,weight_total", [(1.0, 0.517032), (0.0, 0.280303)])
def test_ray_marcher_weight_total(raw_sigma, weight_total, k):
    (feat, depth, weights), depths = _march(raw_sigma, k=k)
    assert weights.shape == (2, 3, k - 1, 1)
    acc = weights.sum(2)
    torch.testing.assert_close(acc, torch.full_like(acc, weight_total), atol=2e-6, rtol=0)
    assert weight_total == pytest.approx(1 - math.exp(-F.softplus(torch.tensor(raw_sigma - 1.0)).item() * 1.05), abs=1e-6)
    # constant decoder logit 0 -> colour 0.5: composite 0.5 * wt * 2 - 1
    torch.testing.assert_close(feat, torch.full_like(feat, 0.5 * weight_total * 2 - 1), atol=2e-6, rtol=0)
    # depth: weighted mean of interval midpoints, inside the sampled range
    mids = (depths[:, :, 1:] + depths[:, :, :-1]) / 2
    torch.testing.assert_close(depth, (weights * mids).sum(2) / acc, atol=1e-5, rtol=0)
    assert bool(((depth > 2.25) & (depth < 3.3)).all())


@pytest.mark.parametrize("raw_sigma,weight_total", [(1.0, 0.517032), (0.0, 0.280303)])
def test_white_background(raw_sigma, weight_total):
    (feat, _, _), _ = _march(raw_sigma, white_back=True)
    want = (0.5 * weight_total + 1 - weight_total) * 2 - 1
    torch.testing.assert_close(feat, torch.full_like(feat, want), atol=2e-6, rtol=0)


def test_ray_marcher_midpoint_rule_by_hand():
    # two intervals with different raw densities: check the midpoint densities, softplus(x - 1), exclusive cumprod
    depths = torch.tensor([0.0, 0.5, 1.5]).reshape(1, 1, 3, 1)
    sigma = torch.tensor([0.0, 2.0, 4.0]).reshape(1, 1, 3, 1)
    rgb = torch.tensor([[0.0], [0.5], [1.0]]).reshape(1, 1, 3, 1)
    feat, depth, w = composite(rgb, sigma, depths)
    s1, s2 = math.log1p(math.exp(1.0 - 1)), math.log1p(math.exp(3.0 - 1))
    a1, a2 = 1 - math.exp(-s1 * 0.5), 1 - math.exp(-s2 * 1.0)
    w1, w2 = a1, a2 * (1 - a1 + 1e-10)
    torch.testing.assert_close(w.flatten(), torch.tensor([w1, w2]), atol=1e-6, rtol=0)
    torch.testing.assert_close(feat.flatten(), torch.tensor([(w1 * 0.25 + w2 * 0.75) * 2 - 1]), atol=1e-6, rtol=0)
    torch.testing.assert_close(depth.flatten(), torch.tensor([(w1 * 0.25 + w2 * 1.0) / (w1 + w2)]), atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------------------------------------
# depth sampling


def test_deterministic_coarse_depths_are_linspace():
    d = stratified_depths(2, 5, 2.25, 3.3, 48, deterministic=True)
    assert d.shape == (2, 5, 48, 1)
    torch.testing.assert_close(d[1, 3, :, 0], torch.linspace(2.25, 3.3, 48), atol=0, rtol=0)
    torch.testing.assert_close(d, d[:1, :1].expand_as(d), atol=0, rtol=0)


@pytest.mark.parametrize("per_ray", [False, True])
def test_stochastic_coarse_depths_are_jittered_within_one_bin(per_ray):
    g = torch.Generator().manual_seed(5)
    b, m, s = 2, 64, 12
    if per_ray:
        start = 0.5 + torch.rand(b, m, 1, generator=g)
        end = start + 0.2 + torch.rand(b, m, 1, generator=g)
    else:
        start, end = 2.25, 3.3
    d = stratified_depths(b, m, start, end, s, deterministic=False, generator=g)
    base = stratified_depths(b, m, start, end, s, deterministic=True)
    delta = (end - start) / (s - 1)
    delta = delta[..., None, :] if per_ray else delta
    assert d.shape == base.shape == (b, m, s, 1)
    assert bool((d >= base - 1e-6).all()) and bool((d <= base + delta + 1e-6).all())
    assert float((d - base).std()) > 0.1 * float(torch.as_tensor(delta).mean())  # really jittered
    # per ray and per sample independent
    assert not torch.equal(d[0, 0], d[0, 1]) and not torch.equal(d[0], d[1])
    if per_ray:
        torch.testing.assert_close(base[..., 0, :], start, atol=1e-6, rtol=0)
        torch.testing.assert_close(base[..., -1, :], end, atol=1e-6, rtol=0)


def _coarse_pass(s: int = 48, m: int = 20, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    depths = stratified_depths(2, m, 2.25, 3.3, s, deterministic=False, generator=g)
    depths = depths.sort(dim=-2).values
    w = torch.rand(2, m, s - 1, 1, generator=g) ** 4
    return depths, w


def test_importance_sampling_sizes(monkeypatch):
    depths, w = _coarse_pass(48)
    seen = {}
    real = rendering.sample_pdf

    def spy(bins, weights, n, deterministic, eps=1e-5, generator=None):
        seen["bins"], seen["weights"], seen["n"] = tuple(bins.shape), tuple(weights.shape), n
        return real(bins, weights, n, deterministic, eps, generator)

    monkeypatch.setattr(rendering, "sample_pdf", spy)
    fine = importance_depths(depths, w, 48, deterministic=True)
    assert fine.shape == (2, 20, 48, 1)
    assert seen == {"bins": (40, 47), "weights": (40, 45), "n": 48}  # 47 midpoints, 45 pdf weights (46 cdf values)


def test_render_composites_96_sorted_samples(monkeypatch):
    calls = []
    real = rendering.interval_weights

    def spy(densities, depths):
        calls.append(depths.detach().clone())
        return real(densities, depths)

    monkeypatch.setattr(rendering, "interval_weights", spy)
    planes = torch.randn(1, 3, 32, 8, 8, generator=torch.Generator().manual_seed(0))
    dec = OSGDecoder()
    cam = Camera.frontal_offset(0.2, -0.1)
    o, d = make_rays(cam.cam2world, cam.intrinsics, 4)
    with torch.no_grad():
        render_rays(planes, dec, o, d, RayConfig(depth_resolution=48, depth_resolution_importance=48), deterministic=True)
    assert [c.shape[-2] for c in calls] == [48, 96]  # coarse pass for the weights, then 48 + 48 sorted
    final = calls[-1]
    assert bool((final[..., 1:, :] >= final[..., :-1, :]).all())


def _reference_render(planes, dec, o, d, cfg):
    """EG3D's renderer literally: coarse pass, importance pass, gather *all* sample tensors in depth order,
    composite midpoint colours (MipRayMarcher2), clamp depth to the global sample range."""
    b, m, _ = o.shape
    s, n = cfg.depth_resolution, cfg.depth_resolution_importance
    zc = rendering.stratified_depths(b, m, cfg.ray_start, cfg.ray_end, s, True).to(o.device)

    def run(z):
        pts = (o.unsqueeze(-2) + z * d.unsqueeze(-2)).reshape(b, -1, 3)
        rgb, sig = dec(rendering.sample_triplane(planes, pts, cfg.box_warp, cfg.plane_convention))
        return rgb.reshape(b, m, z.shape[-2], -1), sig.reshape(b, m, z.shape[-2], 1)

    def march(colors, dens, z):
        deltas = z[:, :, 1:] - z[:, :, :-1]
        cm = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
        dm = F.softplus((dens[:, :, :-1] + dens[:, :, 1:]) / 2 - 1)
        zm = (z[:, :, :-1] + z[:, :, 1:]) / 2
        alpha = 1 - torch.exp(-dm * deltas)
        t = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], -2), -2)[:, :, :-1]
        w = alpha * t
        rgb = (w * cm).sum(-2)
        tot = w.sum(2)
        depth = torch.nan_to_num((w * zm).sum(-2) / tot, float("inf")).clamp(z.min(), z.max())
        if cfg.white_back:
            rgb = rgb + 1 - tot
        return rgb * 2 - 1, depth, w

    rc, sc = run(zc)
    _, _, w = march(rc, sc, zc)
    zf = rendering.importance_depths(zc, w, n, True)
    rf, sf = run(zf)
    z = torch.cat([zc, zf], -2)
    order = torch.sort(z, dim=-2).indices
    col = torch.gather(torch.cat([rc, rf], -2), -2, order.expand(-1, -1, -1, rc.shape[-1]))
    den = torch.gather(torch.cat([sc, sf], -2), -2, order)
    rgb, depth, _ = march(col, den, torch.gather(z, -2, order))
    return rgb, depth


@pytest.mark.parametrize("white_back", [False, True])
def test_render_rays_equals_literal_reference(white_back, device):
    g = torch.Generator().manual_seed(3)
    planes = (torch.randn(2, 3, 32, 16, 16, generator=g) * 3).to(device)
    dec = OSGDecoder().to(device)
    cam = Camera.frontal_offset(torch.tensor([0.3, -0.5]), torch.tensor([0.1, -0.2]), device=device)
    o, d = make_rays(cam.cam2world, cam.intrinsics, 6)
    cfg = RayConfig(depth_resolution=12, depth_resolution_importance=10, white_back=white_back)
    with torch.no_grad():
        rgb, depth, _ = render_rays(planes, dec, o, d, cfg, deterministic=True, chunk=7)
        ref_rgb, ref_depth = _reference_render(planes, dec, o, d, cfg)
    torch.testing.assert_close(rgb, ref_rgb, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(depth, ref_depth, rtol=1e-5, atol=1e-5)
    # and with autograd on (training path), values agree and gradients flow to the planes
    planes.requires_grad_(True)
    rgb2, _, _ = render_rays(planes, dec, o, d, cfg, deterministic=True)
    torch.testing.assert_close(rgb2.detach(), ref_rgb, rtol=1e-5, atol=1e-5)
    rgb2.sum().backward()
    assert planes.grad is not None and planes.grad.abs().sum() > 0


def test_importance_samples_sorted_in_range_and_reproducible():
    depths, w = _coarse_pass(24)
    a = importance_depths(depths, w, 32, deterministic=True)
    b = importance_depths(depths, w, 32, deterministic=True)
    assert torch.equal(a, b)
    assert bool((a[..., 1:, :] >= a[..., :-1, :]).all()), "deterministic inverse-CDF samples must be sorted"
    mids = (depths[..., 1:, :] + depths[..., :-1, :]) / 2
    assert bool((a >= mids[..., :1, :] - 1e-6).all()) and bool((a <= mids[..., -2:-1, :] + 1e-6).all())
    assert bool((a >= depths.amin(-2, keepdim=True)).all()) and bool((a <= depths.amax(-2, keepdim=True)).all())
    # u = linspace(0, 1): the first sample is the first bin edge
    torch.testing.assert_close(a[..., 0, :], mids[..., 0, :], atol=1e-6, rtol=0)
    # stochastic draws differ between calls but stay in range
    g = torch.Generator().manual_seed(1)
    r1 = importance_depths(depths, w, 32, deterministic=False, generator=g)
    r2 = importance_depths(depths, w, 32, deterministic=False, generator=g)
    assert not torch.equal(r1, r2)
    assert bool((r1 >= mids[..., :1, :] - 1e-6).all()) and bool((r1 <= mids[..., -2:-1, :] + 1e-6).all())


def test_importance_samples_concentrate_where_the_weight_is():
    s = 32
    depths = torch.linspace(2.0, 3.0, s).reshape(1, 1, s, 1)
    w = torch.zeros(1, 1, s - 1, 1)
    w[..., 20, :] = 1.0  # all mass in interval 20
    fine = importance_depths(depths, w, 64, deterministic=True)
    lo, hi = float(depths[0, 0, 19, 0]), float(depths[0, 0, 22, 0])
    inside = ((fine >= lo) & (fine <= hi)).float().mean()
    assert float(inside) > 0.6


# ----------------------------------------------------------------------------------------------------------
# ray / box limits


def _brute_force_limits(o: torch.Tensor, d: torch.Tensor, box: float, t_max: float = 8.0, step: float = 5e-4):
    t = torch.arange(0.0, t_max, step, dtype=torch.float64)
    pts = o.double()[:, None, :] + t[None, :, None] * d.double()[:, None, :]
    inside = (pts.abs() <= box / 2).all(-1)  # [N, T]
    hit = inside.any(1)
    idx = torch.arange(t.numel())
    first = torch.where(inside, idx, t.numel()).amin(1).clamp_max(t.numel() - 1)
    last = torch.where(inside, idx, -1).amax(1).clamp_min(0)
    return hit, t[first], t[last]


def _random_rays(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    o = torch.randn(n, 3, generator=g)
    o = o / o.norm(dim=1, keepdim=True) * (1.5 + 2 * torch.rand(n, 1, generator=g))
    target = (torch.rand(n, 3, generator=g) * 2 - 1) * 1.3  # many hit the box, some miss
    d = F.normalize(target - o, dim=1)
    return o, d


@pytest.mark.parametrize("box", [1.0, 1.6])
def test_ray_box_limits_match_dense_march(box):
    o, d = _random_rays(400, seed=int(box * 10))
    near, far = ray_box_limits(o, d, box)
    assert near.shape == far.shape == (400, 1)
    hit, t0, t1 = _brute_force_limits(o, d, box)
    assert 20 < int(hit.sum()) < 400, "the sample must contain both hits and misses"
    valid = (far >= near)[:, 0]
    assert torch.equal(valid, hit)
    torch.testing.assert_close(near[hit, 0].double(), t0[hit], atol=1.5e-3, rtol=0)
    torch.testing.assert_close(far[hit, 0].double(), t1[hit], atol=1.5e-3, rtol=0)
    assert bool((near[~hit] == -1).all()) and bool((far[~hit] == -2).all())


def test_auto_ray_limits_camera_rays_and_invalid_rays():
    # ShapeNet-like camera ('auto' bounds, box 1.6): valid rays get the box interval, missing rays get
    # [min of valid starts, max of valid starts] (EG3D's quirk)
    cam = Camera.orbit(torch.tensor([1.1, 2.0]), torch.tensor([1.3, 1.8]), (0, 0, 0), 2.5, fov_deg=60)
    o, d = make_rays(cam.cam2world, cam.intrinsics, 24)
    near, far = auto_ray_limits(o, d, 1.6)
    assert near.shape == far.shape == (2, 24 * 24, 1)
    hit, t0, t1 = _brute_force_limits(o.reshape(-1, 3), d.reshape(-1, 3), 1.6)
    hit = hit.reshape(2, -1)
    assert 0 < int((~hit).sum()) and 0 < int(hit.sum())
    torch.testing.assert_close(near[hit][:, 0].double(), t0.reshape(2, -1)[hit], atol=1.5e-3, rtol=0)
    torch.testing.assert_close(far[hit][:, 0].double(), t1.reshape(2, -1)[hit], atol=1.5e-3, rtol=0)
    lo, hi = near[hit].min(), near[hit].max()
    assert bool((near[~hit] == lo).all()) and bool((far[~hit] == hi).all())


# ----------------------------------------------------------------------------------------------------------
# chunking


@pytest.mark.parametrize("cfg", [
    RayConfig(depth_resolution=6, depth_resolution_importance=5),
    RayConfig(ray_start="auto", ray_end="auto", box_warp=1.6, white_back=True, depth_resolution=6,
              depth_resolution_importance=4),
    RayConfig(depth_resolution=5, depth_resolution_importance=0, plane_convention="mimic3d"),
])
def test_render_rays_is_chunk_invariant(cfg):
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 32, 16, 16)
    dec = OSGDecoder()
    radius = 1.7 if cfg.ray_start == "auto" else 2.7
    cam = Camera.orbit(torch.tensor([1.3, 1.9]), torch.tensor([1.5, 1.7]), (0, 0, 0.1), radius, fov_deg=30)
    o, d = make_rays(cam.cam2world, cam.intrinsics, 6)
    with torch.no_grad():
        outs = [render_rays(planes, dec, o, d, cfg, deterministic=True, chunk=ch) for ch in (None, 1, 7)]
    feats, depth, acc = outs[0]
    assert feats.shape == (2, 36, 32) and depth.shape == (2, 36, 1) and acc.shape == (2, 36, 1)
    assert bool(torch.isfinite(depth).all())
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_too_few_coarse_samples_for_importance_sampling_is_a_clear_error():
    import pytest as _pytest
    from core import rendering as R
    planes = torch.zeros(1, 3, 4, 8, 8)
    o = torch.zeros(1, 4, 3)
    o[..., 2] = 2.7
    d = torch.zeros(1, 4, 3)
    d[..., 2] = -1.0
    cfg = R.RayConfig(depth_resolution=3, depth_resolution_importance=2)
    dec = lambda f: (f.mean(1)[..., :3], f.mean(1)[..., :1])  # noqa: E731
    with _pytest.raises(ValueError, match="at least 2 coarse samples"):
        R.render_rays(planes, dec, o, d, cfg, deterministic=True)

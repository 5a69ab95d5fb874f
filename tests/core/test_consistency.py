"""3D-consistency metric (core.metrics.consistency) on analytic scenes where the answer is known."""
from __future__ import annotations

import math

import pytest
import torch

from core.cameras import Camera
from core.metrics.consistency import (backproject, masked_psnr, pair_scores, project, resize_depth, summarize,
                                      view_pairs, warp)
from core.rendering import make_rays

RES, RADIUS, FAR = 64, 0.2, 4.0


def label(yaw: float, pitch: float = 0.0) -> torch.Tensor:
    return Camera.frontal_offset(yaw, pitch, (0.0, 0.0, 0.2), 2.7).to_label()


def texture(x: torch.Tensor) -> torch.Tensor:  # points [B, N, 3] -> colours [B, N, 3] in [-0.8, 0.8]
    return 0.8 * torch.sin(torch.stack([15 * x[..., 0] + 1, 12 * x[..., 1] + 10 * x[..., 2], 17 * x[..., 2]], -1))


def sphere_renderer(view_dependent: float = 0.0, shift_px: int = 0):
    """Ray-cast a textured sphere; background grey at depth FAR. ``view_dependent`` slides the texture with the
    camera position, ``shift_px`` shifts the whole image by pixels: both break multi-view consistency."""
    def render(c: torch.Tensor):
        cam2world, intr = c[:, :16].reshape(-1, 4, 4), c[:, 16:].reshape(-1, 3, 3)
        o, d = make_rays(cam2world, intr, RES)
        b = (o * d).sum(-1)
        disc = b.square() - (o.square().sum(-1) - RADIUS ** 2)
        hit = disc > 0
        t = torch.where(hit, -b - disc.clamp_min(0).sqrt(), torch.full_like(b, FAR))
        x = o + d * t[..., None]
        col = texture(x + view_dependent * o[:, :1, :].expand_as(x))
        col = torch.where(hit[..., None], col, torch.full_like(col, -0.5))
        img = col.permute(0, 2, 1).reshape(-1, 3, RES, RES)
        if shift_px:
            img = torch.roll(img, shift_px, dims=-1)
        return img, t.reshape(-1, 1, RES, RES)
    return render


def test_project_inverts_backproject():
    c = label(0.3, -0.1)
    depth = 2.0 + torch.rand(1, 1, 8, 8)
    uv, z, dist = project(backproject(depth, c), c)
    idx = (torch.arange(8) + 0.5) / 8
    v, u = torch.meshgrid(idx, idx, indexing="ij")
    torch.testing.assert_close(uv[0], torch.stack([u.reshape(-1), v.reshape(-1)], -1), atol=1e-5, rtol=0)
    torch.testing.assert_close(dist[0], depth.reshape(-1), atol=1e-5, rtol=0)
    assert (z > 0).all()


def test_identical_view_is_exact():
    render = sphere_renderer()
    c = label(0.2)
    img, dep = render(c)
    warped, mask = warp(img, dep, dep, c, c)
    assert mask.float().mean() > 0.9
    assert masked_psnr(img, warped, mask).item() > 60


def test_consistent_renderer_scores_higher_than_inconsistent_ones():
    pairs = view_pairs(3, seed=1, delta=0.08)
    scores = {}
    for name, render in {"consistent": sphere_renderer(), "sliding texture": sphere_renderer(view_dependent=0.3),
                         "shifted": sphere_renderer(shift_px=2)}.items():
        psnr, cov = [], []
        for ya, pa, yb, pb in pairs:
            p, m = pair_scores(render, label(ya, pa), label(yb, pb))
            psnr += p.tolist()
            cov += m.tolist()
        scores[name] = summarize(psnr, cov)
    assert scores["consistent"].coverage > 0.15  # the sphere covers a good part of the frame
    assert scores["consistent"].psnr > 30
    for bad in ("sliding texture", "shifted"):
        assert scores[bad].psnr < scores["consistent"].psnr - 8, (bad, scores)


def test_occluded_and_outside_pixels_are_masked():
    """Surface points of A that face away from B (hidden behind the sphere in B) are excluded; most others kept."""
    render = sphere_renderer()
    c_a, c_b = label(-0.4), label(0.4)
    img_a, dep_a = render(c_a)
    img_b, dep_b = render(c_b)
    _, mask = warp(img_b, dep_a, dep_b, c_a, c_b)
    pts = backproject(dep_a, c_a)[0]  # [N, 3]
    on_sphere = dep_a.reshape(-1) < FAR
    o_b = c_b[0, :16].reshape(4, 4)[:3, 3]
    facing_b = ((pts / RADIUS) * (o_b - pts)).sum(-1) > 0.05 * (o_b - pts).norm(dim=-1)  # away from the limb
    hidden = on_sphere & (((pts / RADIUS) * (o_b - pts)).sum(-1) < -0.05 * (o_b - pts).norm(dim=-1))
    m = mask.reshape(-1)
    assert hidden.sum() > 50 and not (m & hidden).any()
    assert (m & on_sphere & facing_b).sum() > 0.7 * (on_sphere & facing_b).sum()


def test_masked_psnr_and_helpers():
    a = torch.zeros(1, 3, 4, 4)
    b = a.clone()
    b[..., 0, 0] = 0.2  # error only where the mask is off
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    assert math.isclose(masked_psnr(a, b, mask).item(), 10 * math.log10(1 / ((0.1 ** 2) / 16)), rel_tol=1e-5)
    mask[..., 0, 0] = False
    assert masked_psnr(a, b, mask).item() > 100
    assert math.isnan(masked_psnr(a, b, torch.zeros_like(mask)).item())
    assert resize_depth(torch.ones(1, 1, 4, 4), 8).shape == (1, 1, 8, 8)
    p = view_pairs(5, seed=0, delta=0.1)
    assert p.shape == (5, 4) and torch.allclose(torch.tensor(abs(p[:, 2] - p[:, 0])), torch.tensor(0.1, dtype=torch.float64))
    assert summarize([float("nan"), 20.0], [0.1, 0.3]).psnr == pytest.approx(20.0)


@pytest.mark.slow  # > 10 s on the 2-core machine under load; runs in the full suite
def test_metrics_cli_per_branch(mimic3d_fixture_dir, eg3d_fixture_dir, tmp_path, capsys):
    import json

    from core.__main__ import main
    out = tmp_path / "c.json"
    net = str(mimic3d_fixture_dir / "network.pkl")
    assert main(["metrics", "--network", net, "--metrics", "consistency", "--pairs", "1", "--trunc", "0.7",
                 "--out", str(out)]) == 0
    res = json.loads(out.read_text())["consistency"]
    assert set(res) == {"sr2d", "direct3d"}
    for r in res.values():
        assert r["pairs"] == 1 and 0 < r["coverage"] <= 1 and math.isfinite(r["psnr"])
    printed = capsys.readouterr().out
    assert "consistency sr2d" in printed and "consistency direct3d" in printed
    for argv, message in [(["--network", str(eg3d_fixture_dir / "network.pkl"), "--branch", "direct3d"], "not in this model"),
                          (["--network", net, "--pairs", "0"], "--pairs"),
                          (["--network", net, "--metrics", "swd"], "--data")]:
        base = ["metrics", "--metrics", "consistency", *argv]
        assert main(base) == 2
        assert message in capsys.readouterr().err

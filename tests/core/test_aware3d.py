"""Mimic3D's 3D-aware backbone (core.aware3d): pooling against a plain loop, weight sharing, Mimic3D parameter
counts."""
from __future__ import annotations

import pytest
import torch

from core.aware3d import Aware3DBlock, PlaneSynthesisBlock, PlaneSynthesisLayer, aware3d
from core.config import ConfigError, GeneratorConfig, from_dict, to_dict
from tests.conftest import tiny_mimic3d_config

# World axes of each plane's stored (height, width) dimensions: xy as [y, x], yz as [z, y], zx as [x, z].
PLANE_HW_AXES = (("y", "x"), ("z", "y"), ("x", "z"))


def aware3d_loop(x: torch.Tensor) -> torch.Tensor:
    """Reference from the axis semantics alone: for target plane k at world coordinates (a_h = i, a_w = j), block
    j' holds source plane j' averaged over the axis it does not share with plane k, read at the shared axis."""
    n, c, r, _ = x.shape
    out = torch.zeros(n, 3 * c, r, r, dtype=torch.float64)
    for s in range(n // 3):
        for k in range(3):
            th, tw = PLANE_HW_AXES[k]
            for src in range(3):
                plane = x[3 * s + src].double()  # [C, H, W]
                sh, sw = PLANE_HW_AXES[src]
                for i in range(r):
                    for j in range(r):
                        coord = {th: i, tw: j}
                        if src == k:
                            val = plane[:, i, j]
                        else:
                            shared = ({th, tw} & {sh, sw}).pop()
                            if shared == sh:  # source height axis is shared: average over its width
                                val = plane[:, coord[shared], :].mean(-1)
                            else:
                                val = plane[:, :, coord[shared]].mean(-1)
                        out[3 * s + k, src * c:(src + 1) * c, i, j] = val
    return out


def test_aware3d_matches_loop_reference():
    torch.manual_seed(0)
    x = torch.randn(2 * 3, 3, 4, 4)
    torch.testing.assert_close(aware3d(x).double(), aware3d_loop(x), rtol=0, atol=1e-6)


def test_aware3d_rejects_non_triplanes():
    with pytest.raises(ValueError, match="rolled-out square"):
        aware3d(torch.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="rolled-out square"):
        aware3d(torch.zeros(3, 2, 3, 4))


def test_aware3d_pooling_is_exactly_the_shared_axis():
    """A yz plane that varies only along z reaches the xy plane as zero variation (xy does not contain z)."""
    r = 6
    x = torch.zeros(3, 1, r, r)
    x[1, 0] = torch.arange(r, dtype=torch.float32)[:, None]  # yz stored [z, y]: a function of z only
    y = aware3d(x)
    block_yz_in_xy = y[0, 1]  # xy's view of yz: yz averaged over z -> constant in y
    assert torch.allclose(block_yz_in_xy, torch.full((r, r), (r - 1) / 2))
    block_yz_in_zx = y[2, 1]  # zx [x, z]: yz averaged over y (a function of z) broadcast along x
    assert torch.equal(block_yz_in_zx, torch.arange(r, dtype=torch.float32)[None, :].expand(r, r))


def test_conv_weights_shared_styles_per_plane():
    torch.manual_seed(1)
    layer = PlaneSynthesisLayer(4, 5, w_dim=8, resolution=6, mode="b")
    assert layer.weight.shape == (5, 12, 3, 3) and layer.affine.out_features == 36
    x = torch.randn(3, 4, 6, 6)
    w = torch.randn(1, 8)
    with torch.no_grad():
        fast = layer(x, w, noise_mode="none")
        ref = layer(x, w, noise_mode="none", plain=True)
        # the same layer with the rolled-out planes' styles applied one plane at a time
        styles = layer.affine(w).reshape(3, 12)
        per_plane = torch.cat([layer.forward_styles(aware3d(x)[k:k + 1], styles[k:k + 1], "none", plain=True)
                               for k in range(3)])
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ref, per_plane, rtol=1e-6, atol=1e-6)
    # per-plane styles: changing plane 1's style slice changes only plane 1's output
    with torch.no_grad():
        layer.affine.bias[12:24] += 1.0
        moved = layer(x, w, noise_mode="none", plain=True)
    assert torch.equal(moved[0], ref[0]) and torch.equal(moved[2], ref[2]) and not torch.equal(moved[1], ref[1])


def test_per_plane_mode_does_not_mix_planes():
    torch.manual_seed(2)
    block = PlaneSynthesisBlock(4, 4, w_dim=8, resolution=8, mode="s", up=2)
    x = torch.randn(3, 4, 4, 4)
    w = torch.randn(1, 8)
    with torch.no_grad():
        a = block(x, w, noise_mode="none")[1]
        x2 = x.clone()
        x2[0] += 1
        b = block(x2, w, noise_mode="none")[1]
    assert a.shape == (3, 4, 8, 8)
    assert not torch.equal(a[0], b[0]) and torch.equal(a[1:], b[1:])


def test_block_parameter_counts_match_mimic3d():
    """``SeanChenxy/Mimic3D: training/networks_stylegan2.py``: each 3D-aware block has 501,698 parameters, the detail
    upsampler 334,596 (32 channels, w_dim 512)."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    mid = Aware3DBlock(8, 32, 512, is_last=False)
    last = Aware3DBlock(16, 32, 512, is_last=True, detail_blocks=2)
    assert count(mid) == 501_698
    assert count(last) - count(last.block) == 334_596
    assert 7 * 501_698 + 334_596 == 3_846_482
    names = dict(last.named_parameters())
    assert names["block.conv0.weight"].shape == (32, 96, 3, 3) and names["block.torgb.weight"].shape == (32, 96, 1, 1)
    assert names["block2.conv0.weight"].shape == (32, 32, 3, 3) and names["block3.torgb.affine.weight"].shape == (96, 512)
    assert dict(last.named_buffers())["block2.conv0.noise_const"].shape == (32, 32)


def test_backbone_outputs_coarse_and_detail():
    from core.build import build_generator
    torch.manual_seed(3)
    G = build_generator(tiny_mimic3d_config())
    keys = list(G.state_dict())
    order = [k.split(".")[2] for k in keys if k.startswith("backbone.synthesis.b")]
    assert order.index("b3d4") < order.index("b8") < order.index("b3d8")  # reference's interleaved order
    ws = torch.randn(2, G.num_ws, 16)
    with torch.no_grad():
        coarse, detail = G.triplanes(ws)
        assert coarse.shape == (2, 3, 8, 16, 16) and detail.shape == (2, 3, 8, 32, 32)
        assert torch.equal(G.planes(ws), coarse)
        # batched = one sample at a time
        single = G.triplanes(ws[1:])
    torch.testing.assert_close(single[1], detail[1:], rtol=1e-5, atol=1e-5)


def test_config_fields_strict_and_backward_compatible():
    cfg = tiny_mimic3d_config()
    d = to_dict(cfg)
    assert d["aware3d_res"] == [4, 8, 16] and d["detail_blocks"] == 2
    assert from_dict(GeneratorConfig, d) == cfg
    old = to_dict(GeneratorConfig())
    del old["aware3d_res"], old["detail_blocks"]  # a snapshot written before the Mimic3D fields existed
    assert from_dict(GeneratorConfig, old).aware3d_res == ()
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(GeneratorConfig, {**d, "aware3d": [4]})
    for bad, msg in [({"aware3d_res": (4, 16)}, "double"), ({"aware3d_res": (4, 8)}, "end at"),
                     ({"aware3d_res": (), "detail_blocks": 2}, "non-empty aware3d_res"),
                     ({"detail_blocks": -1}, ">= 0")]:
        with pytest.raises(ConfigError, match=msg):
            tiny_mimic3d_config(**bad)


@pytest.mark.parametrize("r", [4, 8, 9])
@pytest.mark.parametrize("k,up", [(3, 1), (3, 2), (1, 1)])
def test_aware3d_modconv_equals_the_literal_form_with_gradients(r, k, up):
    """The split convolution (own block + short broadcast planes) equals conv(aware3d(x) * s) in value and in
    the gradients of x, weight and styles, for planes shorter and longer than the short planes."""
    from core import ops
    from core.aware3d import aware3d_modconv
    g = torch.Generator().manual_seed(r * 10 + k + up)
    x, wt = torch.randn(6, 5, r, r, generator=g).double(), torch.randn(7, 15, k, k, generator=g).double()
    st = torch.randn(6, 15, generator=g).double()
    cot = torch.randn(6, 7, r * up, r * up, generator=g).double()
    f1d = ops.setup_filter_1d().double()
    kw = dict(up=up, padding=k // 2, f1d=f1d, flip_weight=(up == 1))

    def run(fn):
        leaves = [t.clone().requires_grad_(True) for t in (x, wt, st)]
        y = fn(*leaves)
        return [y.detach()] + list(torch.autograd.grad((y * cot).sum(), leaves))

    literal = run(lambda a, w, s: ops.conv2d_resample(aware3d(a) * s[:, :, None, None], w, plain=True,
                                                      **{**kw, "f1d": f1d}))
    split = run(lambda a, w, s: aware3d_modconv(a, w, s, **kw))
    for got, want in zip(split, literal):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_fast_backbone_matches_plain_with_gradients():
    """Fast (split 3D-aware conv, one-node post-ops, adjoint FIR) vs plain (literal aware3d + fused conv):
    coarse and detail tri-planes and every parameter gradient of the whole backbone."""
    from core.build import build_generator
    torch.manual_seed(4)
    G = build_generator(tiny_mimic3d_config()).requires_grad_(True)
    for name, p in G.backbone.synthesis.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(0.2)  # exercise the noise path
    ws = torch.randn(2, G.num_ws, 16)
    cot = None

    def run(plain):
        nonlocal cot
        G.zero_grad()
        coarse, detail = G.backbone.synthesis(ws, noise_mode="const", fused=plain, plain=plain, detail=True)
        if cot is None:
            gen = torch.Generator().manual_seed(5)
            cot = (torch.randn(coarse.shape, generator=gen), torch.randn(detail.shape, generator=gen))
        ((coarse * cot[0]).sum() + (detail * cot[1]).sum()).backward()
        grads = {n: p.grad.clone() for n, p in G.backbone.synthesis.named_parameters() if p.grad is not None}
        return coarse.detach(), detail.detach(), grads
    fast, plain = run(False), run(True)
    torch.testing.assert_close(fast[0], plain[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast[1], plain[1], rtol=1e-4, atol=1e-4)
    assert fast[2].keys() == plain[2].keys() and any(".b3d" in n or n.startswith("b3d") for n in fast[2])
    for name in plain[2]:
        torch.testing.assert_close(fast[2][name], plain[2][name], rtol=1e-3, atol=1e-3 * plain[2][name].abs().max(),
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_aware3d_gain_scales_both_triplane_outputs():
    """generator.aware3d_gain multiplies the coarse and the detail tri-planes and nothing else; 1 is the reference."""
    from core.build import build_generator
    from core.config import ConfigError
    from tests.conftest import tiny_mimic3d_config
    torch.manual_seed(0)
    G1 = build_generator(tiny_mimic3d_config())
    G2 = build_generator(tiny_mimic3d_config(aware3d_gain=0.25))
    G2.load_state_dict(G1.state_dict())
    ws = G1.mapping(torch.randn(2, G1.z_dim), torch.zeros(2, 25))
    with torch.no_grad():
        c1, d1 = G1.backbone.synthesis(ws, noise_mode="const", detail=True)
        c2, d2 = G2.backbone.synthesis(ws, noise_mode="const", detail=True)
    torch.testing.assert_close(c2, 0.25 * c1)
    torch.testing.assert_close(d2, 0.25 * d1)
    with pytest.raises(ConfigError, match="aware3d_gain"):
        tiny_mimic3d_config(aware3d_gain=0.0)

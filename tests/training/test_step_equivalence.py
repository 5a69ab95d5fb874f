"""The training step's faster evaluations compute the same function as the plain ones (fp32, float tolerance):
multi-tensor EMA, fused Adam, and small generators rendering their whole batch at once without autograd
(the band-matrix blur: tests/training/test_losses.py)."""
from __future__ import annotations

import torch

import core.triplane as triplane
from core.cameras import Camera
from core.triplane import RenderOptions
from training import loop
from training.config import load_config
from training.plumbing import adam, update_ema


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 4))
    net(torch.randn(5, 8))  # BatchNorm running statistics: buffers to copy
    return net


def test_update_ema_equals_the_per_tensor_formula():
    model, ema = _net(), _net()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.train()(torch.randn(7, 8) * 3)  # the buffers differ too
    expect = [pm.detach().lerp(pe, 0.9) for pe, pm in zip(ema.parameters(), model.parameters())]
    update_ema(ema, model, 0.9)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(ema.parameters(), expect))
    assert all(torch.equal(a, b) for a, b in zip(ema.buffers(), model.buffers()))
    update_ema(ema, model, 0.0)  # EMA ramp-up start: a copy
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(ema.parameters(), model.parameters()))


def test_fused_adam_equals_the_per_tensor_loop():
    # no BatchNorm here: the bias before it has a zero gradient up to rounding, whose sign Adam's first step
    # would turn into +-lr
    nets = [torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [adam(nets[0].parameters(), 0.002, (0.0, 0.99), 1e-8),
            torch.optim.Adam(nets[1].parameters(), lr=0.002, betas=(0.0, 0.99), eps=1e-8, foreach=False)]
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        x = torch.randn(6, 8, generator=g)
        for net, opt in zip(nets, opts):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert opts[0].param_groups[0]["fused"]


def test_small_generator_renders_its_batch_at_once_like_one_by_one(monkeypatch):
    """64 px models skip the per-sample loop without autograd (core.triplane._per_sample); same images."""
    cfg = load_config("synth-tiny", ["optim.precision=fp32"])
    G = loop.build_trainer(cfg, 64, torch.device("cpu"), None, seed=0).G_ema
    with torch.no_grad():
        assert not triplane._per_sample(torch.zeros(4, 1, 1), G.img_resolution)
        assert triplane._per_sample(torch.zeros(4, 1, 1), 512)
    ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(2)),
                   Camera.frontal_offset(0.0, 0.0).to_label().repeat(3, 1))
    c = torch.cat([Camera.frontal_offset(0.2 * i - 0.2, 0.0).to_label() for i in range(3)])
    with torch.no_grad():
        batched = G.synthesis(ws, c, RenderOptions(resolution=32))
        single = [G.synthesis(ws[i:i + 1], c[i:i + 1], RenderOptions(resolution=32)) for i in range(3)]
    for key in ("image", "image_raw", "image_depth"):
        assert torch.allclose(batched[key], torch.cat([s[key] for s in single]), atol=1e-5), key

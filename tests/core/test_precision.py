"""The bf16 inference path (core.precision): automatic choice, and bf16 against fp32 on every branch."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.build import build_generator
from core.metrics.fidelity import psnr
from core.model import Model, load_model
from core.precision import cpu_bf16_unit, cpu_flags, resolve
from core.superres import SuperResolution
from core.triplane import RenderOptions
from tests.conftest import require, tiny_mimic3d_config

BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "default.pkl"
CPU = torch.device("cpu")
# a /proc/cpuinfo of a CPU without bfloat16 matrix instructions (AVX2 only) and of one with AVX512-BF16 and AMX
CPUINFO_AVX2 = "processor\t: 0\nmodel name\t: Old Xeon\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
CPUINFO_AMX = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
BF16_MIN_PSNR = 40.0  # dB, unclamped outputs; measured 48-61 dB on the fixtures and the bundled model


def test_auto_falls_back_to_fp32_without_fast_bf16():
    flags = cpu_flags(CPUINFO_AVX2)
    assert "avx2" in flags and cpu_bf16_unit(flags) is None
    choice = resolve("auto", CPU, flags)
    assert choice.precision == "fp32" and "no AMX-BF16 / AVX512-BF16" in choice.reason


def test_auto_picks_bf16_and_names_the_unit():
    assert resolve("auto", CPU, cpu_flags(CPUINFO_AMX)) == resolve("auto", CPU, {"amx_bf16"})
    assert resolve("auto", CPU, cpu_flags(CPUINFO_AMX)).reason == "bf16 (auto: AMX-BF16)"
    assert resolve("auto", CPU, {"avx512_bf16"}).precision == "bf16"
    assert "AVX512-BF16" in resolve("auto", CPU, {"avx512_bf16"}).reason


def test_explicit_choices_and_errors():
    assert resolve("fp32", CPU, {"amx_bf16"}).precision == "fp32"
    slow = resolve("bf16", CPU, set())
    assert slow.precision == "bf16" and "slower than fp32" in slow.reason
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve("fp16", CPU, set())
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve("fp8", CPU, set())


def test_resize_without_a_bf16_kernel_runs_in_float32():
    """The antialiased bilinear resize has no bfloat16 CPU kernel: the SR input resize runs in float32."""
    sr = SuperResolution("2X-64", in_channels=8, w_dim=8)
    x = torch.randn(1, 8, 16, 16).to(torch.bfloat16)
    out = sr.resize_input(x)
    assert out.dtype == torch.float32 and out.shape[-1] == 32


def _render_both(model: Model, branch: str, ws: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    opts = RenderOptions(deterministic=True)
    out = {}
    for p in ("fp32", "bf16"):
        model.set_precision(p)
        with torch.no_grad():
            out[p] = model.render(branch, ws, c, opts, generator=torch.Generator().manual_seed(0))["image"]
    model.set_precision("fp32")
    return out["fp32"], out["bf16"]


def _check(a: torch.Tensor, b: torch.Tensor, bound: float = BF16_MIN_PSNR) -> float:
    assert b.dtype == torch.float32 and torch.isfinite(b).all()
    score = float(psnr(a, b, clamp=False).min())
    if float((a - a.mean()).abs().max()) == 0:  # a constant image (a random network's saturated branch)
        return score
    # bf16 really ran (a no-op path would give identical images) and stays close to fp32
    assert bound < score < 90, score
    return score


def test_bf16_matches_fp32_on_the_eg3d_fixture(eg3d_snapshot):
    G = build_generator(eg3d_snapshot.generator, eg3d_snapshot.G_ema)
    model = Model(G, CPU)
    ws = model.ws_from_seed(0, 0.7)
    _check(*_render_both(model, "sr2d", ws, model.camera_label(0.3, -0.1)))


@pytest.mark.slow
def test_bf16_matches_fp32_on_the_mimic3d_fixture(mimic3d_snapshot):
    G = build_generator(mimic3d_snapshot.generator, mimic3d_snapshot.G_ema)
    model = Model(G, CPU)
    ws = model.ws_from_seed(1, 0.7)
    # This random-weight network is far more sensitive than a trained one: its backbone's bf16 rounding alone
    # costs sr2d 32.6 dB (31.0 dB for the whole bf16 path; the trained bundled Mimic3D model keeps > 50 dB)
    for branch in model.branches:
        _check(*_render_both(model, branch, ws, model.camera_label(-0.2, 0.1)), bound=29.0)


@pytest.mark.slow
def test_bf16_matches_fp32_on_every_branch_of_the_bundled_model():
    model = load_model(require(BUNDLED))
    assert set(model.branches) == {"sr2d", "direct3d", "student"}
    ws = model.ws_from_seed(2, 0.7)
    for branch in model.branches:
        _check(*_render_both(model, branch, ws, model.camera_label(0.25, 0.0)))


def test_bf16_matches_fp32_on_a_tiny_random_model():
    torch.manual_seed(0)
    G = build_generator(tiny_mimic3d_config(), None)
    model = Model(G, CPU)
    ws = model.ws_from_seed(3)
    for branch in model.branches:
        a, b = _render_both(model, branch, ws, model.camera_label(0.1, 0.0))
        _check(a, b)

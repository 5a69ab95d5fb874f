"""Mimic3D two-stage training (training/mimic3d.py, patch_gan.py, imitation.py): presets, patch discriminator,
imitation losses, and a CPU stage-1 -> stage-2 run through the CLI whose snapshot renders ``direct3d``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.__main__ import main as core_main
from core.files.checkpoint import load_snapshot
from core.config import ConfigError
from core.discriminator import DualDiscriminator
from core.metrics.lpips import LPIPS, TRUNK_FILES, LPIPSWeightsError
from training import loop
from training.__main__ import main
from training.config import PRESET_DIR, load_config
from training.imitation import feature_distance, make_imitation_loss
from training.patch_gan import patch_discriminator_config, patch_features, patch_r1, real_patches

from .test_train import _dataset

# A micro Mimic3D for CPU tests: 16 px coarse tri-planes (32 px detail), 16 px rendering and patches, 64 px images.
MICRO = ["generator.z_dim=32", "generator.w_dim=32", "generator.channel_base=512", "generator.channel_max=32",
         "generator.triplane_resolution=16", "generator.triplane_channels=8", "generator.aware3d_res=[4, 8, 16]",
         "generator.rendering.depth_resolution=6", "generator.rendering.depth_resolution_importance=4",
         "discriminator.channel_base=512", "discriminator.channel_max=32", "discriminator.mbstd_group_size=2",
         "patch_discriminator.channel_base=256", "patch_discriminator.channel_max=32",
         "patch_discriminator.mbstd_group_size=2", "loss.neural_rendering_resolution_initial=16",
         "loss.patch_scale=0.25", "optim.batch=2", "optim.batch_gpu=2", "run.grid=[2, 1]", "run.tick_kimg=0.002",
         "data.workers=0"]
STAGE1 = [a for m in MICRO if not m.startswith("loss.patch_scale") for a in ("--set", m)]
STAGE2 = [a for m in MICRO for a in ("--set", m)]
MIMIC3D_PRESETS = sorted(p.stem for p in PRESET_DIR.glob("mimic3d-*.yaml"))


def _stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def stage1(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset, stage-1 snapshot) from one CPU step of the micro stage-1 config."""
    tmp = tmp_path_factory.mktemp("m3d")
    data = _dataset(tmp / "d.zip", n=6)
    out = tmp / "s1"
    assert main(["train", "--config", "mimic3d-stage1-synth-tiny", "--data", str(data), "--outdir", str(out),
                 "--kimg", "0.002", *STAGE1]) == 0
    (snap,) = out.glob("*/network-snapshot-*.pkl")
    return data, snap


# ----------------------------------------------------------------------------------------------------------
# presets


def test_mimic3d_presets_exist_and_pair_up():
    stages = {(n.split("-")[1], n.split("-", 2)[2]) for n in MIMIC3D_PRESETS}
    for data in ("synth-tiny", "synth-64", "ffhq512", "afhq512", "shapenet128"):
        assert ("stage1", data) in stages and ("stage2", data) in stages
        s1, s2 = load_config(f"mimic3d-stage1-{data}"), load_config(f"mimic3d-stage2-{data}")
        assert s1.loss.patch_scale == 1.0 and s1.generator.detail_blocks == 0 and s1.generator.aware3d_res
        assert s2.loss.mimic3d_stage2 and s2.generator.detail_blocks == 2
        # stage 2 is the stage-1 architecture plus the detail blocks, so --init stage1.pkl composes
        assert {**vars(s1.generator), "detail_blocks": 2} == vars(s2.generator)
        assert s1.generator.rendering.plane_convention == "mimic3d"


def test_mimic3d_values_in_official_presets():
    ffhq = load_config("mimic3d-stage2-ffhq512")
    L = ffhq.loss
    assert (L.patch_scale, L.imitation, L.imitation_weight, L.patch_gan, L.gamma_patch) == (0.125, "lpips", 1.0, 0.1, 1.0)
    assert L.density_reg_p_dist == 0.002 and L.neural_rendering_resolution_initial == 64
    assert ffhq.generator.aware3d_res == (4, 8, 16, 32, 64, 128, 256) and ffhq.generator.triplane_resolution == 256
    assert (ffhq.optim.batch, ffhq.optim.dlr, ffhq.run.snap_kimg) == (32, 0.002, 800)
    afhq = load_config("mimic3d-stage2-afhq512")
    assert (afhq.loss.r1_gamma, afhq.loss.gamma_patch, afhq.augment.mode, afhq.loss.patch_scale) == (5.0, 5.0, "ada", 0.125)
    shapenet = load_config("mimic3d-stage2-shapenet128")
    assert (shapenet.loss.patch_scale, shapenet.loss.patch_gan) == (0.5, 0.2)
    assert shapenet.generator.rendering.box_warp == 1.6 and shapenet.generator.rendering.white_back
    for name in ("ffhq512", "afhq512", "shapenet128", "synth-tiny", "synth-64"):  # patches tile the image exactly
        c = load_config(f"mimic3d-stage2-{name}")
        full = {"ffhq512": 512, "afhq512": 512, "shapenet128": 128}.get(name, 64)
        assert c.loss.neural_rendering_resolution_initial / c.loss.patch_scale == full


def test_patch_discriminator_is_mimic3ds_single_discriminator():
    """SingleDiscriminator(c_dim 0) at 64 px: 28 tensors, 26,488,833 parameters (``SeanChenxy/Mimic3D:
    training/dual_discriminator.py``)."""
    cfg = patch_discriminator_config(load_config("mimic3d-stage2-ffhq512").patch_discriminator, 64)
    assert (cfg.c_dim, cfg.dual, cfg.img_resolution) == (0, False, 64)
    D = DualDiscriminator(cfg)
    params = list(D.parameters())
    assert len(params) == 28 and sum(p.numel() for p in params) == 26_488_833
    assert all(getattr(D, f"b{r}").use_fp16 for r in D.block_resolutions)  # fp16 in every block


# ----------------------------------------------------------------------------------------------------------
# patch discriminator and imitation losses


def _tiny_patch_D() -> DualDiscriminator:
    torch.manual_seed(0)
    cfg = load_config("mimic3d-stage2-synth-tiny", MICRO)
    return DualDiscriminator(patch_discriminator_config(cfg.patch_discriminator, 16)).requires_grad_(False)


def test_real_patches_are_crops_at_image_density():
    reals = torch.randn(3, 3, 64, 64)
    patches = real_patches(reals, 16, 0.25, torch.Generator().manual_seed(1))  # [3, 3, 16, 16]
    assert patches.shape == (3, 3, 16, 16)
    for img, patch in zip(reals, patches):
        hits = [(t, s) for t in range(49) for s in range(49) if torch.equal(img[:, t:t + 16, s:s + 16], patch)]
        assert len(hits) == 1
    with pytest.raises(ValueError, match="64"):
        real_patches(torch.randn(1, 3, 32, 32), 16, 0.25)  # a 32 px image is not the 64 px grid of the windows


def test_patch_r1_equals_autograd_and_trains_D():
    D = _tiny_patch_D().requires_grad_(True)
    x = torch.randn(2, 3, 16, 16)
    r1 = patch_r1(D, x)  # [2]
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(D({"image": xg}, None).sum(), [xg])
    torch.testing.assert_close(r1.detach(), g.square().sum(dim=[1, 2, 3]))
    r1.mean().backward()
    grads = {n: p.grad for n, p in D.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert all(grads[f"b16.{k}.weight"].abs().sum() > 0 for k in ("fromrgb", "conv0", "conv1", "skip"))


def test_dpatch_feature_imitation():
    D = _tiny_patch_D()
    loss = make_imitation_loss("dpatch_features", D)
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.allclose(loss(a, a), torch.zeros(2), atol=1e-6)
    d = loss(a, b)
    assert d.shape == (2,) and (d > 0).all()
    torch.testing.assert_close(d, feature_distance(patch_features(D, b), patch_features(D, a)))  # symmetric
    x = a.clone().requires_grad_(True)
    loss(x, b).sum().backward()
    assert x.grad.abs().sum() > 0 and all(p.grad is None for p in D.parameters())  # trains G only
    with pytest.raises(ConfigError, match="patch discriminator"):
        make_imitation_loss("dpatch_features", None)


@pytest.mark.slow
def test_lpips_imitation_needs_weights(tmp_path, monkeypatch, stage1):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    with pytest.raises(LPIPSWeightsError, match=TRUNK_FILES["vgg"]):
        make_imitation_loss("lpips", None)
    # through the CLI: one error line naming the file, exit status 2, no run folder
    data, snap = stage1
    out = tmp_path / "runs"
    assert main(["train", "--config", "mimic3d-stage2-synth-tiny", "--data", str(data), "--outdir", str(out),
                 "--init", str(snap), "--kimg", "0.002", *STAGE2, "--set", "loss.imitation=lpips"]) == 2
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.slow
def test_lpips_imitation_with_a_trunk_file(tmp_path):
    """With trunk weights present (here a seeded random trunk in torchvision's file layout) lpips works and trains
    only the 3D patch."""
    trunk = tmp_path / TRUNK_FILES["vgg"]
    net = LPIPS("vgg", random_trunk=True)
    torch.save({f"features.{k}": v for k, v in net.trunk.features.state_dict().items()}, trunk)
    loss = make_imitation_loss("lpips", None, trunk_weights=str(trunk))
    a = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    b = torch.rand(2, 3, 16, 16) * 2 - 1
    d = loss(a, b)
    torch.testing.assert_close(d, net(a, b))
    d.sum().backward()
    assert a.grad.abs().sum() > 0
    assert torch.allclose(loss(b, b), torch.zeros(2), atol=1e-7)


# ----------------------------------------------------------------------------------------------------------
# stage 2 from stage 1


@pytest.mark.slow
def test_stage2_init_keeps_stage1_weights_and_adds_fresh_detail_blocks(stage1):
    data, snap1 = stage1
    init = load_snapshot(snap1)
    assert init.generator.detail_blocks == 0 and init.D_patch is None
    cfg = load_config("mimic3d-stage2-synth-tiny", MICRO)
    t = loop.build_trainer(cfg, 64, torch.device("cpu"), init=init)
    assert t.G.has_direct3d and t.patch is not None and t.patch.D.cfg.img_resolution == 16
    own = t.G.state_dict()
    fresh = set(own) - set(init.G)
    assert fresh and all(".block2." in k or ".block3." in k for k in fresh)
    assert all(torch.equal(own[k], init.G[k]) for k in init.G if k != "dataset_label_std")
    assert all(torch.equal(t.G_ema.state_dict()[k], init.G_ema[k]) for k in init.G_ema if k != "dataset_label_std")
    assert (t.fade_gpc, t.fade_blur, t.ema_rampup) == (False, False, None)  # Mimic3D resumes without fades
    # a stage-2 config refuses an EG3D model and patches that do not tile the image
    eg3d = dict(vars(init.generator))
    init.generator = type(init.generator)(**{**eg3d, "aware3d_res": ()})
    with pytest.raises(ConfigError, match="aware3d_res"):
        loop.build_trainer(cfg, 64, torch.device("cpu"), init=init)
    with pytest.raises(ConfigError, match="patch_scale"):
        loop.build_trainer(load_config("mimic3d-stage2-synth-tiny", MICRO + ["loss.patch_scale=0.5"]), 64,
                           torch.device("cpu"))


@pytest.mark.slow
def test_stage1_warm_start_from_an_eg3d_model(stage1, tmp_path):
    """--init with an EG3D file and a stage-1 config: EG3D's modules carry over, only the b3d chain is fresh."""
    data, _ = stage1
    eg3d_args = [a for m in MICRO if not m.startswith(("loss.patch_scale", "generator.aware3d_res", "patch_"))
                 for a in ("--set", m)]
    assert main(["train", "--config", "synth-tiny", "--data", str(data), "--outdir", str(tmp_path / "eg3d"),
                 "--kimg", "0.002", *eg3d_args]) == 0
    (snap,) = (tmp_path / "eg3d").glob("*/network-snapshot-*.pkl")
    init = load_snapshot(snap)
    assert not init.generator.aware3d_res and init.generator.rendering.plane_convention == "eg3d"
    t = loop.build_trainer(load_config("mimic3d-stage1-synth-tiny", [m for m in MICRO if "patch_scale" not in m]),
                           64, torch.device("cpu"), init=init)
    assert t.G.cfg.aware3d_res == (4, 8, 16) and t.G.cfg.rendering.plane_convention == "mimic3d"
    own = t.G.state_dict()
    fresh = set(own) - set(init.G)
    assert fresh and all(".b3d" in k for k in fresh)
    assert all(torch.equal(own[k], init.G[k]) for k in init.G if k != "dataset_label_std")
    assert t.patch is None and (t.fade_gpc, t.fade_blur) == (False, False)
    with pytest.raises(ConfigError, match="tri-planes"):
        loop.build_trainer(load_config("mimic3d-stage1-synth-tiny", [m for m in MICRO if "patch_scale" not in m]
                                       + ["generator.triplane_resolution=32", "generator.aware3d_res=[4, 8, 16, 32]"]),
                           64, torch.device("cpu"), init=init)
    out = tmp_path / "s1"
    assert main(["train", "--config", "mimic3d-stage1-synth-tiny", "--data", str(data), "--outdir", str(out),
                 "--init", str(snap), "--kimg", "0.002", *STAGE1]) == 0
    (run,) = out.iterdir()
    assert all(np.isfinite(v) for r in _stats(run) for k, v in r.items() if k.startswith("loss/"))
    assert load_snapshot(next(run.glob("network-snapshot-*.pkl"))).generator.aware3d_res == (4, 8, 16)


@pytest.mark.slow
def test_stage2_smoke_from_stage1_snapshot(stage1, tmp_path, device):
    data, snap1 = stage1
    out = tmp_path / "s2"
    assert main(["train", "--config", "mimic3d-stage2-synth-tiny", "--data", str(data), "--outdir", str(out),
                 "--init", str(snap1), "--kimg", "0.004", "--snap-kimg", "0.002", "--device", str(device),
                 *STAGE2]) == 0
    (run,) = out.iterdir()
    stats = _stats(run)
    keys = {"loss/G", "loss/G_imitation", "loss/G_patch", "loss/Dpatch_fake", "loss/Dpatch_real", "loss/Dpatch_r1",
            "loss/D_r1", "loss/G_density"}
    assert len(stats) == 2 and keys <= set().union(*stats)
    assert all(np.isfinite(v) for r in stats for k, v in r.items() if k.startswith("loss/"))
    snap = sorted(run.glob("network-snapshot-*.pkl"))[-1]
    s = load_snapshot(snap)
    assert s.generator.detail_blocks == 2 and s.D_patch is not None and s.patch_discriminator.c_dim == 0
    assert s.extra["train"]["D_patch_opt"]["state"]
    for branch in ("direct3d", "sr2d"):
        assert core_main(["samples", "--network", str(snap), "--seeds", "0", "--branch", branch, "--save-npz",
                          "--outdir", str(tmp_path / branch), "--device", str(device)]) == 0
        with np.load(tmp_path / branch / "seed0000.npz") as f:
            assert f["image"].shape == (3, 64, 64) and np.isfinite(f["image"]).all()
    # resume continues stage 2 with D_patch and its optimiser restored
    before = {k: v.clone() for k, v in s.D_patch.items()}
    assert main(["train", "--config", "mimic3d-stage2-synth-tiny", "--data", str(data), "--outdir", str(out),
                 "--resume", "auto", "--kimg", "0.006", "--device", str(device), *STAGE2]) == 0
    after = load_snapshot(sorted(run.glob("network-snapshot-*.pkl"))[-1])
    assert [round(r["kimg"], 3) for r in _stats(run)] == [0.002, 0.004, 0.006]
    assert any(not torch.equal(before[k], after.D_patch[k]) for k in before)


def test_stage2_from_an_official_mimic3d_pickle_keeps_its_patch_discriminator(mimic3d_snapshot):
    """--init with a Mimic3D 3D-stage pickle: its generator (with detail tri-planes) and D_patch are fine-tuned."""
    init = mimic3d_snapshot
    cfg = load_config("mimic3d-stage2-synth-tiny", ["loss.neural_rendering_resolution_initial=32",
                                                    "loss.patch_scale=0.25"])
    t = loop.build_trainer(cfg, 128, torch.device("cpu"), init=init)
    assert t.G.cfg == init.generator and t.patch.D.cfg == init.patch_discriminator
    assert all(torch.equal(t.patch.D.state_dict()[k], v) for k, v in init.D_patch.items() if k in t.patch.D.state_dict())
    with pytest.raises(ConfigError, match="32 px"):  # the file's D_patch sees 32 px patches
        loop.build_trainer(load_config("mimic3d-stage2-synth-tiny", ["loss.neural_rendering_resolution_initial=64"]),
                           128, torch.device("cpu"), init=init)

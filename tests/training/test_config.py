"""Strict YAML presets and --set overrides (training/config.py)."""
from __future__ import annotations

import pytest

from core.config import ConfigError
from training.config import PRESET_DIR, TrainConfig, apply_overrides, dump_config, load_config

# training presets; the distill-*.yaml presets have their own schema (tests/training/test_distill.py loads them)
PRESETS = sorted(p.stem for p in PRESET_DIR.glob("*.yaml") if not p.stem.startswith("distill-"))
DISTILL_PRESETS = sorted(p.stem for p in PRESET_DIR.glob("distill-*.yaml"))


def test_expected_presets_exist():
    assert {"synth-tiny", "synth-64", "ffhq512", "afhq512", "shapenet128"} <= set(PRESETS)


def _schemas():
    from training.distill.config import DistillConfig, dump_distill_config, load_distill_config
    return {"train": (load_config, dump_config, TrainConfig),
            "distill": (load_distill_config, dump_distill_config, DistillConfig)}


@pytest.mark.parametrize("kind, name", [("train", n) for n in PRESETS] + [("distill", n) for n in DISTILL_PRESETS])
def test_every_preset_loads_strictly_and_round_trips(kind, name, tmp_path):
    load, dump, cls = _schemas()[kind]
    cfg = load(name)
    assert isinstance(cfg, cls)
    out = tmp_path / "resolved.yaml"
    out.write_text(dump(cfg))
    assert load(out) == cfg


def test_distill_preset_rejects_unknown_overrides_and_names():
    from core.config import ConfigError
    from training.distill.config import load_distill_config

    with pytest.raises(ConfigError, match="unknown key"):
        load_distill_config(DISTILL_PRESETS[0], ["no_such_section.key=1"])
    with pytest.raises(ConfigError, match="distillation presets"):
        load_distill_config("no-such-preset")


def test_eg3d_values_in_official_presets():
    ffhq = load_config("ffhq512")
    assert (ffhq.loss.r1_gamma, ffhq.loss.gpc_reg_prob, ffhq.optim.batch, ffhq.optim.batch_gpu) == (1.0, 0.5, 32, 4)
    assert ffhq.generator.rendering.depth_resolution == 48 and ffhq.generator.rendering.avg_camera_pivot == (0, 0, 0.2)
    assert ffhq.blur_fade_kimg == 200 and ffhq.ema_kimg == 10
    afhq = load_config("afhq512")
    assert (afhq.loss.r1_gamma, afhq.loss.gpc_reg_prob, afhq.augment.mode) == (5.0, 0.8, "ada")
    assert afhq.loss.neural_rendering_resolution_final == 128
    assert afhq.generator.rendering.avg_camera_pivot == (0, 0, -0.06)
    shapenet = load_config("shapenet128")
    r = shapenet.generator.rendering
    assert (r.box_warp, r.white_back, r.ray_start, r.ray_end, r.depth_resolution) == (1.6, True, 0.1, 2.6, 64)
    assert shapenet.loss.r1_gamma == 0.3 and shapenet.loss.gen_pose_cond is False


def test_overrides():
    cfg = load_config("synth-tiny", ["loss.r1_gamma=2.5", "generator.rendering.depth_resolution=16",
                                     "run.grid=[2, 2]", "loss.neural_rendering_resolution_final=null"])
    assert cfg.loss.r1_gamma == 2.5 and cfg.generator.rendering.depth_resolution == 16
    assert cfg.run.grid == (2, 2) and cfg.loss.neural_rendering_resolution_final is None


@pytest.mark.parametrize("override,message", [
    ("loss.r1_gama=2", "unknown key loss.r1_gama"),
    ("nope.x=1", "unknown key nope"),
    ("loss.r1_gamma=fast", "loss.r1_gamma"),
    ("optim.batch=3", "multiple of optim.batch_gpu"),
    ("augment.mode=sometimes", "augment.mode"),
    ("generator.rendering.plane_convention=yz", "plane_convention"),
    ("loss.r1_gamma", "expected key=value"),
    ("loss=3", "loss"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config("synth-tiny", [override])
    assert "\n" not in str(e.value)


def test_unknown_yaml_key_and_bad_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss:\n  r1_gamma: 1\n  gama: 2\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(bad)
    bad.write_text("loss: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    bad.write_text("!!python/object:os.system {}\n")
    with pytest.raises(ConfigError):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.yaml")


def test_apply_overrides_does_not_mutate_input():
    data = {"loss": {"r1_gamma": 1.0}}
    apply_overrides(data, ["loss.r1_gamma=3"])
    assert data == {"loss": {"r1_gamma": 1.0}}


def test_synth_tiny_builds_a_working_generator_and_discriminator():
    import torch

    from core.cameras import Camera
    from core.build import build_discriminator, build_generator
    from core.triplane import RenderOptions
    from training.config import discriminator_config, generator_config

    cfg = load_config("synth-tiny")
    gcfg = generator_config(cfg, 64)
    assert gcfg.sr_kind == "2X-64" and gcfg.neural_rendering_resolution == 32 and gcfg.img_resolution == 64
    G = build_generator(gcfg)
    D = build_discriminator(discriminator_config(cfg, 64))
    c = Camera.frontal_offset([0.2, -0.3, 0.0, 0.1], 0.0).to_label()
    with torch.no_grad():
        out = G(torch.randn(4, 512), c, opts=RenderOptions(depth_resolution=6, depth_resolution_importance=4))
        logits = D(out, c)
    assert out["image"].shape == (4, 3, 64, 64) and out["image_raw"].shape == (4, 3, 32, 32)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    shapenet = generator_config(load_config("shapenet128"), 128)
    assert shapenet.sr_kind == "2X" and shapenet.rendering.c_gen_conditioning_zero is True
    assert shapenet.rendering.gpc_reg_prob is None
    with pytest.raises(ConfigError):
        generator_config(load_config("synth-tiny", ["generator.sr_kind=8XDC"]), 64)

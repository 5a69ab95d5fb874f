"""Trident's own snapshot format: plain data, weights_only loading, bit-identical round trips, strict configs."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from core.cameras import Camera
from core.errors import CheckpointError
from core.files.snapshot import Snapshot
from core.build import build_generator
from core.files.checkpoint import load_generator, load_snapshot, save_snapshot, snapshot_from_modules
from core.config import ConfigError, GeneratorConfig, RenderingConfig, from_dict, to_dict
from core.triplane import RenderOptions


def _render(G, seed=0):
    z = torch.from_numpy(__import__("numpy").random.RandomState(seed).randn(2, G.z_dim))
    c = Camera.frontal_offset([0.3, -0.2], [-0.1, 0.05]).to_label()
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7)
        return G.synthesis(ws, c, RenderOptions(deterministic=True))


@pytest.mark.slow  # > 10 s on the 2-core machine under load; runs in the full suite
def test_roundtrip_eg3d_fixture_is_bit_identical(eg3d_snapshot, eg3d_G, tmp_path):
    path = tmp_path / "model.pkl"
    save_snapshot(path, Snapshot(generator=eg3d_snapshot.generator, G_ema=eg3d_snapshot.G_ema, G=eg3d_snapshot.G,
                                 discriminator=eg3d_snapshot.discriminator, D=eg3d_snapshot.D,
                                 extra={"note": "round trip", "kimg": 12}))
    raw = torch.load(path, weights_only=True)  # the file is plain data
    assert raw["format"] == "trident-snapshot" and raw["version"] == 1
    assert isinstance(raw["generator"], dict) and raw["generator"]["rendering"]["plane_convention"] == "eg3d"
    G2 = load_generator(path)
    a, b = _render(eg3d_G), _render(G2)
    for key in ("image", "image_raw", "image_depth"):
        assert torch.equal(a[key], b[key]), key
    snap = load_snapshot(path)
    assert snap.generator == eg3d_snapshot.generator
    assert snap.discriminator == eg3d_snapshot.discriminator
    assert snap.extra == {"note": "round trip", "kimg": 12}
    for k, v in eg3d_snapshot.D.items():
        assert torch.equal(v, snap.D[k])


def test_random_model_roundtrip(tmp_path):
    torch.manual_seed(1)
    cfg = GeneratorConfig(img_resolution=128, channel_base=512, channel_max=32, triplane_resolution=32,
                          neural_rendering_resolution=16, sr_kind="2X", mapping_layers=3,
                          rendering=RenderingConfig(depth_resolution=6, depth_resolution_importance=4, box_warp=1.6,
                                                    white_back=True, ray_start=0.1, ray_end=2.6,
                                                    avg_camera_radius=1.7, avg_camera_pivot=(0, 0, 0)))
    G = build_generator(cfg)
    save_snapshot(tmp_path / "m.pkl", snapshot_from_modules(G))
    G2 = load_generator(tmp_path / "m.pkl")
    assert G2.cfg == cfg
    a, b = _render(G), _render(G2)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["image_depth"], b["image_depth"])


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, eg3d_snapshot):
    path = tmp_path / "sub" / "m.pkl"
    save_snapshot(path, Snapshot(generator=eg3d_snapshot.generator, G_ema=eg3d_snapshot.G_ema))
    save_snapshot(path, Snapshot(generator=eg3d_snapshot.generator, G_ema=eg3d_snapshot.G_ema))  # overwrite
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pkl"]


def test_wrong_tensor_shape_is_reported(tmp_path, eg3d_snapshot):
    bad = dict(eg3d_snapshot.G_ema)
    key = "decoder.net.0.weight"
    bad[key] = torch.zeros(3, 3)
    save_snapshot(tmp_path / "bad.pkl", Snapshot(generator=eg3d_snapshot.generator, G_ema=bad))
    with pytest.raises(CheckpointError, match="decoder.net.0.weight has shape"):
        load_generator(tmp_path / "bad.pkl")


def test_missing_tensor_is_reported(tmp_path, eg3d_snapshot):
    bad = {k: v for k, v in eg3d_snapshot.G_ema.items() if "b8.conv0.weight" not in k}
    save_snapshot(tmp_path / "bad.pkl", Snapshot(generator=eg3d_snapshot.generator, G_ema=bad))
    with pytest.raises(CheckpointError, match="missing"):
        load_generator(tmp_path / "bad.pkl")


def test_config_dict_roundtrip_and_strictness():
    cfg = GeneratorConfig(rendering=RenderingConfig(ray_start="auto", ray_end="auto"))
    d = to_dict(cfg)
    assert from_dict(GeneratorConfig, d) == cfg
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(GeneratorConfig, {**d, "chanel_base": 3})
    with pytest.raises(ConfigError, match="rendering.box_warp"):
        from_dict(GeneratorConfig, {**d, "rendering": {**d["rendering"], "box_warp": "big"}})
    with pytest.raises(ConfigError, match="plane_convention"):
        from_dict(GeneratorConfig, {**d, "rendering": {**d["rendering"], "plane_convention": "yz"}})
    with pytest.raises(ConfigError):
        RenderingConfig(ray_start="auto", ray_end=3.0)
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict(GeneratorConfig, {**d, "z_dim": 1.5})


def test_precision_switch_runs_bf16_blocks_on_cpu(eg3d_snapshot, eg3d_expected):
    """The fp16-flagged blocks can run in half precision (bf16 on CPU); outputs stay close to fp32."""
    cfg = dataclasses.replace(eg3d_snapshot.generator, sr_num_fp16_res=4)
    G = build_generator(cfg, eg3d_snapshot.G_ema)
    G.set_precision("bf16")
    ws = torch.from_numpy(eg3d_expected["ws_psi070"][:1])
    c = torch.from_numpy(eg3d_expected["c_pose0"][:1])
    with torch.no_grad():
        out = G.synthesis(ws, c)
    assert out["image"].dtype == torch.float32
    err = (out["image"] - torch.from_numpy(eg3d_expected["image_psi070_pose0"][:1])).abs().mean()
    assert 0 < float(err) < 0.05
    with pytest.raises(ValueError):
        G.set_precision("fp8")

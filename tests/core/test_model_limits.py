"""Model files whose settings or structure would hang or exhaust the loader, and render options that cannot render
(issue "Hostile and broken inputs", items 2, 3, 9 and 10; docs/safety.md). In-process and fast; the same inputs
run through the real commands under a memory cap in tests/hostile/test_model_files.py."""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import typing

import numpy as np
import pytest

from core.commands.common import UsageError, bounded_int, finite_float, parse_seeds
from core.config import DiscriminatorConfig, GeneratorConfig
from core.errors import CheckpointError
from core.files.checkpoint import load_snapshot
from core.files.latent_files import LatentFileError, load_latent
from core.files.network_pickle import StubModule, check_object_tree, restricted_load
from core.limits import (DISCRIMINATOR_INT_BOUNDS, GENERATOR_INT_BOUNDS, RENDERING_INT_BOUNDS, STUDENT_INT_BOUNDS,
                         ModelLimitError, estimate_bytes)
from core.student import StudentConfig
from tests.hostile.crafted_models import inflate_record, mimic3d_pickle, trident_payload, write_trident


def refused(path, *needles: str) -> str:
    with pytest.raises(CheckpointError) as info:
        load_snapshot(path)
    msg = str(info.value)
    assert len(msg.splitlines()) == 1, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


# ----------------------------------------------------------------------------------------------------------
# item 2: shared and cyclic object graphs


def test_shared_detail_block_chain_is_refused_at_once(tmp_path):
    """40 detail blocks, each holding the next one twice: 2**40 paths in 16 KB (the loader walked them all)."""
    path = tmp_path / "network.pkl"
    path.write_bytes(mimic3d_pickle(detail_chain=40))
    refused(path, "nested more than 64 levels")


def test_cyclic_detail_block_chain_is_refused(tmp_path):
    path = tmp_path / "network.pkl"
    path.write_bytes(mimic3d_pickle(detail_chain=3, cyclic=True))
    refused(path, "cyclic")


def test_object_tree_bounds():
    leaf: list = []
    shared = leaf
    for _ in range(30):                      # 2**30 paths, 30 levels: within the depth, far beyond the node count
        shared = [shared, shared]
    with pytest.raises(CheckpointError, match="more than 1000 nodes"):
        check_object_tree(shared, max_nodes=1000)
    cyclic = StubModule("SR3DBlock", {"_modules": {}})
    cyclic.state["_modules"]["block2"] = cyclic
    with pytest.raises(CheckpointError, match="cyclic"):
        check_object_tree({"G_ema": cyclic})
    assert check_object_tree({"a": [1, 2, (3, 4)], "b": "x"}) == 10


def test_genuine_pickles_are_far_inside_the_tree_bounds(mimic3d_fixture_dir):
    obj = restricted_load((mimic3d_fixture_dir / "network.pkl").read_bytes())
    assert check_object_tree(obj) < 50_000


# ----------------------------------------------------------------------------------------------------------
# item 3: sizes, memory, special files, inflated records


def _int_fields(cls) -> set[str]:
    hints = typing.get_type_hints(cls)
    return {f.name for f in dataclasses.fields(cls) if hints[f.name] is int}


@pytest.mark.parametrize("cls,bounds", [(GeneratorConfig, GENERATOR_INT_BOUNDS), (DiscriminatorConfig,
                                        DISCRIMINATOR_INT_BOUNDS), (StudentConfig, STUDENT_INT_BOUNDS)])
def test_every_integer_setting_has_a_bound(cls, bounds):
    assert _int_fields(cls) <= set(bounds), f"unbounded sizes: {_int_fields(cls) - set(bounds)}"


def test_every_rendering_integer_has_a_bound():
    from core.config import RenderingConfig
    assert _int_fields(RenderingConfig) <= set(RENDERING_INT_BOUNDS)


@pytest.mark.parametrize("overrides,needle", [
    ({"mapping_layers": 10 ** 6}, "mapping_layers=1000000"),
    ({"w_dim": 10 ** 6}, "w_dim=1000000"),
    ({"decoder_hidden": 10 ** 7}, "decoder_hidden=10000000"),
    ({"triplane_channels": 10 ** 5}, "triplane_channels"),
])
def test_oversized_trident_settings_refused(tmp_path, overrides, needle):
    refused(write_trident(tmp_path / "m.pt", trident_payload(generator=overrides)), needle, "supported")


def test_oversized_eg3d_pickle_settings_refused(tmp_path):
    path = tmp_path / "network.pkl"
    path.write_bytes(mimic3d_pickle(mapping={"num_layers": 10 ** 6}))
    refused(path, "mapping_layers=1000000")
    path.write_bytes(mimic3d_pickle(init={"w_dim": 10 ** 6}))
    refused(path, "w_dim=1000000")


def test_oversized_student_refused(tmp_path):
    path = write_trident(tmp_path / "m.pt", trident_payload(student={"style_dim": 10 ** 6}))
    refused(path, "student.style_dim=1000000")


def test_memory_estimate_refused_with_numbers_and_overridable(tmp_path, monkeypatch):
    big = write_trident(tmp_path / "big.pt", trident_payload(generator={
        "channel_base": 1 << 20, "channel_max": 4096, "triplane_resolution": 512,
        "aware3d_res": [4, 8, 16, 32, 64, 128, 256, 512]}))
    msg = refused(big, "above the limit of 8192 MB", "TRIDENT_MAX_MODEL_MB")
    assert int(msg.split("about ")[1].split(" MB")[0]) > 8192
    small = write_trident(tmp_path / "small.pt", trident_payload())
    monkeypatch.setenv("TRIDENT_MAX_MODEL_MB", "1")
    refused(small, "above the limit of 1 MB")
    monkeypatch.setenv("TRIDENT_MAX_MODEL_MB", "64")
    load_snapshot(small)
    monkeypatch.setenv("TRIDENT_MAX_MODEL_MB", "lots")
    refused(small, "TRIDENT_MAX_MODEL_MB='lots'")


def test_estimate_of_the_fixtures(eg3d_fixture_dir):
    params, work = estimate_bytes(load_snapshot(eg3d_fixture_dir / "network.pkl"))
    assert 4 << 20 < params < 16 << 20 and 32 << 20 < work < 1 << 30


def test_special_files_refused_without_reading(tmp_path):
    fifo = tmp_path / "model.pkl"
    os.mkfifo(fifo)
    refused(fifo, "FIFO")
    refused("/dev/zero", "character device")
    refused(tmp_path, "is a directory")


def test_inflating_record_refused_from_the_directory(tmp_path):
    plain = write_trident(tmp_path / "m.pt", trident_payload())
    bomb = inflate_record(plain, tmp_path / "bomb.pt", inflated_bytes=100 << 20)
    assert bomb.stat().st_size < 1 << 20
    refused(bomb, "inflates to 100 MB", "compressed records are read up to 64 MB")


# ----------------------------------------------------------------------------------------------------------
# item 9: settings that load but cannot render


@pytest.mark.parametrize("generator,rendering,needle", [
    ({"neural_rendering_resolution": 0}, {}, "neural_rendering_resolution=0"),
    ({}, {"box_warp": 0.0}, "rendering.box_warp=0.0 must be positive"),
    ({}, {"depth_resolution_importance": -4}, "rendering.depth_resolution_importance=-4"),
    ({}, {"ray_start": 3.0, "ray_end": 2.0}, "ray_end"),
    ({}, {"avg_camera_radius": float("nan")}, "avg_camera_radius: expected a finite number, got nan"),
])
def test_unrenderable_settings_refused_at_load(tmp_path, generator, rendering, needle):
    refused(write_trident(tmp_path / "m.pt", trident_payload(generator=generator, rendering=rendering)), needle)


# ----------------------------------------------------------------------------------------------------------
# item 10: NaN weights and render options


def test_nan_weights_refused(tmp_path):
    path = write_trident(tmp_path / "m.pt", trident_payload(nan_weight="backbone.mapping.fc0.weight"))
    from core.model import load_model
    with pytest.raises(CheckpointError, match="backbone.mapping.fc0.weight holds NaN"):
        load_model(path)


def test_seed_lists_bounded_before_they_are_built():
    assert parse_seeds("0-3,4294967295") == [0, 1, 2, 3, 2 ** 32 - 1]
    with pytest.raises(UsageError, match="above the largest seed 4294967295"):
        parse_seeds("4294967296")
    with pytest.raises(UsageError, match="too many seeds"):
        parse_seeds("0-300000000")   # refused by counting, not by building a list of 300 million ints
    with pytest.raises(UsageError, match="too many seeds"):
        parse_seeds("0-60000,0-60000")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "0", "180", "abc"])
def test_finite_float_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        finite_float("--fov-deg", 0, 180, lo_open=True, hi_open=True)(text)


def test_option_helpers_accept_and_name_the_option():
    assert finite_float("--yaw")("0.5") == 0.5 and math.isclose(finite_float("--fov-deg", 0, 180)("18.837"), 18.837)
    assert bounded_int("--nrr", 8, 1024)("64") == 64
    with pytest.raises(argparse.ArgumentTypeError, match=r"100000 is not within \[8, 1024\]"):
        bounded_int("--nrr", 8, 1024)("100000")
    from core.commands.common import OneLineParser
    p = OneLineParser(prog="x")
    p.add_argument("--threads", type=bounded_int("--threads", 0, 1024))
    with pytest.raises(SystemExit):
        p.parse_args(["--threads", "-1"])


def test_huge_latent_refused_from_its_header(tmp_path):
    path = tmp_path / "latent.npy"
    with open(path, "wb") as f:   # a sparse 1.6 GB file: only the header is real
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (20000, 20000)})
        f.truncate(f.tell() + 20000 * 20000 * 4)
    with pytest.raises(LatentFileError, match="holds 400000000 values"):
        load_latent(path, 14, 512)


def test_model_limit_error_is_a_checkpoint_error():
    assert issubclass(ModelLimitError, CheckpointError)

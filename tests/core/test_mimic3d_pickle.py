"""Mimic3D network pickles load through the same restricted unpickler: no code runs, unsupported variants refused."""
from __future__ import annotations

import sys

import pytest
import torch

from core.build import build_generator
from core.files.checkpoint import load_snapshot
from core.errors import CheckpointError
from core.files.network_pickle import (StubModule, UnsafePickleError, generator_config_from_stub,
                                       mimic3d_backbone_settings, restricted_load, stub_child)
from tests.core import test_pickle_safety
from tests.core.test_pickle_safety import (PAYLOADS, Call, Glob, _emit, assert_one_line, capture_records, load_refused,
                                           rewrite_pickle)

env = test_pickle_safety.env  # the sentinel / victim-directory fixture of the EG3D pickle-safety tests


@pytest.fixture(scope="module")
def m3d_bytes(mimic3d_fixture_dir) -> bytes:
    return (mimic3d_fixture_dir / "network.pkl").read_bytes()


def _same_snapshot(a, b) -> None:
    assert a.generator == b.generator and a.patch_discriminator == b.patch_discriminator
    for part in ("G_ema", "G", "D", "D_patch"):
        sa, sb = getattr(a, part), getattr(b, part)
        assert sa.keys() == sb.keys(), part
        assert all(torch.equal(sa[k], sb[k]) for k in sa), part


def test_module_src_is_never_executed(env, m3d_bytes, mimic3d_snapshot):
    evil_src = (f"import os, pathlib\npathlib.Path({str(env.sentinel)!r}).write_text('module_src ran')\n"
                f"__import__({env.module!r})\nclass DualTriPlaneGenerator:\n    pass\n")
    exec(compile(evil_src, "<control>", "exec"), {})  # control: this source really leaves a trace
    assert env.fired()
    env.sentinel.unlink()
    sys.modules.pop(env.module, None)
    data, changed = rewrite_pickle(m3d_bytes, "module_src", lambda old: evil_src)
    records = capture_records(data)
    assert changed >= 1 and all(r["module_src"] == evil_src for r in records)
    assert {"DualTriPlaneGenerator", "Aware3DBlock", "SingleDiscriminator"} <= {r["class_name"] for r in records}
    path = env.dir / "network.pkl"
    path.write_bytes(data)
    snap = load_snapshot(path)
    assert not env.fired()
    _same_snapshot(snap, mimic3d_snapshot)


def test_unknown_persistent_class_refused(tmp_path, m3d_bytes):
    data, changed = rewrite_pickle(m3d_bytes, "class_name", lambda old: "Evil3DBlock" if old == "Aware3DBlock" else None)
    assert changed >= 1
    path = tmp_path / "network.pkl"
    path.write_bytes(data)
    load_refused(path, "'Evil3DBlock'", exc=UnsafePickleError)


def test_appended_payload_refused(env, m3d_bytes):
    body, _ = rewrite_pickle(m3d_bytes, drop_stop=True)
    module, name, make_args = PAYLOADS["os.system"]
    evil = bytearray()
    _emit("extra", evil)
    _emit(Call(Glob(module, name), *make_args(env)), evil)
    path = env.dir / "network.pkl"
    path.write_bytes(body + bytes(evil) + b"s.")
    load_refused(path, f"'{module}.{name}'", exc=UnsafePickleError)
    assert not env.fired()


@pytest.fixture(scope="module")
def m3d_tree(m3d_bytes):
    return restricted_load(m3d_bytes)


def clone(node: StubModule) -> StubModule:
    """Copy of a stub tree whose dicts can be edited without touching the original (tensors shared)."""
    state = {k: dict(v) if isinstance(v, dict) else v for k, v in node.state.items()}
    state["_modules"] = {k: clone(v) if isinstance(v, StubModule) else v
                         for k, v in (node.state.get("_modules") or {}).items()}
    new = object.__new__(type(node))
    new.__dict__.update(class_name=node.class_name, state=state)
    return new


@pytest.mark.parametrize("edit,needle", [
    (lambda g: g.state.__setitem__("plane_act", "tanh"), "triplane_act='tanh'"),
    (lambda g: g.state["_init_kwargs"].__setitem__("depth_guided_sample", 4), "depth_guided_sample=4"),
    (lambda g: stub_child(g, "backbone.synthesis").state.__setitem__("aware3d_att", True), "aware3d_att=True"),
    (lambda g: stub_child(g, "backbone.synthesis").state.__setitem__("retidx", [-2, -1]), "retidx"),
    (lambda g: stub_child(g, "backbone.synthesis").state["_modules"].pop("b3d64"), "b3d64"),
])
def test_unsupported_variants_refused(m3d_tree, edit, needle):
    g = clone(m3d_tree["G_ema"])
    edit(g)
    with pytest.raises(CheckpointError) as info:
        generator_config_from_stub(g)
    assert_one_line(info.value, needle)


def test_settings_read_from_the_stored_backbone(m3d_tree):
    g = m3d_tree["G_ema"]
    s = mimic3d_backbone_settings(g, dict(g.state["_init_kwargs"]))
    assert s == {"aware3d_res": (4, 8, 16, 32, 64), "detail_blocks": 2, "const_batch_dim": True}
    # a stage-1 (2D) Mimic3D generator: same class name as EG3D's, recognised by its Mimic3D kwargs
    g1 = clone(g)
    g1.class_name = "TriPlaneGenerator"
    last = stub_child(g1, "backbone.synthesis.b3d64")
    for k in ("block2", "block3"):
        last.state["_modules"].pop(k)
    stub_child(g1, "backbone.synthesis").state["retidx"] = None
    cfg, _ = generator_config_from_stub(g1)
    assert cfg.detail_blocks == 0 and cfg.aware3d_res and cfg.rendering.plane_convention == "mimic3d"
    G = build_generator(cfg)
    assert not G.has_direct3d

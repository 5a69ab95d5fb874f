"""Hostile model files, written byte by byte in the tests (issue "Hostile and broken inputs", items 2, 3, 9, 10).

Every builder returns the bytes of a small file that the model readers must refuse with one line: a Mimic3D-style
network pickle whose detail blocks share one another (a chain of N doubly-referenced levels: 2**N paths), EG3D
pickles and Trident snapshots whose settings ask for huge networks or settings that cannot render, a Trident
snapshot with a compressed record that inflates to a GiB, and one with NaN weights.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from core.config import GeneratorConfig, to_dict
from tests.core.test_pickle_safety import Build, Call, Get, Glob, Put, dumps, persistent

# ----------------------------------------------------------------------------------------------------------
# EG3D / Mimic3D network pickles


def _plain(module: str, name: str, state: dict) -> Build:
    """A module pickled by reference (``copyreg._reconstructor(cls, object, None)`` + BUILD state)."""
    return Build(Call(Glob("copyreg", "_reconstructor"), Glob(module, name), Glob("builtins", "object"), None), state)


def _linear(out_f: int, in_f: int) -> dict:
    return {"_parameters": {"weight": torch.zeros(out_f, in_f), "bias": torch.zeros(out_f)}, "_modules": {}}


def mimic3d_pickle(detail_chain: int = 0, cyclic: bool = False, mapping: dict | None = None,
                   init: dict | None = None, rendering: dict | None = None, decoder_hidden: int = 4) -> bytes:
    """A minimal Mimic3D ``DualTriPlaneGenerator`` (aware3d_res [4, 8], retidx [-3, -1]) as a network pickle.

    ``detail_chain`` > 0: the detail block ``b3d8.block2`` starts a chain of that many blocks, each holding the
    next one twice (``block2`` and ``block3``): a tree of 2**detail_chain paths in a few hundred bytes per level.
    ``cyclic``: the last block of the chain holds the first one again."""
    first_memo = 200
    chain = persistent("SR3DBlock", {})
    if detail_chain:
        # build innermost first: level i references level i+1 (memo first_memo + i + 1) twice
        node = Put(persistent("SR3DBlock", {"_modules": {}}), first_memo + detail_chain)
        for i in range(detail_chain - 1, -1, -1):
            node = Put(persistent("SR3DBlock", {"_modules": {"block2": node, "block3": Get(first_memo + i + 1)}}),
                       first_memo + i)
        chain = node
    b3d8 = persistent("Aware3DBlock", {"_modules": {"block2": chain, "block3": persistent("SR3DBlock", {})}})
    synth = persistent("SynthesisNetwork", {
        "aware3d_res": [4, 8], "retidx": [-3, -1], "img_resolution": 8, "img_channels": 12,
        "_modules": {"b4": persistent("SynthesisBlock", {}), "b3d4": persistent("Aware3DBlock", {}),
                     "b3d8": b3d8}})
    rk = {"image_resolution": 128, "superresolution_module": "training.superresolution.SuperresolutionHybrid2X",
          "depth_resolution": 4, "depth_resolution_importance": 4, "ray_start": 2.25, "ray_end": 3.3,
          "box_warp": 1.0, "avg_camera_radius": 2.7, "avg_camera_pivot": [0, 0, 0.2], "c_gen_conditioning_zero": False,
          "c_scale": 1.0, "superresolution_noise_mode": "none", "density_reg": 0.25, "density_reg_p_dist": 0.004,
          "reg_type": "l1", "decoder_lr_mul": 1.0, "sr_antialias": True, **(rendering or {})}
    kw = {"z_dim": 8, "c_dim": 25, "w_dim": 8, "img_resolution": 128, "img_channels": 3,
          "channel_base": 64, "channel_max": 8, "mapping_kwargs": {"num_layers": 1, **(mapping or {})},
          "rendering_kwargs": rk, "sr_num_fp16_res": 0, "triplane_resolution": 8, "aware3d_res": [4, 8],
          "retidx": [-3, -1], **(init or {})}
    g = persistent("DualTriPlaneGenerator", {
        "_init_kwargs": kw, "neural_rendering_resolution": 16, "rendering_kwargs": rk,
        "_modules": {"backbone": persistent("Generator", {"_modules": {"synthesis": synth}}),
                     "decoder": _plain("training.triplane", "OSGDecoder", {"_modules": {"net": _plain(
                         "torch.nn.modules.container", "Sequential", {"_modules": {
                             "0": persistent("FullyConnectedLayer", _linear(decoder_hidden, 32)),
                             "2": persistent("FullyConnectedLayer", _linear(33, decoder_hidden))}})}}),
                     "superresolution": persistent("SuperresolutionHybrid2X", {})}})
    top = {"G_ema": g, "G": None, "D": None, "augment_pipe": None}
    if cyclic and detail_chain:  # BUILD gives the last block a new state that holds the first block: a cycle
        top["augment_pipe"] = Build(Get(first_memo + detail_chain), {"_modules": {"block2": Get(first_memo)}})
    return dumps(top)


# ----------------------------------------------------------------------------------------------------------
# Trident snapshots


def trident_payload(generator: dict | None = None, rendering: dict | None = None, student: dict | None = None,
                    nan_weight: str | None = None) -> dict:
    """The payload of a tiny Trident snapshot (the random tiny Mimic3D generator of the tests) with its generator
    settings overridden by ``generator`` / ``rendering``, an ``extra['student']`` entry with config ``student``, and
    ``nan_weight``: the name of a G_ema tensor whose first value is set to NaN."""
    from core.build import build_generator
    from tests.conftest import tiny_mimic3d_config

    torch.manual_seed(0)
    cfg = tiny_mimic3d_config()
    G = build_generator(cfg)
    state = {k: v.clone() for k, v in G.state_dict().items()}
    if nan_weight is not None:
        state[nan_weight].view(-1)[0] = float("nan")
    gen = to_dict(cfg)
    gen.update(generator or {})
    gen["rendering"].update(rendering or {})
    extra: dict = {}
    if student is not None:
        extra["student"] = {"config": student, "state": {}}
    return {"format": "trident-snapshot", "version": 1, "generator": gen, "G_ema": state, "G": None,
            "discriminator": None, "D": None, "patch_discriminator": None, "D_patch": None, "extra": extra}


def write_trident(path: Path, payload: dict) -> Path:
    """``torch.save`` a payload as-is (no validation): what a hostile or damaged Trident file can hold."""
    with open(path, "wb") as f:
        torch.save(payload, f)
    return path


def inflate_record(path: Path, out: Path, inflated_bytes: int = 1 << 30) -> Path:
    """Copy the Trident file ``path`` to ``out`` with its largest tensor record replaced by a deflated record of
    ``inflated_bytes`` zeros (about 1 MB on disk for 1 GiB): the zip directory declares its true size."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        infos = src.infolist()
        target = max((i for i in infos if "/data/" in i.filename), key=lambda i: i.file_size)
        for info in infos:
            if info.filename != target.filename:
                dst.writestr(info, src.read(info.filename), compress_type=zipfile.ZIP_STORED)
                continue
            chunk = bytes(1 << 20)
            record = zipfile.ZipInfo(info.filename)
            record.compress_type = zipfile.ZIP_DEFLATED
            with dst.open(record, "w", force_zip64=True) as w:
                for _ in range(inflated_bytes >> 20):
                    w.write(chunk)
    return out

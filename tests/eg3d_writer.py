"""Write Trident networks as EG3D network-snapshot pickles (test helper; never used by the product).

The output mimics what EG3D's training loop writes (``network-snapshot-XXXXXX.pkl``, see ``NVlabs/eg3d:
eg3d/training/training_loop.py`` and
the reference fixture ``eg3d_ffhq128/network.pkl``):

* a dict ``{'training_set_kwargs', 'G', 'D', 'G_ema', 'augment_pipe'}``;
* every persistent network is the call ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
  ``meta = {type: 'class', version: 6, module_src, class_name, state}`` and ``state`` an ``nn.Module.__dict__``
  (``training``, ``_parameters``, ``_buffers``, ``_non_persistent_buffers_set``, hook dicts, ``_modules``, then
  the class's own attributes, ``_init_args`` and ``_init_kwargs``);
* non-persistent modules are pickled by reference: ``training.triplane.OSGDecoder``,
  ``training.volumetric_rendering.{renderer.ImportanceRenderer, ray_sampler.RaySampler,
  ray_marcher.MipRayMarcher2}``, ``torch.nn.modules.container.Sequential``, ``torch.nn.modules.activation.Softplus``;
* tensors are pickled the way plain ``pickle`` pickles torch tensors and parameters.

The EG3D layout (class names, module paths, which tensors live where) is written out explicitly below from the
*EG3D* constructor logic and the configs, and the tensors are taken by name from the Trident ``state_dict``; a
Trident tensor without an EG3D counterpart (or the reverse) raises, so the writer is itself a naming check.

To make ``pickle`` emit the module-qualified globals without the EG3D code, throwaway ``types.ModuleType``
objects are registered in ``sys.modules`` only while pickling (:func:`_fake_eg3d_modules`), then removed again.
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

PERSISTENCE_VERSION = 6
MODULE_SRC = "# not executed\n"

SR_CLASS_BY_KIND = {
    "2X": "SuperresolutionHybrid2X",
    "4X": "SuperresolutionHybrid4X",
    "DeepFP32": "SuperresolutionHybridDeepfp32",
    "8X": "SuperresolutionHybrid8X",
    "8XDC": "SuperresolutionHybrid8XDC",
}
# EG3D superresolution.py: (out_channels, resolution, upsample) of block0/block1, input resolution, top-level
# resample_filter buffer.
SR_LAYOUT = {
    "2X": (((128, 64, False), (64, 128, True)), 64, True),
    "4X": (((128, 128, False), (64, 256, True)), 128, True),
    "DeepFP32": (((128, 128, False), (64, 256, True)), 128, True),
    "8X": (((128, 256, True), (64, 512, True)), 128, True),
    "8XDC": (((256, 256, True), (128, 512, True)), 128, False),
}
EG3D_SR_W_DIM = 512  # EG3D's SR modules hard-code w_dim=512


# ----------------------------------------------------------------------------------------------------------
# stand-ins that pickle under EG3D's global names


def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its *name* is pickled
    raise RuntimeError("stand-in for torch_utils.persistence._reconstruct_persistent_obj; never called")


class PersistentRecord:
    """Pickles as ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` (STACK_GLOBAL + TUPLE1 + REDUCE)."""

    def __init__(self, class_name: str, state: dict, module_src: str = MODULE_SRC):
        self.class_name, self.state, self.module_src = class_name, state, module_src

    def __reduce__(self):
        meta = dict(type="class", version=PERSISTENCE_VERSION, module_src=self.module_src,
                    class_name=self.class_name, state=self.state)
        return _reconstruct_persistent_obj, (meta,)


def _plain_class(module: str, name: str) -> type:
    """A class whose instances pickle by reference as ``module.name`` (NEWOBJ + BUILD with ``__dict__``)."""
    return type(name, (), {"__module__": module, "__qualname__": name})


OSGDecoder = _plain_class("training.triplane", "OSGDecoder")
ImportanceRenderer = _plain_class("training.volumetric_rendering.renderer", "ImportanceRenderer")
RaySampler = _plain_class("training.volumetric_rendering.ray_sampler", "RaySampler")
MipRayMarcher2 = _plain_class("training.volumetric_rendering.ray_marcher", "MipRayMarcher2")


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (older EG3D pickles hold keyword dicts of this class)."""


EasyDict.__module__ = "dnnlib.util"
EasyDict.__qualname__ = "EasyDict"
_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
_reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"

_FAKE_MODULE_CONTENT: dict[str, dict[str, Any]] = {
    "torch_utils": {},
    "torch_utils.persistence": {"_reconstruct_persistent_obj": _reconstruct_persistent_obj},
    "dnnlib": {},
    "dnnlib.util": {"EasyDict": EasyDict},
    "training": {},
    "training.triplane": {"OSGDecoder": OSGDecoder},
    "training.volumetric_rendering": {},
    "training.volumetric_rendering.renderer": {"ImportanceRenderer": ImportanceRenderer},
    "training.volumetric_rendering.ray_sampler": {"RaySampler": RaySampler},
    "training.volumetric_rendering.ray_marcher": {"MipRayMarcher2": MipRayMarcher2},
}


@contextlib.contextmanager
def _fake_eg3d_modules():
    """Register throwaway modules under EG3D's names while pickling; restore ``sys.modules`` afterwards."""
    missing = object()
    saved = {name: sys.modules.get(name, missing) for name in _FAKE_MODULE_CONTENT}
    try:
        for name, content in _FAKE_MODULE_CONTENT.items():
            mod = types.ModuleType(name)
            mod.__dict__.update(content)
            sys.modules[name] = mod
        for name in _FAKE_MODULE_CONTENT:  # parent.child attributes, as a real import would set
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, sys.modules[name])
        yield
    finally:
        for name, old in saved.items():
            if old is missing:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


# ----------------------------------------------------------------------------------------------------------
# module-state records


def _module_state() -> dict:
    """The ``nn.Module.__dict__`` skeleton of the running torch version (fresh containers)."""
    base = torch.nn.Module().__dict__
    state = {}
    for k, v in base.items():
        if isinstance(v, OrderedDict):
            state[k] = OrderedDict()
        elif isinstance(v, dict):
            state[k] = {}
        elif isinstance(v, set):
            state[k] = set()
        else:
            state[k] = copy.copy(v)
    state["training"] = False
    state["_parameters"] = OrderedDict()
    state["_buffers"] = OrderedDict()
    state["_modules"] = OrderedDict()
    return state


def _resample_filter() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f)
    return f / f.sum()


def _num(x: float | int | None):
    """EG3D stores conv_clamp as given (an int 256) or None."""
    if x is None:
        return None
    return int(x) if float(x).is_integer() else float(x)


class _Tensors:
    """Takes Trident tensors by their (EG3D) state-dict name; remembers what was used."""

    def __init__(self, state_dict: dict[str, torch.Tensor], what: str):
        self.sd = dict(state_dict)
        self.what = what

    def param(self, name: str) -> torch.nn.Parameter:
        return torch.nn.Parameter(self.buffer(name), requires_grad=False)

    def buffer(self, name: str) -> torch.Tensor:
        if name not in self.sd:
            raise KeyError(f"{self.what}: Trident has no tensor {name!r} where EG3D has one")
        return self.sd.pop(name).detach().to("cpu", torch.float32).clone()

    def finish(self, allowed_leftovers: tuple[str, ...] = ()) -> None:
        left = sorted(k for k in self.sd if k not in allowed_leftovers)
        if left:
            raise KeyError(f"{self.what}: Trident tensors without an EG3D counterpart: {left[:5]}")


def _record(class_name: str, params: dict, buffers: dict, modules: dict, attrs: dict, init_args: tuple = (),
            init_kwargs: dict | None = None) -> PersistentRecord:
    st = _module_state()
    st["_parameters"].update(params)
    st["_buffers"].update(buffers)
    st["_modules"].update(modules)
    st.update(attrs)
    st["_init_args"] = tuple(init_args)
    st["_init_kwargs"] = dict(init_kwargs or {})
    return PersistentRecord(class_name, st)


def _plain(cls: type, modules: dict | None = None, attrs: dict | None = None) -> Any:
    obj = cls.__new__(cls)
    st = _module_state()
    st["_modules"].update(modules or {})
    st.update(attrs or {})
    obj.__dict__.update(st)
    return obj


def _torch_module(cls: type, modules: dict | None = None, attrs: dict | None = None) -> torch.nn.Module:
    """A real torch module (pickled by reference under its torch name) holding our child records."""
    return _plain(cls, modules, attrs)


# --- StyleGAN2 layers (networks_stylegan2.py) --------------------------------------------------------------


def fully_connected(t: _Tensors, prefix: str, activation: str = "linear", lr_multiplier: float = 1,
                    bias_init: float | None = None, init_kwargs: dict | None = None) -> PersistentRecord:
    w = t.param(prefix + "weight")
    params = OrderedDict(weight=w)
    if prefix + "bias" in t.sd:
        params["bias"] = t.param(prefix + "bias")
    out_f, in_f = w.shape
    if init_kwargs is None:
        init_kwargs = {}
        if bias_init is not None:
            init_kwargs["bias_init"] = bias_init
        if activation != "linear":
            init_kwargs["activation"] = activation
        if lr_multiplier != 1:
            init_kwargs["lr_multiplier"] = lr_multiplier
    attrs = dict(in_features=int(in_f), out_features=int(out_f), activation=activation,
                 weight_gain=np.float64(lr_multiplier / np.sqrt(in_f)), bias_gain=lr_multiplier)
    if "bias" not in params:
        attrs["bias"] = None
    return _record("FullyConnectedLayer", params, {}, {}, attrs, (int(in_f), int(out_f)), init_kwargs)


def synthesis_layer(t: _Tensors, prefix: str, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: int,
                    conv_clamp) -> PersistentRecord:
    affine = fully_connected(t, prefix + "affine.", bias_init=1)
    params = OrderedDict(weight=t.param(prefix + "weight"), noise_strength=t.param(prefix + "noise_strength"),
                         bias=t.param(prefix + "bias"))
    buffers = OrderedDict(resample_filter=_resample_filter(), noise_const=t.buffer(prefix + "noise_const"))
    kw = dict(w_dim=w_dim, resolution=resolution)
    if up != 1:
        kw.update(up=up, resample_filter=[1, 3, 3, 1])
    kw.update(conv_clamp=_num(conv_clamp), channels_last=False)
    attrs = dict(in_channels=in_ch, out_channels=out_ch, w_dim=w_dim, resolution=resolution, up=up, use_noise=True,
                 activation="lrelu", conv_clamp=_num(conv_clamp), padding=1, act_gain=np.float64(math.sqrt(2)))
    return _record("SynthesisLayer", params, buffers, OrderedDict(affine=affine), attrs, (in_ch, out_ch), kw)


def torgb_layer(t: _Tensors, prefix: str, in_ch: int, out_ch: int, w_dim: int, conv_clamp) -> PersistentRecord:
    affine = fully_connected(t, prefix + "affine.", bias_init=1)
    params = OrderedDict(weight=t.param(prefix + "weight"), bias=t.param(prefix + "bias"))
    attrs = dict(in_channels=in_ch, out_channels=out_ch, w_dim=w_dim, conv_clamp=_num(conv_clamp),
                 weight_gain=np.float64(1 / np.sqrt(in_ch)))
    kw = dict(w_dim=w_dim, conv_clamp=_num(conv_clamp), channels_last=False)
    return _record("ToRGBLayer", params, {}, OrderedDict(affine=affine), attrs, (in_ch, out_ch), kw)


def synthesis_block(t: _Tensors, prefix: str, in_ch: int, out_ch: int, w_dim: int, resolution: int,
                    img_channels: int, is_last: bool, use_fp16: bool, conv_clamp, upsample: bool = True,
                    block_conv_clamp_kwarg: bool = False) -> PersistentRecord:
    params, modules = OrderedDict(), OrderedDict()
    if in_ch == 0:
        params["const"] = t.param(prefix + "const")
    else:
        modules["conv0"] = synthesis_layer(t, prefix + "conv0.", in_ch, out_ch, w_dim, resolution,
                                           up=2 if upsample else 1, conv_clamp=conv_clamp)
    modules["conv1"] = synthesis_layer(t, prefix + "conv1.", out_ch, out_ch, w_dim, resolution, 1, conv_clamp)
    modules["torgb"] = torgb_layer(t, prefix + "torgb.", out_ch, img_channels, w_dim, conv_clamp)
    attrs = dict(in_channels=in_ch, w_dim=w_dim, resolution=resolution, img_channels=img_channels, is_last=is_last,
                 architecture="skip", use_fp16=use_fp16, channels_last=False, fused_modconv_default="inference_only",
                 num_conv=len([m for m in modules if m.startswith("conv")]), num_torgb=1)
    kw = dict(w_dim=w_dim, resolution=resolution, img_channels=img_channels, is_last=is_last, use_fp16=use_fp16)
    if block_conv_clamp_kwarg:
        kw["conv_clamp"] = _num(conv_clamp)
    kw["fused_modconv_default"] = "inference_only"
    return _record("SynthesisBlock" if upsample else "SynthesisBlockNoUp", params,
                   OrderedDict(resample_filter=_resample_filter()), modules, attrs, (in_ch, out_ch), kw)


def mapping_network(t: _Tensors, prefix: str, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None,
                    num_layers: int, w_avg_beta: float | None, init_kwargs: dict) -> PersistentRecord:
    modules = OrderedDict()
    if c_dim > 0:
        modules["embed"] = fully_connected(t, prefix + "embed.")
    for i in range(num_layers):
        modules[f"fc{i}"] = fully_connected(t, prefix + f"fc{i}.", activation="lrelu", lr_multiplier=0.01)
    buffers = OrderedDict()
    if num_ws is not None and w_avg_beta is not None:
        buffers["w_avg"] = t.buffer(prefix + "w_avg")
    attrs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers, w_avg_beta=w_avg_beta)
    return _record("MappingNetwork", {}, buffers, modules, attrs, (), init_kwargs)


def conv2d_layer(t: _Tensors, prefix: str, kernel_size: int, activation: str = "linear", down: int = 1,
                 bias: bool = True, conv_clamp=None, init_kwargs: dict | None = None) -> PersistentRecord:
    w = t.param(prefix + "weight")
    out_ch, in_ch = int(w.shape[0]), int(w.shape[1])
    assert w.shape[2] == w.shape[3] == kernel_size, f"{prefix}weight: expected a {kernel_size}x{kernel_size} kernel"
    params = OrderedDict(weight=w)
    if bias:
        params["bias"] = t.param(prefix + "bias")
    attrs = dict(in_channels=in_ch, out_channels=out_ch, activation=activation, up=1, down=down,
                 conv_clamp=_num(conv_clamp), padding=kernel_size // 2,
                 weight_gain=np.float64(1 / np.sqrt(in_ch * kernel_size ** 2)),
                 act_gain=np.float64(math.sqrt(2)) if activation == "lrelu" else 1)
    if not bias:
        attrs["bias"] = None
    return _record("Conv2dLayer", params, OrderedDict(resample_filter=_resample_filter()), {}, attrs,
                   (in_ch, out_ch), init_kwargs or {})


# --- generator ---------------------------------------------------------------------------------------------


def _kwdict(d: dict, easydict: bool) -> dict:
    return EasyDict(d) if easydict else dict(d)


def rendering_kwargs_of(cfg) -> dict:
    """EG3D ``rendering_kwargs`` (train.py order) of a Trident GeneratorConfig."""
    r = cfg.rendering
    rk = {
        "image_resolution": cfg.img_resolution,
        "disparity_space_sampling": r.disparity_space_sampling,
        "clamp_mode": r.clamp_mode,
        "superresolution_module": f"training.superresolution.{SR_CLASS_BY_KIND[cfg.sr_kind]}",
        "c_gen_conditioning_zero": r.c_gen_conditioning_zero,
        "gpc_reg_prob": r.gpc_reg_prob,
        "c_scale": r.c_scale,
        "superresolution_noise_mode": r.superresolution_noise_mode,
        "density_reg": r.density_reg,
        "density_reg_p_dist": r.density_reg_p_dist,
        "reg_type": r.reg_type,
        "decoder_lr_mul": r.decoder_lr_mul,
        "sr_antialias": r.sr_antialias,
        "depth_resolution": r.depth_resolution,
        "depth_resolution_importance": r.depth_resolution_importance,
        "ray_start": r.ray_start,
        "ray_end": r.ray_end,
        "box_warp": int(r.box_warp) if float(r.box_warp).is_integer() else r.box_warp,
        "avg_camera_radius": r.avg_camera_radius,
        "avg_camera_pivot": [v for v in r.avg_camera_pivot],
    }
    if r.white_back:
        rk["white_back"] = True
    if r.density_noise:
        rk["density_noise"] = r.density_noise
    return rk


def generator_record(G, easydict: bool = False, include_label_std: bool = True,
                     init_kwargs_override: dict | None = None) -> PersistentRecord:
    """EG3D ``TriPlaneGenerator`` record of a Trident TriPlaneGenerator."""
    cfg = G.cfg
    if cfg.rendering.plane_convention != "eg3d" or cfg.const_batch_dim:
        raise ValueError("only EG3D-convention generators can be written as EG3D pickles")
    t = _Tensors(G.state_dict(), "G")
    tri_res, tri_img_ch = cfg.triplane_resolution, 3 * cfg.triplane_channels
    w_dim, z_dim, c_dim = cfg.w_dim, cfg.z_dim, cfg.c_dim
    clamp = cfg.conv_clamp

    # renderer and ray sampler: no tensors, just EG3D's attributes
    plane_axes = torch.tensor([[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                               [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
                               [[0, 0, 1], [1, 0, 0], [0, 1, 0]]], dtype=torch.float32)
    renderer = _plain(ImportanceRenderer, OrderedDict(ray_marcher=_plain(MipRayMarcher2)), {"plane_axes": plane_axes})
    ray_sampler = _plain(RaySampler, attrs=dict(ray_origins_h=None, ray_directions=None, depths=None,
                                                image_coords=None, rendering_options=None))

    # backbone: StyleGAN2 Generator at tri_res with 3 x C channels
    log2 = int(np.log2(tri_res))
    block_res = [2 ** i for i in range(2, log2 + 1)]
    ch = {res: min(cfg.channel_base // res, cfg.channel_max) for res in block_res}
    fp16_res = max(2 ** (log2 + 1 - cfg.num_fp16_res), 8)
    blocks, num_ws = OrderedDict(), 0
    for res in block_res:
        in_ch = ch[res // 2] if res > 4 else 0
        blk = synthesis_block(t, f"backbone.synthesis.b{res}.", in_ch, ch[res], w_dim, res, tri_img_ch,
                              is_last=(res == tri_res), use_fp16=res >= fp16_res, conv_clamp=clamp)
        blocks[f"b{res}"] = blk
        num_ws += blk.state["num_conv"]
    num_ws += 1
    synth_kw = dict(w_dim=w_dim, img_resolution=tri_res, img_channels=tri_img_ch, channel_base=cfg.channel_base,
                    channel_max=cfg.channel_max, fused_modconv_default="inference_only",
                    num_fp16_res=cfg.num_fp16_res, conv_clamp=_num(clamp))
    synthesis = _record("SynthesisNetwork", {}, {}, blocks,
                        dict(w_dim=w_dim, img_resolution=tri_res, img_resolution_log2=log2, img_channels=tri_img_ch,
                             num_fp16_res=cfg.num_fp16_res, block_resolutions=block_res, num_ws=num_ws), (), synth_kw)
    mapping = mapping_network(t, "backbone.mapping.", z_dim, c_dim, w_dim, num_ws, cfg.mapping_layers, 0.998,
                              dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws,
                                   num_layers=cfg.mapping_layers))
    mapping_kwargs = _kwdict({"num_layers": cfg.mapping_layers}, easydict)
    backbone_kw = dict(img_resolution=tri_res, img_channels=tri_img_ch, mapping_kwargs=copy.deepcopy(mapping_kwargs),
                       channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                       fused_modconv_default="inference_only", num_fp16_res=cfg.num_fp16_res, conv_clamp=_num(clamp))
    backbone = _record("Generator", {}, {}, OrderedDict(synthesis=synthesis, mapping=mapping),
                       dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=tri_res, img_channels=tri_img_ch,
                            num_ws=num_ws), (z_dim, c_dim, w_dim), backbone_kw)

    # super-resolution
    plan, in_res, has_filter = SR_LAYOUT[cfg.sr_kind]
    sr_fp16 = cfg.sr_num_fp16_res > 0 and cfg.sr_kind != "DeepFP32"
    sr_clamp = 256 if sr_fp16 else None
    sr_blocks, cin = OrderedDict(), cfg.decoder_output_dim
    for i, (cout, res, up) in enumerate(plan):
        sr_blocks[f"block{i}"] = synthesis_block(t, f"superresolution.block{i}.", cin, cout, EG3D_SR_W_DIM, res,
                                                 cfg.img_channels, is_last=(i == len(plan) - 1), use_fp16=sr_fp16,
                                                 conv_clamp=sr_clamp, upsample=up, block_conv_clamp_kwarg=True)
        cin = cout
    sr_kwargs = _kwdict(dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                             fused_modconv_default="inference_only"), easydict)
    sr_init = dict(channels=cfg.decoder_output_dim, img_resolution=cfg.img_resolution,
                   sr_num_fp16_res=cfg.sr_num_fp16_res, sr_antialias=cfg.rendering.sr_antialias, **sr_kwargs)
    superresolution = _record(SR_CLASS_BY_KIND[cfg.sr_kind], {},
                              OrderedDict(resample_filter=_resample_filter()) if has_filter else OrderedDict(),
                              sr_blocks, dict(input_resolution=in_res, sr_antialias=cfg.rendering.sr_antialias),
                              (), sr_init)

    # decoder: OSGDecoder -> Sequential(FC, Softplus, FC)
    lr_mul = cfg.rendering.decoder_lr_mul
    fc_kw = {"lr_multiplier": lr_mul}
    net = _torch_module(torch.nn.Sequential, OrderedDict([
        ("0", fully_connected(t, "decoder.net.0.", lr_multiplier=lr_mul, init_kwargs=dict(fc_kw))),
        ("1", torch.nn.Softplus().eval()),
        ("2", fully_connected(t, "decoder.net.2.", lr_multiplier=lr_mul, init_kwargs=dict(fc_kw))),
    ]))
    decoder = _plain(OSGDecoder, OrderedDict(net=net), {"hidden_dim": cfg.decoder_hidden})

    buffers = OrderedDict()
    if include_label_std:
        buffers["dataset_label_std"] = t.buffer("dataset_label_std")
    t.finish(allowed_leftovers=("dataset_label_std",))

    rk = rendering_kwargs_of(cfg)
    init_kwargs = dict(z_dim=z_dim, w_dim=w_dim, c_dim=c_dim, img_resolution=cfg.img_resolution,
                       img_channels=cfg.img_channels, sr_num_fp16_res=cfg.sr_num_fp16_res,
                       mapping_kwargs=mapping_kwargs, rendering_kwargs=copy.deepcopy(rk), sr_kwargs=sr_kwargs,
                       channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                       fused_modconv_default="inference_only", num_fp16_res=cfg.num_fp16_res, conv_clamp=_num(clamp))
    init_kwargs.update(init_kwargs_override or {})
    attrs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=cfg.img_resolution,
                 img_channels=cfg.img_channels, neural_rendering_resolution=cfg.neural_rendering_resolution,
                 rendering_kwargs=rk, _last_planes=None)
    modules = OrderedDict(renderer=renderer, ray_sampler=ray_sampler, backbone=backbone,
                          superresolution=superresolution, decoder=decoder)
    return _record("TriPlaneGenerator", {}, buffers, modules, attrs, (), init_kwargs)


# --- discriminator -----------------------------------------------------------------------------------------


def discriminator_record(D, init_kwargs_override: dict | None = None, easydict: bool = False) -> PersistentRecord:
    """EG3D ``DualDiscriminator`` record of a Trident DualDiscriminator."""
    cfg = D.cfg
    if not cfg.dual:
        raise ValueError("only dual discriminators are written")
    t = _Tensors(D.state_dict(), "D")
    img_ch = cfg.img_channels * 2
    log2 = int(np.log2(cfg.img_resolution))
    block_res = [2 ** i for i in range(log2, 2, -1)]
    ch = {res: min(cfg.channel_base // res, cfg.channel_max) for res in block_res + [4]}
    fp16_res = max(2 ** (log2 + 1 - cfg.num_fp16_res), 8)
    cmap_dim = ch[4] if cfg.cmap_dim is None else cfg.cmap_dim
    if cfg.c_dim == 0:
        cmap_dim = 0
    clamp = cfg.conv_clamp
    modules, layer_idx = OrderedDict(), 0
    for res in block_res:
        in_ch = ch[res] if res < cfg.img_resolution else 0
        tmp, out = ch[res], ch[res // 2]
        use_fp16 = res >= fp16_res
        p = f"b{res}."
        children = OrderedDict()
        conv_kw = dict(activation="lrelu", trainable=True, conv_clamp=_num(clamp), channels_last=False)
        if in_ch == 0:
            children["fromrgb"] = conv2d_layer(t, p + "fromrgb.", 1, "lrelu", conv_clamp=clamp,
                                               init_kwargs=dict(kernel_size=1, **conv_kw))
        children["conv0"] = conv2d_layer(t, p + "conv0.", 3, "lrelu", conv_clamp=clamp,
                                         init_kwargs=dict(kernel_size=3, **conv_kw))
        children["conv1"] = conv2d_layer(t, p + "conv1.", 3, "lrelu", down=2, conv_clamp=clamp,
                                         init_kwargs=dict(kernel_size=3, activation="lrelu", down=2, trainable=True,
                                                          resample_filter=[1, 3, 3, 1], conv_clamp=_num(clamp),
                                                          channels_last=False))
        children["skip"] = conv2d_layer(t, p + "skip.", 1, down=2, bias=False,
                                        init_kwargs=dict(kernel_size=1, bias=False, down=2, trainable=True,
                                                         resample_filter=[1, 3, 3, 1], channels_last=False))
        num_layers = len(children)
        modules[f"b{res}"] = _record(
            "DiscriminatorBlock", {}, OrderedDict(resample_filter=_resample_filter()), children,
            dict(in_channels=in_ch, resolution=res, img_channels=img_ch, first_layer_idx=layer_idx,
                 architecture="resnet", use_fp16=use_fp16, channels_last=False, num_layers=num_layers),
            (in_ch, tmp, out), dict(resolution=res, first_layer_idx=layer_idx, use_fp16=use_fp16,
                                    img_channels=img_ch, architecture="resnet", conv_clamp=_num(clamp)))
        layer_idx += num_layers
    mapping_kwargs = {} if cfg.mapping_layers == 8 else {"num_layers": cfg.mapping_layers}
    if cfg.c_dim > 0:
        modules["mapping"] = mapping_network(t, "mapping.", 0, cfg.c_dim, cmap_dim, None, cfg.mapping_layers, None,
                                             dict(z_dim=0, c_dim=cfg.c_dim, w_dim=cmap_dim, num_ws=None,
                                                  w_avg_beta=None, **mapping_kwargs))
    epi_children = OrderedDict()
    if cfg.mbstd_num_channels > 0:
        epi_children["mbstd"] = _record("MinibatchStdLayer", {}, {}, {},
                                        dict(group_size=cfg.mbstd_group_size, num_channels=cfg.mbstd_num_channels),
                                        (), dict(group_size=cfg.mbstd_group_size,
                                                 num_channels=cfg.mbstd_num_channels))
    epi_children["conv"] = conv2d_layer(t, "b4.conv.", 3, "lrelu", conv_clamp=clamp,
                                        init_kwargs=dict(kernel_size=3, activation="lrelu", conv_clamp=_num(clamp)))
    epi_children["fc"] = fully_connected(t, "b4.fc.", activation="lrelu")
    epi_children["out"] = fully_connected(t, "b4.out.")
    epilogue_kwargs = {"mbstd_group_size": cfg.mbstd_group_size}
    if cfg.mbstd_num_channels != 1:
        epilogue_kwargs["mbstd_num_channels"] = cfg.mbstd_num_channels
    modules["b4"] = _record("DiscriminatorEpilogue", {}, {}, epi_children,
                            dict(in_channels=ch[4], cmap_dim=cmap_dim, resolution=4, img_channels=img_ch,
                                 architecture="resnet"), (ch[4],),
                            dict(cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, img_channels=img_ch,
                                 architecture="resnet", conv_clamp=_num(clamp)))
    t.finish()
    init_kwargs = dict(c_dim=cfg.c_dim, img_resolution=cfg.img_resolution, img_channels=cfg.img_channels,
                       channel_base=cfg.channel_base, channel_max=cfg.channel_max, num_fp16_res=cfg.num_fp16_res,
                       conv_clamp=_num(clamp), disc_c_noise=_num(cfg.disc_c_noise),
                       mapping_kwargs=_kwdict(mapping_kwargs, easydict), block_kwargs=_kwdict({}, easydict),
                       epilogue_kwargs=_kwdict(epilogue_kwargs, easydict))
    if cfg.cmap_dim is not None:
        init_kwargs["cmap_dim"] = cfg.cmap_dim
    init_kwargs.update(init_kwargs_override or {})
    attrs = dict(c_dim=cfg.c_dim, img_resolution=cfg.img_resolution, img_resolution_log2=log2, img_channels=img_ch,
                 block_resolutions=block_res, disc_c_noise=_num(cfg.disc_c_noise))
    return _record("DualDiscriminator", {}, OrderedDict(resample_filter=_resample_filter()), modules, attrs, (),
                   init_kwargs)


# --- snapshot ----------------------------------------------------------------------------------------------


def network_snapshot_bytes(G_ema, D=None, G=None, *, easydict: bool = False, include_label_std: bool = True,
                           g_init_kwargs_override: dict | None = None, d_init_kwargs_override: dict | None = None,
                           training_set_kwargs: dict | None = None, protocol: int = 4) -> bytes:
    """An EG3D ``network-snapshot`` pickle of Trident modules (``G`` defaults to ``G_ema``)."""
    snap = {
        "training_set_kwargs": training_set_kwargs if training_set_kwargs is not None else dict(
            class_name="training.dataset.ImageFolderDataset", path="none.zip", use_labels=True, max_size=None,
            xflip=False, resolution=G_ema.cfg.img_resolution, random_seed=0),
        "G": generator_record(G if G is not None else G_ema, easydict, include_label_std, g_init_kwargs_override),
        "D": discriminator_record(D, d_init_kwargs_override, easydict) if D is not None else None,
        "G_ema": generator_record(G_ema, easydict, include_label_std, g_init_kwargs_override),
        "augment_pipe": None,
    }
    buf = io.BytesIO()
    with _fake_eg3d_modules():
        pickle.Pickler(buf, protocol=protocol).dump(snap)
    return buf.getvalue()


def write_network_pickle(path: str | Path, G_ema, D=None, G=None, **kwargs) -> Path:
    path = Path(path)
    path.write_bytes(network_snapshot_bytes(G_ema, D, G, **kwargs))
    return path

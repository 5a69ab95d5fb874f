"""Safe import of EG3D network-snapshot pickles (``network-snapshot-XXXXXX.pkl``).

Official pickles store every network as ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` where
``meta`` carries the *source code* of the defining module (``module_src``) and the instance state; the official
loader executes that source. This module never does: a restricted :class:`pickle.Unpickler` resolves only the
whitelisted globals below, turns every persistent object into an inert :class:`StubModule` that just holds its
state, and then copies tensors by name into freshly built Trident modules whose settings are read from the
stored ``_init_kwargs`` and cross-checked against the stored attributes and tensor shapes.

Anything else (``os.system``, ``builtins.eval``, ``subprocess.*``, unknown modules or classes, protocol-0
``INST``/``OBJ`` tricks, persistent ids) is refused with :class:`UnsafePickleError` naming the global.
"""
from __future__ import annotations

import collections
import io
import pickle
import pickletools
from typing import Any

import numpy as np
import torch

from ..config import ConfigError, DiscriminatorConfig, GeneratorConfig, RenderingConfig
from ..conventions import DEFAULT_RADIUS
from ..errors import CheckpointError, first_line
from ..superres import EG3D_SR_CLASSES
from .snapshot import Snapshot


class UnsafePickleError(CheckpointError):
    """The pickle references a global outside Trident's whitelist."""


# ----------------------------------------------------------------------------------------------------------
# inert stand-ins for the objects a snapshot contains


class StubModule:
    """Holds the pickled ``__dict__`` of a module (``_parameters``, ``_buffers``, ``_modules``, attributes)."""

    class_name: str = "?"

    def __init__(self, class_name: str = "?", state: dict | None = None):
        self.class_name = class_name
        self.state = state if state is not None else {}

    def __setstate__(self, state: Any) -> None:  # BUILD opcode
        if not isinstance(state, dict):
            raise UnsafePickleError(f"unexpected state of type {type(state).__name__} for {self.class_name}")
        self.state = state

    def __repr__(self) -> str:
        return f"StubModule({self.class_name})"


# Persistent classes (stored through _reconstruct_persistent_obj) that Trident knows how to read.
PERSISTENT_CLASSES = {
    "TriPlaneGenerator", "DualTriPlaneGenerator", "Generator", "MappingNetwork", "SynthesisNetwork",
    "SynthesisBlock", "SynthesisBlockNoUp", "SynthesisLayer", "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer",
    "DualDiscriminator", "SingleDiscriminator", "DummyDualDiscriminator", "Discriminator", "DiscriminatorBlock",
    "DiscriminatorEpilogue", "MinibatchStdLayer", "AugmentPipe", "Aware3DBlock", "SR3DBlock",
    *EG3D_SR_CLASSES.keys(),
}

# Plain (non-persistent) module classes pickled by reference.
REFERENCED_CLASSES = {
    ("training.triplane", "OSGDecoder"),
    ("training.dual_triplane", "OSGDecoder"),
    ("training.volumetric_rendering.renderer", "ImportanceRenderer"),
    ("training.volumetric_rendering.ray_sampler", "RaySampler"),
    ("training.volumetric_rendering.ray_marcher", "MipRayMarcher2"),
    ("torch.nn.modules.container", "Sequential"),
    ("torch.nn.modules.container", "ModuleList"),
    ("torch.nn.modules.activation", "Softplus"),
    ("torch.nn.modules.activation", "ReLU"),
    ("torch.nn.modules.activation", "LeakyReLU"),
    ("torch.nn.modules.linear", "Identity"),
}


def _stub_class(module: str, name: str) -> type:
    return type(name, (StubModule,), {"class_name": f"{module}.{name}"})


def _reconstruct_persistent(meta: Any) -> StubModule:
    if not isinstance(meta, dict) or meta.get("type") != "class" or "state" not in meta:
        raise UnsafePickleError("malformed persistent-object record")
    name = meta.get("class_name")
    if name not in PERSISTENT_CLASSES:
        raise UnsafePickleError(f"refusing persistent class {name!r}: not a known EG3D/Mimic3D network class")
    if meta.get("version") not in (5, 6):
        raise CheckpointError(f"unsupported persistence version {meta.get('version')!r} for {name}")
    stub = StubModule(name)
    stub.__setstate__(meta["state"])
    return stub  # meta['module_src'] is deliberately ignored


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access); kept as a plain dict."""

    def __setstate__(self, state: Any) -> None:
        pass


def _load_storage_bytes(blob: bytes) -> Any:
    if not isinstance(blob, (bytes, bytearray)):
        raise UnsafePickleError("tensor storage record is not a byte string")
    try:
        storage = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any failure here means a damaged file
        msg = first_line(e)[:120]
        raise CheckpointError(f"damaged tensor storage ({type(e).__name__}: {msg})") from None
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafePickleError(f"tensor storage record holds a {type(storage).__name__}, not a storage")
    # Hand out a copy that cannot grow: torch's set_() (reached through _rebuild_tensor_v2 with a size larger
    # than the stored data, or through BUILD on a tensor) silently *resizes* a storage that is too small, which
    # would turn a crafted record into a tensor of uninitialised heap memory instead of an error.
    data = torch.empty(0, dtype=torch.uint8).set_(storage._untyped_storage).numpy().copy()
    fixed = torch.from_numpy(data).untyped_storage()  # memory owned by numpy: never resizable
    return torch.storage.TypedStorage(wrap_storage=fixed, dtype=storage.dtype, _internal=True)


_SAFE_DTYPE_KINDS = set("biuf?c")


def _numpy_dtype(*args: Any) -> np.dtype:
    dt = np.dtype(*args)
    if dt.kind not in _SAFE_DTYPE_KINDS:
        raise UnsafePickleError(f"refusing numpy dtype {dt!r}")
    return dt


def _numpy_scalar(dtype: np.dtype, data: bytes = b"") -> Any:
    if not isinstance(dtype, np.dtype) or dtype.kind not in _SAFE_DTYPE_KINDS or not isinstance(data, bytes):
        raise UnsafePickleError("refusing non-numeric numpy scalar")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise UnsafePickleError(f"refusing tensor subclass {new_type!r}")
    func = func._fn if isinstance(func, _Whitelisted) else func
    if func not in (torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter):
        raise UnsafePickleError("refusing tensor rebuild function")
    ret = func(*args)
    return ret


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, (StubModule, EasyDict, collections.OrderedDict))):
        raise UnsafePickleError(f"refusing copyreg reconstruction of {cls!r}")
    obj = cls.__new__(cls)
    return obj


_TORCH_DTYPES = {n for n in ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64",
                             "uint8", "bool", "half", "float", "double", "long")}


class _Whitelisted:
    """Immutable handle to a whitelisted function.

    ``find_class`` must never hand out the real function object: pickle's BUILD opcode sets attributes on
    whatever is on the stack, so a file could otherwise rewrite e.g. ``torch._utils._rebuild_tensor_v2.__defaults__``
    and silently alter every tensor that any later ``torch.load`` in the process rebuilds.
    """

    __slots__ = ("_fn",)

    def __init__(self, fn: Any) -> None:
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __setattr__(self, key: str, value: Any) -> None:
        raise UnsafePickleError(f"refusing to modify the whitelisted global {self._fn.__qualname__!r}")

    def __setstate__(self, state: Any) -> None:  # BUILD opcode applied to a global
        raise UnsafePickleError(f"refusing to modify the whitelisted global {self._fn.__qualname__!r}")

    def __repr__(self) -> str:
        return f"<whitelisted {self._fn.__module__}.{self._fn.__qualname__}>"


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a network snapshot needs."""

    def find_class(self, module: str, name: str) -> Any:
        obj = self._find_class(module, name)
        # Classes are safe to return as they are: the builtin ones are immutable, and BUILD on one of our own
        # (which all define __setstate__) fails; functions are wrapped so that BUILD cannot modify them.
        return obj if isinstance(obj, (type, torch.dtype)) else _Whitelisted(obj)

    def _find_class(self, module: str, name: str) -> Any:  # noqa: C901 - a flat whitelist reads best
        key = (module, name)
        if key == ("torch_utils.persistence", "_reconstruct_persistent_obj"):
            return _reconstruct_persistent
        if key in REFERENCED_CLASSES:
            return _stub_class(module, name)
        if key == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if key == ("dnnlib.util", "EasyDict") or key == ("dnnlib", "EasyDict"):
            return EasyDict
        if key == ("torch._utils", "_rebuild_tensor_v2"):
            return torch._utils._rebuild_tensor_v2
        if key == ("torch._utils", "_rebuild_parameter"):
            return torch._utils._rebuild_parameter
        if key == ("torch._utils", "_rebuild_parameter_with_state"):
            return torch._utils._rebuild_parameter_with_state
        if key == ("torch._tensor", "_rebuild_from_type_v2"):
            return _rebuild_from_type_v2
        if key == ("torch.storage", "_load_from_bytes"):
            return _load_storage_bytes
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "scalar":
            return _numpy_scalar
        if key == ("numpy", "dtype"):
            return _numpy_dtype
        if key == ("copyreg", "_reconstructor"):
            return _copyreg_reconstructor
        if key == ("builtins", "object"):
            return object
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        if key == ("torch", "device"):
            return torch.device
        raise UnsafePickleError(f"refusing to load: global '{module}.{name}' is not on Trident's whitelist")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing to load: the pickle uses persistent ids (not a network snapshot pickle)")


_MEMO_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _check_memo_indices(data: bytes) -> None:
    """Refuse explicit memo indices no genuine pickle can have.

    CPython's C unpickler grows (and zero-fills) its memo table up to the largest index it is given, so a
    ten-byte file holding ``LONG_BINPUT 0x3fffffff`` would make it allocate and touch 16 GiB. A memo index
    never exceeds the number of opcodes, hence the length of the data.
    """
    try:
        for op, arg, _pos in pickletools.genops(data):
            if op.name in _MEMO_PUT_OPS and isinstance(arg, int) and not 0 <= arg <= len(data):
                raise CheckpointError(f"damaged pickle: memo index {arg} out of range")
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - unparsable opcodes: the unpickler would fail on them as well
        msg = first_line(e)[:160] or type(e).__name__
        raise CheckpointError(f"not a valid network pickle ({msg})") from None


# Bounds of the object graph a model file may unpickle to, counted as the tree that every later reader walks
# (a shared object counts once per path to it). Genuine EG3D / Mimic3D snapshots: about 13k-21k nodes, depth 22.
MAX_GRAPH_NODES = 1_000_000
MAX_GRAPH_DEPTH = 64
MAX_DETAIL_BLOCKS = 16  # detail blocks b3d{R}.block2 ... of a Mimic3D backbone (core.limits bounds detail_blocks alike)


def check_object_tree(obj: Any, what: str = "network pickle", max_nodes: int = MAX_GRAPH_NODES,
                      max_depth: int = MAX_GRAPH_DEPTH) -> int:
    """Walk ``obj`` as a tree (dicts, lists, tuples, sets, :class:`StubModule` states) with an explicit stack and
    refuse it once it exceeds ``max_nodes`` nodes or ``max_depth`` levels; returns the node count.

    A pickle can share one object under many keys and mutate memoised containers after their use, so 500 bytes
    describe a cycle or a chain of 40 doubly-shared levels (2**40 paths): any reader that follows the structure
    (``stub_state_dict``, ``repr`` in an error message, a comparison) would never finish. After this check every
    path is at most ``max_depth`` long and the tree has at most ``max_nodes`` nodes, so every such walk ends.
    Tensors, strings, numbers and other leaves are not entered."""
    count = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > max_nodes:
            raise CheckpointError(f"not a valid {what}: its object graph has more than {max_nodes} nodes "
                                  f"(shared or cyclic references)")
        if isinstance(node, StubModule):
            children: Any = (node.state,)
        elif isinstance(node, dict):
            children = [x for kv in node.items() for x in kv]
        elif isinstance(node, (list, tuple, set, frozenset)):
            children = node
        else:
            continue
        if depth >= max_depth and children:
            raise CheckpointError(f"not a valid {what}: its objects are nested more than {max_depth} levels deep "
                                  f"(or cyclic)")
        stack.extend((child, depth + 1) for child in children)
    return count


def restricted_load(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; every failure becomes a one-line CheckpointError.
    The result has passed :func:`check_object_tree` (no cycles, bounded size and depth)."""
    _check_memo_indices(data)
    try:
        obj = RestrictedUnpickler(io.BytesIO(data)).load()
        check_object_tree(obj)
        return obj
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError("damaged pickle: nesting too deep") from None
    except Exception as e:  # noqa: BLE001 - whitelisted callables fed hostile arguments raise anything
        # (e.g. AssertionError from torch._utils.set_tensor_metadata); every one of them means a bad file.
        msg = first_line(e)[:160] or type(e).__name__
        raise CheckpointError(f"not a valid network pickle ({type(e).__name__}: {msg})") from None


# ----------------------------------------------------------------------------------------------------------
# stub tree -> state dict and settings


def _stub_state(node: Any, what: str) -> dict:
    if not isinstance(node, StubModule):
        raise CheckpointError(f"{what} is not a network (found {type(node).__name__})")
    return node.state


def stub_state_dict(node: StubModule, prefix: str = "") -> dict[str, torch.Tensor]:
    """Walk ``_parameters`` / persistent ``_buffers`` / ``_modules`` exactly like ``nn.Module.state_dict``."""
    st = node.state
    out: dict[str, torch.Tensor] = {}
    non_persistent = st.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, t in (st.get(group) or {}).items():
            if t is None or (group == "_buffers" and name in non_persistent):
                continue
            if not isinstance(t, torch.Tensor):
                raise CheckpointError(f"{prefix}{name} is not a tensor")
            out[prefix + name] = t.detach()  # drops any pickled autograd hooks
    for name, child in (st.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, StubModule):
            raise CheckpointError(f"{prefix}{name} is not a module")
        out.update(stub_state_dict(child, prefix + name + "."))
    return out


def stub_child(node: StubModule, path: str) -> StubModule | None:
    cur: Any = node
    for part in path.split("."):
        cur = (cur.state.get("_modules") or {}).get(part) if isinstance(cur, StubModule) else None
        if cur is None:
            return None
    return cur


_RENDER_KEYS_CONSUMED = {"image_resolution", "superresolution_module", "gpc_reg_prob", "c_scale"}


# Constructor kwargs that only Mimic3D's generators have (its 2D-stage class is also named TriPlaneGenerator).
_MIMIC3D_KEYS = {"triplane_resolution", "triplane_act", "blur_plane", "depth_guided_sample", "roll_out", "retidx",
                 "aware3d_res", "aware3d_att", "add_block", "add_sr_module"}


def is_mimic3d_generator(node: StubModule) -> bool:
    """Mimic3D's ``DualTriPlaneGenerator`` (3D stage), or its ``TriPlaneGenerator`` (2D stage, Mimic3D kwargs)."""
    kw = node.state.get("_init_kwargs") or {}
    return node.class_name == "DualTriPlaneGenerator" or (
        node.class_name == "TriPlaneGenerator" and isinstance(kw, dict) and bool(_MIMIC3D_KEYS & set(kw)))


def mimic3d_backbone_settings(node: StubModule, kw: dict) -> dict[str, Any]:
    """Mimic3D backbone layout (``SeanChenxy/Mimic3D: training/dual_triplane.py``, ``training/networks_stylegan2.py``)
    -> GeneratorConfig fields; unsupported variants are refused.

    Reads ``aware3d_res`` and ``retidx`` from the stored synthesis network (falling back to the generator's
    kwargs) and counts the detail blocks ``b3d{R}.block2 ...`` actually present (retidx [-3, -1] -> 2).
    """
    synth = stub_child(node, "backbone.synthesis")
    sst = synth.state if synth is not None else {}
    skw = dict(sst.get("_init_kwargs") or {})

    def setting(name: str, default: Any) -> Any:
        for source in (sst, skw, kw):
            if name in source:
                return source[name]
        return default

    plane_act = node.state.get("plane_act", kw.get("triplane_act"))
    refused = {
        "triplane_act": (plane_act, None), "blur_plane": (kw.get("blur_plane", 0), 0),
        "depth_guided_sample": (kw.get("depth_guided_sample", 0), 0), "add_block": (setting("add_block", 0), 0),
        "add_sr_module": (bool(setting("add_sr_module", False)) or sst.get("sr3d") is not None, False),
        "aware3d_att": (bool(setting("aware3d_att", False)), False), "roll_out": (skw.get("roll_out"), None),
    }
    for name, (value, supported) in refused.items():
        if value != supported:
            raise CheckpointError(f"unsupported Mimic3D setting {name}={value!r} (Trident reads {name}={supported!r},"
                                  f" the value of all shipped Mimic3D configs)")
    aware3d_res = tuple(int(r) for r in (setting("aware3d_res", None) or ()))
    retidx = setting("retidx", None)
    detail_blocks = 0
    if aware3d_res:
        last = stub_child(node, f"backbone.synthesis.b3d{aware3d_res[-1]}")
        if last is None:
            raise CheckpointError(f"Mimic3D backbone lacks its last 3D-aware block b3d{aware3d_res[-1]}")
        while stub_child(last, f"block{detail_blocks + 2}") is not None:
            detail_blocks += 1
            if detail_blocks > MAX_DETAIL_BLOCKS:  # Mimic3D has 2; the bound keeps the count finite by itself
                raise CheckpointError(f"Mimic3D backbone has more than {MAX_DETAIL_BLOCKS} detail blocks")
    expected = -int(retidx[0]) - 1 if retidx else 0
    if detail_blocks != expected:
        raise CheckpointError(f"Mimic3D backbone has {detail_blocks} detail block(s) but retidx {retidx!r} "
                              f"implies {expected}")
    if node.class_name == "DualTriPlaneGenerator" and not detail_blocks:
        raise CheckpointError("Mimic3D DualTriPlaneGenerator without detail tri-plane blocks (retidx) is not supported")
    const = stub_child(node, "backbone.synthesis.b4")
    const_t = (const.state.get("_parameters") or {}).get("const") if const is not None else None
    return {"aware3d_res": aware3d_res, "detail_blocks": detail_blocks,
            "const_batch_dim": bool(isinstance(const_t, torch.Tensor) and const_t.ndim == 4)}


def generator_config_from_stub(node: StubModule) -> tuple[GeneratorConfig, list[str]]:
    """Settings of an EG3D ``TriPlaneGenerator`` or a Mimic3D generator from its stored init kwargs (checked
    against its state). Mimic3D files get plane_convention "mimic3d" and the fields of
    :func:`mimic3d_backbone_settings`."""
    st = node.state
    if node.class_name not in ("TriPlaneGenerator", "DualTriPlaneGenerator"):
        raise CheckpointError(f"unsupported generator class {node.class_name!r} "
                              f"(expected TriPlaneGenerator or DualTriPlaneGenerator)")
    kw = dict(st.get("_init_kwargs") or {})
    args = list(st.get("_init_args") or ())
    for i, name in enumerate(("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")[:len(args)]):
        kw.setdefault(name, args[i])
    mimic3d = is_mimic3d_generator(node)
    extra = mimic3d_backbone_settings(node, kw) if mimic3d else {}
    rk = dict(kw.get("rendering_kwargs") or st.get("rendering_kwargs") or {})
    if not rk:
        raise CheckpointError("generator has no rendering_kwargs")
    ignored = []
    sr_path = rk.get("superresolution_module")
    sr_node = stub_child(node, "superresolution")
    sr_class = sr_node.class_name if sr_node is not None else str(sr_path).rsplit(".", 1)[-1]
    if sr_class not in EG3D_SR_CLASSES:
        raise CheckpointError(f"unsupported super-resolution module {sr_class!r}")
    layer = stub_child(node, "backbone.synthesis.b4.conv1")
    conv_clamp = layer.state.get("conv_clamp") if layer is not None else kw.get("conv_clamp")
    dec0 = stub_child(node, "decoder.net.0")
    dec2 = stub_child(node, "decoder.net.2")
    if dec0 is None or dec2 is None:
        raise CheckpointError("generator has no decoder")
    hidden = int(dec0.state["_parameters"]["weight"].shape[0])
    out_dim = int(dec2.state["_parameters"]["weight"].shape[0]) - 1
    synth = stub_child(node, "backbone.synthesis")
    tri_res = int(synth.state.get("img_resolution", 256)) if synth is not None else 256
    tri_ch = int(synth.state.get("img_channels", 96)) // 3 if synth is not None else 32
    sr_fp16 = False
    if sr_node is not None:
        b0 = stub_child(node, "superresolution.block0")
        sr_fp16 = bool(b0.state.get("use_fp16", False)) if b0 is not None else False
    render_fields = set(RenderingConfig.__dataclass_fields__)
    rendering = {}
    for k, v in rk.items():
        if k in render_fields:
            rendering[k] = list(v) if k == "avg_camera_pivot" else v
        elif k not in _RENDER_KEYS_CONSUMED:
            ignored.append(k)
    rendering["c_scale"] = float(rk.get("c_scale", 0))  # EG3D: rendering_kwargs.get('c_scale', 0)
    rendering["gpc_reg_prob"] = rk.get("gpc_reg_prob")
    rendering.setdefault("avg_camera_radius", DEFAULT_RADIUS)
    rendering.setdefault("avg_camera_pivot", [0.0, 0.0, 0.0])
    rendering["plane_convention"] = "mimic3d" if mimic3d else "eg3d"
    for k in ("ray_start", "ray_end", "box_warp", "avg_camera_radius", "density_reg", "density_reg_p_dist",
              "decoder_lr_mul", "density_noise"):
        if k in rendering and not isinstance(rendering[k], str) and rendering[k] is not None:
            rendering[k] = float(rendering[k])
    if "avg_camera_pivot" in rendering:
        rendering["avg_camera_pivot"] = [float(v) for v in rendering["avg_camera_pivot"]]
    mapping_kwargs = dict(kw.get("mapping_kwargs") or {})
    try:
        cfg = GeneratorConfig(
            z_dim=int(kw["z_dim"]), w_dim=int(kw["w_dim"]), c_dim=int(kw["c_dim"]),
            img_resolution=int(kw["img_resolution"]), img_channels=int(kw.get("img_channels", 3)),
            mapping_layers=int(mapping_kwargs.get("num_layers", 8)),
            channel_base=int(kw.get("channel_base", 32768)), channel_max=int(kw.get("channel_max", 512)),
            num_fp16_res=int(kw.get("num_fp16_res", 0)),
            conv_clamp=None if conv_clamp is None else float(conv_clamp),
            triplane_resolution=tri_res, triplane_channels=tri_ch,
            neural_rendering_resolution=int(st.get("neural_rendering_resolution",
                                                   kw.get("neural_rendering_resolution", 64))),
            sr_kind=EG3D_SR_CLASSES[sr_class], sr_num_fp16_res=int(kw.get("sr_num_fp16_res", 0)) if sr_fp16 else 0,
            decoder_hidden=hidden, decoder_output_dim=out_dim, eg3d_raw_alias=True,
            rendering=RenderingConfig(**rendering), **extra,
        )
    except KeyError as e:
        raise CheckpointError(f"generator settings lack {e.args[0]!r}") from None
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"unsupported generator settings: {e}") from None
    return cfg, ignored


def discriminator_config_from_stub(node: StubModule) -> DiscriminatorConfig:
    """Settings of an EG3D ``DualDiscriminator`` / Mimic3D ``SingleDiscriminator``."""
    if node.class_name not in ("DualDiscriminator", "SingleDiscriminator", "DummyDualDiscriminator"):
        raise CheckpointError(f"unsupported discriminator class {node.class_name!r}")
    st = node.state
    kw = dict(st.get("_init_kwargs") or {})
    args = list(st.get("_init_args") or ())
    for i, name in enumerate(("c_dim", "img_resolution", "img_channels")[:len(args)]):
        kw.setdefault(name, args[i])
    epi = dict(kw.get("epilogue_kwargs") or {})
    mapping_kwargs = dict(kw.get("mapping_kwargs") or {})
    res = int(kw["img_resolution"])
    first = stub_child(node, f"b{res}.fromrgb")
    conv_clamp = first.state.get("conv_clamp") if first is not None else kw.get("conv_clamp", 256)
    log2 = int(np.log2(res))
    fp16_blocks = [r for r in (2 ** i for i in range(log2, 2, -1))
                   if (b := stub_child(node, f"b{r}")) is not None and b.state.get("use_fp16")]
    num_fp16_res = int(kw.get("num_fp16_res", 4))
    if fp16_blocks:
        # fp16_resolution = max(2 ** (log2 + 1 - n), 8); recover n from the lowest fp16 block
        num_fp16_res = log2 + 1 - int(np.log2(min(fp16_blocks)))
    else:
        num_fp16_res = 0
    try:
        return DiscriminatorConfig(
            c_dim=int(kw.get("c_dim", 0)), img_resolution=res, img_channels=int(kw.get("img_channels", 3)),
            channel_base=int(kw.get("channel_base", 32768)), channel_max=int(kw.get("channel_max", 512)),
            num_fp16_res=num_fp16_res, conv_clamp=None if conv_clamp is None else float(conv_clamp),
            cmap_dim=kw.get("cmap_dim"), mapping_layers=int(mapping_kwargs.get("num_layers", 8)),
            mbstd_group_size=int(epi.get("mbstd_group_size", 4)),
            mbstd_num_channels=int(epi.get("mbstd_num_channels", 1)),
            disc_c_noise=float(kw.get("disc_c_noise", st.get("disc_c_noise", 0)) or 0),
            dual=node.class_name != "SingleDiscriminator",
        )
    except KeyError as e:
        raise CheckpointError(f"discriminator settings lack {e.args[0]!r}") from None


def import_network_pickle(data: bytes) -> Snapshot:
    """Parse an EG3D network-snapshot pickle without executing any of its code."""
    obj = restricted_load(data)
    try:
        return _import_loaded(obj)
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError("not a network snapshot: module tree nested too deep (or cyclic)") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RuntimeError) as e:
        # a well-formed pickle whose records lack fields or hold values of the wrong type
        msg = first_line(e)[:160]
        raise CheckpointError(f"malformed network snapshot ({type(e).__name__}: {msg})") from None


def _import_loaded(obj: Any) -> Snapshot:
    if not isinstance(obj, dict):
        raise CheckpointError(f"not a network snapshot: the pickle holds a {type(obj).__name__}, not a dict")
    if "G_ema" not in obj:
        raise CheckpointError(f"not a network snapshot: no 'G_ema' (keys: {', '.join(map(str, obj))})")
    _stub_state(obj["G_ema"], "G_ema")
    g_ema = obj["G_ema"]
    cfg, ignored = generator_config_from_stub(g_ema)
    out = Snapshot(generator=cfg, G_ema=stub_state_dict(g_ema))
    if isinstance(obj.get("G"), StubModule):
        out.G = stub_state_dict(obj["G"])
    if isinstance(obj.get("D"), StubModule):
        out.discriminator = discriminator_config_from_stub(obj["D"])
        out.D = stub_state_dict(obj["D"])
    if isinstance(obj.get("D_patch"), StubModule):  # Mimic3D's unconditional patch discriminator
        out.patch_discriminator = discriminator_config_from_stub(obj["D_patch"])
        out.D_patch = stub_state_dict(obj["D_patch"])
    tsk = obj.get("training_set_kwargs")
    out.extra["meta"] = {
        "source": "mimic3d-network-pickle" if is_mimic3d_generator(g_ema) else "eg3d-network-pickle",
        "training_set_kwargs": dict(tsk) if isinstance(tsk, dict) else None,
        "ignored_rendering_kwargs": ignored,
        "has_augment_pipe": obj.get("augment_pipe") is not None,
    }
    return out

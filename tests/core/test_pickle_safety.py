"""Model files never run code: hostile pickles are refused, damaged files give one-line errors.

Every attack below would leave a trace if any of its code ran: it creates a sentinel file, imports a module
that creates one, or deletes a "victim" directory. The ``test_control_*`` tests load the same payloads with
the ordinary ``pickle`` / ``torch.load(weights_only=False)`` and check that they DO leave that trace, so the
refusal tests cannot pass because a payload was broken.
"""
from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from tests.conftest import EG3D_FIXTURE
from core.files.snapshot import Snapshot
from core.build import build_generator
from core.files.checkpoint import load_snapshot, save_snapshot
from core.errors import CheckpointError
from core.files.network_pickle import (EasyDict, RestrictedUnpickler, UnsafePickleError, _reconstruct_persistent,
                                       import_network_pickle, restricted_load)

REPO = Path(__file__).resolve().parents[2]
FIXTURE_PKL = EG3D_FIXTURE / "network.pkl"


# ----------------------------------------------------------------------------------------------------------
# helpers: assertions


def assert_one_line(err: BaseException | str, *needles: str) -> str:
    msg = str(err)
    assert msg.strip(), "empty error message"
    assert len(msg.splitlines()) == 1 and "\n" not in msg and "\r" not in msg, f"multi-line error: {msg!r}"
    assert "Traceback" not in msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in error {msg!r}"
    return msg


def load_refused(path: Path, *needles: str, exc: type[BaseException] = CheckpointError) -> str:
    with pytest.raises(exc) as info:
        load_snapshot(path)
    assert isinstance(info.value, CheckpointError)
    return assert_one_line(info.value, *needles)


# ----------------------------------------------------------------------------------------------------------
# helpers: a tiny pickle writer (so that payloads can be placed anywhere, with any opcode)


@dataclass
class Glob:
    """A global reference; ``op`` is 'GLOBAL' (protocol 0 text) or 'STACK_GLOBAL' (protocol 4)."""
    module: str
    name: str
    op: str = "STACK_GLOBAL"


class Call:
    """``func(*args)`` through the REDUCE opcode."""

    def __init__(self, func: Any, *args: Any):
        self.func, self.args = func, args


@dataclass
class Build:
    """``obj`` followed by ``state`` and the BUILD opcode."""
    obj: Any
    state: Any


@dataclass
class Put:
    obj: Any
    idx: int


@dataclass
class Get:
    idx: int


@dataclass
class Raw:
    data: bytes


def _short_str(s: str) -> bytes:
    b = s.encode("utf-8")
    return b"\x8c" + bytes([len(b)]) + b if len(b) < 256 else b"X" + struct.pack("<I", len(b)) + b


def _emit(x: Any, out: bytearray) -> None:  # noqa: C901
    if x is None:
        out += b"N"
    elif x is True or x is False:
        out += b"\x88" if x else b"\x89"
    elif isinstance(x, int):
        if -2 ** 31 <= x < 2 ** 31:
            out += b"J" + struct.pack("<i", x)
        else:
            enc = pickle.encode_long(x)
            out += b"\x8a" + bytes([len(enc)]) + enc
    elif isinstance(x, float):
        out += b"G" + struct.pack(">d", x)
    elif isinstance(x, str):
        b = x.encode("utf-8", "surrogatepass")
        out += b"X" + struct.pack("<I", len(b)) + b
    elif isinstance(x, bytes):
        out += b"B" + struct.pack("<I", len(x)) + x
    elif isinstance(x, tuple):
        out += b"("
        for item in x:
            _emit(item, out)
        out += b"t"
    elif isinstance(x, list):
        out += b"("
        for item in x:
            _emit(item, out)
        out += b"l"
    elif isinstance(x, dict):
        out += b"}"
        if x:
            out += b"("
            for k, v in x.items():
                _emit(k, out)
                _emit(v, out)
            out += b"u"
    elif isinstance(x, Glob):
        if x.op == "GLOBAL":
            out += b"c" + x.module.encode() + b"\n" + x.name.encode() + b"\n"
        else:
            out += _short_str(x.module) + _short_str(x.name) + b"\x93"
    elif isinstance(x, Call):
        _emit(x.func, out)
        _emit(tuple(x.args), out)
        out += b"R"
    elif isinstance(x, Build):
        _emit(x.obj, out)
        _emit(x.state, out)
        out += b"b"
    elif isinstance(x, Put):
        _emit(x.obj, out)
        out += b"r" + struct.pack("<I", x.idx)
    elif isinstance(x, Get):
        out += b"j" + struct.pack("<I", x.idx)
    elif isinstance(x, Raw):
        out += x.data
    elif isinstance(x, torch.Tensor):
        out += pickle.dumps(x, protocol=3)[2:-1]  # torch's own reduce (BINPUT indices below 100 only)
    else:
        raise TypeError(f"cannot emit {type(x).__name__}")


def dumps(x: Any, proto: int = 4) -> bytes:
    out = bytearray(b"\x80" + bytes([proto]))
    _emit(x, out)
    return bytes(out + b".")


def persistent(class_name: Any, state: Any, module_src: Any = "# never executed\n", version: int = 6) -> Call:
    meta = {"type": "class", "version": version, "module_src": module_src, "class_name": class_name,
            "state": state}
    return Call(Glob("torch_utils.persistence", "_reconstruct_persistent_obj"), meta)


def storage_blob(t: torch.Tensor) -> bytes:
    """The byte string that ``torch.storage._load_from_bytes`` receives for ``t``'s storage."""
    return next(arg for op, arg, _ in pickletools.genops(pickle.dumps(t, protocol=3)) if op.name in ("BINBYTES", "SHORT_BINBYTES"))


def _track_memo(op_name: str, arg: Any, memo: dict, top: Any) -> Any:
    """Follow the pickle memo while walking opcodes: returns the value now on top of the stack (or None)."""
    if op_name in ("BINGET", "LONG_BINGET", "GET"):
        return memo.get(arg)
    if op_name == "MEMOIZE":
        memo[len(memo)] = top
        return top
    if op_name in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[arg] = top
        return top
    return None


def pickled_globals(data: bytes) -> list[str]:
    """'module.name' of every GLOBAL / STACK_GLOBAL / INST in ``data`` (memo references resolved)."""
    found, strings, memo, top = [], [], {}, None
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            found.append(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            found.append(f"{strings[-2]}.{strings[-1]}")
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            top = arg
            strings.append(arg)
        else:
            top = _track_memo(op.name, arg, memo, top)
            if op.name in ("BINGET", "LONG_BINGET", "GET") and isinstance(top, str):
                strings.append(top)
    return found


# ----------------------------------------------------------------------------------------------------------
# payloads: each would leave a trace in tmp_path if it ran


@dataclass
class Env:
    dir: Path
    sentinel: Path
    victim: Path
    module: str

    def fired(self) -> bool:
        return self.sentinel.exists() or not (self.victim / "keep.txt").exists()


@pytest.fixture
def env(tmp_path, monkeypatch):
    sentinel = tmp_path / "PWNED"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("must survive")
    module = f"trident_evil_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text(f"open({str(sentinel)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # so that importing the evil module WOULD work
    e = Env(tmp_path, sentinel, victim, module)
    yield e
    sys.modules.pop(module, None)


def _touch_code(env: Env) -> str:
    return f"open({str(env.sentinel)!r}, 'w').close()"


PAYLOADS: dict[str, tuple[str, str, Callable[[Env], tuple]]] = {
    "os.system": ("os", "system", lambda e: (f"touch '{e.sentinel}'",)),
    "posix.system": ("posix", "system", lambda e: (f"touch '{e.sentinel}'",)),
    "builtins.eval": ("builtins", "eval", lambda e: (_touch_code(e),)),
    "builtins.exec": ("builtins", "exec", lambda e: (_touch_code(e),)),
    "subprocess.Popen": ("subprocess", "Popen", lambda e: (["touch", str(e.sentinel)],)),
    "subprocess.check_output": ("subprocess", "check_output", lambda e: (["touch", str(e.sentinel)],)),
    "subprocess.run": ("subprocess", "run", lambda e: (["touch", str(e.sentinel)],)),
    "builtins.__import__": ("builtins", "__import__", lambda e: (e.module,)),
    "importlib.import_module": ("importlib", "import_module", lambda e: (e.module,)),
    "builtins.open": ("builtins", "open", lambda e: (str(e.sentinel), "w")),
    "shutil.rmtree": ("shutil", "rmtree", lambda e: (str(e.victim),)),
}


class _Reduce:
    def __init__(self, fn: Any, args: tuple):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _p0(x: Any) -> bytes:
    """Protocol-0 (text) opcodes for strings and lists of strings."""
    if isinstance(x, str):
        assert "\n" not in x and "\\" not in x
        return b"V" + x.encode("raw-unicode-escape") + b"\n"
    if isinstance(x, list):
        return b"(" + b"".join(_p0(v) for v in x) + b"l"
    raise TypeError(type(x))


def build_payload(kind: str, payload: str, env: Env) -> tuple[bytes, str]:
    """(pickle bytes, the offending global as it is written in the pickle)."""
    module, name, make_args = PAYLOADS[payload]
    args = make_args(env)
    if kind.startswith("reduce_p"):  # an object whose __reduce__ returns the dangerous callable
        fn = getattr(importlib.import_module(module), name)
        data = pickle.dumps(_Reduce(fn, args), protocol=int(kind[-1]))
        return data, pickled_globals(data)[0]
    g = f"{module}\n{name}\n".encode()
    p0_args = b"".join(_p0(a) for a in args)
    if kind == "GLOBAL":  # protocol 0: GLOBAL + MARK args TUPLE + REDUCE
        return b"c" + g + b"(" + p0_args + b"tR.", f"{module}.{name}"
    if kind == "INST":  # protocol 0: MARK args INST module name
        return b"(" + p0_args + b"i" + g + b".", f"{module}.{name}"
    if kind == "OBJ":  # protocol 1: MARK GLOBAL args OBJ
        return b"(c" + g + p0_args + b"o.", f"{module}.{name}"
    if kind == "STACK_GLOBAL":  # protocol 4
        return dumps(Call(Glob(module, name), *args)), f"{module}.{name}"
    raise ValueError(kind)


KINDS = ["reduce_p0", "reduce_p2", "reduce_p4", "reduce_p5", "GLOBAL", "INST", "OBJ", "STACK_GLOBAL"]


def _finish(obj: Any) -> None:
    """Wait for spawned processes / close opened files found in what a payload returned."""
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _finish(item)
        return
    for hook in ("wait", "close"):
        if hasattr(obj, hook) and not isinstance(obj, type):
            getattr(obj, hook)()


def run_permissively(data: bytes) -> None:
    """What an ordinary unpickler does with the payload (used by the control tests only)."""
    _finish(pickle.loads(data))


# ----------------------------------------------------------------------------------------------------------
# 1. code-execution payloads in bare pickles, in every encoding


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_control_payloads_are_live(env, payload, kind):
    data, _ = build_payload(kind, payload, env)
    assert not env.fired()
    run_permissively(data)
    assert env.fired(), f"{payload}/{kind}: the payload itself is broken, the refusal tests would prove nothing"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_malicious_reduce_refused(env, payload, kind):
    data, glob = build_payload(kind, payload, env)
    assert payload.rsplit(".", 1)[-1] in glob
    with pytest.raises(UnsafePickleError) as info:
        restricted_load(data)
    assert_one_line(info.value, f"'{glob}'")
    with pytest.raises(UnsafePickleError) as info:
        import_network_pickle(data)
    assert_one_line(info.value, f"'{glob}'")
    # as a file: headerless protocol 0/1 pickles are turned away before unpickling; with a PROTO header the
    # restricted unpickler sees them and names the global
    path = env.dir / "network.pkl"
    path.write_bytes(data)
    load_refused(path)
    path.write_bytes(data if data[:1] == b"\x80" else b"\x80\x02" + data)
    load_refused(path, f"'{glob}'", exc=UnsafePickleError)
    assert not env.fired()


def _nest(context: str, evil: Call) -> Any:
    if context == "snapshot-dict":
        return {"G": None, "D": None, "G_ema": evil, "augment_pipe": None,
                "training_set_kwargs": {"resolution": 128}}
    if context == "ordereddict-arg":
        return {"G_ema": Call(Glob("collections", "OrderedDict"), [("weight", evil)])}
    if context == "persistent-state":
        return {"G": None, "G_ema": persistent("TriPlaneGenerator", {"_init_kwargs": {"z_dim": 8},
                                                                     "_modules": {"decoder": evil}})}
    if context == "build-state":
        return {"G_ema": Build(persistent("TriPlaneGenerator", {}), {"_modules": {"decoder": evil}})}
    raise ValueError(context)


@pytest.mark.parametrize("op", ["GLOBAL", "STACK_GLOBAL"])
@pytest.mark.parametrize("context", ["snapshot-dict", "ordereddict-arg", "persistent-state", "build-state"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_malicious_reduce_nested(env, payload, context, op):
    module, name, make_args = PAYLOADS[payload]
    data = dumps(_nest(context, Call(Glob(module, name, op), *make_args(env))))
    if context in ("snapshot-dict", "ordereddict-arg"):  # control: ordinary unpickling runs the payload
        run_permissively(data)
        assert env.fired()
        env.sentinel.unlink(missing_ok=True)
        env.victim.mkdir(exist_ok=True)
        (env.victim / "keep.txt").write_text("must survive")
        sys.modules.pop(env.module, None)
        assert not env.fired()
    path = env.dir / "network.pkl"
    path.write_bytes(data)
    load_refused(path, f"'{module}.{name}'", exc=UnsafePickleError)
    assert not env.fired()


# ----------------------------------------------------------------------------------------------------------
# the real fixture, rewritten at the opcode level


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}


def _str_op(s: str) -> bytes:
    b = s.encode("utf-8")
    return b"\x8c" + bytes([len(b)]) + b if len(b) < 256 else b"X" + struct.pack("<I", len(b)) + b


def rewrite_pickle(data: bytes, key: str | None = None, replace: Callable[[str], str | None] | None = None,
                   drop_stop: bool = False) -> tuple[bytes, int]:
    """Copy of ``data`` without FRAME opcodes (framing is optional, and frame lengths would no longer match)
    where every literal string that is the value of dict key ``key`` becomes ``replace(old)`` (None: kept).
    Returns the new bytes and the number of strings replaced. ``drop_stop`` leaves the final STOP out."""
    ops = list(pickletools.genops(data))
    out, last, changed = bytearray(), 0, 0
    memo: dict[int, Any] = {}
    top: Any = None  # the string (if any) that the last pushing opcode put on the stack
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name == "FRAME" or (drop_stop and op.name == "STOP"):
            out += data[last:pos]
            last = end
            continue
        if op.name in _STRING_OPS:
            new = replace(arg) if (key is not None and top == key and replace is not None) else None
            if new is not None:
                out += data[last:pos] + _str_op(new)
                last = end
                changed += 1
                arg = new
            top = arg
        else:
            top = _track_memo(op.name, arg, memo, top)
    out += data[last:]
    return bytes(out), changed


class _CaptureUnpickler(RestrictedUnpickler):
    """The restricted unpickler, also recording every persistent record's metadata (executes nothing)."""

    def __init__(self, f):
        super().__init__(f)
        self.records: list[dict] = []

    def find_class(self, module, name):
        if (module, name) == ("torch_utils.persistence", "_reconstruct_persistent_obj"):
            def capture(meta):
                self.records.append({k: meta.get(k) for k in ("class_name", "module_src", "version")})
                return _reconstruct_persistent(meta)
            return capture
        return super().find_class(module, name)


def capture_records(data: bytes) -> list[dict]:
    u = _CaptureUnpickler(io.BytesIO(data))
    u.load()
    return u.records


@pytest.fixture(scope="module")
def fixture_bytes(eg3d_fixture_dir) -> bytes:
    assert eg3d_fixture_dir / "network.pkl" == FIXTURE_PKL
    return FIXTURE_PKL.read_bytes()


@pytest.fixture(scope="module")
def fixture_body(fixture_bytes) -> bytes:
    """The fixture pickle without frames and without its STOP: the top-level dict is left on the stack."""
    body, _ = rewrite_pickle(fixture_bytes, drop_stop=True)
    return body


def _snapshots_equal(a: Snapshot, b: Snapshot) -> None:
    assert a.generator == b.generator
    assert a.discriminator == b.discriminator
    for part in ("G_ema", "G", "D"):
        sa, sb = getattr(a, part), getattr(b, part)
        assert sa.keys() == sb.keys(), part
        for k in sa:
            assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), f"{part}.{k} differs"


def test_fixture_module_src_is_never_executed(env, fixture_bytes, eg3d_snapshot, eg3d_G, eg3d_expected):
    evil_src = (f"import os, pathlib\npathlib.Path({str(env.sentinel)!r}).write_text('module_src ran')\n"
                f"os.system('touch {env.sentinel}')\n__import__({env.module!r})\n"
                "class TriPlaneGenerator:\n    pass\n")
    exec(compile(evil_src, "<control>", "exec"), {})  # control: this source really does leave a trace
    assert env.fired()
    env.sentinel.unlink()
    sys.modules.pop(env.module, None)
    assert not env.fired()

    original = capture_records(fixture_bytes)
    assert len(original) > 20 and all(r["module_src"] != evil_src for r in original)
    data, changed = rewrite_pickle(fixture_bytes, "module_src", lambda old: evil_src)
    assert changed >= 1
    records = capture_records(data)
    assert [r["class_name"] for r in records] == [r["class_name"] for r in original]
    assert all(r["module_src"] == evil_src for r in records), "surgery missed some module_src"

    path = env.dir / "network.pkl"
    path.write_bytes(data)
    snap = load_snapshot(path)
    assert not env.fired()
    _snapshots_equal(snap, eg3d_snapshot)
    G = build_generator(snap.generator, snap.G_ema)
    G_state = G.state_dict()
    z, c = torch.from_numpy(eg3d_expected["z"]), torch.from_numpy(eg3d_expected["c_cond"])
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=14)
        ws_ref = eg3d_G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=14)
    assert torch.equal(ws, ws_ref)
    for name, ref in eg3d_G.state_dict().items():
        assert torch.equal(G_state[name], ref), name
    assert not env.fired()


def test_fixture_with_unknown_persistent_class_refused(tmp_path, fixture_bytes):
    data, changed = rewrite_pickle(fixture_bytes, "class_name",
                                   lambda old: "EvilGenerator" if old == "TriPlaneGenerator" else None)
    assert changed >= 1
    path = tmp_path / "network.pkl"
    path.write_bytes(data)
    load_refused(path, "'EvilGenerator'", exc=UnsafePickleError)


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "subprocess.Popen", "importlib.import_module"])
def test_fixture_with_appended_payload_refused(env, fixture_body, payload):
    """The complete, valid fixture plus one extra top-level entry: the whole file is refused."""
    module, name, make_args = PAYLOADS[payload]
    evil = bytearray()
    _emit("extra", evil)
    _emit(Call(Glob(module, name), *make_args(env)), evil)
    path = env.dir / "network.pkl"
    path.write_bytes(fixture_body + bytes(evil) + b"s.")
    load_refused(path, f"'{module}.{name}'", exc=UnsafePickleError)
    assert not env.fired()


def test_fixture_rewrite_without_changes_loads(tmp_path, fixture_body, eg3d_snapshot):
    """The opcode-level rewriting used above keeps the fixture loadable (so refusals come from the payloads)."""
    path = tmp_path / "network.pkl"
    path.write_bytes(fixture_body + b".")
    _snapshots_equal(load_snapshot(path), eg3d_snapshot)


@pytest.mark.parametrize("class_name", ["EvilNet", "os.system", "__import__", "Popen", "", "triplanegenerator"])
def test_unknown_persistent_class_refused(tmp_path, class_name):
    path = tmp_path / "network.pkl"
    path.write_bytes(dumps({"G_ema": persistent(class_name, {"_init_kwargs": {}})}))
    load_refused(path, repr(class_name), exc=UnsafePickleError)


@pytest.mark.parametrize("meta", [
    {"type": "class", "version": 6, "module_src": "", "class_name": ["TriPlaneGenerator"], "state": {}},
    {"type": "class", "version": 6, "module_src": "", "class_name": "TriPlaneGenerator"},  # no state
    {"type": "function", "version": 6, "module_src": "", "class_name": "TriPlaneGenerator", "state": {}},
    {"type": "class", "version": 99, "module_src": "", "class_name": "TriPlaneGenerator", "state": {}},
    {"type": "class", "version": 6, "module_src": "", "class_name": "TriPlaneGenerator", "state": [1, 2]},
    "not a dict",
])
def test_malformed_persistent_record_refused(tmp_path, meta):
    path = tmp_path / "network.pkl"
    path.write_bytes(dumps({"G_ema": Call(Glob("torch_utils.persistence", "_reconstruct_persistent_obj"), meta)}))
    load_refused(path)


# ----------------------------------------------------------------------------------------------------------
# attacks that use only whitelisted globals


def test_build_cannot_modify_whitelisted_functions():
    """BUILD on a whitelisted global must not rewrite it: a file that set torch._utils._rebuild_tensor_v2's
    default ``metadata`` to {'neg': 1} would negate every tensor later loaded in the process."""
    fn = torch._utils._rebuild_tensor_v2
    saved_defaults, saved_dict = fn.__defaults__, dict(fn.__dict__)
    try:
        for g in (Glob("torch._utils", "_rebuild_tensor_v2"), Glob("torch._utils", "_rebuild_tensor_v2", "GLOBAL")):
            for state in ((None, {"__defaults__": ({"neg": 1},)}), {"poisoned": 1}):
                with pytest.raises(CheckpointError) as info:
                    restricted_load(dumps(Build(g, state)))
                assert_one_line(info.value)
                assert fn.__defaults__ == saved_defaults and "poisoned" not in fn.__dict__
        for module, name in (("torch.storage", "_load_from_bytes"), ("numpy", "dtype"),
                             ("torch_utils.persistence", "_reconstruct_persistent_obj"), ("copyreg", "_reconstructor")):
            with pytest.raises(CheckpointError):
                restricted_load(dumps(Build(Glob(module, name), (None, {"__defaults__": (1,)}))))
        buf = io.BytesIO()
        torch.save(torch.tensor([1.0, 2.0]), buf)
        buf.seek(0)
        assert torch.load(buf, weights_only=True).tolist() == [1.0, 2.0]
    finally:
        fn.__defaults__ = saved_defaults
        for k in set(fn.__dict__) - set(saved_dict):
            delattr(fn, k)


@pytest.mark.parametrize("module,name", [("dnnlib.util", "EasyDict"), ("collections", "OrderedDict"),
                                         ("builtins", "object"), ("torch", "device"),
                                         ("training.triplane", "OSGDecoder")])
def test_build_cannot_modify_whitelisted_classes(module, name):
    easydict_before = dict(EasyDict.__dict__)
    object_init, odict_init = object.__init__, collections.OrderedDict.__init__
    for state in ({"__init__": None}, (None, {"__setstate__": None, "__reduce__": None})):
        with pytest.raises(CheckpointError) as info:
            restricted_load(dumps(Build(Glob(module, name), state)))
        assert_one_line(info.value)
    assert dict(EasyDict.__dict__) == easydict_before
    assert object.__init__ is object_init and collections.OrderedDict.__init__ is odict_init


def test_persistent_ids_refused(tmp_path):
    for data in (b"\x80\x02X\x01\x00\x00\x00xQ.", b"\x80\x02Pabc\n."):
        with pytest.raises(UnsafePickleError) as info:
            restricted_load(data)
        assert_one_line(info.value, "persistent id")


def test_huge_memo_index_refused():
    """A 9-byte pickle with memo index 2**24 made the C unpickler zero-fill a 256 MiB memo table (2**30:
    16 GiB); such indices are refused before unpickling."""
    for data in (b"\x80\x02Nr" + struct.pack("<I", 2 ** 24) + b".",  # LONG_BINPUT 16777216
                 b"\x80\x02Nq\xff."):  # BINPUT 255 in a 6-byte pickle: just as impossible
        with pytest.raises(CheckpointError) as info:
            restricted_load(data)
        assert_one_line(info.value, "memo index")
    assert restricted_load(b"\x80\x02Nq\x00h\x00\x86.") == (None, None)  # small indices are fine


def test_hostile_arguments_to_whitelisted_functions():
    """Whitelisted callables fed nonsense raise all kinds of exceptions (AssertionError, RuntimeError, ...):
    each one must come out as a one-line CheckpointError."""
    blob = storage_blob(torch.arange(4.0))
    storage = Call(Glob("torch.storage", "_load_from_bytes"), blob)
    hooks = Call(Glob("collections", "OrderedDict"))
    rebuild = Glob("torch._utils", "_rebuild_tensor_v2")
    cases = [
        Call(rebuild, storage, 0, (2,), (1,), False, hooks, 5),          # metadata not a dict: AssertionError
        Call(rebuild, storage, -3, (2,), (1,), False, hooks),
        Call(rebuild, storage, 0, (-2,), (1,), False, hooks),
        Call(rebuild, {"x": 1}, 0, (2,), (1,), False, hooks),             # not a storage
        Call(Glob("torch.storage", "_load_from_bytes"), b"\x80\x02garbage"),
        Call(Glob("torch.storage", "_load_from_bytes"), "not bytes"),
        Call(Glob("torch._utils", "_rebuild_parameter"), "x", True, hooks),
        Call(Glob("torch._tensor", "_rebuild_from_type_v2"), Glob("torch", "device"), Glob("torch", "device"), ("cpu",), {}),
        Call(Glob("torch._tensor", "_rebuild_from_type_v2"), Glob("torch._utils", "_rebuild_parameter"),
             Glob("torch.nn.parameter", "Parameter"), (), {}),
        Call(Glob("numpy", "dtype"), "O"),
        Call(Glob("numpy", "dtype"), "no such dtype"),
        Call(Glob("numpy._core.multiarray", "scalar"), Call(Glob("numpy", "dtype"), "f8"), "str"),
        Call(Glob("copyreg", "_reconstructor"), Glob("torch", "device"), Glob("builtins", "object"), None),
        Call(Glob("torch", "device"), "no such device"),
        Call(Glob("builtins", "object"), 1, 2),
    ]
    for case in cases:
        with pytest.raises(CheckpointError) as info:
            restricted_load(dumps({"G_ema": case}))
        assert_one_line(info.value)


def test_tensor_larger_than_its_storage_refused():
    """torch's set_() silently grows a too-small storage: a 4-element record viewed as 1000 elements (directly,
    or later through BUILD -> Tensor.__setstate__ -> set_) became a tensor of uninitialised heap memory."""
    blob = storage_blob(torch.arange(4.0))
    storage = Call(Glob("torch.storage", "_load_from_bytes"), blob)
    hooks = Call(Glob("collections", "OrderedDict"))
    rebuild = Glob("torch._utils", "_rebuild_tensor_v2")
    assert restricted_load(dumps(Call(rebuild, storage, 0, (2, 2), (2, 1), False, hooks))).tolist() == [[0, 1], [2, 3]]
    small = Call(rebuild, storage, 0, (2,), (1,), False, hooks)
    for case in (Call(rebuild, storage, 0, (1000,), (1,), False, hooks),
                 Call(rebuild, storage, 3, (2,), (1,), False, hooks),
                 Call(Glob("torch._utils", "_rebuild_parameter"), Call(rebuild, storage, 0, (64, 64), (64, 1), False, hooks),
                      False, hooks),
                 Build(small, (Call(rebuild, storage, 0, (4,), (1,), False, hooks), 0, (1000,), (1,))),
                 Build(small, (storage, 0, (1000,), (1,))),
                 Call(rebuild, Call(Glob("torch.storage", "_load_from_bytes"), storage_blob(torch.zeros(0))),
                      0, (5,), (1,), False, hooks)):
        with pytest.raises(CheckpointError) as info:
            restricted_load(dumps({"G_ema": case}))
        assert_one_line(info.value)


# A small well-formed EG3D-like generator record, used to reach the code after unpickling.
def _fake_generator(decoder_net: Any = None, init_kwargs: Any = None, extra_modules: dict | None = None) -> Call:
    dec0 = persistent("FullyConnectedLayer", {"_parameters": {"weight": torch.zeros(16, 32), "bias": torch.zeros(16)}})
    dec2 = persistent("FullyConnectedLayer", {"_parameters": {"weight": torch.zeros(5, 16), "bias": torch.zeros(5)}})
    net = decoder_net if decoder_net is not None else persistent("FullyConnectedLayer", {"_modules": {"0": dec0, "2": dec2}})
    kw = init_kwargs if init_kwargs is not None else {
        "z_dim": 8, "w_dim": 8, "c_dim": 25, "img_resolution": 128, "img_channels": 3,
        "rendering_kwargs": {"superresolution_module": "training.superresolution.SuperresolutionHybrid2X",
                             "depth_resolution": 4, "depth_resolution_importance": 4}}
    modules = {"decoder": persistent("FullyConnectedLayer", {"_modules": {"net": net}}), **(extra_modules or {})}
    return persistent("TriPlaneGenerator", {"_init_kwargs": kw, "_modules": modules})


def test_fake_generator_is_accepted():
    """Control for the next test: the intact synthetic record imports (its errors come from the defects)."""
    imported = import_network_pickle(dumps({"G_ema": _fake_generator()}))
    assert imported.generator.decoder_hidden == 16 and imported.generator.decoder_output_dim == 4
    assert set(imported.G_ema) == {"decoder.net.0.weight", "decoder.net.0.bias", "decoder.net.2.weight",
                                   "decoder.net.2.bias"}


def test_structurally_malformed_snapshots(tmp_path):
    dec_ok = {"0": persistent("FullyConnectedLayer", {"_parameters": {"weight": torch.zeros(16, 32)}}),
              "2": persistent("FullyConnectedLayer", {"_parameters": {"weight": torch.zeros(5, 16)}})}
    cyclic_net = Build(Put(persistent("FullyConnectedLayer", {}), 200),
                       {"_modules": {**dec_ok, "1": Get(200)}})
    cases = {
        "decoder weight missing": {"G_ema": _fake_generator(persistent("FullyConnectedLayer", {"_modules": {
            "0": persistent("FullyConnectedLayer", {}), "2": persistent("FullyConnectedLayer", {})}}))},
        "init kwargs not a mapping": {"G_ema": _fake_generator(init_kwargs=[1, 2, 3])},
        "init kwargs of wrong type": {"G_ema": _fake_generator(init_kwargs={
            "z_dim": [8], "w_dim": 8, "c_dim": 25, "img_resolution": 32,
            "rendering_kwargs": {"superresolution_module": "x.SuperresolutionHybrid2X"}})},
        "cyclic module tree": {"G_ema": _fake_generator(cyclic_net)},
        "parameter not a tensor": {"G_ema": _fake_generator(extra_modules={
            "x": persistent("FullyConnectedLayer", {"_parameters": {"weight": "nope"}})})},
        "parameters not a dict": {"G_ema": _fake_generator(extra_modules={
            "x": persistent("FullyConnectedLayer", {"_parameters": [1, 2]})})},
        "discriminator without settings": {"G_ema": _fake_generator(),
                                           "D": persistent("DualDiscriminator", {"_init_kwargs": {}})},
        "mimic3d generator": {"G_ema": persistent("DualTriPlaneGenerator", {})},
        "keys with line breaks": {"G\nema": 1, "x\r\ny": 2},
    }
    for what, obj in cases.items():
        path = tmp_path / "network.pkl"
        path.write_bytes(dumps(obj))
        with pytest.raises(CheckpointError) as info:
            load_snapshot(path)
        assert len(str(info.value).splitlines()) == 1, f"{what}: {info.value!r}"
        assert_one_line(info.value)


# ----------------------------------------------------------------------------------------------------------
# 3. Trident (torch zip) files


def _trident_payload(G_ema: Any, **over: Any) -> dict:
    return {"format": "trident-snapshot", "version": 1, "generator": {}, "G_ema": G_ema, "G": None,
            "discriminator": None, "D": None, "extra": {}, **over}


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_trident_zip_with_malicious_reduce_refused(env, payload):
    module, name, make_args = PAYLOADS[payload]
    fn = getattr(importlib.import_module(module), name)
    path = env.dir / "snapshot.pkl"
    torch.save(_trident_payload(_Reduce(fn, make_args(env))), path)
    assert zipfile.is_zipfile(path)
    msg = load_refused(path, name, exc=UnsafePickleError)
    assert "weights_only" not in msg  # not torch's advice to turn the safety off
    assert not env.fired()
    _finish(torch.load(path, weights_only=False))  # control: the ordinary torch.load runs it
    assert env.fired()


def _replace_in_zip(src: Path, dst: Path, suffix: str, data: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        hit = False
        for info in zin.infolist():
            blob = zin.read(info)
            if info.filename.endswith(suffix):
                blob, hit = data, True
            zout.writestr(info.filename, blob)
        assert hit


@pytest.mark.parametrize("op", ["GLOBAL", "STACK_GLOBAL"])
@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "subprocess.run", "importlib.import_module"])
def test_trident_zip_with_handwritten_inner_pickle_refused(env, payload, op):
    module, name, make_args = PAYLOADS[payload]
    clean = env.dir / "clean.pt"
    torch.save(_trident_payload({"w": torch.zeros(2)}), clean)
    path = env.dir / "snapshot.pt"
    inner = dumps(_trident_payload(Call(Glob(module, name, op), *make_args(env))), proto=2)
    _replace_in_zip(clean, path, "/data.pkl", inner)
    # torch's weights-only unpickler rejects STACK_GLOBAL's SHORT_BINUNICODE operands before the global itself
    msg = load_refused(path, *([name] if op == "GLOBAL" else ["operand"]), exc=UnsafePickleError)
    assert "weights_only" not in msg
    assert not env.fired()
    _finish(torch.load(path, weights_only=False))  # control: a valid archive whose pickle really runs code
    assert env.fired()


def test_trident_roundtrip(tmp_path, eg3d_snapshot):
    """Control: a genuine Trident file loads, so the refusals above are not a broken reader."""
    path = tmp_path / "snap.pkl"
    save_snapshot(path, eg3d_snapshot)
    _snapshots_equal(load_snapshot(path), eg3d_snapshot)


# ----------------------------------------------------------------------------------------------------------
# 4. corrupt and wrong inputs


def _corrupt_cases(tmp_path: Path, fixture_bytes: bytes) -> dict[str, Path]:
    cases: dict[str, Any] = {}
    n = len(fixture_bytes)
    for cut in (1, 2, 10, 1000, 65536, n // 3, n // 2, n - 2, n - 1):
        cases[f"truncated-{cut}"] = fixture_bytes[:cut]
    rng = np.random.RandomState(0)
    cases["random"] = rng.bytes(4096)
    cases["random-after-proto"] = b"\x80\x04" + rng.bytes(4096)
    cases["random-after-proto2"] = b"\x80\x02" + rng.bytes(100000)
    cases["bitflips"] = bytes(b ^ 0xFF if i % 997 == 0 else b for i, b in enumerate(fixture_bytes[:200000]))
    cases["empty"] = b""
    cases["png"] = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + bytes(17) + rng.bytes(64)
    cases["text"] = b"this is not a model\n"
    cases["text-starting-PK"] = b"PK is not a zip archive"
    cases["plain-list"] = pickle.dumps([1, 2, 3], protocol=4)
    cases["no-G_ema"] = pickle.dumps({"G": None, "D": None}, protocol=4)
    cases["G_ema-int"] = pickle.dumps({"G_ema": 5, "G": None}, protocol=4)
    cases["G_ema-dict"] = pickle.dumps({"G_ema": {"weight": 1}}, protocol=4)
    cases["legacy-torch-save"] = (lambda b: (torch.save({"G_ema": torch.zeros(2)}, b,
                                                        _use_new_zipfile_serialization=False), b.getvalue())[1])(io.BytesIO())
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("hello.txt", "not a torch archive")
    cases["zip-not-torch"] = zbuf.getvalue()
    for name, obj in {"trident-wrong-version": _trident_payload({}, version=2),
                      "trident-version-missing": {k: v for k, v in _trident_payload({}).items() if k != "version"},
                      "trident-wrong-format": _trident_payload({}, format="something-else"),
                      "trident-no-header": {"G_ema": {}},
                      "trident-list": [1, 2, 3],
                      "trident-bad-generator": _trident_payload({}, generator={"no_such_field": 1}),
                      "trident-no-weights": _trident_payload(None)}.items():
        b = io.BytesIO()
        torch.save(obj, b)
        cases[name] = b.getvalue()
    paths = {}
    for name, blob in cases.items():
        paths[name] = tmp_path / f"{name}.pkl"
        paths[name].write_bytes(blob)
    zip_full = io.BytesIO()
    torch.save(_trident_payload({"w": torch.zeros(1000)}), zip_full)
    paths["trident-truncated"] = tmp_path / "trident-truncated.pkl"
    paths["trident-truncated"].write_bytes(zip_full.getvalue()[: len(zip_full.getvalue()) // 2])
    paths["directory"] = tmp_path / "a-directory.pkl"
    paths["directory"].mkdir()
    paths["missing"] = tmp_path / "does-not-exist.pkl"
    return paths


def test_corrupt_inputs(tmp_path, fixture_bytes):
    for name, path in _corrupt_cases(tmp_path, fixture_bytes).items():
        with pytest.raises(CheckpointError) as info:
            load_snapshot(path)
        msg = assert_one_line(info.value)
        assert len(msg) < 400, f"{name}: overlong message"
        if name in ("plain-list", "no-G_ema", "G_ema-int"):
            assert "snapshot" in msg or "network" in msg, (name, msg)


def test_truncation_anywhere_in_the_header(tmp_path, fixture_bytes):
    """Every cut in the first 4 KiB (the top-level dict and the first records) is a clean error."""
    for cut in range(0, 4096, 37):
        with pytest.raises(CheckpointError) as info:
            restricted_load(fixture_bytes[:cut])
        assert_one_line(info.value)


# ----------------------------------------------------------------------------------------------------------
# 5. the command line


@pytest.mark.slow
def test_cli_errors_are_one_line_and_run_nothing(env, fixture_bytes):
    bad = {}
    bad["missing"] = env.dir / "missing.pkl"
    bad["truncated"] = env.dir / "truncated.pkl"
    bad["truncated"].write_bytes(fixture_bytes[: len(fixture_bytes) // 2])
    bad["malicious"] = env.dir / "malicious.pkl"
    bad["malicious"].write_bytes(dumps(_nest("snapshot-dict", Call(Glob("os", "system"), f"touch '{env.sentinel}'"))))
    bad["not-a-pickle"] = env.dir / "notes.txt"
    bad["not-a-pickle"].write_text("hello\n")
    procs = {}
    for name, path in bad.items():  # started together: each pays ~2 s of imports
        outdir = env.dir / f"out-{name}"
        procs[name] = (outdir, subprocess.Popen(
            [sys.executable, "-m", "core", "samples", "--network", str(path), "--seeds", "0", "--outdir", str(outdir),
             "--device", "cpu"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)}))
    for name, (outdir, proc) in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, f"{name}: exit {proc.returncode}\n{err}"
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: stderr {err!r}"
        assert "Traceback" not in err and "Traceback" not in out
        assert not outdir.exists() or not any(outdir.iterdir()), name
        if name == "malicious":
            assert "'os.system'" in err
    assert not env.fired()

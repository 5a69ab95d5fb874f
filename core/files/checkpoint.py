"""Trident model files: save/load of Trident snapshots and import of EG3D network pickles.

A Trident snapshot is a ``torch.save`` archive of plain data only and loads with
``torch.load(weights_only=True)``::

    {"format": "trident-snapshot", "version": 1,
     "generator": {... GeneratorConfig as a dict ...}, "G_ema": state_dict,
     "G": state_dict | None, "discriminator": {...} | None, "D": state_dict | None,
     "patch_discriminator": {...} | None, "D_patch": state_dict | None,   # Mimic3D stage 2; absent in older files
     "extra": {...}}     # other branches, optimizer/progress state, metadata: plain data and tensors

:func:`load_snapshot` accepts both Trident files and EG3D network pickles (the latter through the restricted
unpickler of :mod:`core.files.network_pickle`; no code from the file is ever executed).
"""
from __future__ import annotations

import os
import pickle
import re
import stat
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from ..build import build_generator
from ..config import ConfigError, DiscriminatorConfig, GeneratorConfig, from_dict, to_dict
from ..discriminator import DualDiscriminator
from ..errors import CheckpointError, first_line
from ..limits import check_snapshot, max_model_bytes
from ..triplane import TriPlaneGenerator
from .network_pickle import UnsafePickleError, check_object_tree, import_network_pickle
from .snapshot import Snapshot

FORMAT_NAME = "trident-snapshot"
FORMAT_VERSION = 1

__all__ = ["load_snapshot", "save_snapshot", "load_generator", "snapshot_from_modules"]

# ----------------------------------------------------------------------------------------------------------
# saving


def _plain_state(sd: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    if sd is None:
        return None
    return {k: v.detach().to("cpu").clone() for k, v in sd.items()}


def save_snapshot(path: str | os.PathLike, snap: Snapshot) -> None:
    """Write a Trident snapshot atomically (temp file + rename): a crash never leaves a half-written file."""
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "generator": to_dict(snap.generator),
        "G_ema": _plain_state(snap.G_ema),
        "G": _plain_state(snap.G),
        "discriminator": to_dict(snap.discriminator) if snap.discriminator is not None else None,
        "D": _plain_state(snap.D),
        "patch_discriminator": to_dict(snap.patch_discriminator) if snap.patch_discriminator is not None else None,
        "D_patch": _plain_state(snap.D_patch),
        "extra": snap.extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would make shared model files unreadable to others
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        delay = float(os.environ.get("TRIDENT_SNAPSHOT_WRITE_DELAY", "0") or 0)
        if delay > 0:  # fault injection for crash tests: widen the window in which a write is in progress
            time.sleep(delay)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def snapshot_from_modules(G_ema: TriPlaneGenerator, G: TriPlaneGenerator | None = None,
                          D: DualDiscriminator | None = None, extra: dict | None = None) -> Snapshot:
    return Snapshot(generator=G_ema.cfg, G_ema=G_ema.state_dict(), G=G.state_dict() if G is not None else None,
                    discriminator=D.cfg if D is not None else None, D=D.state_dict() if D is not None else None,
                    extra=dict(extra or {}))


# ----------------------------------------------------------------------------------------------------------
# loading


def _weights_only_reason(text: str) -> str:
    """The informative part of torch's multi-line weights-only refusal (its first line is generic advice)."""
    m = re.search(r"GLOBAL ([\w.]+)", text)
    if m:
        return f"global '{m.group(1)}' is not allowed in a Trident snapshot"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip() or (lines[i + 1] if i + 1 < len(lines) else "")
            if rest:
                return rest[:200]
    return lines[0][:200] if lines else "unsupported content"


MAX_COMPRESSED_RECORD_MB = 64  # torch.save writes stored records; a compressed one may inflate to this much at most


def _check_trident_records(path: Path, limit: int) -> None:
    """Refuse, from the zip directory alone, records that would inflate beyond the limits: a compressed record
    above :data:`MAX_COMPRESSED_RECORD_MB` MB, or records summing to more than the model memory limit."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"damaged Trident file ({first_line(e)[:160]})") from None
    total = 0
    for info in infos:
        total += info.file_size
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_COMPRESSED_RECORD_MB << 20:
            raise CheckpointError(f"{path.name}: compressed record {info.filename[-60:]!r} inflates to "
                                  f"{info.file_size >> 20} MB (compressed records are read up to "
                                  f"{MAX_COMPRESSED_RECORD_MB} MB)")
    if total > limit:
        raise CheckpointError(f"{path.name}: its records hold {total >> 20} MB, above the model limit of "
                              f"{limit >> 20} MB (set TRIDENT_MAX_MODEL_MB to raise it)")


def _read_trident(path: Path) -> Snapshot:
    _check_trident_records(path, max_model_bytes())
    try:
        data = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        raise UnsafePickleError(f"refusing to load: {_weights_only_reason(str(e))}") from None
    except Exception as e:  # noqa: BLE001 - corrupt archives raise many types
        raise CheckpointError(f"damaged Trident file ({type(e).__name__}: {first_line(e)[:160]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise CheckpointError("not a Trident snapshot (no 'format: trident-snapshot' header)")
    check_object_tree(data, "Trident snapshot")
    if data.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"unsupported Trident snapshot version {data.get('version')!r} (this build reads {FORMAT_VERSION})")
    try:
        gen = from_dict(GeneratorConfig, data["generator"], "generator")
        disc = from_dict(DiscriminatorConfig, data["discriminator"], "discriminator") if data.get("discriminator") else None
        patch_disc = (from_dict(DiscriminatorConfig, data["patch_discriminator"], "patch_discriminator")
                      if data.get("patch_discriminator") else None)
    except (ConfigError, KeyError) as e:
        raise CheckpointError(f"bad model config in file: {e}") from None
    if not isinstance(data.get("G_ema"), dict):
        raise CheckpointError("Trident snapshot has no G_ema weights")
    return Snapshot(generator=gen, G_ema=data["G_ema"], G=data.get("G"), discriminator=disc, D=data.get("D"),
                    patch_discriminator=patch_disc, D_patch=data.get("D_patch"), extra=data.get("extra") or {})


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_model_file(path: str | os.PathLike) -> Path:
    """``path`` names an existing regular file (links followed); anything else is a one-line CheckpointError.
    Directories, FIFOs (which would block the reader), devices such as ``/dev/zero`` (endless) are refused
    without being opened."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"no such file: {path}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise CheckpointError(f"{path} is {kind}, not a model file")
    return path


def _read_model_file(path: Path) -> Snapshot:
    check_model_file(path)
    try:
        # O_NONBLOCK: should the path have been swapped for a FIFO since the check, open() does not hang on it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise CheckpointError(f"{path} is not a regular file, not a model file")
            head = f.read(4)
            # The pickle check comes first: is_zipfile() looks for a zip end record anywhere in the last 64 KiB,
            # which the tensor bytes of a genuine network pickle may happen to contain.
            if head[:1] != b"\x80" and (head[:2] == b"PK" or zipfile.is_zipfile(path)):
                return _read_trident(path)
            if not head or head[:1] != b"\x80":
                raise CheckpointError(f"{path.name} is neither a Trident snapshot nor a network pickle")
            limit = max_model_bytes()
            if st.st_size > limit:
                raise CheckpointError(f"{path.name} is {st.st_size >> 20} MB, above the model limit of "
                                      f"{limit >> 20} MB (set TRIDENT_MAX_MODEL_MB to raise it)")
            f.seek(0)
            data = f.read(st.st_size)
    except OSError as e:  # unreadable, vanished meanwhile
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    return import_network_pickle(data)


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a Trident snapshot or an EG3D network pickle into plain data (never executes code from the file).

    Only regular files are read; the settings pass :func:`core.limits.check_snapshot` (bounds, estimated memory)
    before the caller builds anything."""
    snap = _read_model_file(Path(path))
    check_snapshot(snap)
    return snap


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> TriPlaneGenerator:
    """The inference generator (G_ema) of a model file, in eval mode on ``device``."""
    snap = load_snapshot(path)
    return build_generator(snap.generator, snap.G_ema, device)

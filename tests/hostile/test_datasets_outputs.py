"""Hostile and broken datasets, photos, outputs and runs (issue "Hostile and broken inputs", items 1, 4-8, 10).

Every case crafts its file here and runs the real command in a child process through :mod:`.harness` (address space
capped, time limited), then checks the promise of docs/safety.md: a refusal is a non-zero exit with one line on
stderr and no traceback, the peak stays under 1 GB, nothing is written outside the output folder and no input
changes. Cases that must succeed (a resume that falls back, a lock taken over) check what they wrote instead.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cameras import Camera

from tests.training.datasets import random_dataset

from .harness import REPO, assert_refused, changed_files, new_files, run_limited, tree_state

LABEL = [float(v) for v in Camera.frontal_offset(0.0, 0.0).to_label()[0]]


def png(side: int = 64, seed: int = 0) -> bytes:
    rng = np.random.RandomState(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.randint(0, 255, (side, side, 3), dtype=np.uint8)).save(buf, format="png")
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes], labels: list[str] | None = None,
              method: int = zipfile.ZIP_STORED) -> Path:
    """A dataset zip with exactly these member names (nothing normalised) and dataset.json labelling ``labels``
    (default: every member)."""
    labels = list(members) if labels is None else labels
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
        zf.writestr("dataset.json", json.dumps({"labels": [[n, LABEL] for n in labels]}))
    return path


def stream_member(zf: zipfile.ZipFile, name: str, head: bytes, zeros: int, tail: bytes = b"") -> None:
    """A deflated member of ``head`` + ``zeros`` zero bytes (or spaces for JSON) + ``tail``, written in chunks."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    fill = b" " if name.endswith(".json") else b"\0"
    with zf.open(info, "w", force_zip64=True) as f:
        f.write(head)
        chunk = fill * (16 << 20)
        for _ in range(zeros // len(chunk)):
            f.write(chunk)
        f.write(tail)


def patch_zip_member(path: Path, *, flag: int | None = None, method: int | None = None) -> None:
    """Set the general-purpose flag bits / compression method of every member in both the local and the central
    headers (what an encrypting or Deflate64 archiver writes; Python's zipfile cannot write either)."""
    data = bytearray(path.read_bytes())
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(sig)
        while at >= 0:
            if flag is not None:
                struct.pack_into("<H", data, at + flag_at, struct.unpack_from("<H", data, at + flag_at)[0] | flag)
            if method is not None:
                struct.pack_into("<H", data, at + method_at, method)
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))


def mirror(tmp_path: Path, source: Path, dest: str = "out/ds", **kw):
    (tmp_path / "out").mkdir(exist_ok=True)
    return run_limited(["-m", "training", "dataset", "mirror", "--source", str(source), "--dest", str(tmp_path / dest)],
                       cwd=tmp_path, **kw)


def only_inside(before: dict, after: dict, folder: str) -> None:
    """Nothing new outside ``folder`` (relative to the tree root) and no file of ``before`` changed."""
    outside = {f for f in new_files(before, after) if not f.startswith(folder.rstrip("/") + "/")}
    assert not outside, f"files written outside {folder}: {sorted(outside)}"
    assert not changed_files(before, after), f"inputs changed: {sorted(changed_files(before, after))}"


# ----------------------------------------------------------------------------------------------------------
# item 1: names that leave the dataset


@pytest.mark.parametrize("name", ["../../escape.png", "..\\..\\escape.png", "sub/../../../escape.png",
                                  "C:/escape.png", "./a.png", "a//b.png"])
def test_mirror_refuses_member_names_that_leave_the_dataset(tmp_path, name):
    src = write_zip(tmp_path / "in.zip", {"ok.png": png(), name: png(seed=1)})
    before = tree_state(tmp_path)
    out = mirror(tmp_path, src)
    assert_refused(out, mentions="file name")
    after = tree_state(tmp_path)
    only_inside(before, after, "out")
    assert not new_files(before, after), "a refused mirror must write nothing"


def test_mirror_refuses_an_absolute_member_name(tmp_path):
    target = tmp_path / "victim" / "abs.png"
    target.parent.mkdir()
    src = write_zip(tmp_path / "in.zip", {"ok.png": png(), str(target): png(seed=1)})
    before = tree_state(tmp_path)
    assert_refused(mirror(tmp_path, src), mentions="absolute")
    assert tree_state(tmp_path) == before


def test_dataset_json_name_outside_the_folder_is_refused(tmp_path):
    """A folder dataset whose dataset.json labels ``../secret.png`` (a file that exists beside the dataset)."""
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "a.png").write_bytes(png())
    (tmp_path / "secret.png").write_bytes(png(seed=2))
    (ds / "dataset.json").write_text(json.dumps({"labels": [["a.png", LABEL], ["../secret.png", LABEL]]}))
    before = tree_state(tmp_path)
    assert_refused(mirror(tmp_path, ds), mentions="secret.png")
    assert tree_state(tmp_path) == before


def test_zip_symlink_member_is_refused(tmp_path):
    src = tmp_path / "in.zip"
    write_zip(src, {"ok.png": png()})
    with zipfile.ZipFile(src, "a") as zf:
        info = zipfile.ZipInfo("link.png", date_time=(1980, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    before = tree_state(tmp_path)
    assert_refused(mirror(tmp_path, src), mentions="symbolic link")
    assert tree_state(tmp_path) == before


def test_folder_symlink_is_refused(tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "a.png").write_bytes(png())
    (tmp_path / "private.png").write_bytes(png(seed=3))
    os.symlink(tmp_path / "private.png", ds / "b.png")
    (ds / "dataset.json").write_text(json.dumps({"labels": [["a.png", LABEL], ["b.png", LABEL]]}))
    before = tree_state(tmp_path)
    assert_refused(mirror(tmp_path, ds), mentions="symbolic link")
    assert tree_state(tmp_path) == before


def test_writer_refuses_hostile_names(tmp_path):
    from core.files.dataset import DatasetError
    from training.dataset_tool import Item, write_dataset

    img = np.zeros((8, 8, 3), np.uint8)
    for name in ("../x.png", "/abs.png", "a/../../x.png", "..\\x.png"):
        with pytest.raises(DatasetError, match="file name"):
            write_dataset(tmp_path / "w" / "ds", [Item(label=LABEL, image=img, name=name)])
    assert not (tmp_path / "x.png").exists() and not list((tmp_path / "w").iterdir())


# ----------------------------------------------------------------------------------------------------------
# item 6: zip bombs, deep JSON, encrypted and Deflate64 members


@pytest.mark.slow
def test_deflated_dataset_json_bomb_is_refused(tmp_path):
    src = tmp_path / "bomb.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("a.png", png())
        stream_member(zf, "dataset.json", json.dumps({"labels": [["a.png", LABEL]]}).encode(), 400 << 20)
    assert src.stat().st_size < 4 << 20
    before = tree_state(tmp_path)
    assert_refused(mirror(tmp_path, src), mentions="limit")
    assert tree_state(tmp_path) == before


@pytest.mark.slow
def test_image_member_padded_with_deflated_zeros_is_refused(tmp_path):
    src = tmp_path / "bomb.zip"
    with zipfile.ZipFile(src, "w") as zf:
        stream_member(zf, "a.png", png(), 400 << 20)
        zf.writestr("dataset.json", json.dumps({"labels": [["a.png", LABEL]]}))
    before = tree_state(tmp_path)
    assert_refused(mirror(tmp_path, src), mentions="limit")
    assert tree_state(tmp_path) == before


def test_member_limit_is_overridable(tmp_path):
    """The per-file limit is TRIDENT_MAX_MEMBER_MB: at 0.001 MiB an ordinary dataset is refused, naming it."""
    src = write_zip(tmp_path / "in.zip", {"a.png": png()})
    out = mirror(tmp_path, src, env={"TRIDENT_MAX_MEMBER_MB": "0.001"})
    assert_refused(out, mentions="TRIDENT_MAX_MEMBER_MB")


def test_deeply_nested_dataset_json_is_refused(tmp_path):
    src = tmp_path / "deep.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("a.png", png())
        zf.writestr("dataset.json", "[" * 200_000 + "]" * 200_000, compress_type=zipfile.ZIP_DEFLATED)
    before = tree_state(tmp_path)
    assert_refused(mirror(tmp_path, src), mentions="nests deeper")
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("what", ["encrypted", "deflate64"])
def test_unreadable_members_are_refused(tmp_path, what):
    src = write_zip(tmp_path / "in.zip", {"a.png": png()}, method=zipfile.ZIP_DEFLATED)
    patch_zip_member(src, **({"flag": 0x1} if what == "encrypted" else {"method": 9}))
    before = tree_state(tmp_path)
    assert_refused(mirror(tmp_path, src), mentions="encrypted" if what == "encrypted" else "compression method 9")
    assert tree_state(tmp_path) == before


def test_depth_file_claiming_a_huge_shape_is_refused(tmp_path):
    header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 20, 1 << 20)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "a.png").write_bytes(png())
    (ds / "a.depth.npy").write_bytes(buf.getvalue() + b"\0" * 64)
    (ds / "dataset.json").write_text(json.dumps({"labels": [["a.png", LABEL]], "depth": [["a.png", "a.depth.npy"]]}))
    before = tree_state(tmp_path)
    assert_refused(mirror(tmp_path, ds), mentions="depth")
    assert tree_state(tmp_path) == before


# ----------------------------------------------------------------------------------------------------------
# item 5: a photo decompression bomb through the TIFF fallback


def deflate_tiff(path: Path, side: int) -> Path:
    """A 16-bit RGB TIFF, ``side`` x ``side``, one deflated strip of zeros: a few MB on disk, side^2 x 6 bytes
    decoded (Pillow refuses it as a bomb; the old fallback decoded it through tifffile anyway)."""
    comp = zlib.compressobj(1)
    row = bytes(side * 6 * 64)
    parts = [comp.compress(row) for _ in range(side // 64)] + [comp.flush()]
    data = b"".join(parts)
    entries = [(256, 4, 1, side), (257, 4, 1, side), (258, 3, 3, 134), (259, 3, 1, 8), (262, 3, 1, 2),
               (273, 4, 1, 140), (277, 3, 1, 3), (278, 4, 1, side), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 and count == 1
                                                else struct.pack("<I", value)) for tag, typ, count, value in entries)
    body = b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + struct.pack("<3H", 16, 16, 16)
    assert len(body) == 140
    path.write_bytes(body + data)
    return path


@pytest.mark.slow
def test_tiff_photo_bomb_is_refused_before_decoding(tmp_path):
    bomb = deflate_tiff(tmp_path / "bomb.tif", 14016)   # 196 M pixels, 1.2 GB decoded
    before = tree_state(tmp_path)
    # a 4 GB cap, so that decoding it anyway shows as a peak above 1 GB instead of a MemoryError
    out = run_limited(["-m", "core", "align", "--image", str(bomb), "--out", str(tmp_path / "out")], cwd=tmp_path,
                      mem_mb=4096)
    assert_refused(out, mentions="TRIDENT_MAX_PIXELS")
    assert tree_state(tmp_path) == before


def test_pixel_limit_is_shared_and_overridable(tmp_path, monkeypatch):
    from core.files.dataset import DatasetError, decode_image
    from core.files.image_io import PhotoError, read_image

    small = tmp_path / "p.tif"
    deflate_tiff(small, 128)                     # 16 384 pixels, read through the tifffile path
    (tmp_path / "p.png").write_bytes(png(128))
    assert read_image(small).shape == (128, 128, 3)
    monkeypatch.setenv("TRIDENT_MAX_PIXELS", "10000")
    for path in (small, tmp_path / "p.png"):
        with pytest.raises(PhotoError, match="10,000 pixels"):
            read_image(path)
    with pytest.raises(DatasetError, match="10,000 pixels"):
        decode_image(png(128), "ds: a.png")
    monkeypatch.setenv("TRIDENT_MAX_PIXELS", "20000")
    assert read_image(tmp_path / "p.png").shape == (128, 128, 3)


# ----------------------------------------------------------------------------------------------------------
# item 4: commands that destroyed the user's files


def test_invert_refuses_an_outdir_holding_its_model(tmp_path):
    d = tmp_path / "inv"
    d.mkdir()
    shutil.copy(REPO / "assets" / "default.pkl", d / "network.pkl")
    (tmp_path / "photo.png").write_bytes(png(128))
    before = tree_state(tmp_path)
    out = run_limited(["-m", "core", "invert", "--network", str(d / "network.pkl"), "--image", str(tmp_path / "photo.png"),
                       "--outdir", str(d), "--loss", "mse", "--steps", "1", "--video-frames", "0", "--device", "cpu"],
                      cwd=tmp_path)
    assert_refused(out, mentions="--network")
    assert tree_state(tmp_path) == before


def test_pack_refuses_to_overwrite_its_input(tmp_path):
    net = tmp_path / "snap.pkl"
    shutil.copy(REPO / "assets" / "default.pkl", net)
    os.link(net, tmp_path / "hard.pkl")
    before = tree_state(tmp_path)
    for out_path in (net, tmp_path / "sub" / ".." / "snap.pkl", tmp_path / "hard.pkl"):
        out = run_limited(["-m", "core", "pack", "--network", str(net), "--out", str(out_path)], cwd=tmp_path)
        assert_refused(out, mentions="--network")
    assert tree_state(tmp_path) == before


def test_mirror_refuses_a_destination_holding_its_source(tmp_path):
    ds = tmp_path / "data" / "ds"
    ds.mkdir(parents=True)
    (ds / "a.png").write_bytes(png())
    (ds / "dataset.json").write_text(json.dumps({"labels": [["a.png", LABEL]]}))
    before = tree_state(tmp_path)
    out = run_limited(["-m", "training", "dataset", "mirror", "--source", str(ds), "--dest", str(tmp_path / "data"),
                       "--overwrite"], cwd=tmp_path)
    assert_refused(out, mentions="--source")
    assert tree_state(tmp_path) == before


# ----------------------------------------------------------------------------------------------------------
# training runs: items 4 (--resume PATH), 7 (resume, lock, temp files, stats, --kimg 0), 8, 10

TRAIN = ["--config", "synth-tiny", "--snap-kimg", "0.004", "--set", "run.tick_kimg=0.004",
         "--set", "generator.rendering.depth_resolution=4", "--set", "generator.rendering.depth_resolution_importance=0",
         "--set", "run.grid=[1, 1]", "--set", "data.workers=0", "--device", "cpu"]


def dataset_zip(path: Path, side: int = 64, count: int = 8) -> Path:
    return random_dataset(path, side, count)


def train(tmp_path: Path, outdir: Path, *extra: str, kimg: float = 0.008, **kw):
    return run_limited(["-m", "training", "train", "--data", str(tmp_path / "d.zip"), "--outdir", str(outdir),
                        "--kimg", str(kimg), *TRAIN, *extra], cwd=tmp_path, timeout_s=300, mem_mb=3072, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished tiny run (snapshots at 0.004 and 0.008 kimg) to copy from."""
    root = tmp_path_factory.mktemp("trained")
    dataset_zip(root / "d.zip")
    out = train(root, root / "runs")
    assert out.returncode == 0, out.describe()
    return root


def copy_run(trained: Path, tmp_path: Path) -> Path:
    shutil.copy(trained / "d.zip", tmp_path / "d.zip")
    shutil.copytree(trained / "runs", tmp_path / "runs")
    return next((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_resume_path_writes_under_outdir_and_deletes_nothing(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    (run / "notes.tmp").write_text("mine")
    (run / "other.pkl.tmp").write_text("mine too")
    before = tree_state(tmp_path)
    out = train(tmp_path, tmp_path / "elsewhere", "--resume", str(run / "network-snapshot-000000.008.pkl"), kimg=0.012)
    assert out.returncode == 0, out.describe()
    after = tree_state(tmp_path)
    only_inside(before, after, "elsewhere")
    assert any(f.endswith("network-snapshot-000000.012.pkl") for f in new_files(before, after))


@pytest.mark.slow
def test_resume_auto_skips_a_damaged_newest_snapshot(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    good = (run / "network-snapshot-000000.008.pkl").read_bytes()
    (run / "network-snapshot-000000.012.pkl").write_bytes(good[: len(good) // 2])   # cut short
    out = train(tmp_path, tmp_path / "runs", "--resume", "auto", kimg=0.016)
    assert out.returncode == 0, out.describe()
    assert "skipping damaged snapshot" in out.stderr and "network-snapshot-000000.012.pkl" in out.stderr
    assert "from network-snapshot-000000.008.pkl" in out.stdout
    assert (run / "network-snapshot-000000.016.pkl").is_file()


def _hold_lock(run: Path) -> subprocess.Popen:
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from pathlib import Path; from training.runs import RunLock; "
            "lock = RunLock(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()")
    p = subprocess.Popen([sys.executable, "-c", code, str(run), str(REPO)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


@pytest.mark.slow
def test_second_process_on_a_locked_run_is_refused_and_a_stale_lock_is_taken_over(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    holder = _hold_lock(run)
    try:
        before = tree_state(tmp_path)
        out = train(tmp_path, tmp_path / "runs", "--resume", "auto", kimg=0.012)
        assert_refused(out, mentions=f"pid {holder.pid}")
        assert tree_state(tmp_path) == before
    finally:
        holder.stdin.close()
        holder.wait()
    (run / "run.lock").write_text(f"{holder.pid}\n")   # the holder is dead: its lock is stale
    out = train(tmp_path, tmp_path / "runs", "--resume", "auto", kimg=0.012)
    assert out.returncode == 0, out.describe()
    assert (run / "network-snapshot-000000.012.pkl").is_file()


@pytest.mark.slow
def test_resume_auto_cleans_this_runs_stale_temp_files_only(trained, tmp_path):
    """A run killed while writing its first snapshot left only a temp file: --resume auto clears it (and only
    it), then continues the older run that has a snapshot."""
    copy_run(trained, tmp_path)
    dead = tmp_path / "runs" / "00001-synth-tiny-d"
    dead.mkdir()
    (dead / "config.yaml").write_text((tmp_path / "runs" / "00000-synth-tiny-d" / "config.yaml").read_text())
    (dead / "network-snapshot-000000.004.pkl.k3j_x9ab.tmp").write_bytes(b"half a snapshot")
    (dead / ".fakes000000.004.png.0123456789ab.part.png").write_bytes(b"half an image")
    (dead / "notes.tmp").write_text("the user's")
    out = train(tmp_path, tmp_path / "runs", "--resume", "auto", kimg=0.012)
    assert out.returncode == 0, out.describe()
    assert sorted(p.name for p in dead.iterdir()) == ["config.yaml", "notes.tmp", "run.lock"]
    assert (tmp_path / "runs" / "00000-synth-tiny-d" / "network-snapshot-000000.012.pkl").is_file()


@pytest.mark.slow
def test_stats_are_not_duplicated_after_a_resume(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    # the process was killed after logging 0.012 but before its snapshot: that tick is redone on resume
    with open(run / "stats.jsonl", "a") as f:
        f.write(json.dumps({"tick": 2, "kimg": 0.012, "sec_per_kimg": 1.0}) + "\n" + '{"tick": 3, "kim')
    out = train(tmp_path, tmp_path / "runs", "--resume", "auto", kimg=0.016)
    assert out.returncode == 0, out.describe()
    kimgs = [json.loads(line)["kimg"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert kimgs == [0.004, 0.008, 0.012, 0.016]


@pytest.mark.slow
def test_kimg_zero_and_a_finished_run_report_only_real_snapshots(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    before = tree_state(tmp_path)
    assert_refused(train(tmp_path, tmp_path / "fresh", kimg=0), mentions="--kimg")
    assert tree_state(tmp_path) == before
    out = train(tmp_path, tmp_path / "runs", "--resume", "auto", kimg=0.004)
    assert out.returncode == 0, out.describe()
    assert "nothing to train" in out.stdout and "done:" not in out.stdout
    named = out.stdout.split("latest snapshot is ")[-1].strip()
    assert Path(tmp_path / named).is_file() or Path(named).is_file()
    # no snapshot, grid or stats written; the run's config records the new --kimg, the lock our pid
    changed = changed_files(before, tree_state(tmp_path))
    assert changed <= {"runs/00000-synth-tiny-d/run.lock", "runs/00000-synth-tiny-d/config.yaml"}, changed
    assert not new_files(before, tree_state(tmp_path))


def test_32px_dataset_is_refused_before_anything_is_written(tmp_path):
    dataset_zip(tmp_path / "d.zip", side=32, count=4)
    before = tree_state(tmp_path)
    out = train(tmp_path, tmp_path / "runs")
    assert_refused(out, mentions="32x32")
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("setting, field", [
    ("run.grid=[0, 0]", "run.grid"),
    ("discriminator.mbstd_group_size=0", "discriminator.mbstd_group_size"),
    ("loss.r1_interval=-1", "loss.r1_interval"),
    ("data.workers=-1", "data.workers"),
    ("optim.glr=.nan", "optim.glr"),
    ("augment.interval=0", "augment.interval"),
    ("run.tick_kimg=0", "run.tick_kimg"),
    ("loss.gpc_reg_prob=2", "loss.gpc_reg_prob"),
])
def test_bad_config_values_are_refused_with_their_field(tmp_path, setting, field):
    dataset_zip(tmp_path / "d.zip", count=4)
    before = tree_state(tmp_path)
    out = train(tmp_path, tmp_path / "runs", "--set", setting)
    assert_refused(out, mentions=field)
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("kimg", ["-1", "nan", "0"])
def test_bad_kimg_is_refused(tmp_path, kimg):
    dataset_zip(tmp_path / "d.zip", count=4)
    out = run_limited(["-m", "training", "train", "--data", str(tmp_path / "d.zip"), "--outdir", str(tmp_path / "runs"),
                       "--config", "synth-tiny", "--kimg", kimg], cwd=tmp_path)
    assert_refused(out, mentions="--kimg")
    assert not (tmp_path / "runs").exists()


def test_non_utf8_yaml_is_refused(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_bytes("run:\n  kimg: 1 # caf\xe9\n".encode("latin-1"))
    out = run_limited(["-m", "training", "train", "--config", str(cfg), "--data", "x.zip", "--outdir",
                       str(tmp_path / "runs")], cwd=tmp_path)
    assert_refused(out, mentions="UTF-8")

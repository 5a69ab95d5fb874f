"""EG3D dataset format: validation with one-line errors, pixel conversions, round trips, xflip, loader, tools, CLI."""
from __future__ import annotations

import io
import json
import math
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.cameras import Camera, flip_yaw_label
from training.__main__ import main
from core.files.dataset import DatasetError, ImageDataset, eg3d_name, iter_images
from training.loader import InfiniteSampler, make_loader
from training.dataset_tool import Item, describe_dataset, mirror_dataset, convert_dataset, read_cameras, write_dataset


# ----------------------------------------------------------------------------------------------------------
# helpers


def label(yaw: float = 0.0, pitch: float = 0.0) -> list[float]:
    return Camera.frontal_offset(yaw, pitch).to_label()[0].tolist()


def png(image: np.ndarray | Image.Image) -> bytes:
    buf = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buf, format="png")
    return buf.getvalue()


def png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour): [H, W] grey or [H, W, 3] RGB uint16."""
    h, w = array.shape[:2]
    colour_type = 2 if array.ndim == 3 else 0
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def rgb(seed: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def build(path: Path, files: dict[str, bytes], labels=None, kind: str = "dir", raw_json: bytes | None = None) -> Path:
    """A dataset from file contents; ``labels``: {name: label} (default: a camera for every file)."""
    if labels is None:
        labels = {name: label(0.01 * i) for i, name in enumerate(sorted(files))}
    doc = raw_json if raw_json is not None else json.dumps({"labels": [[n, v] for n, v in labels.items()]}).encode()
    entries = dict(files)
    if doc != b"<none>":
        entries["dataset.json"] = doc
    if kind == "zip":
        path = path.with_suffix(".zip")
        with zipfile.ZipFile(path, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
    else:
        for name, data in entries.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
    return path


def good_files(n: int = 4, size: int = 8) -> dict[str, bytes]:
    return {f"{i // 2:05d}/img{i:08d}.png": png(rgb(i, size)) for i in range(n)}


def expect_error(fn, *needles: str) -> str:
    with pytest.raises(DatasetError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# ----------------------------------------------------------------------------------------------------------
# validation: every problem is one line naming the file


def _bad_json(files):
    return None, b"{not json"


def _cases():
    files = good_files()
    first = sorted(files)[0]
    lab = {n: label() for n in files}
    grey_la = png(Image.new("LA", (8, 8)))
    cmyk = io.BytesIO()
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(cmyk, format="jpeg")
    return {
        "no dataset.json": (files, None, b"<none>", "dataset.json"),
        "labels null": (files, None, b'{"labels": null}', "dataset.json"),
        "invalid json": (files, None, b"{not json", "dataset.json"),
        "image without label": (files, {n: v for n, v in lab.items() if n != first}, None, first),
        "label without image": (files, {**lab, "00009/missing.png": label()}, None, "00009/missing.png"),
        "label of a non-image": ({**files, "notes.txt": b"hi"}, {**lab, "notes.txt": label()}, None, "notes.txt"),
        "short label": (files, {**lab, first: label()[:24]}, None, first),
        "long label": (files, {**lab, first: label() + [0.0]}, None, first),
        "non-numeric label": (files, {**lab, first: label()[:5] + ["x"] + label()[6:]}, None, first),
        "boolean label": (files, {**lab, first: [True] + label()[1:]}, None, first),
        "nan label": (files, {**lab, first: [float("nan")] + label()[1:]}, None, first),
        "infinite label": (files, {**lab, first: label()[:3] + [float("inf")] + label()[4:]}, None, first),
        "not a camera": (files, {**lab, first: list(np.asarray(label()).reshape(5, 5).T.reshape(-1))}, None, first),
        "mixed sizes": ({**files, "z.png": png(rgb(9, 16))}, {**lab, "z.png": label()}, None, "z.png"),
        "non-square": ({**files, "z.png": png(rgb(9, 8)[:4])}, {**lab, "z.png": label()}, None, "z.png"),
        "non-power-of-two": ({"a.png": png(rgb(1, 12)), "b.png": png(rgb(2, 12))},
                             {"a.png": label(), "b.png": label()}, None, "a.png"),
        "garbage image": ({**files, "z.png": b"\x89PNG garbage"}, {**lab, "z.png": label()}, None, "z.png"),
        "text as jpg": ({**files, "z.jpg": b"hello world"}, {**lab, "z.jpg": label()}, None, "z.jpg"),
        "two channels": ({**files, "z.png": grey_la}, {**lab, "z.png": label()}, None, "z.png"),
        "cmyk": ({**files, "z.jpg": cmyk.getvalue()}, {**lab, "z.jpg": label()}, None, "z.jpg"),
        "no images": ({"readme.txt": b"x"}, {}, None, "no images"),
    }


CASES = _cases()


@pytest.mark.parametrize("kind", ["dir", "zip"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_dataset_is_one_line_error_naming_the_file(tmp_path, case, kind):
    files, labels, raw_json, needle = CASES[case]
    path = build(tmp_path / "ds", files, labels, kind, raw_json)
    msg = expect_error(lambda: ImageDataset(path), needle)
    assert str(path) in msg


def test_duplicate_label_and_missing_path(tmp_path):
    files = good_files(2)
    name = sorted(files)[0]
    doc = json.dumps({"labels": [[name, label()], [name, label()], [sorted(files)[1], label()]]}).encode()
    expect_error(lambda: ImageDataset(build(tmp_path / "d", files, raw_json=doc)), name, "twice")
    expect_error(lambda: ImageDataset(tmp_path / "nope"), "nope", "no such dataset")
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    expect_error(lambda: ImageDataset(tmp_path / "fake.zip"), "fake.zip", "not a folder or a zip")


@pytest.mark.parametrize("kind", ["dir", "zip"])
def test_truncated_image_fails_at_read_time_naming_the_file(tmp_path, kind):
    good = png(rgb(5, 32))
    files = {"a.png": png(rgb(1, 32)), "b.png": good[: len(good) * 2 // 3]}
    ds = ImageDataset(build(tmp_path / "ds", files, kind=kind))  # headers are fine
    assert ds[0][0].shape == (3, 32, 32)
    expect_error(lambda: ds[1], "b.png", "cannot decode")
    # through worker processes too: still one line, still naming the file
    loader = make_loader(ds, batch_size=2, workers=2, seed=0)
    expect_error(lambda: next(iter(loader)), "b.png", "cannot decode")
    info = describe_dataset(ds.path, decode=True)
    assert len(info["errors"]) == 1 and "b.png" in info["errors"][0]


def test_info_collects_several_errors(tmp_path):
    files = good_files(4)
    names = sorted(files)
    labels = {names[0]: label(), names[1]: [1.0] * 3, "ghost.png": label()}
    info = describe_dataset(build(tmp_path / "d", {**files, "odd.png": png(rgb(3, 16))}, labels))
    text = "\n".join(info["errors"])
    for needle in (names[1], names[2], names[3], "ghost.png", "odd.png"):
        assert needle in text, needle
    assert info["images"] == 5 and info["resolution"] == 8


# ----------------------------------------------------------------------------------------------------------
# conversions


def _one(tmp_path: Path, data: bytes, name: str = "a.png", **kwargs) -> np.ndarray:
    ds = ImageDataset(build(tmp_path / "c", {name: data}), **kwargs)
    img, lab = ds[0]
    assert img.dtype == torch.uint8 and lab.dtype == torch.float32 and lab.shape == (25,)
    return img.numpy().transpose(1, 2, 0)  # [H, W, 3]


def test_grayscale_becomes_rgb(tmp_path):
    grey = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    out = _one(tmp_path / "l", png(Image.fromarray(grey, "L")))
    assert (out == grey[..., None]).all()
    bits = Image.fromarray(grey > 127).convert("1")
    out = _one(tmp_path / "b", png(bits))
    assert set(np.unique(out)) <= {0, 255} and (out[..., 0] == np.where(grey > 127, 255, 0)).all()


def test_sixteen_bit_becomes_eight_bit(tmp_path):
    grey16 = np.random.default_rng(1).integers(0, 65536, (8, 8)).astype(np.uint16)
    out = _one(tmp_path / "g", png16(grey16))
    assert (out == (grey16 >> 8).astype(np.uint8)[..., None]).all()
    rgb16 = np.random.default_rng(2).integers(0, 65536, (8, 8, 3)).astype(np.uint16)
    out = _one(tmp_path / "c", png16(rgb16))
    assert (out == (rgb16 >> 8).astype(np.uint8)).all()



@pytest.mark.parametrize("kind", ["dir", "zip"])
def test_sixteen_bit_dataset_reads_the_same_for_training_and_metrics(tmp_path, kind):
    """Training's loader and the metrics reader (``python -m core metrics --data``) see the same uint8 pixels of a
    16-bit dataset: the high byte, x >> 8 (an earlier metrics reader divided by 257, which differs for many x)."""
    grey16 = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1031 % 65536).astype(np.uint16)
    rgb16 = np.random.default_rng(3).integers(0, 65536, (8, 8, 3)).astype(np.uint16)
    assert ((grey16 >> 8) != (grey16 / 257).astype(np.uint8)).any()   # the two rules really disagree here
    path = build(tmp_path / "d", {"a.png": png16(grey16), "b.png": png16(rgb16)}, kind=kind)
    ds = ImageDataset(path)
    batches = iter(make_loader(ds, batch_size=2, seed=0))
    images, _ = next(batches)                               # float [-1, 1], shuffled order
    trained = {(x.permute(1, 2, 0) + 1).mul(127.5).round().to(torch.uint8).numpy().tobytes() for x in images}
    metric = dict(iter_images(path))
    assert set(metric) == {"a.png", "b.png"}
    assert (metric["a.png"] == (grey16 >> 8).astype(np.uint8)[..., None]).all()
    assert (metric["b.png"] == (rgb16 >> 8).astype(np.uint8)).all()
    assert trained == {metric[n].tobytes() for n in metric}


@pytest.mark.parametrize("alpha,back", [("drop", None), ("white", 255), ("black", 0)])
def test_rgba_to_rgb(tmp_path, alpha, back):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    out = _one(tmp_path, png(Image.fromarray(rgba, "RGBA")), alpha=alpha).astype(np.int64)
    c, a = rgba[..., :3].astype(np.float64), rgba[..., 3:].astype(np.float64)
    want = c if back is None else (c * a + back * (255 - a)) / 255
    assert np.abs(out - want).max() <= 0.5 + 1e-9


def test_palette_images(tmp_path):
    pal = Image.new("P", (8, 8))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putpixel((1, 1), 1)
    out = _one(tmp_path / "p", png(pal))
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[1, 1]) == (200, 100, 50)
    pal.info["transparency"] = 0
    out = _one(tmp_path / "t", png(pal), alpha="white")
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[1, 1]) == (200, 100, 50)


def test_jpeg_and_subfolders_sorted(tmp_path):
    smooth = np.broadcast_to((np.arange(16) * 16)[:, None, None] + np.array([0, 5, 10]), (16, 16, 3))
    smooth = np.ascontiguousarray(smooth.astype(np.uint8))
    buf = io.BytesIO()
    Image.fromarray(smooth).save(buf, format="jpeg", quality=95)
    files = {"b/x.jpg": buf.getvalue(), "a/z.png": png(rgb(1, 16)), "a/y.PNG": png(rgb(2, 16))}
    ds = ImageDataset(build(tmp_path / "d", files, {k.replace("/", "\\"): label() for k in files}))
    assert [ds.image_name(i) for i in range(3)] == ["a/y.PNG", "a/z.png", "b/x.jpg"]
    assert np.abs(ds[2][0].numpy().transpose(1, 2, 0).astype(int) - smooth).mean() < 4


# ----------------------------------------------------------------------------------------------------------
# writing and round trips


@pytest.mark.parametrize("suffix", [".zip", ""])
def test_write_read_round_trip(tmp_path, suffix):
    images = [rgb(i, 16) for i in range(5)]
    labels = [label(0.1 * i, -0.05 * i) for i in range(5)]
    dest = tmp_path / f"out{suffix}"
    n = write_dataset(dest, (Item(label=l, image=im) for im, l in zip(images, labels)), meta={"note": "x"})
    assert n == 5 and not any(p.name.startswith(".out") for p in tmp_path.iterdir())
    ds = ImageDataset(dest)
    assert len(ds) == 5 and ds.resolution == 16 and ds.label_dim == 25 and ds.meta == {"note": "x"}
    for i in range(5):
        img, lab = ds[i]
        assert ds.image_name(i) == eg3d_name(i) == f"00000/img{i:08d}.png"
        assert np.array_equal(img.numpy().transpose(1, 2, 0), images[i])
        assert torch.equal(lab, torch.tensor(labels[i], dtype=torch.float32))
    assert np.allclose(ds.label_std(), np.std(np.asarray(labels, np.float32), axis=0), atol=1e-6)
    if suffix == ".zip":
        with zipfile.ZipFile(dest) as z:
            assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
            assert z.getinfo("00000/img00000003.png").date_time == (1980, 1, 1, 0, 0, 0)


@pytest.mark.parametrize("suffix", [".zip", ""])
def test_write_is_atomic_and_refuses_to_overwrite(tmp_path, suffix):
    dest = tmp_path / f"out{suffix}"

    def items(bad_at: int | None = None):
        for i in range(4):
            yield Item(label=label(), image=rgb(i, 8 if i != bad_at else 16))

    expect_error(lambda: write_dataset(dest, items(bad_at=2)), "00000/img00000002.png", "16x16")
    assert list(tmp_path.iterdir()) == []  # neither the destination nor a temporary is left
    write_dataset(dest, items())
    expect_error(lambda: write_dataset(dest, items()), "already exists")
    before = ImageDataset(dest)[0][0]
    expect_error(lambda: write_dataset(dest, items(bad_at=3), overwrite=True), "img00000003")
    assert torch.equal(ImageDataset(dest)[0][0], before)  # the old dataset survived the failed overwrite
    write_dataset(dest, (Item(label=label(), image=rgb(9, 8)) for _ in range(2)), overwrite=True)
    assert len(ImageDataset(dest)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]


def test_write_rejects_bad_items(tmp_path):
    expect_error(lambda: write_dataset(tmp_path / "a.zip", [Item(label=[0.0] * 25, image=rgb(0, 8))]),
                 "img00000000.png", "not a camera")
    expect_error(lambda: write_dataset(tmp_path / "b.zip", [Item(label=label(), image=rgb(0, 8)[:, :6])]),
                 "img00000000.png", "square")
    expect_error(lambda: write_dataset(tmp_path / "c.zip", [Item(label=label(), image=rgb(0, 8), name="x.png"),
                                                              Item(label=label(), image=rgb(1, 8), name="x.png")]),
                 "x.png", "duplicate")
    expect_error(lambda: write_dataset(tmp_path / "d.zip", []), "no images")


# ----------------------------------------------------------------------------------------------------------
# xflip, max_size, cameras


@pytest.mark.parametrize("a", [0.1, 0.35, -0.5])
@pytest.mark.parametrize("pitch", [-0.2, 0.0, 0.15])
def test_flip_yaw_of_lookat_camera_is_the_mirrored_yaw(a, pitch):
    cam = Camera.orbit(math.pi / 2 + a, math.pi / 2 + pitch, (0.0, 0.0, 0.2), 2.7)
    mirrored = Camera.orbit(math.pi / 2 - a, math.pi / 2 + pitch, (0.0, 0.0, 0.2), 2.7)
    assert torch.allclose(flip_yaw_label(cam.to_label()[0]), mirrored.to_label()[0], atol=2e-6)
    assert not torch.allclose(cam.to_label(), mirrored.to_label(), atol=1e-3)


def test_xflip_doubles_and_mirrors_image_and_camera(tmp_path):
    files = good_files(3, 8)
    labels = {n: label(0.2 + 0.1 * i, 0.05) for i, n in enumerate(sorted(files))}
    path = build(tmp_path / "d", files, labels, "zip")
    plain, flipped = ImageDataset(path), ImageDataset(path, xflip=True)
    assert len(flipped) == 2 * len(plain) == 6
    for i in range(3):
        img, lab = plain[i]
        assert torch.equal(flipped[i][0], img) and torch.equal(flipped[i][1], lab)
        fimg, flab = flipped[i + 3]
        assert flipped.is_flipped(i + 3) and flipped.image_name(i + 3) == plain.image_name(i)
        assert torch.equal(fimg, img.flip(-1))
        assert torch.equal(flab, flip_yaw_label(lab))
        yaw = 0.2 + 0.1 * i
        assert torch.allclose(flab, Camera.frontal_offset(-yaw, 0.05).to_label()[0], atol=2e-6)
    assert flipped.label_std()[3] > plain.label_std()[3]  # x translation now spans both signs


def test_max_size_is_a_seeded_subset(tmp_path):
    path = build(tmp_path / "d", good_files(10))
    a, b, c = (ImageDataset(path, max_size=4, random_seed=s) for s in (1, 1, 2))
    names = [[d.image_name(i) for i in range(len(d))] for d in (a, b, c)]
    assert len(a) == 4 and names[0] == names[1] and names[0] != names[2] and names[0] == sorted(names[0])
    assert len(ImageDataset(path, max_size=4, xflip=True)) == 8


# ----------------------------------------------------------------------------------------------------------
# loader


def _expected_batches(ds: ImageDataset, batch: int, count: int, seed: int, rank: int = 0, world: int = 1):
    it = iter(InfiniteSampler(len(ds), seed, rank, world))
    out = []
    for _ in range(count):
        idx = [next(it) for _ in range(batch)]
        out.append((torch.stack([ds[i][0] for i in idx]).float() / 127.5 - 1, torch.stack([ds[i][1] for i in idx])))
    return out


def test_loader_with_workers_over_zip(tmp_path):
    path = build(tmp_path / "d", good_files(6, 8), kind="zip")
    ds = ImageDataset(path, xflip=True)
    ds[0]  # the parent opens its zip handle before the workers start
    want = _expected_batches(ds, 4, 5, seed=7)
    for workers in (0, 2):
        it = iter(make_loader(ds, batch_size=4, workers=workers, seed=7))
        for images, labels in want:
            got_images, got_labels = next(it)
            assert got_images.dtype == torch.float32 and got_images.shape == (4, 3, 8, 8)
            assert torch.equal(got_images, images) and torch.equal(got_labels, labels)
            assert got_images.min() >= -1 and got_images.max() <= 1
    # 5 batches of 4 from 12 items: full batches across epoch boundaries, every item seen
    seen = torch.cat([l for _, l in want])
    assert len({tuple(r.tolist()) for r in seen}) == 12


def test_zip_is_reopened_in_each_worker_process(tmp_path):
    ds = ImageDataset(build(tmp_path / "d", good_files(4), kind="zip"))
    ds[0]
    parent = id(ds._src._zipfile())
    pickle.loads(pickle.dumps(ds))[1]  # picklable: the handle is dropped

    class Probe(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            ds[i]
            return torch.tensor([id(ds._src._zipfile()), ds._src._pid])

    import os
    rows = torch.cat(list(torch.utils.data.DataLoader(Probe(), batch_size=2, num_workers=2)))
    assert (rows[:, 0] != parent).all() and (rows[:, 1] != os.getpid()).all()


def test_ranks_get_disjoint_shards(tmp_path):
    ds = ImageDataset(build(tmp_path / "d", good_files(8, 8)))
    firsts = []
    for rank in (0, 1):
        it = iter(InfiniteSampler(len(ds), seed=3, rank=rank, world_size=2))
        firsts.append([next(it) for _ in range(4)])
    assert set(firsts[0]).isdisjoint(firsts[1]) and sorted(firsts[0] + firsts[1]) == list(range(8))
    b0 = next(iter(make_loader(ds, 4, seed=3, rank=0, world_size=2)))[1]
    b1 = next(iter(make_loader(ds, 4, seed=3, rank=1, world_size=2)))[1]
    assert not torch.equal(b0, b1)
    other_seed = [next(iter(InfiniteSampler(8, seed=s))) for s in range(6)]
    assert len(set(other_seed)) > 1
    expect_error(lambda: InfiniteSampler(1, rank=0, world_size=2), "ranks")


# ----------------------------------------------------------------------------------------------------------
# tools and CLI


def test_mirror_dataset(tmp_path):
    files = good_files(3, 8)
    labels = {n: label(0.3, 0.1 * i) for i, n in enumerate(sorted(files))}
    src = build(tmp_path / "d", files, labels, "zip")
    assert main(["dataset", "mirror", "--source", str(src), "--dest", str(tmp_path / "m.zip")]) == 0
    out = ImageDataset(tmp_path / "m.zip")
    orig = ImageDataset(src)
    assert len(out) == 6
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(tmp_path / "m.zip") as b:
        for name in files:
            assert a.read(name) == b.read(name)  # originals copied byte for byte
    names = [out.image_name(i) for i in range(6)]
    for i in range(3):
        name = orig.image_name(i)
        j, k = names.index(name), names.index(name[:-4] + "_mirror.png")
        assert torch.equal(out[k][0], orig[i][0].flip(-1))
        assert torch.equal(out[k][1], flip_yaw_label(orig[i][1])) and torch.equal(out[j][1], orig[i][1])
    # mirroring twice would write x_mirror.png twice: refused, naming the file, nothing written
    expect_error(lambda: mirror_dataset(tmp_path / "m.zip", tmp_path / "mm"), "img00000000_mirror.png", "duplicate")
    assert not (tmp_path / "mm").exists()


def test_mirror_cli_errors(tmp_path, capsys):
    assert main(["dataset", "mirror", "--source", str(tmp_path / "none.zip"), "--dest", str(tmp_path / "x.zip")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "none.zip" in err


@pytest.mark.parametrize("fmt", ["dict", "labels"])
def test_convert_dataset(tmp_path, fmt):
    src = tmp_path / "photos"
    wide = rgb(0, 48)[:32]  # 32 x 48: center-crop keeps columns 8..40
    files = {"p1.png": png(wide), "sub/p2.png": png(rgb(1, 40)), "p0.png": png(Image.fromarray(rgb(2, 40)[..., 0]))}
    build(src, files, raw_json=b"<none>")
    cams = {"p1.png": label(0.1), "sub/p2.png": label(0.2), "p0.png": label(0.3)}
    doc = cams if fmt == "dict" else {"labels": [[k, v] for k, v in cams.items()]}
    (tmp_path / "cams.json").write_text(json.dumps(doc))
    assert main(["dataset", "convert", "--source", str(src), "--cameras", str(tmp_path / "cams.json"),
                 "--dest", str(tmp_path / "out.zip"), "--resolution", "16"]) == 0
    ds = ImageDataset(tmp_path / "out.zip")
    assert len(ds) == 3 and ds.resolution == 16
    order = ["p0.png", "p1.png", "sub/p2.png"]
    for i, name in enumerate(order):
        assert ds.image_name(i) == eg3d_name(i)
        assert torch.equal(ds[i][1], torch.tensor(cams[name], dtype=torch.float32))
    crop = np.asarray(Image.fromarray(wide[:, 8:40]).resize((16, 16), Image.Resampling.LANCZOS))
    assert np.array_equal(ds[1][0].numpy().transpose(1, 2, 0), crop)
    assert (ds[0][0][0] == ds[0][0][1]).all()  # grayscale -> RGB
    # without --resolution the sides must agree and be a power of two
    assert main(["dataset", "convert", "--source", str(src), "--cameras", str(tmp_path / "cams.json"),
                 "--dest", str(tmp_path / "bad.zip")]) == 2
    assert not (tmp_path / "bad.zip").exists()


def test_convert_errors(tmp_path):
    src = build(tmp_path / "photos", {"a.png": png(rgb(0, 8)), "b.png": png(rgb(1, 8))}, raw_json=b"<none>")
    cams = tmp_path / "cams.json"
    cams.write_text(json.dumps({"a.png": label()}))
    expect_error(lambda: convert_dataset(src, cams, tmp_path / "o.zip"), "b.png", "no camera")
    cams.write_text(json.dumps({"a.png": label(), "b.png": label(), "c.png": label()}))
    expect_error(lambda: convert_dataset(src, cams, tmp_path / "o.zip"), "c.png")
    cams.write_text(json.dumps({"a.png": label(), "b.png": label()[:-1]}))
    expect_error(lambda: read_cameras(cams), "b.png", "24 values")
    cams.write_text(json.dumps({"a.png": label(), "b.png": label()}))
    expect_error(lambda: convert_dataset(src, cams, tmp_path / "o.zip", resolution=24), "power of two")
    expect_error(lambda: convert_dataset(build(tmp_path / "w", {"a.png": png(rgb(0, 8)[:4])}, raw_json=b"<none>"),
                                         tmp_path / "c2.json", tmp_path / "o.zip"), "c2.json")
    assert convert_dataset(src, cams, tmp_path / "o", transform="none") == 2


def test_info_cli(tmp_path, capsys):
    files = good_files(4, 8)
    labels = {n: label(0.1 * i - 0.15, 0.0) for i, n in enumerate(sorted(files))}
    path = build(tmp_path / "d", files, labels, "zip")
    assert main(["dataset", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "images      4" in out and "resolution  8x8" in out and "radius      2.7000" in out
    assert "focal       4.2634" in out and "pivot       (0.0000, 0.0000, 0.2000)" in out and "none found" in out
    yaws = [float(v) for v in out.split("yaw (deg)")[1].split("offset")[0].replace("(", " ").replace(",", " ")
            .replace(")", " ").split() if v[0] in "-0123456789"]
    assert abs(yaws[1] - math.degrees(-0.15)) < 1e-3 and abs(yaws[2] - math.degrees(0.15)) < 1e-3
    bad = build(tmp_path / "b", {**files, "x.png": b"junk"}, {**labels, "x.png": label()})
    assert main(["dataset", "info", str(bad), "--json"]) == 1
    info = json.loads(capsys.readouterr().out)
    assert info["images"] == 5 and len(info["errors"]) == 1 and "x.png" in info["errors"][0]

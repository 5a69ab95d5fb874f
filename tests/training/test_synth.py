"""Synthetic dataset: determinism, labels that project the object where it is drawn, exact depth, mirror symmetry,
geometry in the box, the camera distribution, the tracer against a brute-force reference, CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.cameras import Camera, flip_yaw_label, fov_to_focal
from training.synth import render as synth_render
from training.__main__ import main
from core.files.dataset import DatasetError, ImageDataset
from training.synth.generate import SynthConfig, benchmark, generate_dataset, render, sample_scene, sample_scenes
from training.synth.objects import PART_GROUPS, PIVOT, SLOTS, Objects


def _rays_from_label(label: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre rays from a 25-float label, written out independently of core.rendering (float64, OpenCV)."""
    c2w = label[:16].reshape(4, 4).astype(np.float64)
    k = label[16:].reshape(3, 3).astype(np.float64)
    centres = (np.arange(resolution) + 0.5) / resolution
    v, u = np.meshgrid(centres, centres, indexing="ij")
    cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)  # [R, R, 3]
    d = cam @ c2w[:3, :3].T
    return c2w[:3, 3], d / np.linalg.norm(d, axis=-1, keepdims=True)


def _project(label: np.ndarray, point: np.ndarray, resolution: int) -> np.ndarray:
    """World point -> (column, row) in pixels (pixel centres at .5) with the label's OpenCV camera."""
    c2w = label[:16].reshape(4, 4).astype(np.float64)
    k = label[16:].reshape(3, 3).astype(np.float64)
    x = c2w[:3, :3].T @ (point - c2w[:3, 3])
    return np.array([k[0, 0] * x[0] / x[2] + k[0, 2], k[1, 1] * x[1] / x[2] + k[1, 2]]) * resolution


def _brute_force(objects: Objects, b: int, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ray/ellipsoid hit for every ray of object b, in float64: t (inf: miss) and slot."""
    t_best = np.full(dirs.shape[:-1], np.inf)
    slot = np.full(dirs.shape[:-1], -1)
    for k in np.flatnonzero(objects.present[b]):
        inv = objects.rot[b, k] / objects.radii[b, k]  # columns scaled: x_local = (p - c) @ R / r
        o = (origin - objects.centers[b, k]) @ inv
        d = dirs @ inv
        a, bb, c = (d * d).sum(-1), (o * d).sum(-1), (o * o).sum() - 1
        disc = bb * bb - a * c
        t = np.where(disc >= 0, (-bb - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
        better = t < t_best
        t_best, slot = np.where(better, t, t_best), np.where(better, k, slot)
    return t_best, slot


@pytest.fixture(scope="module")
def head_only(tmp_path_factory):
    """Heads alone (an ellipsoid, no nose or hair), white background, with depth: the label checks."""
    path = tmp_path_factory.mktemp("synth") / "heads.zip"
    cfg = SynthConfig(count=12, resolution=64, seed=5, white_back=True, depth=True, parts=("head",))
    generate_dataset(path, cfg)
    return ImageDataset(path), cfg


@pytest.mark.slow
def test_same_seed_same_bytes_for_any_batch_and_workers(tmp_path):
    cfg = SynthConfig(count=10, resolution=32, seed=1, depth=True)
    generate_dataset(tmp_path / "a.zip", cfg, batch=32, workers=0)
    generate_dataset(tmp_path / "b.zip", cfg, batch=3, workers=2)
    torch.set_num_threads(1)
    try:
        generate_dataset(tmp_path / "c.zip", cfg, batch=4, workers=0)
    finally:
        torch.set_num_threads(2)
    a = (tmp_path / "a.zip").read_bytes()
    assert (tmp_path / "b.zip").read_bytes() == a and (tmp_path / "c.zip").read_bytes() == a
    generate_dataset(tmp_path / "d.zip", SynthConfig(count=10, resolution=32, seed=2, depth=True))
    da, dd = ImageDataset(tmp_path / "a.zip"), ImageDataset(tmp_path / "d.zip")
    for i in range(10):
        assert not torch.equal(da[i][0], dd[i][0]) and not torch.equal(da[i][1], dd[i][1])
    # image i does not depend on the count either
    generate_dataset(tmp_path / "e.zip", SynthConfig(count=4, resolution=32, seed=1, depth=True))
    de = ImageDataset(tmp_path / "e.zip")
    assert all(torch.equal(de[i][0], da[i][0]) and torch.equal(de[i][1], da[i][1]) for i in range(4))


@pytest.mark.slow
def test_dataset_contents_and_metadata(head_only):
    ds, cfg = head_only
    assert len(ds) == 12 and ds.resolution == 64 and ds.has_depth
    assert ds.meta["synth"]["seed"] == 5 and ds.meta["synth"]["camera"]["radius"] == 2.7
    for i in range(len(ds)):
        objects, camera = sample_scene(cfg.seed, i, cfg.parts)
        assert torch.equal(ds[i][1], camera.to_label()[0])
        assert np.allclose(ds.get_center(i), objects.center[0], atol=1e-7)
        assert np.abs(objects.center[0] - PIVOT).max() <= 0.03


def test_label_projects_the_object_centre_where_it_is_drawn(head_only):
    ds, _ = head_only
    offsets = []
    for i in range(len(ds)):
        img = ds[i][0].numpy()  # [3, H, W]
        mask = (img < 255).any(0)  # white background
        rows, cols = np.nonzero(mask)
        centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
        projected = _project(ds.get_label(i), ds.get_center(i).astype(np.float64), 64)
        assert np.abs(centroid - projected).max() < 1.0, (i, centroid, projected)
        assert ((ds.get_depth(i) > 0) == mask).mean() > 0.97  # depth marks the same pixels
        offsets.append(projected - 32)
    # the check has teeth: the objects are really drawn off-centre by up to a few pixels
    assert np.abs(offsets).max() > 1.5


def test_depth_at_the_centre_pixel_is_the_distance_to_the_front_surface(head_only):
    ds, cfg = head_only
    for i in range(len(ds)):
        label = ds.get_label(i)
        objects, _ = sample_scene(cfg.seed, i, cfg.parts)
        col, row = np.floor(_project(label, objects.center[0], 64)).astype(int)
        origin, dirs = _rays_from_label(label, 64)
        d = dirs[row, col]
        rel = (origin - objects.center[0]) / objects.radii[0, 0]  # axis-aligned head ellipsoid
        dd = d / objects.radii[0, 0]
        a, b, c = dd @ dd, rel @ dd, rel @ rel - 1
        front = (-b - math.sqrt(b * b - a * c)) / a
        assert abs(ds.get_depth(i)[row, col] - front) < 1e-4
        # and it is in front of the centre: between camera-centre distance minus the largest semi-axis and it
        dist = np.linalg.norm(objects.center[0] - origin)
        assert dist - objects.radii[0, 0].max() - 1e-6 <= front < dist


@pytest.mark.slow
def test_depth_of_full_objects_lies_on_their_surface(tmp_path):
    cfg = SynthConfig(count=6, resolution=32, seed=11, depth=True)
    generate_dataset(tmp_path / "d.zip", cfg)
    ds = ImageDataset(tmp_path / "d.zip")
    for i in range(len(ds)):
        objects, _ = sample_scene(cfg.seed, i)
        depth = ds.get_depth(i).astype(np.float64)
        origin, dirs = _rays_from_label(ds.get_label(i), 32)
        points = origin + depth[depth > 0][:, None] * dirs[depth > 0]
        assert len(points) > 50
        assert np.abs(objects.surface_distance(points, 0)).max() < 1e-5
        t, _ = _brute_force(objects, 0, origin, dirs)
        assert np.array_equal(np.isfinite(t), depth > 0)


def test_tracer_matches_brute_force_reference():
    objects, camera = sample_scenes(3, range(8))
    out = render(objects, camera, 48, ssaa=1, depth=True)
    labels = camera.to_label().numpy()
    for b in range(8):
        origin, dirs = _rays_from_label(labels[b], 48)
        t, _ = _brute_force(objects, b, origin, dirs)
        hit = np.isfinite(t)
        assert (hit == (out["depth"][b] > 0)).mean() > 0.998  # at most a grazing pixel or two
        both = hit & (out["depth"][b] > 0)
        assert np.abs(out["depth"][b][both] - t[both]).max() < 1e-5
        assert np.array_equal(out["coverage"][b] > 0, out["depth"][b] > 0)


@pytest.mark.slow
def test_tile_culling_never_changes_the_result(monkeypatch):
    objects, camera = sample_scenes(4, range(6))
    fast = render(objects, camera, 32, ssaa=2, depth=True)
    monkeypatch.setattr(synth_render, "CULL_MARGIN", 10.0)  # every tile tests every ellipsoid
    slow = render(objects, camera, 32, ssaa=2, depth=True)
    assert np.array_equal(fast["image"], slow["image"]) and np.array_equal(fast["depth"], slow["depth"])


def test_mirrored_scene_renders_the_mirrored_image():
    objects, camera = sample_scenes(6, range(6))
    out = render(objects, camera, 64, ssaa=2)
    flipped_labels = torch.stack([flip_yaw_label(l) for l in camera.to_label()])
    mirrored = render(objects.mirrored(), Camera.from_label(flipped_labels), 64, ssaa=2)
    diff = np.abs(mirrored["image"].astype(int) - out["image"][:, :, ::-1].astype(int))
    assert (diff > 2).mean() < 0.005 and np.median(diff) == 0
    # and the plain (unmirrored) camera does not give it: the objects are seen from the other side
    wrong = render(objects.mirrored(), camera, 64, ssaa=2)
    assert (np.abs(wrong["image"].astype(int) - out["image"][:, :, ::-1].astype(int)) > 2).mean() > 0.05


def test_xflip_of_a_synthetic_dataset_is_consistent(tmp_path):
    cfg = SynthConfig(count=3, resolution=32, seed=8, depth=True)
    generate_dataset(tmp_path / "s.zip", cfg)
    ds = ImageDataset(tmp_path / "s.zip", xflip=True)
    objects, _ = sample_scenes(8, range(3))
    for i in range(3):
        j = i + 3
        img, label = ds[j]
        rerender = render(_take(objects.mirrored(), i), Camera.from_label(label), 32, ssaa=2, depth=True)
        diff = np.abs(rerender["image"][0].transpose(2, 0, 1).astype(int) - img.numpy().astype(int))
        assert (diff > 2).mean() < 0.01
        assert np.abs(rerender["depth"][0] - ds.get_depth(j)).max() < 1e-4
        assert np.allclose(ds.get_center(j), objects.mirrored().center[i], atol=1e-7)


def _take(objects: Objects, i: int) -> Objects:
    return Objects(**{f: getattr(objects, f)[i:i + 1] for f in Objects.__dataclass_fields__})


def test_objects_fit_the_box_and_vary():
    objects, _ = sample_scenes(0, range(300))
    lo, hi = objects.bounds()
    assert lo.min() >= -0.5 and hi.max() <= 0.5
    assert np.abs(objects.center - PIVOT).max() <= 0.03
    present = objects.present.mean(0)
    assert present[SLOTS.index("head")] == 1.0
    always = {"head", "nose", "pupil_px", "pupil_nx"}  # every head has a nose (of some kind) and pupils
    assert all(present[SLOTS.index(s)] == 1.0 for s in always)
    assert all(0.05 < p < 1.0 for s, p in zip(SLOTS, present) if s not in always)  # the other parts vary
    assert len({tuple(np.round(a, 3)) for a in objects.albedo[:, 0]}) > 250
    heads, _ = sample_scenes(0, range(20), parts=("head", "eyes"))
    kept = [SLOTS.index(s) for s in PART_GROUPS["head"] + PART_GROUPS["eyes"]]
    assert not np.delete(heads.present, kept, axis=1).any() and heads.present[:, kept[0]].all()
    with pytest.raises(DatasetError, match="unknown part"):
        sample_scene(0, 0, parts=("tail",))


def test_camera_distribution():
    _, camera = sample_scenes(0, range(2000))
    c2w, k = camera.cam2world.double(), camera.intrinsics.double()
    origin = c2w[:, :3, 3]
    assert torch.allclose(origin.norm(dim=1), torch.tensor(2.7, dtype=torch.float64), atol=1e-5)
    to_pivot = torch.tensor(PIVOT, dtype=torch.float64) - origin
    assert torch.allclose(torch.cross(c2w[:, :3, 2], to_pivot, dim=1), torch.zeros(2000, 3, dtype=torch.float64),
                          atol=1e-5)  # the optical axis goes through the pivot
    assert torch.allclose(k[:, 0, 0], torch.tensor(fov_to_focal(18.837), dtype=torch.float64))
    assert (k[:, 0, 2] == 0.5).all() and (k[:, 1, 2] == 0.5).all()
    yaw = math.pi - torch.atan2(origin[:, 2], origin[:, 0]) - math.pi / 2
    pitch = math.pi * (1 - origin[:, 1] / 2.7) / 2 - math.pi / 2
    assert yaw.abs().max() <= math.radians(35) + 1e-5 and pitch.abs().max() <= math.radians(15) + 1e-5
    assert 0.26 < yaw.std() < 0.31 and 0.10 < pitch.std() < 0.125
    assert abs(yaw.mean()) < 0.03 and abs(pitch.mean()) < 0.01
    assert (yaw > 0).float().mean().sub(0.5).abs() < 0.05


def test_synth_cli_and_info(tmp_path, capsys):
    dest = tmp_path / "s64.zip"
    assert main(["dataset", "synth", "--dest", str(dest), "--count", "5", "--resolution", "16", "--seed", "3",
                 "--depth", "--white-back"]) == 0
    ds = ImageDataset(dest)
    assert len(ds) == 5 and ds.resolution == 16 and ds.has_depth and ds.meta["synth"]["white_back"]
    assert (ds[0][0][:, 0, 0] == 255).all()
    assert main(["dataset", "info", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "images      5" in out and "depth: 5, centers: 5" in out and "radius      2.7000" in out
    assert main(["dataset", "synth", "--dest", str(dest), "--count", "5", "--resolution", "16"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["dataset", "synth", "--dest", str(tmp_path / "x.zip"), "--count", "2", "--resolution", "24"]) == 2
    assert "power of two" in capsys.readouterr().err
    assert main(["dataset", "synth", "--count", "2"]) == 2
    assert main(["dataset", "synth", "--dest", str(tmp_path / "n.zip"), "--count", "2", "--seed", "-1"]) == 2
    assert "seed must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["dataset", "synth", "--dest", "x.zip", "--count", "2", "--parts", "tail"])


def test_benchmark_function_reports_rates():
    r = benchmark(resolution=16, count=8, threads=1, workers=0, batch=4, repeats=1)
    assert r["render_images_per_s"] > 0 and r["pipeline_images_per_s"] > 0 and r["count"] == 8

"""Directions in W: SeFa against a direct eigen-decomposition, GANSpace's PCA, taught directions, direction files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.model import model_from_snapshot
from core.tools.edit import direction_files
from core.tools.edit.apply import Edit, apply_edits
from core.tools.edit.direction_files import DirectionFileError, DirectionSet, cached_directions, load_directions, \
    save_directions
from core.tools.edit.directions import (DirectionMismatchError, affine_layers, check_model, fit_direction, ganspace,
                                        project_out, sample_w, sefa, taught_direction)
from core.tools.edit.model_id import model_sha256
from tests.core.edit_fixtures import tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("edit_models"))


@pytest.fixture(scope="module")
def w_samples(model):
    return sample_w(model, 2000, seed=1)


def test_affine_layers_follow_the_generator_wiring(model, eg3d_snapshot):
    got = {name: i for name, i, _ in affine_layers(model)}
    # tiny Mimic3D: b4 (conv1, torgb), b8 and b16 (conv0, conv1, torgb); each ToRGB's w is the next block's first
    # conv w; the 3D-aware block b3d{R} (and the detail blocks at the last R) take the w of b{R}'s ToRGB.
    want = {"b4.conv1": 0, "b4.torgb": 1, "b8.conv0": 1, "b8.conv1": 2, "b8.torgb": 3, "b16.conv0": 3,
            "b16.conv1": 4, "b16.torgb": 5}
    for layer, i in want.items():
        assert got[f"backbone.synthesis.{layer}.affine"] == i
    for name, i in got.items():
        if ".b3d" in name:
            res = name.split(".b3d")[1].split(".")[0]
            assert i == got[f"backbone.synthesis.b{res}.torgb.affine"], name
    assert sum(".b3d16.block" in n for n in got) == 3 * 3   # coarse block + 2 detail blocks, 3 layers each
    # EG3D: the super-resolution layers all take the last w
    eg3d = model_from_snapshot(eg3d_snapshot)
    layers = affine_layers(eg3d)
    sr = [i for n, i, _ in layers if n.startswith("superresolution.")]
    assert sr and set(sr) == {eg3d.num_ws - 1}
    assert sorted({i for _, i, _ in layers}) == list(range(eg3d.num_ws))


def test_sefa_is_the_eigendecomposition_of_the_normalised_affine_weights(model, w_samples):
    sha = model_sha256(model)
    syn = model.G.backbone.synthesis
    # ws layers 1:3 drive b4's ToRGB, the 3D-aware block at 4 (3 layers) and b8's conv0 / conv1
    mods = [syn.b4.torgb.affine, syn.b3d4.block.conv0.affine, syn.b3d4.block.conv1.affine,
            syn.b3d4.block.torgb.affine, syn.b8.conv0.affine, syn.b8.conv1.affine]
    A = torch.cat([m.weight.detach().double() for m in mods]).numpy()
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(A.T @ A)
    dirs = sefa(model, sha, layers=(1, 3), num=3, w_samples=w_samples)
    for k, d in enumerate(dirs):
        assert d.layers == (1, 3) and d.method == "sefa" and d.model_sha256 == sha
        assert abs(float(d.vector @ vectors[:, -1 - k])) > 1 - 1e-5
        assert d.score == pytest.approx(values[-1 - k], rel=1e-6)
        assert d.sigma == pytest.approx(np.std(w_samples @ d.vector.astype(np.float64), ddof=1), rel=1e-6)

    # the style change of a unit step, through the layers themselves: (affine(w + n) - affine(w)) per unit row norm
    def style_change(n: np.ndarray) -> float:
        w = torch.from_numpy(w_samples[:1]).float()
        step = torch.from_numpy(n[None]).float()
        total = 0.0
        for m in mods:
            row_norm = m.weight.detach().norm(dim=1) * m.weight_gain
            total += float((((m(w + step) - m(w)) / row_norm) ** 2).sum())
        return total

    rng = np.random.default_rng(0)
    randoms = rng.standard_normal((300, model.w_dim))
    randoms /= np.linalg.norm(randoms, axis=1, keepdims=True)
    top = style_change(dirs[0].vector.astype(np.float64))
    assert top == pytest.approx(dirs[0].score, rel=1e-3)
    assert top > max(style_change(n) for n in randoms)


def test_ganspace_components_are_orthonormal_and_ordered_by_variance(model, w_samples):
    dirs = ganspace(model, model_sha256(model), num=6, w_samples=w_samples)
    V = np.stack([d.vector for d in dirs]).astype(np.float64)
    assert np.allclose(V @ V.T, np.eye(len(dirs)), atol=1e-5)
    variances = [d.score for d in dirs]
    assert variances == sorted(variances, reverse=True) and variances[0] > variances[-1]
    cov = np.cov(w_samples, rowvar=False)
    assert np.allclose(variances, np.sort(np.linalg.eigvalsh(cov))[::-1][:6], rtol=1e-6)
    for d in dirs:
        assert d.sigma == pytest.approx(np.sqrt(d.score)) and d.layers == (0, model.num_ws)
        assert "frontal camera" in d.source


def test_taught_direction_recovers_a_known_direction(model, w_samples):
    rng = np.random.default_rng(3)
    known = rng.standard_normal(model.w_dim)
    known /= np.linalg.norm(known)
    marked = w_samples[:300]
    coef = (marked - w_samples.mean(0)) @ known
    has, lacks = marked[coef > 0], marked[coef <= 0]
    to_ws = lambda w: np.repeat(w[:, None], model.num_ws, 1)      # noqa: E731  # seeds: the same w on each layer
    d = taught_direction(model_sha256(model), to_ws(has), to_ws(lacks), (0, model.num_ws), w_samples)
    assert float(d.vector @ known) > 0.95
    assert d.method == "taught" and d.score > 0.95 and f"{len(has)} marked" in d.source
    # conditional editing: keep another direction fixed
    other = sefa(model, model_sha256(model), num=1, w_samples=w_samples)[0]
    cond = taught_direction(model_sha256(model), to_ws(has), to_ws(lacks), (0, model.num_ws), w_samples,
                            keep_fixed=[other])
    assert abs(float(cond.vector @ other.vector)) < 1e-5 and float(cond.vector @ known) > 0.8
    # the class-mean difference points the same way (less exactly on anisotropic W)
    v, accuracy = fit_direction(has, lacks, method="mean")
    assert float(v @ known) > 0.5 and accuracy > 0.7
    with pytest.raises(ValueError, match="span"):
        project_out(known, [known])


def test_direction_file_round_trip_and_another_models_directions_are_refused(model, w_samples, tmp_path):
    sha = model_sha256(model)
    dset = DirectionSet(tuple(sefa(model, sha, num=2, w_samples=w_samples)), sha, str(model.path), "sefa")
    path = tmp_path / "d.json"
    save_directions(path, dset)
    back = load_directions(path)
    assert back.directions == dset.directions            # bit-equal vectors, same metadata
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.npy"]
    other_model = tiny_model(tmp_path, seed=1, name="other.pkl")
    other_sha = model_sha256(other_model)
    with pytest.raises(DirectionMismatchError, match="another model") as e:
        check_model(back, other_sha)
    assert "\n" not in str(e.value) and sha[:12] in str(e.value) and other_sha[:12] in str(e.value)
    ws = other_model.ws_from_seed(0)
    with pytest.raises(DirectionMismatchError):
        apply_edits(ws, [Edit(back.directions[0], 2.0)], other_sha)
    # a vectors file from another save, and a corrupt JSON, are one-line errors
    np.save(tmp_path / "d.npy", np.zeros((2, model.w_dim), np.float32))
    with pytest.raises(DirectionFileError, match="does not match"):
        load_directions(path)
    path.write_text(path.read_text()[:50])
    with pytest.raises(DirectionFileError, match="not valid JSON") as e:
        load_directions(path)
    assert "\n" not in str(e.value)


def test_a_failed_save_leaves_the_previous_pair(model, w_samples, tmp_path, monkeypatch):
    sha = model_sha256(model)
    dirs = sefa(model, sha, num=2, w_samples=w_samples)
    path = tmp_path / "d.json"
    save_directions(path, DirectionSet(tuple(dirs), sha, str(model.path), "sefa"))

    def fail(self, *a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_text", fail)
    with pytest.raises(OSError):
        save_directions(path, DirectionSet(tuple(dirs[::-1]), sha, str(model.path), "sefa"))
    monkeypatch.undo()
    assert load_directions(path).directions == tuple(dirs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.npy"]


def test_directions_are_computed_once_per_model(model, tmp_path, monkeypatch):
    first = cached_directions(model, "ganspace", num=2, samples=500, folder=tmp_path)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert any(f.endswith(".npy") for f in files) and files[0].startswith(model_sha256(model)[:32])

    def fail(*a, **k):
        raise AssertionError("recomputed")
    monkeypatch.setattr(direction_files, "compute_directions", fail)
    again = cached_directions(model, "ganspace", num=2, samples=500, folder=tmp_path)
    assert again.directions == first.directions
    doc = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert doc["settings"]["conditioning"]["camera"] == "frontal camera"
    assert doc["model"]["sha256"] == first.model_sha256

"""``python -m core directions`` / ``edit`` / ``samples --session`` on a small random model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.__main__ import main
from core.defaults import TRUNCATION_CUTOFF, TRUNCATION_PSI
from core.files.image_io import to_uint8
from core.model import load_model
from core.tools.edit.apply import Edit
from core.tools.edit.direction_files import load_directions
from core.tools.edit.session import EditState, Session, SessionCamera, SessionLatent, SessionRender, save_session
from core.triplane import RenderOptions
from tests.core.edit_fixtures import tiny_model_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edit_cli")
    return tiny_model_file(folder), tiny_model_file(folder, seed=1, name="other.pkl"), folder


@pytest.fixture(scope="module")
def sefa_file(files):
    net, _, folder = files
    out = folder / "sefa.json"
    assert main(["directions", "--network", str(net), "--method", "sefa", "--layers", "0:4", "--num", "3",
                 "--samples", "500", "--cache-dir", str(folder / "cache"), "--out", str(out)]) == 0
    return out


def test_directions_command_writes_the_documented_files(files, sefa_file):
    dset = load_directions(sefa_file)
    assert len(dset.directions) == 3 and all(d.layers == (0, 4) for d in dset.directions)
    doc = json.loads(sefa_file.read_text())
    assert doc["format"] == "trident-directions" and doc["vectors"]["file"] == "sefa.npy"
    assert doc["settings"]["conditioning"]["camera"] == "frontal camera"
    assert np.load(sefa_file.with_suffix(".npy")).shape == (3, 16)


@pytest.mark.slow   # 4.5-11 s on the 2 shared cores (8 renders of 2 branches)
def test_edit_grid_rows_seeds_columns_strengths_per_branch(files, sefa_file, tmp_path):
    net = files[0]
    out = tmp_path / "grid.png"
    assert main(["edit", "--network", str(net), "--seeds", "0-1", "--direction", f"{sefa_file}:0",
                 "--strengths", "-2.5,0", "--branch", "all", "--nrr", "16", "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out))
    side, title, label, gap = 16, 14, 40, 4      # 16 px renders (--nrr; no SR): the layout's minimum strips
    assert grid.shape == (2 * title + 2 * side, 2 * (label + 2 * side) + gap, 3)
    model = load_model(net)
    ws = model.ws_from_seed(1, TRUNCATION_PSI, TRUNCATION_CUTOFF)   # the edit command's default truncation
    with torch.no_grad():   # Model.render without tri-planes: the grid reuses one backbone run per latent
        plain = to_uint8(model.render("direct3d", ws, model.camera_label(), RenderOptions(resolution=16),
                                      generator=torch.Generator().manual_seed(0))["image"][0])
    x0 = label + 2 * side + gap + label                         # second block (direct3d), first panel column
    y1 = 2 * title + side                                       # second row (seed 1)
    assert np.array_equal(grid[y1:y1 + side, x0 + side:x0 + 2 * side], plain)          # strength 0 = no edit
    edited = grid[y1:y1 + side, x0:x0 + side].astype(int)       # strength -2.5 (the panel carries a label)
    assert np.abs(edited[side // 2:] - plain[side // 2:].astype(int)).mean() > 1


def test_edit_refuses_directions_of_another_model(files, sefa_file, tmp_path, capsys):
    other = files[1]
    out = tmp_path / "grid.png"
    assert main(["edit", "--network", str(other), "--seeds", "0", "--direction", f"{sefa_file}:0",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "another model" in err and "not applied" in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert main(["edit", "--network", str(files[0]), "--seeds", "0", "--direction", f"{sefa_file}:7",
                 "--out", str(out)]) == 2
    assert "no direction 7" in capsys.readouterr().err


def test_samples_renders_exactly_the_session(files, sefa_file, tmp_path, capsys):
    net = files[0]
    model = load_model(net)
    d = load_directions(sefa_file).directions[1]
    state = EditState(latent=SessionLatent(seed=4, psi=0.8, mix_seed=6, mix_range=(3, 6)),
                      camera=SessionCamera(yaw=0.3, pitch=-0.1), edits=(Edit(d, 2.5),),
                      render=SessionRender(resolution=16, branches=("sr2d",)))
    path = tmp_path / "look.json"
    save_session(path, Session(str(net), load_directions(sefa_file).model_sha256, state))
    assert main(["samples", "--network", str(net), "--session", str(path), "--outdir", str(tmp_path / "o")]) == 0
    got = np.asarray(Image.open(tmp_path / "o" / "look_sr2d.png"))
    # the same latent built by hand: seed 4 mixed with seed 6 on layers 3:6, then the edit on the direction's layers
    c = model.camera_label()
    ws = model.mapping(model.z_from_seed(4), c, 0.8)
    ws[:, 3:6] = model.mapping(model.z_from_seed(6), c, 0.8)[:, 3:6]
    a, b = d.layers
    ws[:, a:b] += 2.5 * d.sigma * torch.from_numpy(d.vector.copy())
    with torch.no_grad():
        want = to_uint8(model.render("sr2d", ws, model.camera_label(0.3, -0.1), RenderOptions(resolution=16),
                                     generator=torch.Generator().manual_seed(0))["image"][0])
    assert np.array_equal(got, want)
    # another model: rendered with warnings, the edit not applied; a corrupt session: one line, exit 2
    assert main(["samples", "--network", str(files[1]), "--session", str(path), "--outdir", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert "another version of the model" in err and "not applied" in err
    path.write_text(path.read_text()[:-40])
    assert main(["samples", "--network", str(net), "--session", str(path), "--outdir", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: session file") and len(err.splitlines()) == 1

"""Exports carry the edit: video modes ``sweep`` and ``before_after`` (core.tools.video), ``video --session`` and
``mesh --session`` (the session's edited latent), on a small random model."""
from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from core.__main__ import main
from core.model import load_model
from core.tools.edit.apply import Edit, apply_edits
from core.tools.edit.direction_files import DirectionSet, save_directions
from core.tools.edit.directions import Direction
from core.tools.edit.model_id import model_sha256
from core.tools.edit.session import EditState, Session, SessionCamera, SessionLatent, SessionRender, save_session
from core.tools.mesh import model_field
from core.tools.video import VideoError, VideoSpec, frame_offsets, panel_label, plan_video, render_frame
from tests.core.edit_fixtures import tiny_model_file

FAST = dict(nrr=16, samples=(4, 4))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edit_exports")
    return tiny_model_file(folder), tiny_model_file(folder, seed=1, name="other.pkl"), folder


@pytest.fixture(scope="module")
def model(files):
    return load_model(files[0])


def a_direction(model, k: int = 0, name: str = "d") -> Direction:
    v = np.random.RandomState(k).randn(model.w_dim)
    return Direction.make(v / np.linalg.norm(v), layers=(0, model.num_ws), sigma=0.7, method="sefa", source="test",
                          model_sha256=model_sha256(model), name=name)


def test_sweep_goes_from_minus_s_to_plus_s_and_back_with_a_fixed_camera(model):
    d = a_direction(model)
    base = model.ws_from_seed(3)
    spec = VideoSpec(latents=(base,), mode="sweep", frames=8, sweep=Edit(d, 2.0), **FAST)
    plan = plan_video(model, spec)
    for f, x in ((0, -2.0), (2, 0.0), (4, 2.0), (6, 0.0)):
        (ws,) = plan.cell_latents(f)
        want = apply_edits(base, (Edit(d, x),))
        assert torch.allclose(ws, want, atol=1e-5), f
        assert frame_offsets(spec, f) == (spec.center_yaw, spec.center_pitch)
    assert panel_label(plan, 0, "sr2d", 4) == "d +2.0 sigma" and plan.labels
    orbiting = VideoSpec(latents=(base,), mode="sweep", frames=8, sweep=Edit(d, 2.0), sweep_orbit=True)
    assert frame_offsets(orbiting, 2)[0] == pytest.approx(orbiting.center_yaw + 0.35)
    first, half = render_frame(model, plan, 0), render_frame(model, plan, 4)
    assert np.abs(first.astype(int) - half.astype(int)).mean() > 1.0      # the edit shows


def test_before_after_is_two_labelled_cells(model):
    d = a_direction(model)
    base = model.ws_from_seed(1)
    spec = VideoSpec(latents=(base, apply_edits(base, (Edit(d, 3.0),))), mode="before_after", frames=4,
                     branch="all", **FAST)
    plan = plan_video(model, spec)
    assert (plan.cols, plan.rows) == (2, 1)
    assert panel_label(plan, 0, "sr2d", 0) == "before sr2d" and panel_label(plan, 1, "direct3d", 0) == "after direct3d"
    frame = render_frame(model, plan, 0)
    half = frame.shape[1] // 2
    assert np.abs(frame[:, :half].astype(int) - frame[:, half:].astype(int)).mean() > 1.0


@pytest.mark.parametrize("kw, message", [
    (dict(mode="sweep"), "needs a direction"),
    (dict(mode="before_after"), "two latents"),
])
def test_bad_edit_videos(model, kw, message):
    with pytest.raises(VideoError, match=message):
        plan_video(model, VideoSpec(latents=(model.ws_from_seed(0),), **kw))


def session_file(files, model, folder, name="look.json", edits=None) -> tuple:
    d = a_direction(model, 2, "look")
    edits = (Edit(d, 2.0),) if edits is None else edits
    state = EditState(latent=SessionLatent(seed=4, psi=0.8), camera=SessionCamera(yaw=0.2, pitch=-0.1),
                      edits=edits, render=SessionRender(resolution=16, depth_samples=4, importance_samples=4))
    path = folder / name
    save_session(path, Session(str(files[0]), model_sha256(model), state))
    return path, d


@pytest.mark.slow   # several CLI renders (~10 s on the 2 shared cores)
def test_video_and_mesh_from_a_session_carry_its_edit(files, model, tmp_path, capsys):
    net = str(files[0])
    path, d = session_file(files, model, tmp_path)
    out = tmp_path / "sweep.gif"
    assert main(["video", "--network", net, "--session", str(path), "--mode", "sweep", "--frames", "4",
                 "--strength", "2", "--out", str(out)]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 4 and np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 1.0
    out2 = tmp_path / "ba.gif"
    assert main(["video", "--network", net, "--session", str(path), "--mode", "before_after", "--frames", "2",
                 "--out", str(out2)]) == 0
    ba = iio.imread(out2, index=None)
    assert ba.shape[2] == 2 * ba.shape[1]                                       # two square cells side by side
    # mesh --session: the edited latent's density volume, the same as the hand-built edited latent's
    assert main(["mesh", "--network", net, "--session", str(path), "--res", "16", "--border", "0",
                 "--mrc", str(tmp_path / "m.mrc")]) == 0
    got = np.fromfile(tmp_path / "m.mrc", dtype="<f4", offset=1024).reshape(16, 16, 16).transpose(2, 1, 0)
    c = model.camera_label()
    plain = model.mapping(model.z_from_seed(4), c, 0.8)
    want = model_field(model, apply_edits(plain, (Edit(d, 2.0),))).volume(16).data
    unedited = model_field(model, plain).volume(16).data
    assert np.allclose(got, want, atol=1e-5) and not np.allclose(got, unedited, atol=1e-3)


def test_video_sweep_needs_a_direction_and_refuses_another_models(files, model, tmp_path, capsys):
    net = str(files[0])
    assert main(["video", "--network", net, "--seeds", "0", "--mode", "sweep", "--out", str(tmp_path / "x.gif")]) == 2
    assert "needs --direction" in capsys.readouterr().err
    other = load_model(files[1])
    dset = DirectionSet(directions=(a_direction(other),), model_sha256=model_sha256(other), model_path=str(files[1]),
                        method="sefa")
    save_directions(tmp_path / "other.json", dset)
    assert main(["video", "--network", net, "--seeds", "0", "--mode", "sweep", "--direction",
                 f"{tmp_path / 'other.json'}:0", "--out", str(tmp_path / "y.gif")]) == 2
    err = capsys.readouterr().err.strip()
    assert "another model" in err and "not applied" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "y.gif").exists()

"""Mesh extraction, video export and inversion started from the viewer's panels on the EG3D fixture (CPU, small
sizes): background tasks with progress and cancel, results shown in the app and written as readable files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import run_until, settle
from tests.conftest import EG3D_FIXTURE, require

pytestmark = pytest.mark.slow   # each test starts the viewer app


@pytest.fixture(scope="module")
def viewer(display, tmp_path_factory):
    import os
    from app.model_backend import ModelBackend
    from app.viewer import Viewer
    os.environ["TRIDENT_CONFIG_DIR"] = str(tmp_path_factory.mktemp("config"))
    v = Viewer(loader=lambda path: ModelBackend.open(path, "cpu", v.bank), width=900, height=560, fixed_dt=1 / 60)
    v.state.render.resolution = 16
    v.state.render.depth_samples = v.state.render.importance_samples = 6
    v.open_model(str(require(EG3D_FIXTURE / "network.pkl")))
    settle(v)
    yield v
    v.close()


def widget(v, name: str):
    return next(w for w in v.widgets if type(w).__name__ == name)


def finish(v, task, timeout: float = 300.0):
    run_until(v, lambda: task.done, timeout=timeout)
    v.step()
    return task


def test_mesh_panel_extracts_shows_remeshes_and_exports(viewer, tmp_path):
    import trimesh
    v, w = viewer, widget(viewer, "MeshWidget")
    w.resolution, w.level = 32, 0.4  # the fixture's random field: raw density spans about -0.6 .. 1.1
    w.extract()
    finish(v, w.task)
    assert w.task.error is None, w.task.error
    mv = v.mesh_view
    assert v.pane_names() == ["sr2d", "mesh"] and mv.n_faces > 100 and mv.has_colors
    v.step()
    img = mv.read()
    assert (np.abs(img.astype(int) - img[2, 2].astype(int)).sum(-1) > 30).mean() > 0.05  # the mesh is drawn
    faces = mv.n_faces
    w.level = 0.7
    w.extract(remesh=True)
    finish(v, w.task)
    assert "density" not in w.task.text and mv.n_faces != faces  # the kept grid, another surface
    w.save(str(tmp_path / "m.ply"))
    finish(v, w.save_task)
    mesh = trimesh.load(tmp_path / "m.ply", process=False)
    assert len(mesh.faces) == mv.n_faces and mesh.visual.vertex_colors.shape[0] == len(mesh.vertices)


def test_video_export_from_the_app_is_a_readable_mp4(viewer, tmp_path):
    import imageio.v3 as iio
    v, w = viewer, widget(viewer, "ExportWidget")
    w.frames, w.fps, w.mode = 2, 10, 0
    task = w.start_video(str(tmp_path / "turntable.mp4"))
    finish(v, task)
    assert task.error is None, task.error
    meta = iio.immeta(tmp_path / "turntable.mp4", plugin="FFMPEG")
    frames = list(iio.imiter(tmp_path / "turntable.mp4", plugin="FFMPEG"))
    # a 128 px model's video is upscaled to the default 512 px long side (issue 16: app videos were 64x64)
    assert len(frames) == 2 and frames[0].shape == (512, 512, 3) and meta["fps"] == pytest.approx(10)
    assert task.preview.shape == (512, 512, 3)  # the last frame, shown in the panel
    # Cancelled: no file is left behind.
    w.frames = 200
    task = w.start_video(str(tmp_path / "cancelled.mp4"))
    task.cancel()
    finish(v, task)
    assert task.cancelled and task.error is None and task.status == "cancelled"
    assert not (tmp_path / "cancelled.mp4").exists() and not list(tmp_path.glob("*cancelled*"))


def test_inversion_from_the_app_becomes_the_current_latent(viewer, tmp_path):
    v, w = viewer, widget(viewer, "InversionWidget")
    photo = tmp_path / "photo.png"
    rgb = (np.random.RandomState(0).rand(96, 160, 3) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(photo)
    w.manual = True                                      # a random-noise "photo": no face, the manual crop
    finish(v, w.load(str(tmp_path / "missing.png")))
    assert w.photo is None and "no such image" in w.photo_error
    finish(v, w.load(str(photo)))
    assert w.photo.shape == (128, 128, 3) and w.photo_error is None and w.aligned is None  # centred 96 px square
    w.steps, w.space, w.lpips = 2, 1, False
    task = w.start()
    finish(v, task)
    assert task.error is None, task.error
    s = v.state.latent
    model = v.model_backend().model
    assert s.use_stored and v.bank.get(s.stored).shape == (model.num_ws, model.w_dim)
    settle(v)
    assert v.panes["sr2d"].result.request.latent.stored == s.stored  # the panes now render the inversion
    w.outdir = str(tmp_path / "inv")
    w.save()
    finish(v, w.save_task)
    written = {p.name for p in (tmp_path / "inv").iterdir()}
    assert {"latent.npy", "camera.npy", "compare.png", "inversion.json"} <= written
    # PTI's tuned generator replaces the model in the viewer and keeps showing the inversion (the loaded model
    # stands in for a tuned copy here: PTI itself is tested in tests/core).
    w.outcome.result.tuned = v.model_backend().model
    w.use_tuned_model()
    run_until(v, lambda: v.info.name.endswith("(PTI-tuned)"), timeout=60)
    settle(v)
    assert v.state.latent.use_stored and v.panes["sr2d"].result.request.latent.stored == v.state.latent.stored


def test_inversion_panel_aligns_a_photo_inverts_and_pastes_back(viewer, tmp_path):
    """A real portrait (skimage's astronaut): faces found with landmarks, the EG3D crop and the estimated camera shown;
    a short inversion runs to the end (fast stage skipped: the fixture has no student), the panes render the result
    and "paste back" puts the re-rendered face into the photo."""
    from skimage import data
    v, w = viewer, widget(viewer, "InversionWidget")
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    w.manual, w.expand = False, True
    finish(v, w.load(str(photo)))
    assert w.photo_error is None and w.aligned is not None
    al = w.aligned.alignment
    assert len(al.faces) >= 1 and al.index == 0 and w.photo.shape == (512, 512, 3)
    lm = al.face.landmarks
    x0, y0, x1, y1 = al.face.box
    assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()                  # eyes above nose above mouth
    assert ((lm[:, 0] > x0) & (lm[:, 0] < x1) & (lm[:, 1] > y0) & (lm[:, 1] < y1)).all()
    assert w.optimize_camera and abs(w.yaw) < 0.2                        # near-frontal estimate, optimised on
    assert not w.has_student()
    v.step()
    shot = v.step(capture=True)
    Image.fromarray(shot).save(tmp_path / "aligned.png")
    w.steps, w.space, w.lpips, w.pti = 3, 1, False, False
    task = w.start()
    finish(v, task)
    assert task.error is None, task.error
    assert w.outcome.result.history[-1]["stage"] == "w+" and len(w.outcome.result.history) == 3
    s = v.state.latent
    assert s.use_stored and v.state.camera.yaw == pytest.approx(w.outcome.yaw)
    settle(v)
    assert v.panes["sr2d"].result.request.latent.stored == s.stored
    assert v.panes["sr2d"].read().reshape(-1, 3).std(0).max() > 5      # the pane renders the inversion
    w.paste_back()
    assert w.composite.shape == w.aligned.photo.shape
    box = [int(round(c)) for c in al.transform.box]
    changed = np.abs(w.composite.astype(int) - w.aligned.photo.astype(int)).sum(-1) > 0
    inside = changed[max(box[1], 0):box[3], max(box[0], 0):box[2]]
    assert inside.mean() > 0.5 and changed.sum() == inside.sum()       # only the crop box was replaced
    v.step()
    shot = v.step(capture=True)
    Image.fromarray(shot).save(tmp_path / "pasted.png")
    import os
    if os.environ.get("TRIDENT_SHOTS"):
        for name in ("aligned.png", "pasted.png"):
            Image.open(tmp_path / name).save(os.path.join(os.environ["TRIDENT_SHOTS"], name))

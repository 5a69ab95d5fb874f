"""Issue 20, item 5 in the viewer: photos dropped on the window open in the Inversion panel, the estimated and the
optimised cameras are drawn as a head-pose gizmo, and several photos of one person are inverted together (one latent,
one camera per photo). A real window under Xvfb with the EG3D fixture on the CPU and skimage's astronaut photo."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import run_until, settle
from tests.app.test_every_control import Recorder
from tests.app.test_jobs_in_app import finish, viewer, widget  # noqa: F401  (viewer: the module's fixture)

pytestmark = pytest.mark.slow   # each test starts the viewer app


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The astronaut and its mirror image as PNG files."""
    from skimage import data
    folder = tmp_path_factory.mktemp("photos")
    img = data.astronaut()
    Image.fromarray(img).save(folder / "astronaut.png")
    Image.fromarray(np.ascontiguousarray(img[:, ::-1])).save(folder / "mirrored.png")
    return folder / "astronaut.png", folder / "mirrored.png"


def close_panel(v, rec) -> None:
    """Collapse the Inversion header (an earlier test may have opened it) and check it is closed."""
    from imgui_bundle import imgui
    real = imgui.collapsing_header

    def closing(label, *args):
        if label == "Inversion":
            imgui.set_next_item_open(False)
        return real(label, *args)
    imgui.collapsing_header = closing
    try:
        v.step()
    finally:
        imgui.collapsing_header = real
    rec.new_frame()
    v.step()
    assert not any(where.endswith("/Face") for _, _, where, _ in rec.new_frame())


def test_a_photo_dropped_on_the_window_opens_in_the_inversion_panel(viewer, photos, tmp_path, monkeypatch):
    """The drop goes through the window's GLFW drop callback (``Window._on_drop``, the function GLFW calls with the
    dropped paths; xdotool cannot drag files): the photo is read and aligned in the background, the panel opens and
    shows its faces; the model stays. A corrupt photo dropped next is the panel's one-line error and loses nothing."""
    v, w = viewer, widget(viewer, "InversionWidget")
    w.clear()
    w.manual = False
    rec = Recorder(monkeypatch, open_all=False)
    close_panel(v, rec)
    model_path, info = v.model_path, v.info
    v.window._on_drop(v.window.handle, [str(photos[0])])
    v.step()
    assert w.loads and not v.renderer.loading               # being read as a photo, not opened as a model
    run_until(v, lambda: not w.loads, timeout=120)
    v.step()
    v.step()
    items = rec.new_frame()
    assert any(where.endswith("/Face") for _, _, where, _ in items)   # the panel opened: the face picker is drawn
    assert len(w.photos) == 1 and w.photos[0].path == str(photos[0]) and w.photo_error is None
    al = w.aligned.alignment
    assert len(al.faces) >= 1 and w.photo.shape == (512, 512, 3) and w.photos[0].overlay_tex is not None
    assert v.model_path == model_path and v.info is info and v.load_error is None
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4)
    v.window._on_drop(v.window.handle, [str(corrupt)])
    run_until(v, lambda: not w.loads, timeout=60)
    v.step()
    assert w.photo_error.startswith("corrupt.jpg: ") and "\n" not in w.photo_error
    assert len(w.photos) == 1 and w.photos[0].path == str(photos[0])  # the photo before is kept
    assert v.model_path == model_path and v.info is info and v.load_error is None and not v.renderer.loading


def test_two_photos_one_latent_a_camera_each_with_head_pose_gizmos(viewer, photos, monkeypatch):
    """Astronaut + mirror dropped together: each aligned with its own faces, crop and estimated camera; a 3-step
    inversion runs to the end as one latent with one camera per photo, the mirror's yaw within 3 degrees of minus the
    other's; the panes render the result; each photo pastes back its own render. The gizmo is drawn for the
    estimated camera, for the camera being optimised, and for the camera found."""
    import app.widgets.inversion as inv
    v, w = viewer, widget(viewer, "InversionWidget")
    w.clear()
    w.manual, w.expand = False, True
    drawn = []
    real_draw = inv.draw_head_gizmo
    monkeypatch.setattr(inv, "draw_head_gizmo", lambda yaw, pitch, *a: (drawn.append((yaw, pitch)),
                                                                         real_draw(yaw, pitch, *a)))
    v.window._on_drop(v.window.handle, [str(photos[0]), str(photos[1])])
    run_until(v, lambda: not w.loads, timeout=180)
    v.step()
    assert [e.path for e in w.photos] == [str(p) for p in photos] and w.photo_error is None
    a, b = w.photos
    assert a.aligned is not None and b.aligned is not None and a.photo is not b.photo
    assert abs(math.degrees(a.yaw + b.yaw)) < 3                       # the mirror's estimate is mirrored
    assert drawn and drawn[-1] == pytest.approx((b.aligned.yaw, b.aligned.pitch))  # the selected photo's estimate
    w.selected = 0
    w.steps, w.space, w.lpips, w.pti = 200, 1, False, False
    drawn.clear()
    task = w.start()                                                   # a long run: cancelled once it has begun
    run_until(v, lambda: "yaw_deg0" in task.values or task.done, timeout=120)
    v.step()
    task.cancel()
    run_until(v, lambda: task.done, timeout=120)
    v.step()
    assert task.cancelled and task.result is None and w.outcome is None
    estimates = [(a.yaw, a.pitch), (b.yaw, b.pitch)]
    assert any(all(d != pytest.approx(x, abs=1e-6) for x in estimates) for d in drawn)  # the optimised camera
    w.steps = 3
    v.state.latent.use_stored = False
    drawn.clear()
    task = w.start()
    run_until(v, lambda: task.done, timeout=400)
    v.step()
    assert task.error is None, task.error
    o = w.outcome
    assert len(o.cameras) == 2 and len(o.result.history) == 3 and o.result.image.shape[0] == 2
    assert o.ws.shape == (v.model_backend().model.num_ws, v.model_backend().model.w_dim)   # one latent
    (ya, pa, _, _), (yb, pb, _, _) = o.cameras
    assert abs(math.degrees(ya + yb)) < 3                              # mirrored yaw within 3 degrees
    assert o.cameras[0] != o.cameras[1]                                # a camera per photo, each optimised
    assert "yaw_deg1" in task.values and "yaw_deg" not in task.text   # the cameras came with the progress
    assert drawn[-1] == pytest.approx((ya, pa))                        # the camera found for the selected photo
    c = v.state.camera
    assert (c.yaw, c.pitch) == pytest.approx((ya, pa))                 # the selected (first) photo's camera
    s = v.state.latent
    assert s.use_stored
    settle(v)
    assert v.panes["sr2d"].result.request.latent.stored == s.stored
    assert v.panes["sr2d"].read().reshape(-1, 3).std(0).max() > 5      # the panes render the result
    w.selected = 1
    w.view_from(1)
    assert (c.yaw, c.pitch) == pytest.approx((yb, pb))
    w.paste_back()
    w.selected = 0
    w.paste_back()
    assert a.composite.shape == a.aligned.photo.shape and b.composite.shape == b.aligned.photo.shape
    assert not np.array_equal(a.composite, a.aligned.photo) and not np.array_equal(b.composite, b.aligned.photo)
    v.step()
    w.remove(1)                                                        # the list's remove button
    assert [e.path for e in w.photos] == [str(photos[0])] and w.selected == 0

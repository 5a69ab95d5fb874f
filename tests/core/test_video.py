"""core.tools.video: EG3D camera paths, looping cubic interpolation, frame layout, MP4/GIF read back, cancel, bad input."""
from __future__ import annotations

import math
import threading

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from core.model import model_from_snapshot
from core.tools.progress import Cancelled
from core.tools.video import VideoError, VideoSpec, frame_offsets, plan_video, render_frame, render_video

FAST = dict(nrr=16, samples=(4, 4), min_side=0)   # min_side=0: panels at the render's own size


@pytest.fixture(scope="module")
def model(eg3d_snapshot, device):
    return model_from_snapshot(eg3d_snapshot, device)


def test_eg3d_camera_paths():
    spec = VideoSpec(frames=120)
    assert frame_offsets(spec, 0) == pytest.approx((0.0, -0.05 + 0.25))
    assert frame_offsets(spec, 30) == pytest.approx((0.35, -0.05))            # quarter loop: sin = 1, cos = 0
    orbit = VideoSpec(mode="orbit360", frames=8)
    assert [frame_offsets(orbit, f)[0] for f in (0, 2, 4)] == pytest.approx([0.0, math.pi / 2, math.pi])
    assert frame_offsets(orbit, 3)[1] == pytest.approx(-0.05)


def test_interpolation_passes_through_keyframes_and_loops(model):
    plan = plan_video(model, VideoSpec(seeds=(0, 1, 2), mode="interp", frames=30))
    keys = [model.ws_from_seed(s, VideoSpec().truncation_psi) for s in (0, 1, 2)]
    for f, k in ((0, 0), (10, 1), (20, 2)):
        torch.testing.assert_close(plan.cell_latents(f)[0], keys[k], atol=1e-4, rtol=0)
    between = plan.cell_latents(5)[0]
    assert not torch.allclose(between, keys[0]) and not torch.allclose(between, keys[1])
    # wraps: frame 30 (= frame 0 of the next loop) is the first keyframe again, and the curve continues across
    # the seam as it does inside the loop (periodic), so the video loops without a jump in speed
    path = plan._interp[0]
    torch.testing.assert_close(path(3.0), keys[0], atol=1e-4, rtol=0)
    scale = (keys[1] - keys[0]).abs().max()
    for t in (0.1, 0.5, 1.7):
        assert (path(t - 3.0 if t > 1 else t + 3.0) - path(t)).abs().max() < 0.02 * scale
        assert (path(t - 1e-3) - path(t)).abs().max() < 0.01 * scale


def test_default_size_is_at_least_512_on_the_long_side(model):
    """Issue 16, item 7: videos of a small model were as small as its renders (64x64, 192x64 side by side)."""
    plan = plan_video(model, VideoSpec(seeds=(0,), branch="all", nrr=16, samples=(4, 4)))
    frame = render_frame(model, plan, 0)
    n = len(model.branches)
    assert frame.shape[1] >= 512 and frame.shape[1] == n * frame.shape[0]            # panels upscaled, still square
    small = render_frame(model, plan_video(model, VideoSpec(seeds=(0,), branch="all", **FAST)), 0)
    assert small.shape[0] == model.img_resolution                                   # min_side=0: the render's size


@pytest.mark.slow
def test_mp4_frames_size_fps_read_back(model, tmp_path):
    out = tmp_path / "turn.mp4"
    info = render_video(model, VideoSpec(seeds=(0, 1), frames=3, fps=12, **FAST), out)
    assert (info.frames, info.width, info.height, info.fps) == (3, 256, 128, 12.0)   # two 128 px cells side by side
    reader = iio2.get_reader(out, "ffmpeg")
    meta = reader.get_meta_data()
    assert reader.count_frames() == 3
    assert meta["fps"] == 12 and meta["size"] == (256, 128) and meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    first = reader.get_data(0)
    reader.close()
    # the decoded frame is the render from the frame's camera (up to H.264 loss); the camera moves between frames
    plan = plan_video(model, VideoSpec(seeds=(0, 1), frames=3, **FAST))
    expected = render_frame(model, plan, 0)
    assert first.shape == expected.shape == (128, 256, 3)
    assert np.abs(first.astype(int) - expected).mean() < 3
    assert np.any(render_frame(model, plan, 1) != expected)
    assert [p.name for p in tmp_path.iterdir()] == ["turn.mp4"]


@pytest.mark.slow
def test_gif_frames_size_fps_and_depth_output(model, tmp_path):
    out = tmp_path / "depth.gif"
    info = render_video(model, VideoSpec(seeds=(3,), mode="orbit360", output="depth", frames=4, fps=20, **FAST), out)
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (4, 16, 16) and (info.width, info.height, info.fps) == (16, 16, 20.0)
    assert iio.immeta(out)["duration"] == 50                                  # ms per frame = 1000 / 20
    rgb = frames[..., :3].astype(int)
    assert np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2])   # gray depth
    assert rgb.min() == 0 and rgb.max() == 255                                # min-max normalised per frame


@pytest.mark.slow
def test_mp4_size_is_padded_to_macro_blocks(model, tmp_path):
    info = render_video(model, VideoSpec(seeds=(0,), frames=2, fps=10, panel_size=40, output="raw", **FAST),
                        tmp_path / "pad.mp4")
    assert (info.width, info.height) == (48, 48)
    assert iio2.get_reader(tmp_path / "pad.mp4", "ffmpeg").get_meta_data()["size"] == (48, 48)


@pytest.mark.slow
def test_grid_layout_and_labels(model):
    plan = plan_video(model, VideoSpec(seeds=(0, 1, 2), grid=(2, 2), branch="all", **FAST))
    assert plan.branches == model.branches and plan.labels
    frame = render_frame(model, plan, 0)
    assert frame.shape == (256, 256, 3)
    assert frame[128:, 128:].max() == 0                                       # 3 seeds in 2x2: last cell empty
    for top, left in ((0, 0), (0, 128), (128, 0)):                            # each panel: white name on black
        corner = frame[top:top + 14, left:left + 40].astype(int)
        assert (corner.sum(-1) == 0).mean() > 0.3 and (corner.min(-1) > 200).any()
        assert frame[top + 40:top + 128, left:left + 128].std() > 5              # the render itself below


@pytest.mark.slow
def test_cancel_leaves_no_file(model, tmp_path):
    stop = threading.Event()
    seen = []

    def progress(p):
        seen.append(p.done)
        assert p.preview is not None and p.preview.dtype == np.uint8
        if p.done == 2:
            stop.set()

    for name in ("c.mp4", "c.gif"):
        seen.clear()
        stop.clear()
        with pytest.raises(Cancelled):
            render_video(model, VideoSpec(seeds=(0,), frames=6, **FAST), tmp_path / name, progress, stop)
        assert seen == [1, 2]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kw,message", [
    (dict(frames=0), "frames must be"),
    (dict(fps=0), "fps must be"),
    (dict(mode="spin"), "unknown video mode"),
    (dict(output="normals"), "unknown video output"),
    (dict(branch="student"), "not in this model"),
    (dict(branch="nope"), "unknown branch"),
    (dict(seeds=(0, 1, 2), grid=(1, 2)), "do not fit"),
    (dict(seeds=(0, 1, 2), grid=(2, 1), mode="interp"), "divisible"),
    (dict(nrr=4), "neural rendering resolution"),
    (dict(samples=(3, 2)), "samples need"),
    (dict(latents=(torch.zeros(1, 3, 5),)), "a latent must be"),
])
def test_bad_specs(model, tmp_path, kw, message):
    with pytest.raises(VideoError, match=message):
        render_video(model, VideoSpec(**kw), tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_bad_extension(model, tmp_path):
    with pytest.raises(VideoError, match="must end in"):
        render_video(model, VideoSpec(), tmp_path / "x.avi")

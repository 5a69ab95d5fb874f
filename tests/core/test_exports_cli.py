"""``python -m core video|mesh|invert`` and ``samples --latent``: real photos end to end (skimage's astronaut and
chelsea), everything the inversion writes loads in the other commands, one-line errors, no partial outputs."""
from __future__ import annotations

import json
import math

import imageio.v2 as iio2
import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from skimage import data

from core.__main__ import main
from core.cameras import fov_to_focal
from core.conventions import DEFAULT_FOV_DEG
from core.tools.inversion import orbit_from_label
from core.tools.photo.align import align_photo
from core.tools.photo.camera import label_orbit_deg
from core.files.latent_files import load_camera, load_latent
from core.model import load_model
from core.triplane import RenderOptions

FAST = ["--nrr", "16", "--samples", "4", "4"]


@pytest.fixture(scope="module")
def net(eg3d_fixture_dir) -> str:
    return str(eg3d_fixture_dir / "network.pkl")


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:          # argparse-level errors
        code = e.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def astronaut_inversion(net, tmp_path_factory):
    """invert on skimage's astronaut (JPEG), W+ with PTI: the outputs the loaders below use."""
    tmp = tmp_path_factory.mktemp("astronaut")
    Image.fromarray(data.astronaut()).save(tmp / "astronaut.jpg", quality=92)
    out = tmp / "inv"
    code = main(["invert", "--network", net, "--image", str(tmp / "astronaut.jpg"), "--space", "w+", "--steps", "3",
                 "--loss", "mse", "--pti", "--pti-steps", "2", "--video-frames", "3", *FAST, "--outdir", str(out)])
    assert code == 0
    return out


@pytest.mark.slow  # > 10 s on the 2-core machine under load; runs in the full suite
def test_invert_astronaut_writes_everything(astronaut_inversion):
    out = astronaut_inversion
    assert sorted(p.name for p in out.iterdir()) == ["camera.npy", "compare.png", "inversion.json", "latent.npy",
                                                       "network.pkl", "orbit.mp4"]
    assert np.load(out / "latent.npy").shape == (14, 512) and np.load(out / "latent.npy").dtype == np.float32
    assert np.load(out / "camera.npy").shape == (25,)
    assert Image.open(out / "compare.png").size == (3 * 128, 128)
    assert iio2.get_reader(out / "orbit.mp4", "ffmpeg").count_frames() == 3
    summary = json.loads((out / "inversion.json").read_text())
    assert summary["steps"] == 3 and summary["pti_steps"] == 2 and summary["space"] == "w+"


def test_invert_chelsea_w_space_crop_and_camera_optimisation(net, tmp_path, capsys):
    photo = tmp_path / "chelsea.png"
    Image.fromarray(data.chelsea()).save(photo)                   # 451 x 300
    out = tmp_path / "inv"
    code, err = run(["invert", "--network", net, "--image", str(photo), "--no-align", "--crop", "75,0,300", "--space", "w",
                     "--steps", "2", "--loss", "mse", "--optimize-camera", "--yaw", "0.2", "--video-frames", "0",
                     *FAST, "--outdir", str(out)], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["camera.npy", "compare.png", "inversion.json", "latent.npy"]
    ws = np.load(out / "latent.npy")
    assert ws.shape == (14, 512) and np.array_equal(ws[0], ws[-1])          # W: one vector for every layer
    assert Image.open(out / "compare.png").size == (2 * 128, 128)
    # the camera was optimised from the yaw-0.2 guess, staying on the look-at orbit (radius, focal kept)
    yaw, pitch, radius, focal = orbit_from_label(load_camera(out / "camera.npy"))
    assert abs(yaw - 0.2) > 1e-5 or abs(pitch) > 1e-5
    assert radius == pytest.approx(2.7, abs=1e-4) and focal == pytest.approx(fov_to_focal(DEFAULT_FOV_DEG), abs=1e-5)


@pytest.mark.slow  # > 10 s on the 2-core machine under load; runs in the full suite
def test_outputs_load_in_samples_video_mesh(astronaut_inversion, tmp_path, capsys):
    inv = astronaut_inversion
    tuned = str(inv / "network.pkl")
    latent, camera = str(inv / "latent.npy"), str(inv / "camera.npy")
    code, err = run(["samples", "--network", tuned, "--latent", latent, "--camera", camera, *FAST,
                     "--deterministic", "--outdir", str(tmp_path / "s")], capsys)
    assert code == 0, err
    png = np.asarray(Image.open(tmp_path / "s" / "latent.png"))
    model = load_model(tuned)
    ws = load_latent(latent, model.num_ws, model.w_dim)
    with torch.no_grad():
        expected = model.render("sr2d", ws, load_camera(camera),
                                RenderOptions(resolution=16, depth_resolution=4, depth_resolution_importance=4))["image"]
    want = (expected[0] * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(png.astype(int) - want).max() <= 1

    code, err = run(["video", "--network", tuned, "--latent", latent, "--latent", latent, "--camera", camera,
                     "--mode", "interp", "--frames", "2", "--fps", "10", *FAST, "--out", str(tmp_path / "v.gif")],
                    capsys)
    assert code == 0, err
    assert len(iio2.mimread(tmp_path / "v.gif")) == 2

    from core.tools.mesh import density_volume
    level = float(np.median(density_volume(model, ws, 24).data[4:-4, 4:-4, 4:-4]))   # a level that has a surface
    code, err = run(["mesh", "--network", tuned, "--latent", latent, "--res", "24", "--level", str(level),
                     "--out", str(tmp_path / "m.obj"), "--mrc", str(tmp_path / "m.mrc")], capsys)
    assert code == 0, err
    mesh = trimesh.load(tmp_path / "m.obj", force="mesh", process=False)
    assert len(mesh.faces) > 0 and mesh.visual.kind == "vertex"
    assert (tmp_path / "m.mrc").stat().st_size == 1024 + 4 * 24 ** 3


def test_video_and_mesh_commands_with_seeds(net, tmp_path, capsys):
    code, err = run(["video", "--network", net, "--seeds", "0-1", "--mode", "orbit360", "--branch", "all",
                     "--frames", "2", "--fps", "24", *FAST, "--precision", "bf16", "--out", str(tmp_path / "o.mp4")],
                    capsys)
    assert code == 0, err
    meta = iio2.get_reader(tmp_path / "o.mp4", "ffmpeg").get_meta_data()
    assert meta["fps"] == 24 and meta["size"] == (512, 256)   # two 128 px cells, upscaled to a 512 px long side
    code, err = run(["mesh", "--network", net, "--seed", "0", "--trunc", "0.7", "--res", "24", "--level", "0.5",
                     "--out", str(tmp_path / "m.glb")], capsys)
    assert code == 0, err
    assert len(trimesh.load(tmp_path / "m.glb", force="mesh", process=False).vertices) > 0


@pytest.mark.parametrize("argv,message", [
    (["video", "--seeds", "0", "--out", "{tmp}/v.avi"], "must end in .mp4 or .gif"),
    (["video", "--seeds", "0", "--frames", "0", "--out", "{tmp}/v.mp4"], "--frames: 0 is not within"),
    (["video", "--seeds", "0", "--branch", "student", "--out", "{tmp}/v.mp4"], "not in this model"),
    (["video", "--seeds", "0", "--precision", "fp16", "--device", "cpu", "--out", "{tmp}/v.mp4"], "needs a CUDA device"),
    (["video", "--latent", "{tmp}/nope.npy", "--out", "{tmp}/v.mp4"], "no such latent file"),
    (["video", "--seeds", "0", "--out", "{tmp}/file.txt/v.mp4"], "file.txt"),
    (["mesh", "--seed", "0", "--level", "10", "--res", "16", "--out", "{tmp}/m.ply"], "no surface at level 10"),
    (["mesh", "--seed", "0", "--res", "4", "--out", "{tmp}/m.ply"], "--res: 4 is not within"),
    (["mesh", "--seed", "0", "--out", "{tmp}/m.stl"], "must end in"),
    (["mesh", "--latent", "{tmp}/bad.npy", "--out", "{tmp}/m.ply"], "latent file"),
    (["samples", "--latent", "{tmp}/bad.npy", "--outdir", "{tmp}/s"], "latent file"),
    (["samples", "--seeds", "0", "--camera", "{tmp}/c.npy", "--outdir", "{tmp}/s"], "--camera goes with --latent"),
    (["invert", "--image", "{tmp}/none.png", "--loss", "mse", "--outdir", "{tmp}/i"], "no such image"),
    (["invert", "--image", "{tmp}/file.txt", "--loss", "mse", "--outdir", "{tmp}/i"], "cannot read image"),
    (["invert", "--image", "{tmp}/p.png", "--no-align", "--crop", "0,0,999", "--loss", "mse", "--outdir",
      "{tmp}/i"], "does not fit"),
    (["invert", "--image", "{tmp}/p.png", "--crop", "0,0,99", "--loss", "mse", "--outdir", "{tmp}/i"],
     "add --no-align"),
    (["invert", "--image", "{tmp}/p.png", "--no-align", "--face", "1", "--loss", "mse", "--outdir", "{tmp}/i"],
     "does not apply with --no-align"),
    (["invert", "--image", "{tmp}/p.png", "--loss", "mse", "--steps", "1", "--outdir", "{tmp}/i"],
     "p.png: no face found"),
    (["invert", "--image", "{tmp}/p.png", "--no-align", "--fast", "--loss", "mse", "--steps", "1", "--outdir",
      "{tmp}/i"], "this model has none"),
    (["invert", "--image", "{tmp}/p.png", "--camera", "{tmp}/bad.npy", "--loss", "mse", "--outdir", "{tmp}/i"],
     "camera"),
    (["invert", "--image", "{tmp}/p.png", "--loss", "mse", "--steps", "1", "--video-frames", "0",
      "--outdir", "{tmp}/file.txt/i"], "file.txt"),
])
def test_bad_input_is_one_line_error_and_no_output(net, tmp_path, capsys, argv, message):
    (tmp_path / "file.txt").write_text("not an image")
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    Image.fromarray(data.chelsea()).save(tmp_path / "p.png")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, err = run([argv[0], "--network", net, *argv[1:]], capsys)
    lines = [ln for ln in err.strip().splitlines() if "error:" in ln or "Error" in ln]  # usage errors: "PROG: error:"
    assert code == 2, err
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before                # nothing written


def test_invert_without_lpips_weights_says_so(net, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    Image.fromarray(data.chelsea()).save(tmp_path / "p.png")
    code, err = run(["invert", "--network", net, "--image", str(tmp_path / "p.png"), "--loss", "lpips", "--outdir",
                     str(tmp_path / "i")], capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("error:") and "vgg16-397923af.pth" in line and str(tmp_path / "torch") in line
    assert "--loss mse" in line
    assert not (tmp_path / "i").exists()


@pytest.mark.slow  # > 10 s on the 2-core machine under load; runs in the full suite
def test_invert_two_photos_aligned_one_latent_two_cameras(net, tmp_path, capsys):
    """Several photos of one person: each aligned with its own estimated camera, one latent for all."""
    photo = data.astronaut()
    Image.fromarray(photo).save(tmp_path / "a.png")
    Image.fromarray(np.ascontiguousarray(photo[:, ::-1])).save(tmp_path / "b.png")
    out = tmp_path / "inv"
    code, err = run(["invert", "--network", net, "--image", str(tmp_path / "a.png"), "--image", str(tmp_path / "b.png"),
                     "--steps", "1", "--loss", "mse", "--video-frames", "0", *FAST, "--outdir", str(out)], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["camera.npy", "cameras.npy", "compare.png", "inversion.json",
                                                       "latent.npy"]
    cams = np.load(out / "cameras.npy")
    assert cams.shape == (2, 25) and np.array_equal(cams[0], np.load(out / "camera.npy"))
    (yaw_a, pitch_a, _, _), (yaw_b, pitch_b, _, _) = (orbit_from_label(torch.from_numpy(c)) for c in cams)
    assert yaw_a == pytest.approx(-yaw_b, abs=math.radians(3))                  # mirrored photo, mirrored yaw
    for name, yaw, pitch in (("a.png", yaw_a, pitch_a), ("b.png", yaw_b, pitch_b)):   # each started at its estimate
        est_yaw, est_pitch = label_orbit_deg(align_photo(tmp_path / name)[1].label)
        assert (yaw, pitch) == pytest.approx((math.radians(est_yaw), math.radians(est_pitch)), abs=0.01)
    assert abs(pitch_a) > math.radians(5)                      # the estimate's pitch, not the frontal default (0)
    assert Image.open(out / "compare.png").size == (2 * 128, 2 * 128)            # one row per photo
    summary = json.loads((out / "inversion.json").read_text())
    assert len(summary["photos"]) == 2 and summary["spec"]["optimize_camera"] is True   # on for aligned photos

"""``python -m core align`` and core.tools.photo.align: the documented result for good and bad photos, nothing
written on failure, a folder of photos becomes a dataset that ``python -m training dataset info`` accepts."""
from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.__main__ import main as core_main
from core.files.latent_files import load_camera
from core.tools.photo.align import MIN_FACE_PX, AlignError, align_image, choose_face
from core.tools.photo.crop import CropTransform, eg3d_crop

from .photo_fixtures import astronaut, detector, mirrored, resized


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = core_main(["align", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _fails(capsys, tmp_path, photo, pattern: str, *extra) -> None:
    out = tmp_path / "out"
    rc, _, err = _run(capsys, "--image", photo, *extra, "--out", out)
    assert rc == 2
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and not ln.startswith("align:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err                 # progress bars aside
    assert pattern in lines[0], lines[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []     # no staging left behind


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_single_photo_writes_crop_overlay_and_camera(tmp_path, capsys):
    Image.fromarray(astronaut()).save(photo := tmp_path / "astro.png")
    out = tmp_path / "out"
    rc, stdout, err = _run(capsys, "--image", photo, "--out", out)
    assert rc == 0, err
    assert "face 0 of 1" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["camera.json", "camera.npy", "crop.png", "landmarks.png"]
    crop = np.asarray(Image.open(out / "crop.png"))
    assert crop.shape == (512, 512, 3)
    assert np.asarray(Image.open(out / "landmarks.png")).shape == (512, 512, 3)
    meta = json.loads((out / "camera.json").read_text())
    (name, label), = meta["labels"]                                  # EG3D dataset.json format
    assert name == "crop.png" and len(label) == 25
    np.testing.assert_allclose(load_camera(out / "camera.npy").numpy()[0], label, atol=1e-6)
    assert abs(meta["head_pose_deg"]["yaw"]) < 10
    assert len(meta["faces"]) == 1 and meta["face_index"] == 0
    lm = np.array(meta["crop_landmarks"])
    assert lm.shape == (5, 2) and (lm > 0).all() and (lm < 512).all()


def test_two_faces_need_a_choice(tmp_path, capsys):
    Image.fromarray(np.concatenate([astronaut(), astronaut()], axis=1)).save(photo := tmp_path / "two.png")
    _fails(capsys, tmp_path, photo, "2 faces found")
    out = tmp_path / "out"
    rc, stdout, err = _run(capsys, "--image", photo, "--face", "1", "--out", out)
    assert rc == 0, err
    meta = json.loads((out / "camera.json").read_text())
    assert meta["face_index"] == 1 and len(meta["faces"]) == 2
    chosen = meta["faces"][1]["box"]
    assert meta["crop"]["offset"][0] < chosen[0]
    rc, _, err = _run(capsys, "--image", photo, "--face", "5", "--out", tmp_path / "o5")
    assert rc == 2 and "--face 5 does not exist" in err and not (tmp_path / "o5").exists()


def test_clearly_largest_face_is_chosen_by_default():
    canvas = np.zeros((512, 512 + 300, 3), np.uint8)
    canvas[:, :512], canvas[:300, 512:] = astronaut(), resized(astronaut(), 300)
    al = align_image(canvas, "group", detector=detector())
    assert len(al.faces) == 2 and al.index == 0 and al.face.box[0] < 512


@pytest.mark.parametrize("case", ["no_face", "tiny_image", "small_face", "bomb_header", "corrupt_jpeg",
                                  "not_an_image"])
def test_bad_photos_give_one_line_errors_and_write_nothing(tmp_path, capsys, case):
    from skimage import data
    p = tmp_path / "in"
    p.mkdir()
    if case == "no_face":
        Image.fromarray(data.chelsea()).save(photo := p / "cat.png")
        _fails(capsys, tmp_path, photo, "cat.png: no face found")
    elif case == "tiny_image":
        Image.fromarray(astronaut()).resize((10, 10)).save(photo := p / "tiny.png")
        _fails(capsys, tmp_path, photo, f"10x10 pixels, too small to hold a usable face (faces must be at least "
                                        f"{MIN_FACE_PX} px wide)")
    elif case == "small_face":
        Image.fromarray(resized(astronaut(), 224)).save(photo := p / "small.png")
        _fails(capsys, tmp_path, photo, f"px wide; at least {MIN_FACE_PX} px is needed")
    elif case == "bomb_header":
        (photo := p / "bomb.png").write_bytes(_png_claiming(30000, 30000))
        _fails(capsys, tmp_path, photo, "900000000 pixels")
    elif case == "corrupt_jpeg":
        buf = io.BytesIO()
        Image.fromarray(astronaut()).save(buf, format="JPEG", quality=90)
        (photo := p / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
        _fails(capsys, tmp_path, photo, "cannot read image")
    else:
        (photo := p / "noise.jpg").write_bytes(bytes(range(256)) * 8)
        _fails(capsys, tmp_path, photo, "cannot read image")


def test_small_face_message_states_the_minimum():
    with pytest.raises(AlignError, match=rf"the face is \d+ px wide; at least {MIN_FACE_PX} px is needed"):
        align_image(resized(astronaut(), 224), "small.png", detector=detector())


@pytest.mark.parametrize("kind", ["cmyk_jpeg", "gray16_png", "animated_gif"])
def test_odd_formats_are_converted(tmp_path, capsys, kind):
    from skimage import data
    rgb = astronaut()
    if kind == "cmyk_jpeg":
        Image.fromarray(rgb).convert("CMYK").save(photo := tmp_path / "cmyk.jpg", quality=95)
        want = rgb
    elif kind == "gray16_png":
        gray = np.asarray(Image.fromarray(rgb).convert("L"))
        Image.fromarray(gray.astype(np.uint16) * 257).save(photo := tmp_path / "g16.png")
        assert Image.open(photo).mode.startswith("I")
        want = np.repeat(gray[..., None], 3, axis=2)
    else:                       # the first frame is used
        frames = [Image.fromarray(rgb).quantize(256), Image.fromarray(data.chelsea()).resize((512, 512)).quantize(256)]
        frames[0].save(photo := tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
        assert Image.open(photo).n_frames == 2
        want = np.asarray(frames[0].convert("RGB"))
    out = tmp_path / "out"
    rc, _, err = _run(capsys, "--image", photo, "--out", out)
    assert rc == 0, err
    crop = np.asarray(Image.open(out / "crop.png")).astype(float)
    meta = json.loads((out / "camera.json").read_text())
    tf = CropTransform(tuple(meta["crop"]["scale"]), tuple(meta["crop"]["offset"]), 512, (512, 512))
    # the converted pixels: the crop is the expected 8-bit RGB image under the transform that was used
    assert np.abs(crop - eg3d_crop(want, tf)).mean() < 2.5
    # the framing: the same face, framed as in the RGB photo within 3 % of the crop box
    ref = align_image(rgb, "ref", detector=detector()).transform
    side = ref.scale[0] * 512
    assert np.abs(np.subtract(tf.offset, ref.offset)).max() < 0.03 * side
    assert tf.scale[0] == pytest.approx(ref.scale[0], rel=0.03)


def test_folder_of_photos_becomes_a_dataset(tmp_path, capsys):
    from training.__main__ import main as training_main
    src = tmp_path / "photos"
    (src / "more").mkdir(parents=True)
    Image.fromarray(astronaut()).save(src / "a.png")
    Image.fromarray(mirrored()).save(src / "b.jpg", quality=95)
    Image.fromarray(resized(astronaut(), 900, 700)).save(src / "more" / "c.png")
    out = tmp_path / "ds"
    rc, stdout, err = _run(capsys, "--image", src, "--out", out)
    assert rc == 0, err
    assert "aligned 3 of 3" in stdout
    labels = json.loads((out / "dataset.json").read_text())["labels"]
    assert sorted(n for n, _ in labels) == ["a.png", "b.png", "more_c.png"]
    assert all(len(v) == 25 for _, v in labels)
    rc = training_main(["dataset", "info", str(out)])
    info = capsys.readouterr().out
    assert rc == 0, info
    assert "images      3" in info and "512x512" in info
    # a second run into the now non-empty folder is refused (it would mix two datasets)
    rc, _, err = _run(capsys, "--image", src, "--out", out)
    assert rc == 2 and "not empty" in err


def test_folder_with_a_bad_photo_fails_whole_or_skips_it(tmp_path, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(astronaut()).save(src / "a.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _fails(capsys, tmp_path, src, "broken.jpg")
    out = tmp_path / "out"
    rc, stdout, err = _run(capsys, "--image", src, "--skip-failures", "--out", out)
    assert rc == 0, err
    assert "skipped broken.jpg" in stdout and "aligned 1 of 2" in stdout
    assert [n for n, _ in json.loads((out / "dataset.json").read_text())["labels"]] == ["a.png"]


def test_choose_face_rules():
    from core.tools.photo.mtcnn import Face
    lm = np.zeros((5, 2))
    big, near, small, weak = (Face((0, 0, 100, 120), 0.99, lm), Face((200, 0, 290, 110), 0.98, lm),
                              Face((400, 0, 440, 50), 0.99, lm), Face((0, 0, 300, 300), 0.5, lm))
    assert choose_face([big, small], None, "p") == 0                # clearly largest: EG3D's rule
    with pytest.raises(AlignError, match="2 faces found"):
        choose_face([big, near], None, "p")
    assert choose_face([big, near], "largest", "p") == 0
    assert choose_face([big, near], 1, "p") == 1
    assert choose_face([weak, big], None, "p") == 1                 # confidence must exceed 0.9
    with pytest.raises(AlignError, match=r"no face found \(best candidate score 0.50"):
        choose_face([weak], None, "p")


def test_calibration_is_applied_from_file_or_beside_the_network(tmp_path, capsys):
    from core.tools.photo.camera import PoseCalibration
    Image.fromarray(astronaut()).save(photo := tmp_path / "astro.png")
    rc, _, err = _run(capsys, "--image", photo, "--out", tmp_path / "plain")
    assert rc == 0, err
    plain = json.loads((tmp_path / "plain" / "camera.json").read_text())["head_pose_deg"]
    net = tmp_path / "model.pkl"
    net.write_bytes(b"not read by align")
    PoseCalibration.path_for(net).write_text(PoseCalibration(pitch=np.radians(-15.0), yaw=np.radians(2.0)).to_json())
    for flag, value, out in (("--network", net, "n"), ("--calibration", PoseCalibration.path_for(net), "c")):
        rc, stdout, err = _run(capsys, "--image", photo, flag, value, "--out", tmp_path / out)
        assert rc == 0, err
        assert "pose calibration: pitch -15.00 deg" in stdout
        meta = json.loads((tmp_path / out / "camera.json").read_text())
        assert meta["head_pose_deg"]["pitch"] == pytest.approx(plain["pitch"] - 15.0, abs=0.01)
        assert meta["head_pose_deg"]["yaw"] == pytest.approx(plain["yaw"] + 2.0, abs=0.01)
        assert meta["calibration"]["pitch_offset_deg"] == pytest.approx(-15.0)
    (bad := tmp_path / "bad.json").write_text("[1, 2]")
    _fails(capsys, tmp_path, photo, "is not a pose calibration", "--calibration", bad)


def test_group_photo_of_the_benchmark():
    from core.commands.align import bench_photos
    group = bench_photos()["group 1280x886 (6 faces)"]
    assert group.shape == (886, 1280, 3)
    with pytest.raises(AlignError, match="6 faces found"):
        align_image(group, "group", detector=detector())
    al = align_image(group, "group", face="largest", detector=detector())
    assert sum(f.score > 0.9 for f in al.faces) == 6 and al.index == 0
    centres = sorted((int((f.box[0] + f.box[2]) / 2 // 426), int((f.box[1] + f.box[3]) / 2 // 443))
                     for f in al.faces if f.score > 0.9)
    assert centres == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]      # one face in each tile


def test_many_faces_message_stays_short():
    from core.tools.photo.mtcnn import Face
    faces = [Face((100.0 * i, 0.0, 100.0 * i + 90, 110.0), 0.99, np.zeros((5, 2))) for i in range(9)]
    with pytest.raises(AlignError) as e:
        choose_face(faces, None, "crowd.jpg")
    msg = str(e.value)
    assert msg.startswith("crowd.jpg: 9 faces found (0: 90x110 px at (0, 0) score 0.99,") and "... 4 more" in msg
    assert "\n" not in msg and "5: " not in msg

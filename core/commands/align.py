"""``python -m core align``: crop a face photo the way EG3D's FFHQ data was cropped and estimate its camera.

One photo (--image FILE) writes into --out DIR:

  DIR/crop.png        the 512x512 EG3D/FFHQ crop
  DIR/landmarks.png   the photo with every detected face (chosen: green, numbered), its five landmarks, the crop box
  DIR/camera.npy      the camera label, 25 float32 (invert --camera DIR/camera.npy)
  DIR/camera.json     {"labels": [["crop.png", [25 floats]]]} (EG3D dataset.json format) plus the head pose, all
                      faces, the crop transform (to paste a result back) and the fit error

A folder (--image DIR) writes an EG3D-format dataset into an empty or new --out DIR: one <name>.png crop per photo
and dataset.json with their labels (training train --data DIR), plus align.json with the details per photo.

Faces are found with MTCNN (weights from the facenet-pytorch wheel, see requirements-nodeps.txt); the default face
is the largest with confidence > 0.9 (EG3D's rule) unless another is nearly as large: then pick one with --face K
(0 = largest) or --face largest. The camera comes from fitting a 3D five-point template to the landmarks and EG3D's
conversion; its pitch is typically biased on real photos: keep camera optimisation on when inverting, or apply a
model's calibration (python -m core calibrate-pose): --network M uses M's <M>.pose.json when there is one,
--calibration FILE a given file. Nothing is written when a photo fails
(in a folder, unless --skip-failures).

--bench times detection, crop and camera per photo on scikit-image's astronaut portrait (512x512) and a 1280x886
"group photo" tiled from it (six faces), and writes nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..files.atomic import atomic_folder, check_not_inputs, check_output_location
from ..files.dataset import list_images, safe_member_name
from ..files.image_io import PhotoError
from ..files.latent_files import save_camera
from ..tools.photo.align import Alignment, align_photo, draw_overlay
from ..tools.photo.camera import PoseCalibration
from ..tools.photo.mtcnn import MTCNN
from .common import UsageError


def face_choice(text: str) -> int | str:
    if text == "largest":
        return text
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad face {text!r} (an index, 0 = largest, or 'largest')") from None
    if k < 0:
        raise argparse.ArgumentTypeError(f"face index must be >= 0, got {k}")
    return k


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("align", help="EG3D crop + camera of a face photo (or a folder: a dataset)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", type=Path, help="a photo, or a folder of photos")
    p.add_argument("--face", type=face_choice, default=None, metavar="K",
                   help="which face: index (0 = largest, see landmarks.png) or 'largest' (EG3D's rule)")
    p.add_argument("--network", type=Path, default=None, metavar="PKL",
                   help="the model the photos are for: its pose calibration (PKL.pose.json) is used when present")
    p.add_argument("--calibration", type=Path, default=None, metavar="FILE",
                   help="a pose calibration file (from calibrate-pose)")
    p.add_argument("--skip-failures", action="store_true", help="folder: leave out photos that fail (reported)")
    p.add_argument("--out", type=Path, help="output folder")
    p.add_argument("--bench", action="store_true", help="time detection + crop + camera on two built-in photos")
    p.add_argument("--repeats", type=int, default=5, help="--bench: timed runs per photo (default 5, median)")
    return p


def _json_text(obj: dict) -> str:
    """One top-level key per line, each value compact (a label stays on one line)."""
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in obj.items()) + "\n}\n"


SINGLE_OUTPUTS = ("crop.png", "landmarks.png", "camera.npy", "camera.json")


def _write_single(stage: Path, photo: np.ndarray, al: Alignment) -> None:
    Image.fromarray(al.crop).save(stage / "crop.png")
    Image.fromarray(draw_overlay(photo, al)).save(stage / "landmarks.png")
    save_camera(stage / "camera.npy", torch.from_numpy(al.label))
    summary = al.summary()
    (stage / "camera.json").write_text(_json_text({"labels": [["crop.png", summary.pop("label")]], **summary}))


def _crop_names(rel_paths: list[str]) -> list[str]:
    """photo paths relative to the folder -> unique flat PNG names (a/b.jpg -> a_b.png; clashes get the suffix)."""
    stems = [Path(r).with_suffix("").as_posix().replace("/", "_") for r in rel_paths]
    return [f"{s}_{Path(r).suffix.lstrip('.').lower()}.png" if stems.count(s) > 1 else f"{s}.png"
            for s, r in zip(stems, rel_paths)]


def bench_photos() -> dict[str, np.ndarray]:
    """A 512 px portrait and a 1280x886 group photo (six faces tiled from it), both from scikit-image."""
    from skimage import data

    portrait = data.astronaut()
    tile = np.asarray(Image.fromarray(portrait).resize((426, 443), Image.LANCZOS))
    row = np.concatenate([tile, tile[:, ::-1], tile], axis=1)
    group = np.zeros((886, 1280, 3), np.uint8)
    group[:, :1278] = np.concatenate([row, row[:, ::-1]], axis=0)
    return {"portrait 512x512": portrait, "group 1280x886 (6 faces)": group}


def _bench(repeats: int) -> int:
    from ..tools.photo.align import search_min_face
    from ..tools.photo.camera import estimate_pose, pose_to_label
    from ..tools.photo.crop import crop_transform, eg3d_crop

    detector = MTCNN()
    print(f"detector on {detector.threads} torch thread(s); median of {repeats} runs after one warm-up")
    for name, img in bench_photos().items():
        h, w = img.shape[:2]
        times: dict[str, list[float]] = {"detect": [], "crop": [], "camera": []}
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            faces = detector.detect(img, min_face=search_min_face(w, h))
            t1 = time.perf_counter()
            tf = crop_transform(faces[0].landmarks, w, h)
            eg3d_crop(img, tf)
            t2 = time.perf_counter()
            pose_to_label(estimate_pose(faces[0].landmarks, h))
            t3 = time.perf_counter()
            if i:
                for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
                    times[k].append(v)
        med = {k: 1000 * float(np.median(v)) for k, v in times.items()}
        sure = sum(f.score > 0.9 for f in faces)
        print(f"{name}: {sure} face(s) with confidence > 0.9 ({len(faces)} detections); detect "
              f"{med['detect']:.0f} ms + crop {med['crop']:.1f} ms + camera {med['camera']:.1f} ms = "
              f"{sum(med.values()):.0f} ms per photo")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.bench:
        if args.repeats < 1:
            raise UsageError("--repeats must be >= 1")
        return _bench(args.repeats)
    if args.image is None or args.out is None:
        raise UsageError("align needs --image PHOTO|FOLDER and --out DIR (or --bench)")
    if not args.image.exists():
        raise UsageError(f"no such image or folder: {args.image}")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a folder")
    if args.network is not None and args.calibration is not None:
        raise UsageError("give --network (its calibration, when present) or --calibration FILE, not both")
    if args.network is not None and not args.network.is_file():
        raise UsageError(f"no such network file: {args.network}")
    calibration = (PoseCalibration.load(args.calibration) if args.calibration is not None
                   else PoseCalibration.for_network(args.network) if args.network is not None else None)
    if calibration is not None:
        print(f"pose calibration: pitch {math.degrees(calibration.pitch):+.2f} deg, yaw "
              f"{math.degrees(calibration.yaw):+.2f} deg")
    check_output_location(args.out / "crop.png")
    check_not_inputs([args.out / n for n in SINGLE_OUTPUTS], {"--image": args.image, "--network": args.network,
                                                            "--calibration": args.calibration},
                     folder=None if args.image.is_file() else args.out)
    detector = MTCNN()
    if args.image.is_file():
        if args.skip_failures:
            raise UsageError("--skip-failures applies to a folder of photos")
        photo, al = align_photo(args.image, args.face, detector, calibration)
        with atomic_folder(args.out) as stage:
            _write_single(stage, photo, al)
        deg = al.pose.degrees
        print(f"{args.image.name}: face {al.index} of {len(al.faces)} (score {al.face.score:.3f}); head yaw "
              f"{deg['yaw']:.1f} deg, pitch {deg['pitch']:.1f} deg; wrote crop.png, landmarks.png, camera.npy, "
              f"camera.json to {args.out}")
        return 0

    if args.out.exists() and any(args.out.iterdir()):
        raise UsageError(f"--out {args.out} is not empty (a dataset goes into an empty or new folder)")
    rel = list_images(args.image)
    names = _crop_names(rel)
    labels, details, failed = [], {}, []
    with atomic_folder(args.out) as stage:
        for r, name in zip(tqdm(rel, desc="align", unit="photo"), names):
            try:
                _, al = align_photo(args.image / r, args.face, detector, calibration)
            except PhotoError as e:
                if not args.skip_failures:
                    raise
                failed.append(f"{r}: {' '.join(str(e).split())}")
                continue
            Image.fromarray(al.crop).save(stage / safe_member_name(name, str(args.out)))
            labels.append([name, [float(v) for v in al.label]])
            details[name] = {k: v for k, v in al.summary().items() if k != "label"} | {"source": r}
        if not labels:
            more = " ..." if len(failed) > 1 else ""
            raise UsageError(f"no photo in {args.image} could be aligned ({failed[0]}{more})")
        (stage / "dataset.json").write_text(json.dumps({"labels": labels}))
        (stage / "align.json").write_text(_json_text({**details, "skipped": failed}))
    for line in failed:
        print(f"skipped {line}")
    print(f"aligned {len(labels)} of {len(rel)} photos; wrote {len(labels)} crops and dataset.json to {args.out}")
    return 0

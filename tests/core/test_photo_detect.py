"""MTCNN face detection (core.tools.photo.mtcnn) on real photos shipped with scikit-image."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from core.tools.photo.mtcnn import MTCNN, DetectorWeightsError, nms, weights_dir

from .photo_fixtures import astronaut, detector, mirrored

LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_L, MOUTH_R = range(5)


def test_weights_are_found_without_importing_the_package():
    import sys

    folder = weights_dir()
    assert {p.name for p in folder.iterdir()} >= {"pnet.pt", "rnet.pt", "onet.pt"}
    assert "facenet_pytorch" not in sys.modules


def test_missing_weights_give_one_line_error(tmp_path):
    with pytest.raises(DetectorWeightsError, match="cannot load face detector weights"):
        MTCNN(weights=tmp_path)


def test_astronaut_one_face_with_plausible_landmarks():
    faces = detector().detect(astronaut())
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.99
    x1, y1, x2, y2 = f.box
    assert 60 < f.width < 140 and 80 < f.height < 160             # the face is about 90 x 110 px
    lm = f.landmarks
    assert np.all((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2))
    eyes_y, nose_y, mouth_y = lm[[LEFT_EYE, RIGHT_EYE], 1].max(), lm[NOSE, 1], lm[[MOUTH_L, MOUTH_R], 1].min()
    assert eyes_y + 5 < nose_y < mouth_y - 3                      # eyes above nose above mouth
    assert lm[LEFT_EYE, 0] < lm[NOSE, 0] < lm[RIGHT_EYE, 0]
    assert lm[MOUTH_L, 0] < lm[MOUTH_R, 0]
    assert 30 < lm[RIGHT_EYE, 0] - lm[LEFT_EYE, 0] < 60            # interocular distance of a ~90 px face


def test_mirrored_photo_gives_mirrored_landmarks():
    a, b = detector().detect(astronaut()), detector().detect(mirrored())
    assert len(a) == len(b) == 1
    w = astronaut().shape[1]
    flipped = a[0].landmarks.copy()
    flipped[:, 0] = w - 1 - flipped[:, 0]
    flipped = flipped[[RIGHT_EYE, LEFT_EYE, NOSE, MOUTH_R, MOUTH_L]]  # image-left is the mirrored image-right
    assert np.abs(flipped - b[0].landmarks).max() < 5


@pytest.mark.parametrize("name", ["chelsea", "coffee", "rocket"])
def test_photos_without_people_have_no_face(name):
    assert detector().detect(getattr(data, name)()) == []


def test_two_faces_largest_first():
    big = astronaut()
    small = np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(big).resize((384, 384)))
    canvas = np.zeros((512, 512 + 384, 3), np.uint8)
    canvas[:, :512], canvas[:384, 512:] = big, small
    faces = detector().detect(canvas)
    assert len(faces) == 2
    assert faces[0].size > faces[1].size * 1.2
    assert faces[0].box[0] < 512 <= faces[1].box[0]


def test_nms_union_and_min():
    boxes = torch.tensor([[0, 0, 9, 9], [1, 1, 10, 10], [20, 20, 29, 29], [2, 2, 5, 5]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # IoU(0, 1) = 81 / 119 = 0.68; box 3 lies inside boxes 0 and 1 (IoU 0.16 and 0.16; over the smaller box: 1.0)
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.7).tolist() == [3, 0, 1, 2]
    assert nms(boxes, scores, 0.7, mode="min").tolist() == [3, 2]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_rejects_non_rgb_uint8():
    with pytest.raises(ValueError, match="uint8 RGB"):
        detector().detect(np.zeros((64, 64), np.uint8))

"""The EG3D/FFHQ crop (core.tools.photo.crop): one resample against EG3D's literal two steps, on real photos; the
inverse map and paste-back."""
from __future__ import annotations

import numpy as np
import pytest

from core.tools.photo.crop import (TEMPLATE_5PT, crop_transform, eg3d_crop, eg3d_crop_two_step, paste_back,
                                   pos_fit)

from .photo_fixtures import astronaut, detector, mirrored, resized


def _shifted() -> np.ndarray:
    """The astronaut with the face near the top-left corner: the crop box leaves the photo (black there)."""
    return np.ascontiguousarray(astronaut()[50:, 165:])


PHOTOS = {
    "astronaut": astronaut,                                   # crop enlarged ~3x (bicubic path)
    "mirrored": mirrored,
    "astronaut_1600": lambda: resized(astronaut(), 1600),     # crop reduced (Lanczos path)
    "astronaut_wide": lambda: resized(astronaut(), 1400, 900),  # anisotropic photo
    "corner": _shifted,                                       # box partly outside the photo
}


@pytest.mark.parametrize("name", list(PHOTOS))
def test_one_warp_matches_literal_two_step(name):
    img = PHOTOS[name]()
    faces = detector().detect(img)
    assert len(faces) == 1
    lm = faces[0].landmarks
    tf = crop_transform(lm, img.shape[1], img.shape[0])
    one = eg3d_crop(img, tf).astype(np.float64)
    two = eg3d_crop_two_step(img, lm).astype(np.float64)
    assert one.shape == two.shape == (512, 512, 3)
    assert np.abs(one - two).mean() < 1.0                      # grey levels
    if name == "corner":
        assert (two[:5, :5] == 0).all() and np.abs(one[:5, :5]).mean() < 2   # black outside the photo, both ways


def test_landmarks_land_where_ffhq_puts_them():
    img = astronaut()
    lm = detector().detect(img)[0].landmarks
    tf = crop_transform(lm, 512, 512)
    c = tf.to_crop(lm)
    eyes = (c[0] + c[1]) / 2
    # FFHQ-aligned 512 crops: eyes about 0.47 of the height down, centred; eye distance about 0.27 of the side
    assert abs(eyes[0] - 256) < 15 and 200 < eyes[1] < 270
    assert 120 < c[1, 0] - c[0, 0] < 160
    np.testing.assert_allclose(tf.to_photo(c), lm, atol=1e-9)


def test_pos_fit_recovers_scale_and_translation():
    xy = TEMPLATE_5PT[:, :2] * 150.0 + np.array([300.0, 200.0])    # orthographic, frontal
    t, s = pos_fit(xy)
    assert s == pytest.approx(150.0, rel=1e-6)
    np.testing.assert_allclose(t, [300.0, 200.0], atol=1e-6)


def test_paste_back_restores_the_photo():
    img = resized(astronaut(), 1024)
    lm = detector().detect(img)[0].landmarks
    tf = crop_transform(lm, 1024, 1024)
    crop = eg3d_crop(img, tf)
    marked = np.zeros_like(img)
    back = paste_back(marked, crop, tf)
    x0, y0, x1, y1 = (int(round(v)) for v in tf.box)
    inner = (slice(max(y0, 0) + 4, min(y1, 1024) - 4), slice(max(x0, 0) + 4, min(x1, 1024) - 4))
    assert np.abs(back[inner].astype(float) - img[inner]).mean() < 3       # the crop goes back where it came from
    outside = np.ones(img.shape[:2], bool)
    outside[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = False
    assert (back[outside] == 0).all()                                      # nothing outside the crop box changes
    # a result at another resolution (e.g. a 128 px render) is scaled onto the same box
    small = resized(crop, 128)
    back2 = paste_back(marked, small, tf)
    assert np.abs(back2[inner].astype(float) - img[inner]).mean() < 8

"""EG3D's default camera conventions as plain numbers (no torch): every module that needs a default reads them here.

* ``DEFAULT_FOV_DEG``: the field of view of ``gen_samples.py`` and the visualizer
  (``NVlabs/eg3d: eg3d/gen_samples.py``), in EG3D's convention (:func:`core.cameras.fov_to_focal`).
* ``DEFAULT_RADIUS`` / ``DEFAULT_PIVOT``: the FFHQ camera orbit (``rendering_kwargs['avg_camera_radius']`` and
  ``['avg_camera_pivot']`` in ``NVlabs/eg3d: eg3d/train.py``).
"""
from __future__ import annotations

DEFAULT_FOV_DEG = 18.837
DEFAULT_RADIUS = 2.7
DEFAULT_PIVOT = (0.0, 0.0, 0.2)

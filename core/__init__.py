"""Trident core: model math and the inference API (pure PyTorch, CPU and CUDA, no custom extensions).

Main entry points:

* :func:`core.checkpoint.load_snapshot` / :func:`core.checkpoint.load_generator`: read Trident files and EG3D
  network pickles (safely: no code from the file is executed);
* :class:`core.triplane.TriPlaneGenerator` with :class:`core.triplane.RenderOptions`;
* :class:`core.cameras.Camera` and EG3D's camera helpers.

This package imports no GUI library and nothing from ``app`` or ``training``.
"""

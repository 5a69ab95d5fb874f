"""Trident core: model math and the inference API (pure PyTorch, CPU and CUDA, no custom extensions).

The package map, by layer:

* **the model** (top level; imports nothing from ``files`` or ``tools``):
  ``conventions`` (default FOV, radius, pivot; no torch), ``cameras``, ``config`` (generator/discriminator
  settings), ``ops`` and ``layers`` (StyleGAN2 operators and layers), ``rendering`` (rays, tri-plane sampling,
  volume rendering), ``triplane`` (EG3D generator, ``sr2d``), ``superres``, ``aware3d`` and ``mimic3d`` (Mimic3D
  generator, ``direct3d``), ``student`` (distilled ``student``), ``discriminator``, ``build`` (modules from configs
  and weights), ``errors`` (:class:`core.errors.TridentError`, :func:`core.errors.first_line`);
* **the API**: ``model`` (:class:`core.model.Model`, :func:`core.model.load_model`): one latent space, every
  branch a model file holds, rendered through :meth:`core.model.Model.render`;
* ``files``: formats and I/O: ``checkpoint`` (Trident snapshots), ``network_pickle`` (EG3D/Mimic3D pickles, read
  without executing code), ``snapshot``, ``atomic`` (complete-or-absent writes), ``latent_files``, ``image_io``
  (photos, PNGs), ``dataset`` (EG3D datasets and image folders, one reader for training and metrics);
* ``tools``: work built on the API: ``video``, ``mesh``, ``inversion``, ``progress`` (progress/cancel hooks),
  ``bench`` (the benchmark harness), ``photo`` (face detection, the EG3D crop and a camera estimate for a photo),
  ``edit`` (editing directions, edits and their undo history, session files);
* ``metrics``: FID/KID, SWD, recall (diversity), consistency, fidelity, LPIPS;
* ``commands``: ``python -m core samples|video|mesh|invert|metrics|bench|pack|align|calibrate-pose|directions|edit``.

This package imports no GUI library and nothing from ``app`` or ``training``.
"""

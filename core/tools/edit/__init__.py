"""Latent editing (no GUI): directions in W (SeFa, GANSpace, taught by example), their files, edits and their undo
history, and session files.

* :mod:`.model_id`        the model identity: a content hash of the model file;
* :mod:`.directions`      computing directions and their sigma;
* :mod:`.direction_files` the directions file (JSON + ``.npy``) and the per-model cache;
* :mod:`.apply`           applying edits to ws, and the undo/redo history;
* :mod:`.session`         session files: model, latent, camera, edits, render options.
"""

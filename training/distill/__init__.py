"""Distillation of a NeRF-GAN into the convolutional student (Shahbazi et al. 2023): the preset schema (``config``),
the loop (``loop``) and the held-out evaluation and grids (``eval``)."""

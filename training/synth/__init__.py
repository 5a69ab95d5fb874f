"""Synthetic EG3D-format datasets: random objects (``objects``), rendered with ground-truth depth (``render``),
written as datasets (``generate``)."""

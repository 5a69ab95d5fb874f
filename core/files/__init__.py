"""Formats and I/O: model files, latent and camera files, photos and PNGs, image folders and EG3D datasets."""

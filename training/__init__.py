"""Trident training: datasets, losses, discriminators, training and distillation loops, YAML presets.

Depends on ``core`` (models, checkpoints); ``core`` never imports from here.
"""

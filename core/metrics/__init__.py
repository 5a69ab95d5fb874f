"""Image-set metrics (``python -m core metrics``)."""

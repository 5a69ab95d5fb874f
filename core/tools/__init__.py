"""Tools built on the core library that prepare inputs for it (e.g. photos for inversion)."""

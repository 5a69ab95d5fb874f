"""Work built on the model API: videos, meshes, inversion, progress/cancel hooks, the benchmark harness, editing
(directions, edits, sessions)."""

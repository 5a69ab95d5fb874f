"""Work built on the model API: videos, meshes, inversion, progress/cancel hooks, the benchmark harness, photo
preparation for inversion (``photo``: face detection, the EG3D crop, a camera estimate) and editing (``edit``:
directions, edits, sessions)."""

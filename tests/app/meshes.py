"""Test meshes made here (no extraction needed): an icosphere with per-vertex colours."""
from __future__ import annotations

import numpy as np


def icosphere(subdivisions: int = 2, radius: float = 0.3, center=(0.0, 0.0, 0.2)) -> tuple[np.ndarray, np.ndarray]:
    """vertices [N, 3] float32, faces [F, 3] int32 of a subdivided icosahedron (outward winding)."""
    t = (1 + 5 ** 0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
         (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6),
         (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10),
         (8, 6, 7), (9, 8, 1)]
    verts = [np.array(p, np.float64) / np.linalg.norm(p) for p in v]
    faces = f
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]
        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    unit = np.array(verts, np.float32)
    return unit * radius + np.float32(center), np.array(faces, np.int32)


def height_colors(vertices: np.ndarray) -> np.ndarray:
    """Vertex colours from height: red at the bottom to blue at the top.  # [N, 3] uint8"""
    y = vertices[:, 1]
    t = (y - y.min()) / max(float(np.ptp(y)), 1e-6)
    return (np.stack([1 - t, 0.3 + 0 * t, t], 1) * 255).astype(np.uint8)

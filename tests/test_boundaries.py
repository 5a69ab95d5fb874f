"""Package dependency rules (design.md): app -> core, training -> core, never the reverse; core imports no GUI."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUI = {"glfw", "imgui_bundle", "OpenGL"}
FORBIDDEN = {
    "core": {"app", "training", "torchvision", "lpips"} | GUI,
    "training": {"app", "torchvision", "lpips"} | GUI,
    "app": {"training", "torchvision", "lpips"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_import_boundaries():
    violations = []
    for package, banned in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = imported_roots(path) & banned
            if bad:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not violations, "\n".join(violations)


def test_core_files_are_parsed():
    assert len(list((ROOT / "core").rglob("*.py"))) >= 10

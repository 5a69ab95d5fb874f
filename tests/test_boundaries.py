"""Package dependency rules: app -> core, training -> core, never the reverse; core imports no GUI; the model
modules at the top of ``core`` import nothing from ``core.files`` (formats and I/O) or ``core.tools`` (video, mesh,
inversion, progress, bench)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUI = {"glfw", "imgui_bundle", "OpenGL"}
BANNED_EVERYWHERE = {"torchvision", "lpips", "facenet_pytorch"}
FORBIDDEN = {
    "core": {"app", "training"} | BANNED_EVERYWHERE | GUI,
    "training": {"app"} | BANNED_EVERYWHERE | GUI,
    "app": {"training"} | BANNED_EVERYWHERE,
}
# core/model.py is the inference API over a whole model file (it reads the file, then builds the model): the one
# top-level module allowed to use core.files; __main__ is the command-line entry point.
NOT_MODEL_MODULES = {"__init__.py", "__main__.py", "model.py"}


def imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved against its package)."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names |= {f"{module}.{a.name}" for a in node.names}
    return names


def imported_roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imports(path)}


def test_import_boundaries():
    violations = []
    for package, banned in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = imported_roots(path) & banned
            if bad:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not violations, "\n".join(violations)


def test_model_modules_import_no_files_or_tools():
    model_modules = [p for p in sorted((ROOT / "core").glob("*.py")) if p.name not in NOT_MODEL_MODULES]
    assert len(model_modules) >= 10
    violations = [f"{p.relative_to(ROOT)} imports {name}" for p in model_modules for name in sorted(imports(p))
                  if name.startswith(("core.files", "core.tools"))]
    assert not violations, "\n".join(violations)


def test_relative_imports_are_resolved():
    """The rule above sees relative imports: core/tools/mesh.py imports core.model through ``from ..model``."""
    assert "core.model" in imports(ROOT / "core" / "tools" / "mesh.py")

"""Project contracts: the README's two commands, CI running exactly the README test command, pinned torch."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    head = text.split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)?\n(.*?)\n```", head, flags=re.S)


def test_readme_opens_with_two_commands():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    assert "python -m core samples" in cmds[0] or "run_viz.py" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert readme_commands()[1].strip() in lines


def test_torch_pinned_exactly():
    reqs = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in reqs
    for ln in reqs:
        ln = ln.split("#")[0].strip()
        if ln and not ln.startswith("-r"):
            assert "==" in ln, f"unpinned requirement: {ln}"
    banned = {"torchvision", "lpips"}
    assert not any(ln.split("==")[0].strip().lower() in banned for ln in reqs)


def test_nodeps_requirements_pinned_and_installed_by_both_readme_commands():
    """lpips ships the LPIPS head weights; with its dependencies it would pull torchvision + a CUDA torch."""
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements-nodeps.txt").read_text().splitlines()]
    pins = [ln for ln in lines if ln]
    assert pins and all("==" in ln for ln in pins), pins
    for cmd in readme_commands():
        assert "pip install -q --no-deps -r requirements-nodeps.txt" in cmd, cmd

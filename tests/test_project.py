"""Project contracts: the README's two commands, CI running exactly the README test command, pinned torch."""
from __future__ import annotations

import importlib.metadata
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


def requirement_pins() -> dict[str, str]:
    """{distribution: version} of every requirements file the README installs."""
    pins = {}
    for name in ("requirements.txt", "requirements-nodeps.txt", "requirements-test.txt"):
        for ln in (ROOT / name).read_text().splitlines():
            ln = ln.split("#")[0].strip()
            if ln and not ln.startswith("-r"):
                dist, _, version = ln.partition("==")
                pins[dist.strip()] = version.strip()
    return pins


def test_the_environment_is_the_pinned_one():
    """What the tests run against is what the requirements files install (torch 2.13.0, the CPU build included):
    every requirement is pinned and installed at its pin."""
    pins = requirement_pins()
    assert "torch" in pins and "lpips" in pins
    for dist, version in pins.items():
        assert version, f"unpinned requirement: {dist}"
        assert importlib.metadata.version(dist).split("+")[0] == version, dist


def test_both_readme_commands_install_the_nodeps_requirements():
    """lpips ships the LPIPS head weights; with its dependencies it would pull torchvision + a CUDA torch."""
    for cmd in readme_commands():
        assert "pip install -q --no-deps -r requirements-nodeps.txt" in cmd, cmd

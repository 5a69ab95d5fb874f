"""``python -m training bench``: a real (tiny) timed training run that writes a complete JSON report."""
from __future__ import annotations

import json

import pytest

from training.__main__ import main
from training.commands.bench import default_resolution
from training.config import PRESET_DIR, load_config
from core.commands.common import UsageError

TINY = ["--set", "generator.rendering.depth_resolution=4", "--set", "generator.rendering.depth_resolution_importance=4",
        "--set", "loss.neural_rendering_resolution_initial=32"]


@pytest.mark.slow
def test_bench_reports_speed_and_memory(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--config", "synth-tiny", "--steps", "2", "--warmup", "1", "--resolution", "64",
                 "--out", str(out), *TINY]) == 0
    rep = json.loads(out.read_text())
    assert rep["format"] == "trident-train-bench" and rep["resolution"] == 64 and rep["steps"] == 2
    assert rep["samples"] == [4, 4] and rep["batch"] == 4 and rep["losses_finite"] is True
    assert rep["sec_per_kimg"] > 0 and rep["cpu_sec_per_kimg"] > 0 and rep["ms_per_step_median"] > 0
    assert rep["peak_mb"] >= 0 and rep["memory_method"]
    assert rep["sec_per_kimg"] == pytest.approx(rep["ms_per_step_mean"] / rep["batch"])
    assert "sec/kimg" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.tmp"))


def test_bench_rejects_bad_options(tmp_path, capsys):
    assert main(["bench", "--steps", "0", "--out", str(tmp_path / "b.json")]) == 2
    assert main(["bench", "--data", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "b.json")]) == 2
    assert main(["bench", "--set", "loss.no_such_key=1", "--out", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert "no such dataset" in err and "no_such_key" in err
    assert not (tmp_path / "b.json").exists()


def test_default_resolution_is_the_presets_data_resolution():
    """Every training preset states its image size as data.resolution; the bench's synthetic data uses it."""
    presets = sorted(p.stem for p in PRESET_DIR.glob("*.yaml") if not p.stem.startswith("distill"))
    assert presets
    for name in presets:
        cfg = load_config(name)
        assert default_resolution(cfg, name) == cfg.data.resolution and cfg.data.resolution >= 32, name
    assert default_resolution(load_config("synth-tiny", ["data.resolution=32"]), "synth-tiny") == 32
    with pytest.raises(UsageError, match="data.resolution"):
        default_resolution(load_config("synth-tiny", ["data.resolution=null"]), "synth-tiny")
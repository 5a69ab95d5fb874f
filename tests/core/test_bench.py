"""``python -m core bench``: JSON structure, fast/reference agreement, option errors (no wall-clock assertions)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EG3D_FIXTURE, MIMIC3D_FIXTURE, ROOT, require

ROW_KEYS = {"model", "branch", "nrr", "samples", "batch", "sampling", "deterministic", "image_resolution", "ms_per_image",
            "ms_per_image_min", "times_ms", "cpu_times_ms", "peak_mb", "baseline_mb", "ms_per_image_reference", "precision", "tf32",
            "ms_per_image_min_reference", "times_ms_reference", "cpu_times_ms_reference", "peak_mb_reference",
            "speedup", "max_abs_diff"}


def run_cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "core", "bench", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    require(EG3D_FIXTURE / "network.pkl")
    out = tmp_path_factory.mktemp("bench") / "b.json"
    proc = run_cli("--quick", "--device", "cpu", "--threads", "1", "--out", str(out))
    return proc, out


@pytest.mark.slow
def test_quick_run_writes_json(quick):
    proc, out = quick
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["format"] == "trident-bench" and data["version"] == 1
    env = data["environment"]
    assert env["device"] == "cpu" and env["threads"] == 1 and env["torch"]
    assert data["settings"]["repeats"] == 1 and data["settings"]["warmup"] == 0
    assert data["settings"]["models"] == ["fixture"] and data["settings"]["batches"] == [1]
    assert data["memory_method"]
    rows = data["rows"]
    assert [(r["model"], r["batch"], r["sampling"]) for r in rows] == [("fixture", 1, "det"), ("fixture", 1, "std")]
    for r in rows:
        assert ROW_KEYS <= set(r), ROW_KEYS - set(r)
        assert r["nrr"] == 64 and r["samples"] == [12, 12] and r["image_resolution"] == 128
        assert r["deterministic"] == (r["sampling"] == "det")
        assert len(r["times_ms"]) == 1 and len(r["times_ms_reference"]) == 1
        assert r["ms_per_image"] > 0 and r["ms_per_image_reference"] > 0 and r["speedup"] > 0
        assert r["peak_mb"] >= 0 and r["peak_mb_reference"] >= 0
        assert 0 <= r["max_abs_diff"] < 1e-3
    # no EG3D figure from elsewhere is divided into these times (docs/speed.md quotes side-by-side runs)
    assert "eg3d_known" not in data and data["machine_peak_gflop_per_s"]["fp32"]["conv3x3"] > 0


def test_quick_run_prints_table(quick):
    proc, _ = quick
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model"))
    for col in ("nrr", "samples", "batch", "sampling", "ms/img fast", "ms/img ref", "ref/fast", "max diff",
                "PSNR vs fp32", "GFLOP/s", "peak MB"):
        assert col in lines[header]
    body = lines[header + 2: header + 4]
    assert all(line.startswith("fixture") for line in body)
    assert len({len(line) for line in lines[header: header + 4]}) == 1  # aligned columns
    assert "device: " in proc.stdout and "torch " in proc.stdout and "EG3D" not in proc.stdout
    assert "measured peak (fp32): conv 3x3" in proc.stdout


@pytest.mark.slow  # > 10 s on the 2-core machine under load; runs in the full suite
def test_no_reference_in_process(tmp_path, capsys):
    require(EG3D_FIXTURE / "network.pkl")
    from core.__main__ import main
    out = tmp_path / "nr.json"
    rc = main(["bench", "--quick", "--device", "cpu", "--sampling", "det", "--no-reference", "--out", str(out)])
    assert rc == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["ms_per_image"] > 0 and row["ms_per_image_reference"] is None and row["max_abs_diff"] is None
    assert "wrote" in capsys.readouterr().out


def test_precision_rows_on_the_device(tmp_path, device):
    """One row per precision: fp32 and the half type of the device (fp16 on CUDA, bf16 on the CPU), each against
    the reference operators in the same precision."""
    require(EG3D_FIXTURE / "network.pkl")
    from core.__main__ import main
    half = "fp16" if device.type == "cuda" else "bf16"
    out = tmp_path / "p.json"
    assert main(["bench", "--quick", "--device", str(device), "--sampling", "det", "--no-student",
                 "--precision", f"fp32,{half}", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [r["precision"] for r in data["rows"]] == ["fp32", half]
    fp32, low = data["rows"]
    assert fp32["max_abs_diff"] is not None and fp32.get("psnr_vs_fp32") is None
    # fp16 (EG3D's half blocks) is still checked against the reference operators; bf16 (every stack) against fp32
    assert (low["max_abs_diff"] is not None) == (half == "fp16")
    assert 35 < low["psnr_vs_fp32"] < 90
    assert all(r["gflop_per_image"] > 0 and r["gflop_per_s"] > 0 for r in data["rows"])
    peak = data["machine_peak_gflop_per_s"]
    assert peak["fp32"]["conv3x3"] > 0 and peak["bf16"]["matmul"] > 0
    for r in data["rows"]:  # the floor: the row's FLOPs at its precision's best probed rate
        best = max(peak[r["precision"]].values())
        assert r["floor_ms_per_image"] == pytest.approx(r["gflop_per_image"] / best * 1000, rel=1e-9)
    assert data["settings"]["precision"] == ["fp32", half] and data["environment"]["device"] == str(device)


@pytest.mark.parametrize("argv,message", [

    (["--batches", "0"], "--batches"),
    (["--models", "fixture,nope"], "--models"),
    (["--sampling", "fast"], "--sampling"),
    (["--repeats", "x"], "--repeats"),
    (["--nrr", "4"], "--nrr"),
    (["--device", "tpu"], "device"),
    (["--precision", "fp8"], "--precision"),
    (["--precision", "fp16", "--device", "cpu"], "needs a CUDA device"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    from core.__main__ import main
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_bad_argument_subprocess(tmp_path):
    proc = run_cli("--warmup", "-3", "--out", str(tmp_path / "x.json"), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: --warmup must be at least 0"]
    assert not (tmp_path / "x.json").exists()


def test_missing_network_is_a_usage_error(tmp_path, capsys):
    from core.__main__ import main
    assert main(["bench", "--quick", "--network", str(tmp_path / "none.pkl"), "--out", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1


@pytest.mark.slow  # > 10 s on the 2-core machine under load; runs in the full suite
def test_direct3d_rows(tmp_path, capsys, monkeypatch):
    """direct3d rows at two output resolutions; the architecture is swapped for a tiny Mimic3D one (same code path,
    the 512 model's backbone alone takes tens of seconds on a CPU)."""
    from core.__main__ import main
    from core.commands import bench
    from tests.conftest import tiny_mimic3d_config
    real = bench.mimic3d512_config()
    assert real.aware3d_res == (4, 8, 16, 32, 64, 128, 256) and real.detail_blocks == 2
    monkeypatch.setattr(bench, "mimic3d512_config", lambda: tiny_mimic3d_config(rendering=real.rendering))
    out = tmp_path / "d.json"
    rc = main(["bench", "--models", "mimic3d512", "--direct3d-res", "8,16", "--sampling", "det", "--precision", "fp32", "--repeats", "1",
               "--warmup", "0", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [(r["model"], r["branch"], r["nrr"], r["batch"]) for r in rows] == [
        ("mimic3d512", "direct3d", 8, 1), ("mimic3d512", "direct3d", 16, 1)]
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert r["image_resolution"] == r["nrr"] and r["samples"] == [48, 48]
        assert r["ms_per_image"] > 0 and r["peak_mb"] >= 0 and r["ms_per_image_reference"] is None
    assert data["settings"]["direct3d_res"] == [8, 16]
    assert "direct3d" in capsys.readouterr().out


@pytest.mark.slow  # > 10 s on the 2-core machine under load; runs in the full suite
def test_fixture_rows_include_direct3d_of_a_mimic3d_model(tmp_path):
    """A Mimic3D --network gets its own direct3d row (at its output resolution) next to its sr2d row."""
    require(MIMIC3D_FIXTURE / "network.pkl")
    from core.__main__ import main
    out = tmp_path / "m.json"
    rc = main(["bench", "--network", str(MIMIC3D_FIXTURE / "network.pkl"), "--models", "fixture", "--batches", "2",
               "--direct3d-batches", "1", "--sampling", "det", "--precision", "fp32", "--repeats", "1", "--warmup", "0", "--no-reference",
               "--no-student", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [(r["model"], r["branch"], r["batch"]) for r in rows] == [("fixture", "sr2d", 2), ("fixture", "direct3d", 1)]
    assert data["settings"]["direct3d_batches"] == [1]
    sr2d, direct3d = rows
    assert direct3d["nrr"] == direct3d["image_resolution"] == sr2d["image_resolution"] == 128
    assert direct3d["ms_per_image"] > 0 and direct3d["peak_mb"] >= 0


def test_floor_is_flops_at_the_best_probed_rate():
    from core.tools.bench import floor_ms
    peak = {"fp32": {"conv3x3": 200.0, "matmul": 250.0}, "bf16": {"conv3x3": 460.0, "matmul": 430.0}}
    assert floor_ms(295e9, peak, "bf16") == pytest.approx(295 / 460 * 1000)
    assert floor_ms(1e9, peak, "fp32") == pytest.approx(4.0)
    assert floor_ms(1e9, peak, "fp16") is None  # not probed (fp16 is CUDA-only)

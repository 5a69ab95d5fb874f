"""Hostile model files and render options, run through the real commands (issue "Hostile and broken inputs",
items 2, 3, 9 and 10; docs/safety.md "Model files").

Each case crafts its input here (tests/hostile/crafted_models.py writes the bytes), runs ``python -m core samples``
/ ``pack`` / ``mesh`` or ``python run_viz.py`` in a child process under a 1 GB address-space cap and a time limit
(:func:`tests.hostile.harness.run_limited`), and asserts the promise: a non-zero exit, one line on stderr, no
traceback, peak memory under 1 GB, the input unchanged and nothing created outside the output folder. The cases
run in parallel threads (each child pays the torch import); ``PEAKS`` collects (case, exit, peak MB) for the report.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from .crafted_models import inflate_record, mimic3d_pickle, trident_payload, write_trident
from .harness import MEM_CAP_MB, REPO, Outcome, assert_refused, changed_files, new_files, run_limited, tree_state

pytestmark = pytest.mark.slow  # ~40 child processes of 3-10 s each, 3 at a time


@dataclass
class Case:
    make: Callable[[Path], list[str]]     # in-folder -> the command's arguments (the input is written there)
    mentions: str
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 120.0
    mem_mb: int = MEM_CAP_MB   # the address-space cap; the peak RSS limit is PEAK_LIMIT_MB (1 GB) for every case


def _file(name: str, writer: Callable[[Path], object]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        writer(path)
        return path
    return make


def _bytes(name: str, data_fn: Callable[[], bytes]) -> Callable[[Path], Path]:
    return _file(name, lambda p: p.write_bytes(data_fn()))


def _trident(name: str, **kw) -> Callable[[Path], Path]:
    return _file(name, lambda p: write_trident(p, trident_payload(**kw)))


def _inflated(folder: Path) -> Path:
    plain = write_trident(folder / "plain.tmp.pt", trident_payload())
    out = inflate_record(plain, folder / "inflated.pt")
    plain.unlink()
    return out


def _fifo(folder: Path) -> Path:
    path = folder / "model.pkl"
    os.mkfifo(path)
    return path


def _directory(folder: Path) -> Path:
    path = folder / "model.pkl"
    path.mkdir()
    return path


def _dev_zero(folder: Path) -> Path:
    return Path("/dev/zero")


def _huge_latent(folder: Path) -> Path:
    """A sparse ``latent.npy`` whose header declares 20000 x 20000 float32 (1.6 GB; no disk blocks used)."""
    path = folder / "latent.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (20000, 20000)})
        f.truncate(f.tell() + 20000 * 20000 * 4)
    return path


# what each command needs besides --network/--pkl; {out} is the case's output folder
SAMPLES = ["-m", "core", "samples", "--seeds", "0", "--outdir", "{out}", "--device", "cpu", "--network"]
PACK = ["-m", "core", "pack", "--out", "{out}/packed.pkl", "--network"]
MESH = ["-m", "core", "mesh", "--seed", "0", "--res", "16", "--out", "{out}/mesh.ply", "--device", "cpu", "--network"]
VIEWER = [str(REPO / "run_viz.py"), "--screenshot", "{out}/shot.png", "--size", "320x240", "--device", "cpu", "--threads", "1",
          "--timeout", "90", "--pkl"]


# The viewer opens an X display and OpenGL (Mesa llvmpipe reserves address space for its threads): it gets a 4 GB
# address-space cap; what it may actually use (peak resident memory) stays under the same 1 GB as every command.
VIEWER_MEM_MB = 4096


def model_cases(prefix: str, make: Callable[[Path], Path], mentions: str, commands: dict[str, list[str]],
                **kw) -> dict[str, Case]:
    return {f"{prefix}-{cmd}": Case(lambda folder, base=base: [*base, str(make(folder))], mentions,
                                    **{"mem_mb": VIEWER_MEM_MB, **kw} if cmd == "viewer" else kw)
            for cmd, base in commands.items()}


ALL = {"samples": SAMPLES, "pack": PACK, "mesh": MESH, "viewer": VIEWER}
CLI = {"samples": SAMPLES, "pack": PACK}

CASES: dict[str, Case] = {
    # item 2: a Mimic3D pickle whose detail blocks hold each other (2**40 paths; a cycle)
    **model_cases("item2-detail-chain", _bytes("network.pkl", lambda: mimic3d_pickle(detail_chain=40)), "nested",
                  {"samples": SAMPLES, "viewer": VIEWER}, timeout_s=60),
    **model_cases("item2-detail-cycle", _bytes("network.pkl", lambda: mimic3d_pickle(detail_chain=3, cyclic=True)),
                  "cyclic", {"samples": SAMPLES}, timeout_s=60),
    # item 3: a few-KB file whose settings ask for a huge network
    **model_cases("item3-eg3d-mapping-depth", _bytes("network.pkl", lambda: mimic3d_pickle(mapping={"num_layers": 10 ** 6})),
                  "mapping_layers", ALL),
    **model_cases("item3-eg3d-w-dim", _bytes("network.pkl", lambda: mimic3d_pickle(init={"w_dim": 10 ** 6})),
                  "w_dim", CLI),
    **model_cases("item3-trident-mapping-depth", _trident("model.pt", generator={"mapping_layers": 10 ** 6}),
                  "mapping_layers", CLI),
    **model_cases("item3-trident-w-dim", _trident("model.pt", generator={"w_dim": 10 ** 6, "z_dim": 10 ** 6}),
                  "dim", CLI),
    **model_cases("item3-trident-decoder", _trident("model.pt", generator={"decoder_hidden": 10 ** 7}),
                  "decoder_hidden", CLI),
    **model_cases("item3-trident-student", _trident("model.pt", student={"style_dim": 10 ** 6, "mapping_layers": 4}),
                  "student.style_dim", CLI),
    **model_cases("item3-trident-memory-estimate", _trident(
        "model.pt", generator={"channel_base": 1 << 20, "channel_max": 4096, "triplane_resolution": 512,
                               "aware3d_res": [4, 8, 16, 32, 64, 128, 256, 512]}),
        "TRIDENT_MAX_MODEL_MB", ALL),
    **model_cases("item3-limit-lowered", _trident("model.pt"), "limit of 1 MB", CLI,
                  env={"TRIDENT_MAX_MODEL_MB": "1"}),
    **model_cases("item3-inflated-record", _inflated, "compressed record", CLI),
    **model_cases("item3-dev-zero", _dev_zero, "character device", ALL, timeout_s=60),
    **model_cases("item3-fifo", _fifo, "FIFO", ALL, timeout_s=60),
    **model_cases("item3-directory", _directory, "directory", ALL, timeout_s=60),
    # item 9: settings that load but cannot render
    **model_cases("item9-nrr-zero", _trident("model.pt", generator={"neural_rendering_resolution": 0}),
                  "neural_rendering_resolution", {"samples": SAMPLES, "viewer": VIEWER}),
    **model_cases("item9-box-warp-zero", _trident("model.pt", rendering={"box_warp": 0.0}), "box_warp",
                  {"samples": SAMPLES, "viewer": VIEWER}),
    **model_cases("item9-negative-importance", _trident("model.pt", rendering={"depth_resolution_importance": -4}),
                  "depth_resolution_importance", {"samples": SAMPLES, "viewer": VIEWER}),
    # item 10: NaN in a model
    **model_cases("item10-nan-weights", _trident("model.pt", nan_weight="backbone.mapping.fc0.weight"), "NaN",
                  {"samples": SAMPLES, "viewer": VIEWER}),
    **model_cases("item10-nan-radius", _trident("model.pt", rendering={"avg_camera_radius": float("nan")}),
                  "avg_camera_radius", {"samples": SAMPLES}),
}


def _samples_option(*option: str, mentions: str) -> Case:
    def make(folder: Path) -> list[str]:
        model = write_trident(folder / "model.pt", trident_payload())
        args = ["-m", "core", "samples", "--network", str(model), "--outdir", "{out}", "--device", "cpu"]
        args += list(option)
        if "--seeds" not in option and "--latent" not in option:
            args += ["--seeds", "0"]
        return args
    return Case(make, mentions)


def _viewer_option(*option: str, mentions: str) -> Case:
    return Case(lambda folder: [str(REPO / "run_viz.py"), "--screenshot", "{out}/shot.png", *option], mentions, timeout_s=60)


def _latent_case(folder: Path) -> list[str]:
    model = write_trident(folder / "model.pt", trident_payload())
    return ["-m", "core", "samples", "--network", str(model), "--outdir", "{out}", "--device", "cpu",
            "--latent", str(_huge_latent(folder))]


CASES.update({
    "item10-seed-above-32-bit": _samples_option("--seeds", "4294967296", mentions="--seeds"),
    "item10-seed-range-300-million": _samples_option("--seeds", "0-300000000", mentions="too many seeds"),
    "item10-fov-zero": _samples_option("--fov-deg", "0", mentions="--fov-deg"),
    "item10-nrr-100000": _samples_option("--nrr", "100000", mentions="--nrr"),
    "item10-yaw-nan": _samples_option("--yaw", "nan", mentions="--yaw"),
    "item10-trunc-nan": _samples_option("--trunc", "nan", mentions="--trunc"),
    "item10-huge-latent": Case(_latent_case, "latent"),
    "item10-viewer-seed-2147483648": _viewer_option("--seed", "2147483648", mentions="--seed"),
    "item10-viewer-threads-negative": _viewer_option("--threads", "-1", mentions="--threads"),
    "item10-viewer-yaw-nan": _viewer_option("--yaw", "nan", mentions="--yaw"),
})


# ----------------------------------------------------------------------------------------------------------
# running: every case is started (3 at a time) on first use; each test waits for its own


@dataclass
class Ran:
    outcome: Outcome
    inputs_before: dict
    inputs_after: dict
    root_before: dict
    root_after: dict


PEAKS: dict[str, tuple[int, float]] = {}
_lock = threading.Lock()
_futures: dict[str, Future] = {}
_pool = ThreadPoolExecutor(max_workers=3)


def _run_case(name: str, case: Case, root: Path) -> Ran:
    folder, out, work = root / "in", root / "out", root / "work"
    for d in (folder, out, work):
        d.mkdir(parents=True)
    args = [a.replace("{out}", str(out)) for a in case.make(folder)]
    inputs_before, root_before = tree_state(folder), tree_state(root)
    outcome = run_limited(args, cwd=work, env=case.env, timeout_s=case.timeout_s, mem_mb=case.mem_mb)
    PEAKS[name] = (outcome.returncode, outcome.peak_mb)
    return Ran(outcome, inputs_before, tree_state(folder), root_before, tree_state(root))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile_models")

    def get(name: str) -> Ran:
        with _lock:
            if not _futures:
                for n, c in CASES.items():
                    _futures[n] = _pool.submit(_run_case, n, c, base / n)
        return _futures[name].result()
    yield get
    report = "\n".join(f"  {n:45s} exit {rc:3d}  peak {mb:5.0f} MB" for n, (rc, mb) in sorted(PEAKS.items()))
    hwm = next((ln.split(":")[1].strip() for ln in Path("/proc/self/status").read_text().splitlines()
                if ln.startswith("VmHWM")), "?")
    print(f"\nhostile model-file cases (exit, peak RSS; a child's peak includes this process's RSS when it was "
          f"started, high-water {hwm}):\n{report}")


@pytest.mark.parametrize("name", list(CASES))
def test_refused(results, name):
    ran = results(name)
    assert_refused(ran.outcome, mentions=CASES[name].mentions)
    assert not changed_files(ran.inputs_before, ran.inputs_after), "an input file changed"
    created = {p for p in new_files(ran.root_before, ran.root_after) if not p.startswith("out" + os.sep)}
    assert not created, f"files created outside the output folder: {sorted(created)}"


def test_every_numbered_item_has_cases():
    assert {n.split("-")[0] for n in CASES} == {"item2", "item3", "item9", "item10"}

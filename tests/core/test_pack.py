"""``python -m core pack``: the lean inference copy keeps every branch bit for bit and drops the training state."""
from __future__ import annotations

import pytest

import dataclasses

import torch

from core.__main__ import main
from core.files.checkpoint import load_snapshot, save_snapshot
from core.metrics.fidelity import psnr
from core.model import load_model
from core.student import StudentGenerator, init_from_teacher, student_config_for_teacher, student_payload
from core.triplane import RenderOptions


def _distilled_file(eg3d_snapshot, eg3d_G, path):
    """A distillation-style snapshot: teacher (with G, D) + student + training and distillation state."""
    torch.manual_seed(0)
    student = StudentGenerator(student_config_for_teacher(eg3d_G, style_dim=32, mapping_layers=2, channel_base=512,
                                                          channel_max=32)).eval()
    init_from_teacher(student, eg3d_G, num_samples=16)
    extra = {"student": student_payload(student), "train": {"progress": {"cur_nimg": 30000}, "G_opt": {"x": 1}},
             "distill": {"progress": {"cur_nimg": 12000}, "student": student_payload(student)["state"]}}
    snap = dataclasses.replace(eg3d_snapshot, G=eg3d_snapshot.G_ema, extra=extra)
    save_snapshot(path, snap)
    return snap


@pytest.mark.slow
def test_pack_keeps_branches_and_drops_training_state(eg3d_snapshot, eg3d_G, tmp_path, capsys):
    src = tmp_path / "network-snapshot-000012.pkl"
    full = _distilled_file(eg3d_snapshot, eg3d_G, src)
    assert full.D is not None
    out = tmp_path / "lean.pkl"
    assert main(["pack", "--network", str(src), "--out", str(out), "--command", "python -m training train A",
                 "--command", "python -m training distill B", "--note", "test"]) == 0
    assert "branches sr2d, student" in capsys.readouterr().out
    lean = load_snapshot(out)
    assert lean.G is None and lean.D is None and lean.discriminator is None and lean.D_patch is None
    assert set(lean.extra) == {"student", "provenance"}
    assert lean.extra["provenance"] == {"source": src.name, "branches": ["sr2d", "student"],
                                        "kimg": {"train": 30.0, "distill": 12.0},
                                        "commands": ["python -m training train A", "python -m training distill B"],
                                        "storage": "float32", "note": "test"}
    assert out.stat().st_size < src.stat().st_size
    a, b = load_model(src), load_model(out)
    ws = a.ws_from_seed(3, truncation_psi=0.7)
    c = a.camera_label(0.3, -0.1)
    for branch in ("sr2d", "student"):
        assert torch.equal(a.render(branch, ws, c, RenderOptions())["image"],
                           b.render(branch, ws, c, RenderOptions())["image"])
    # --keep-discriminators keeps D for fine-tuning; an EG3D pickle packs as well
    assert main(["pack", "--network", str(src), "--out", str(out), "--keep-discriminators"]) == 0
    assert load_snapshot(out).D is not None


@pytest.mark.slow
def test_pack_half_stores_float16_and_renders_within_rounding(eg3d_snapshot, eg3d_G, tmp_path):
    src = tmp_path / "network-snapshot-000012.pkl"
    _distilled_file(eg3d_snapshot, eg3d_G, src)
    full, half = tmp_path / "full.pkl", tmp_path / "half.pkl"
    assert main(["pack", "--network", str(src), "--out", str(full)]) == 0
    assert main(["pack", "--network", str(src), "--out", str(half), "--half"]) == 0
    lean = load_snapshot(half)
    assert lean.extra["provenance"]["storage"] == "float16"
    floats = [t for t in [*lean.G_ema.values(), *lean.extra["student"]["state"].values()] if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float16 for t in floats)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    a, b = load_model(full), load_model(half)
    ws = a.ws_from_seed(5, truncation_psi=0.7)
    c = a.camera_label(-0.3, 0.1)
    for branch in ("sr2d", "student"):
        x, y = (m.render(branch, ws, c, RenderOptions())["image"] for m in (a, b))
        assert y.dtype == torch.float32 and not torch.equal(x, y)  # float16 weights, float32 compute
        assert psnr(x, y).item() > 40  # only the weights' float16 rounding separates them


def test_pack_errors(eg3d_fixture_dir, tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    assert main(["pack", "--network", str(bad), "--out", str(tmp_path / "o.pkl")]) == 2
    (tmp_path / "afile").write_text("x")
    assert main(["pack", "--network", str(eg3d_fixture_dir / "network.pkl"),
                 "--out", str(tmp_path / "afile" / "o.pkl")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "Traceback" not in err
    # a new folder is created for the output
    assert main(["pack", "--network", str(eg3d_fixture_dir / "network.pkl"),
                 "--out", str(tmp_path / "new" / "sub" / "o.pkl")]) == 0
    assert load_model(tmp_path / "new" / "sub" / "o.pkl").branches == ("sr2d",)
    assert not (tmp_path / "o.pkl").exists()

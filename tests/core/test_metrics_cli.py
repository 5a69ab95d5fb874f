"""``python -m core metrics --metrics swd`` end to end on a small EG3D-format dataset."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.__main__ import main
from core.cameras import Camera
from core.files.dataset import DatasetError, iter_images, read_labels


def _write_dataset(path, n=8, res=128, gray=False):
    label = Camera.frontal_offset(0.1, -0.05).to_label()[0].tolist()
    rng = np.random.RandomState(0)
    with zipfile.ZipFile(path, "w") as z:
        labels = []
        for i in range(n):
            arr = rng.randint(0, 255, size=(res, res) if gray else (res, res, 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            name = f"00000/img{i:08d}.png"
            z.writestr(name, buf.getvalue())
            labels.append([name, label])
        z.writestr("dataset.json", json.dumps({"labels": labels}))


def test_image_files_reader(tmp_path):
    _write_dataset(tmp_path / "d.zip", n=3, res=32, gray=True)
    items = list(iter_images(tmp_path / "d.zip"))
    assert [n for n, _ in items] == [f"00000/img{i:08d}.png" for i in range(3)]
    assert all(a.shape == (32, 32, 3) and a.dtype == np.uint8 for _, a in items)
    assert len(read_labels(tmp_path / "d.zip")) == 3
    with pytest.raises(DatasetError, match="no such dataset"):
        list(iter_images(tmp_path / "missing.zip"))


@pytest.mark.slow
def test_swd_cli(eg3d_fixture_dir, tmp_path, capsys):
    _write_dataset(tmp_path / "d.zip", n=8, res=64)  # resized to the model's 128 px
    out = tmp_path / "m.json"
    code = main(["metrics", "--network", str(eg3d_fixture_dir / "network.pkl"), "--data", str(tmp_path / "d.zip"),
                 "--num", "8", "--batch", "4", "--out", str(out)])
    assert code == 0
    res = json.loads(out.read_text())
    assert res["num"] == 8 and res["swd"]["swd_mean"] > 0
    assert set(res["swd"]) == {"swd_128", "swd_64", "swd_32", "swd_16", "swd_mean"}
    assert "swd_mean" in capsys.readouterr().out


def test_metrics_cli_errors(eg3d_fixture_dir, tmp_path, capsys):
    net = str(eg3d_fixture_dir / "network.pkl")
    assert main(["metrics", "--network", net, "--data", str(tmp_path / "none.zip")]) == 2
    assert main(["metrics", "--network", net, "--data", str(tmp_path), "--metrics", "fid"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error:") for e in err)


@pytest.mark.slow
def test_fid_kid_cli_with_a_torchscript_detector(eg3d_fixture_dir, tmp_path, capsys):
    import torch

    from tests.core.test_fid import TinyDetector

    det = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(TinyDetector()).save(str(det))
    _write_dataset(tmp_path / "d.zip", n=6, res=64)
    out = tmp_path / "m.json"
    code = main(["metrics", "--network", str(eg3d_fixture_dir / "network.pkl"), "--data", str(tmp_path / "d.zip"),
                 "--metrics", "fid,kid", "--inception", str(det), "--num", "6", "--batch", "3", "--out", str(out)])
    assert code == 0
    res = json.loads(out.read_text())["branches"]["sr2d"]
    assert res["fid"] > 0 and np.isfinite(res["kid"]) and "swd" not in res
    assert "fid" in capsys.readouterr().out


def test_fid_without_the_inception_file_names_it(eg3d_fixture_dir, tmp_path, capsys):
    _write_dataset(tmp_path / "d.zip", n=2, res=64)
    code = main(["metrics", "--network", str(eg3d_fixture_dir / "network.pkl"), "--data", str(tmp_path / "d.zip"),
                 "--metrics", "fid", "--inception", str(tmp_path / "nowhere.pt")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inception-2015-12-05.pt" in err[0] and "nowhere.pt" in err[0]

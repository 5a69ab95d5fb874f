"""core.metrics.recall: improved precision and recall (Kynkaanniemi et al. 2019) in a part-sensitive feature space."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.metrics.recall import coverage, knn_radii, part_features, precision_recall


def _heads(n: int, seed: int, kinds: int, background: str = "random") -> torch.Tensor:
    """Synthetic 64 px 'heads': a disc of one of ``kinds`` shapes (eyes, ears, hat) over a smooth background."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    out = []
    for _ in range(n):
        k = int(torch.randint(kinds, (1,), generator=g))
        top, bottom = torch.rand(3, 1, 1, generator=g) * 2 - 1, torch.rand(3, 1, 1, generator=g) * 2 - 1
        if background == "grey":
            top = bottom = torch.zeros(3, 1, 1)
        img = top + (bottom - top) * (yy + 1) / 2                    # a smooth vertical colour gradient
        head = (xx.square() + (yy - 0.1).square()) < 0.3 ** 2
        skin = torch.tensor([0.8, 0.4, 0.2]).reshape(3, 1, 1)
        img = torch.where(head, skin, img)
        if k % 3 >= 1:                                                 # two eyes
            for ex in (-0.12, 0.12):
                img = torch.where(((xx - ex).square() + (yy - 0.05).square()) < 0.04 ** 2, -torch.ones(3, 1, 1), img)
        if k % 3 == 2:                                                 # ears
            for ex in (-0.3, 0.3):
                img = torch.where(((xx - ex).abs() < 0.05) & ((yy + 0.25).abs() < 0.12), skin, img)
        if k >= 3:                                                     # a hat brim
            img = torch.where(((yy + 0.15).abs() < 0.03) & (xx.abs() < 0.45), torch.ones(3, 1, 1) * -0.5, img)
        out.append(img)
    return torch.stack(out)


def test_features_see_parts_not_background_colour():
    a = _heads(8, 0, 6)
    grey = _heads(8, 0, 6, background="grey")       # the same heads on a flat grey background
    fa, fg = part_features(a), part_features(grey)
    assert fa.shape == (8, 9 * (8 * 8 + 4 * 4)) and torch.isfinite(fa).all()
    same = (fa - fg).norm(dim=1)                    # background colour changed, parts not
    other = torch.cdist(fa, fa)[~torch.eye(8, dtype=torch.bool)]
    assert float(same.mean()) < 0.5 * float(other.max())
    # and in pixel space the background dominates: the same heads are far apart
    assert float((a - grey).flatten(1).norm(dim=1).mean()) > 0.5 * float(torch.cdist(a.flatten(1), a.flatten(1)).max())


def test_coverage_and_radii_by_hand():
    pts = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    # k=1: each point's nearest other point: 1, 1, 2, 3
    torch.testing.assert_close(knn_radii(pts, 1), torch.tensor([1.0, 1.0, 2.0, 3.0]))
    q = torch.tensor([[0.5], [10.0], [4.9], [9.0]])
    assert coverage(pts, q, k=1) == pytest.approx(3 / 4)  # 10 is outside every ball; 9 is inside 6's (radius 3)


def test_a_collapsed_generator_has_low_recall_and_the_data_has_one():
    reals = _heads(120, 1, 6)
    a, b = part_features(reals[:60]), part_features(reals[60:])
    varied = part_features(_heads(60, 2, 6))
    one_head = part_features(_heads(60, 3, 1))      # one kind of head, backgrounds still vary
    good, bad = precision_recall(a, b, varied), precision_recall(a, b, one_head)
    assert good.relative_recall > 0.8 and bad.relative_recall < 0.5
    assert bad.precision > 0.5                      # what it draws is realistic, it just draws one thing
    assert good.num == 60 and good.k == 3 and set(good.as_dict()) >= {"relative_recall", "data_recall"}
    with pytest.raises(ValueError, match="same size"):
        precision_recall(a, b, one_head[:10])


@pytest.mark.slow
def test_metrics_command_reports_recall(tmp_path, eg3d_fixture_dir, capsys):
    """`core metrics --metrics recall`: 2 x --num reals split in halves, --num fakes at the data's cameras."""
    from core.__main__ import main
    from core.cameras import Camera
    from training.dataset_tool import Item, write_dataset
    rng = np.random.RandomState(0)
    items = [Item(label=Camera.frontal_offset(float(rng.uniform(-0.3, 0.3)), 0.0).to_label()[0].numpy(),
                  image=rng.randint(0, 255, (128, 128, 3), dtype=np.uint8)) for _ in range(10)]
    data = tmp_path / "d.zip"
    write_dataset(data, items)
    out = tmp_path / "m.json"
    assert main(["metrics", "--network", str(eg3d_fixture_dir / "network.pkl"), "--data", str(data),
                 "--metrics", "recall", "--num", "4", "--batch", "4", "--device", "cpu", "--out", str(out)]) == 0
    r = json.loads(out.read_text())["branches"]["sr2d"]["recall"]
    assert r["num"] == 4 and 0 <= r["recall"] <= 1 and 0 <= r["data_recall"] <= 1 and "relative_recall" in r
    assert "relative" in capsys.readouterr().out

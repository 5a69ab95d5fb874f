"""core.metrics.lpips: LPIPS v0.1 with Trident's own trunks (torchvision key layout), heads from the lpips package files."""
from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from core.metrics.lpips import (LPIPS, TRUNK_FILES, LPIPSTrunkMissingError, LPIPSWeightsError, heads_path, load_lpips,
                                trunk_weights_path)

# torchvision's vgg16().features / alexnet().features parameter names and shapes (the torchvision model zoo files).
VGG16_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
               (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512),
               (28, 512, 512)]
ALEX_CONVS = [(0, 3, 64, 11), (3, 64, 192, 5), (6, 192, 384, 3), (8, 384, 256, 3), (10, 256, 256, 3)]


def expected_trunk_shapes(net: str) -> dict[str, tuple[int, ...]]:
    out = {}
    if net == "vgg":
        for i, cin, cout in VGG16_CONVS:
            out[f"features.{i}.weight"] = (cout, cin, 3, 3)
            out[f"features.{i}.bias"] = (cout,)
    else:
        for i, cin, cout, k in ALEX_CONVS:
            out[f"features.{i}.weight"] = (cout, cin, k, k)
            out[f"features.{i}.bias"] = (cout,)
    return out


def torchvision_style_file(net: str, path, seed: int = 1) -> dict[str, torch.Tensor]:
    """A state dict laid out like torchvision's hub file (features + classifier keys), random values."""
    g = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(s, generator=g) * 0.05 for k, s in expected_trunk_shapes(net).items()}
    for i in ((0, 3, 6) if net == "vgg" else (1, 4, 6)):       # classifier entries, ignored by LPIPS
        sd[f"classifier.{i}.weight"] = torch.zeros(4, 4)
        sd[f"classifier.{i}.bias"] = torch.zeros(4)
    torch.save(sd, path)
    return sd


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(2, 3, 32, 32, generator=g)).clamp(-1, 1)
    return a, b


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_trunk_keys_match_torchvision_layout(net):
    m = LPIPS(net, random_trunk=True)
    got = {f"features.{k}": tuple(v.shape) for k, v in m.trunk.features.state_dict().items()}
    assert got == expected_trunk_shapes(net)


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_heads_load_exactly_from_package_files(net):
    path = heads_path(net)
    assert path.parts[-4:] == ("lpips", "weights", "v0.1", f"{net}.pth")
    ref = torch.load(path, map_location="cpu", weights_only=True)
    m = LPIPS(net, random_trunk=True)
    assert len(ref) == 5
    for l in range(5):
        torch.testing.assert_close(m.lins[l].model[1].weight, ref[f"lin{l}.model.1.weight"], rtol=0, atol=0)


def test_lpips_package_is_not_imported():
    LPIPS("alex", random_trunk=True)
    assert "lpips" not in sys.modules and "torchvision" not in sys.modules


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_identity_symmetry_positivity(net, images):
    a, b = images
    m = LPIPS(net, random_trunk=True)
    with torch.no_grad():
        d_aa, d_ab, d_ba = m(a, a), m(a, b), m(b, a)
    assert d_aa.shape == (2,)
    assert torch.all(d_aa.abs() < 1e-6)
    torch.testing.assert_close(d_ab, d_ba, rtol=1e-5, atol=1e-7)
    assert torch.all(d_ab > 1e-3)


def test_differentiable_in_inputs_and_frozen(images):
    a, b = images
    m = LPIPS("alex", random_trunk=True)
    x = a.clone().requires_grad_(True)
    m(x, b).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in m.parameters())


def test_random_trunk_is_seeded():
    a = LPIPS("alex", random_trunk=True).trunk.state_dict()
    b = LPIPS("alex", random_trunk=True).trunk.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_trunk_file_loads_and_formula_matches_hand_computation(tmp_path, images):
    """AlexNet trunk from a torchvision-layout file; the distance recomputed with plain functional ops."""
    a, b = images
    sd = torchvision_style_file("alex", tmp_path / "alex.pth")
    m = LPIPS("alex", trunk_weights=tmp_path / "alex.pth")
    for k, v in m.trunk.features.state_dict().items():
        assert torch.equal(v, sd[f"features.{k}"])
    heads = torch.load(heads_path("alex"), map_location="cpu", weights_only=True)

    def taps(x):
        x = (x - torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)) / torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
        out = []
        x = F.relu(F.conv2d(x, sd["features.0.weight"], sd["features.0.bias"], stride=4, padding=2)); out.append(x)
        x = F.max_pool2d(x, 3, 2)
        x = F.relu(F.conv2d(x, sd["features.3.weight"], sd["features.3.bias"], padding=2)); out.append(x)
        x = F.max_pool2d(x, 3, 2)
        for i in (6, 8, 10):
            x = F.relu(F.conv2d(x, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], padding=1)); out.append(x)
        return out

    want = torch.zeros(a.shape[0])
    for l, (fa, fb) in enumerate(zip(taps(a), taps(b))):
        fa = fa / (fa.norm(dim=1, keepdim=True) + 1e-10)
        fb = fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
        want += ((fa - fb) ** 2 * heads[f"lin{l}.model.1.weight"].view(1, -1, 1, 1)).sum(1).mean(dim=(1, 2))
    with torch.no_grad():
        torch.testing.assert_close(m(a, b), want, rtol=1e-4, atol=1e-6)


def test_hub_cache_location_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torchvision_style_file("alex", ckpt / TRUNK_FILES["alex"])
    assert trunk_weights_path("alex") == ckpt / "alexnet-owt-7be5be79.pth"
    LPIPS("alex")            # loads without error


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_missing_trunk_is_a_clear_error(tmp_path, monkeypatch, net):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(LPIPSTrunkMissingError) as e:
        LPIPS(net)
    msg = str(e.value)
    assert "\n" not in msg and TRUNK_FILES[net] in msg and str(tmp_path / "hub" / "checkpoints") in msg
    with pytest.raises(LPIPSTrunkMissingError):
        LPIPS(net, trunk_weights=tmp_path / "nope.pth")
    with pytest.raises(LPIPSTrunkMissingError):
        load_lpips(net)
    with pytest.warns(UserWarning, match="random trunk"):
        m = load_lpips(net, allow_random=True)
    assert m.random_trunk


def test_wrong_or_corrupt_trunk_file(tmp_path):
    torchvision_style_file("alex", tmp_path / "alex.pth")
    with pytest.raises(LPIPSWeightsError, match="not a torchvision"):
        LPIPS("vgg", trunk_weights=tmp_path / "alex.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a torch file")
    with pytest.raises(LPIPSWeightsError, match="cannot read"):
        LPIPS("alex", trunk_weights=tmp_path / "bad.pth")


def test_bad_inputs():
    m = LPIPS("alex", random_trunk=True)
    with pytest.raises(ValueError):
        LPIPS("squeezenet", random_trunk=True)
    with pytest.raises(ValueError):
        m(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 32, 32))

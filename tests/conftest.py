"""Shared test fixtures: the reference fixtures (``$TRIDENT_FIXTURES``, default ../shared/fixtures beside the
checkout, the path CI has too; see :func:`core.commands.common.fixtures_dir`)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.commands.common import fixtures_dir  # noqa: E402 (after the checkout is on sys.path)

FIXTURES = fixtures_dir()
EG3D_FIXTURE = FIXTURES / "eg3d_ffhq128"
MIMIC3D_FIXTURE = FIXTURES / "mimic3d_128"

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu",
                     help="torch device for the tests that take the `device` fixture (cpu, cuda, cuda:N); "
                          "`pytest --device cuda -m device` runs just those (tools/device_check.sh)")


def pytest_configure(config):
    config.addinivalue_line("markers", "device: the test runs on --device (it takes the `device` fixture)")


def pytest_collection_modifyitems(config, items):
    for item in items:  # every test whose fixtures reach `device` runs on the chosen device: mark it so
        if "device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.device)


@pytest.fixture(scope="session")
def device(pytestconfig) -> torch.device:
    """The device of ``--device``; asking for CUDA on a machine without it fails the test (never a skip)."""
    dev = torch.device(pytestconfig.getoption("--device"))
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            pytest.fail("--device cuda was given but torch sees no CUDA device")
        # fast-vs-reference comparisons need full fp32 arithmetic: no TF32 in cuDNN convolutions or matmuls
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return dev


@pytest.fixture(scope="session")
def eg3d_G_dev(eg3d_snapshot, device):
    """The EG3D fixture's G_ema on ``--device`` (its own copy: ``eg3d_G`` stays on the CPU)."""
    from core.build import build_generator
    return build_generator(eg3d_snapshot.generator, eg3d_snapshot.G_ema).to(device)


@pytest.fixture(scope="session")
def mimic3d_G_dev(mimic3d_snapshot, device):
    from core.build import build_generator
    return build_generator(mimic3d_snapshot.generator, mimic3d_snapshot.G_ema).to(device)


def require(path: Path) -> Path:
    """Reference fixtures are part of the test contract: a missing one is a failure, never a skip."""
    if not path.exists():
        pytest.fail(f"reference fixture missing: {path} "
                    f"(set TRIDENT_FIXTURES or put them in ../shared/fixtures beside the checkout)")
    return path


@pytest.fixture(scope="session")
def eg3d_fixture_dir() -> Path:
    return require(EG3D_FIXTURE)


@pytest.fixture(scope="session")
def eg3d_snapshot(eg3d_fixture_dir):
    from core.files.checkpoint import load_snapshot
    return load_snapshot(eg3d_fixture_dir / "network.pkl")


@pytest.fixture(scope="session")
def eg3d_expected(eg3d_fixture_dir):
    import numpy as np
    with np.load(eg3d_fixture_dir / "expected.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def eg3d_G(eg3d_snapshot):
    from core.build import build_generator
    return build_generator(eg3d_snapshot.generator, eg3d_snapshot.G_ema)


@pytest.fixture(scope="session")
def mimic3d_fixture_dir() -> Path:
    return require(MIMIC3D_FIXTURE)


@pytest.fixture(scope="session")
def mimic3d_snapshot(mimic3d_fixture_dir):
    from core.files.checkpoint import load_snapshot
    return load_snapshot(mimic3d_fixture_dir / "network.pkl")


@pytest.fixture(scope="session")
def mimic3d_expected(mimic3d_fixture_dir):
    import numpy as np
    with np.load(mimic3d_fixture_dir / "expected.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def mimic3d_G(mimic3d_snapshot):
    from core.build import build_generator
    return build_generator(mimic3d_snapshot.generator, mimic3d_snapshot.G_ema)


def tiny_mimic3d_config(**overrides):
    """A small random Mimic3D stage-2 generator: 16 px coarse / 32 px detail tri-planes, 32 px output, no SR."""
    from core.config import GeneratorConfig, RenderingConfig
    kw = dict(z_dim=16, w_dim=16, img_resolution=32, mapping_layers=1, channel_base=256, channel_max=16,
              triplane_resolution=16, triplane_channels=8, neural_rendering_resolution=16, sr_kind=None,
              decoder_hidden=16, decoder_output_dim=8, const_batch_dim=True, aware3d_res=(4, 8, 16), detail_blocks=2,
              rendering=RenderingConfig(depth_resolution=6, depth_resolution_importance=6,
                                        plane_convention="mimic3d"))
    kw.update(overrides)
    return GeneratorConfig(**kw)

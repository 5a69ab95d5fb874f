"""The render thread: newest request wins, stale results are dropped, errors become data (no GL needed)."""
from __future__ import annotations

import time

from app.async_renderer import AsyncRenderer, LoadFailed, ModelLoaded
from app.requests import BranchResult, CameraSpec, LatentSpec, RenderRequest
from tests.app.fake_backend import FakeBackend


def wait_for(renderer: AsyncRenderer, n_events: int = 1, timeout: float = 20.0) -> list:
    events, deadline = [], time.monotonic() + timeout
    while len(events) < n_events or not renderer.idle:
        assert time.monotonic() < deadline, f"timed out with {events}"
        events += renderer.poll()
        time.sleep(0.002)
    return events + renderer.poll()


def request(seed: int, branches=("sr2d",)) -> RenderRequest:
    return RenderRequest(latent=LatentSpec(seed=seed), camera=CameraSpec(), branches=branches)


def started(backend: FakeBackend, timeout: float = 10.0) -> None:
    assert backend.rendering.wait(timeout), "render did not start"


def test_load_then_render_every_branch():
    backend = FakeBackend()
    r = AsyncRenderer(lambda path: backend)
    try:
        r.open("fake.pkl")
        (loaded,) = wait_for(r)
        assert isinstance(loaded, ModelLoaded) and loaded.info.branches == ("sr2d", "direct3d", "student")
        assert r.submit(request(0, loaded.info.branches))
        assert not r.submit(request(0, loaded.info.branches))  # unchanged request: nothing queued
        results = wait_for(r, 3)
        assert sorted(x.branch for x in results) == ["direct3d", "sr2d", "student"]
        assert all(isinstance(x, BranchResult) and x.error is None and x.image.shape == (64, 64, 3) for x in results)
    finally:
        r.close()


def test_newest_request_wins_and_queued_requests_are_dropped():
    backend = FakeBackend(branches=("sr2d",), delay_s=0.3)
    r = AsyncRenderer(lambda path: backend)
    try:
        r.open("fake.pkl")
        wait_for(r)
        r.submit(request(1))
        started(backend)                   # seed 1 is rendering now
        for seed in (2, 3, 4):             # 2 and 3 are replaced before they start
            r.submit(request(seed))
        results = wait_for(r, 2)
        assert [x.request.latent.seed for x in results] == [1, 4]
        assert [x.stamp for x in results] == sorted(x.stamp for x in results)
        assert [c[0].latent.seed for c in backend.calls] == [1, 4]
    finally:
        r.close()


def test_a_new_request_cancels_the_remaining_branches_of_an_old_one():
    backend = FakeBackend(branches=("sr2d", "direct3d", "student"), delay_s=0.2)
    r = AsyncRenderer(lambda path: backend)
    try:
        r.open("fake.pkl")
        wait_for(r)
        r.submit(request(1, backend.info.branches))
        started(backend)
        r.submit(request(2, backend.info.branches))
        results = wait_for(r, 4)
        old = [x for x in results if x.request.latent.seed == 1]
        new = [x for x in results if x.request.latent.seed == 2]
        assert len(old) == 1 and sorted(x.branch for x in new) == ["direct3d", "sr2d", "student"]
        assert new[0].branch != old[0].branch  # the branch that waited longest goes first
    finally:
        r.close()


def test_render_errors_and_load_errors_are_reported_not_raised():
    backend = FakeBackend(branches=("sr2d", "student"), fail=("student",))

    def loader(path: str):
        if path == "bad.pkl":
            raise ValueError("bad.pkl is neither a Trident snapshot nor a network pickle\nsecond line")
        return backend
    r = AsyncRenderer(loader)
    try:
        r.open("bad.pkl")
        (failed,) = wait_for(r)
        assert isinstance(failed, LoadFailed)
        assert failed.message == "bad.pkl is neither a Trident snapshot nor a network pickle"   # no class names
        r.open("good.pkl")
        wait_for(r)
        r.submit(request(0, ("sr2d", "student")))
        results = {x.branch: x for x in wait_for(r, 2)}
        assert results["sr2d"].error is None
        assert results["student"].error == "unexpected error: student exploded (test)" and results["student"].image is None
        r.submit(request(1, ("sr2d", "student")))  # the thread survived
        assert len(wait_for(r, 2)) == 2
    finally:
        r.close()


def test_results_of_a_replaced_model_are_dropped():
    slow, fast = FakeBackend(branches=("sr2d",), delay_s=0.3), FakeBackend(branches=("sr2d",))
    r = AsyncRenderer(lambda path: slow if path == "slow" else fast)
    try:
        r.open("slow")
        wait_for(r)
        r.submit(request(1))
        started(slow)
        r.open("fast")                     # replaces the model while slow renders
        events = wait_for(r)
        assert [type(e).__name__ for e in events] == ["ModelLoaded"] and r.generation == 2
    finally:
        r.close()

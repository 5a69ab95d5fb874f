"""The harness itself judges correctly: a clean one-line refusal passes, a traceback or a memory hog does not."""
import pytest

from .harness import assert_refused, changed_files, new_files, run_limited, tree_state


def test_one_line_refusal_passes(tmp_path):
    out = run_limited(["-m", "core", "samples", "--network", str(tmp_path / "missing.pkl"), "--seeds", "0",
                       "--outdir", str(tmp_path)],
                      cwd=tmp_path)
    assert_refused(out, mentions="missing.pkl")


def test_traceback_is_caught(tmp_path):
    out = run_limited(["-c", "raise ValueError('boom')"], cwd=tmp_path)
    with pytest.raises(AssertionError, match="traceback"):
        assert_refused(out)


def test_memory_cap_and_peak(tmp_path):
    out = run_limited(["-c", "b = bytearray(600 << 20); b[::4096] = b'x' * len(b[::4096]); import sys; sys.exit(3)"],
                      cwd=tmp_path, mem_mb=2048)
    assert out.returncode == 3 and out.peak_mb > 550
    out = run_limited(["-c", "import sys; b = bytearray(600 << 20); b[::4096] = b'x' * len(b[::4096]); sys.exit('error: x')"],
                      cwd=tmp_path, mem_mb=2048)
    with pytest.raises(AssertionError, match="peak memory"):
        assert_refused(out, peak_limit_mb=500)
    capped = run_limited(["-c", "b = bytearray(2 << 30)"], cwd=tmp_path, mem_mb=512)
    assert capped.returncode != 0 and "MemoryError" in capped.stderr


def test_time_limit_kills(tmp_path):
    out = run_limited(["-c", "import time; time.sleep(60)"], cwd=tmp_path, timeout_s=1)
    assert out.timed_out
    with pytest.raises(AssertionError, match="timed out"):
        assert_refused(out)


def test_tree_state_sees_new_and_changed(tmp_path):
    (tmp_path / "a").write_text("1")
    before = tree_state(tmp_path)
    (tmp_path / "a").write_text("2")
    (tmp_path / "b").write_text("3")
    after = tree_state(tmp_path)
    assert new_files(before, after) == {"b"} and changed_files(before, after) == {"a"}


def test_peak_is_the_commands_own_not_the_test_process(tmp_path):
    """A child forked straight from a large test process would report that process's resident set as its peak."""
    ballast = bytearray(1200 << 20)
    ballast[::4096] = b"x" * len(ballast[::4096])       # resident in this (the test) process
    out = run_limited(["-c", "import sys; sys.exit(0)"], cwd=tmp_path)
    assert out.returncode == 0 and out.peak_mb < 200, out.describe()
    del ballast

"""Run a Trident command the way a user would, under a memory cap and a time limit, and judge how it failed.

The hostile-input tests (issue: "Hostile and broken inputs") craft a bad file or value, run the real command in a
child process and assert the promise made in ``docs/safety.md``: a non-zero exit, exactly one line on stderr, no
traceback, peak memory under the cap, nothing written outside the output folder and no input changed.

    out = run_limited(["-m", "core", "samples", "--network", str(bad)], cwd=tmp_path)
    assert_refused(out, mentions="network")
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MEM_CAP_MB = 1024  # address-space cap of the child (RLIMIT_AS); torch's CPU import needs about 300 MB of it
PEAK_LIMIT_MB = 1024  # the promise: a refused input never costs more than this much resident memory


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float  # the child's maximum resident set size
    timed_out: bool

    def describe(self) -> str:
        return (f"{' '.join(self.argv)}\n  exit {self.returncode}, peak {self.peak_mb:.0f} MB, "
                f"timed out: {self.timed_out}\n  stderr: {self.stderr[-2000:]!r}")


def run_limited(args: list[str], *, cwd: Path, mem_mb: int = MEM_CAP_MB, timeout_s: float = 120.0,
                env: dict[str, str] | None = None, stdin: str | None = None) -> Outcome:
    """``python <args>`` from this checkout's interpreter, in ``cwd``, with the repository importable, the address
    space capped at ``mem_mb`` and the whole process group killed after ``timeout_s`` seconds."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.setdefault("OMP_NUM_THREADS", "1")
    full_env.update(env or {})
    import tempfile

    fd, peak_file = tempfile.mkstemp(prefix="trident_peak_")
    os.close(fd)
    argv = (sys.executable, *map(str, args))
    wrapper = (sys.executable, str(Path(__file__).with_name("spawn_measured.py")), peak_file, str(int(mem_mb)))
    p = subprocess.Popen(wrapper + argv, cwd=cwd, env=full_env, start_new_session=True, text=True,
                         stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks: dict[str, str] = {}

    def drain(name, stream):
        chunks[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, s), daemon=True) for n, s in (("out", p.stdout), ("err", p.stderr))]
    for t in readers:
        t.start()
    if stdin is not None:
        p.stdin.write(stdin)
        p.stdin.close()
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    try:
        p.wait()
    finally:
        timer.cancel()
    for t in readers:
        t.join(10)
    try:
        peak_kb = float(Path(peak_file).read_text() or 0)   # the command's own peak (spawn_measured.py)
    except (OSError, ValueError):
        peak_kb = 0.0                                         # the wrapper was killed (time limit)
    finally:
        os.unlink(peak_file)
    return Outcome(argv=argv[1:], returncode=p.returncode, stdout=chunks.get("out", ""),
                   stderr=chunks.get("err", ""), peak_mb=peak_kb / 1024, timed_out=timed_out.is_set())


def assert_refused(out: Outcome, *, mentions: str | None = None, peak_limit_mb: float = PEAK_LIMIT_MB) -> str:
    """The command refused its input the promised way; returns the error line."""
    assert not out.timed_out, "timed out\n" + out.describe()
    assert out.returncode not in (0, -signal.SIGKILL), "expected a refusal\n" + out.describe()
    assert out.returncode > 0, "killed by a signal\n" + out.describe()
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in out.stderr, "traceback on stderr\n" + out.describe()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}\n" + out.describe()
    assert out.peak_mb < peak_limit_mb, f"peak memory {out.peak_mb:.0f} MB\n" + out.describe()
    if mentions is not None:
        assert mentions.lower() in lines[0].lower(), f"the error does not mention {mentions!r}\n" + out.describe()
    return lines[0]


def tree_state(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``root`` (links not followed) -> (size, sha256): compare before and after a command."""
    state = {}
    for path in sorted(Path(root).rglob("*")):
        if path.is_symlink():
            state[str(path.relative_to(root))] = (-1, os.readlink(path))
        elif path.is_file():
            state[str(path.relative_to(root))] = (path.stat().st_size, _sha256(path))
    return state


def _sha256(path: Path) -> str:
    """Hashed in 1 MB pieces: a hostile input may be a (sparse) file of gigabytes, and the memory of this process
    at the time it starts a child counts in that child's peak (Linux keeps the high-water mark across exec)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def new_files(before: dict, after: dict) -> set[str]:
    return set(after) - set(before)


def changed_files(before: dict, after: dict) -> set[str]:
    return {k for k in before if after.get(k) != before[k]}

"""``python spawn_measured.py PEAKFILE MEM_MB PROG [ARGS...]``: run PROG under an address-space cap and write its
peak resident memory (KB) to PEAKFILE.

The harness starts this small process instead of the command itself because a child forked straight from a large
pytest process inherits that process's resident set in its ``ru_maxrss`` high-water mark; forked from here, the
command's peak is its own. The exit status is the command's (a signal is re-raised)."""
import os
import resource
import signal
import sys

peak_file, mem_mb, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
limit = mem_mb << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
pid = os.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(peak_file, "w") as f:
    f.write(str(usage.ru_maxrss))
if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
sys.exit(os.waitstatus_to_exitcode(status))

"""A process exits cleanly while failwell's threads are inside Python code
that released the GIL (an abandoned timed call sleeping, a health check
doing I/O): before CPython 3.14 the interpreter ends such a thread with
pthread_exit when it takes the GIL back during finalisation, and that used
to abort the process ("PyGILState_Release: thread state ... must be current
when releasing", exit status 134). The objects whose __del__ sleeps keep
finalisation going long enough for the thread to wake inside it, every
time (the abandoned timed call aborted 5 runs in 5 before the fix; the
other cases guard the same path through health rounds and the watchdog).
"""

import subprocess
import sys
import textwrap

import pytest

SLOW_FINALISATION = """
import time
import failwell

class SlowToFinalize:
    def __del__(self):
        time.sleep(0.5)   # releases the GIL while the interpreter finalises

keep = SlowToFinalize()
"""

CASES = {
    "abandoned timed call": """
try:
    failwell.call_with_timeout(time.sleep, 0.01, 0.2)
except failwell.DeadlineExceededError:
    pass
""",
    "health check in a round": """
health = failwell.HealthRegistry(interval=3600.0)
health.register("slow", lambda: time.sleep(0.2), timeout=0.01)
health.check_now()
""",
    "watchdog callback": """
dog = failwell.Watchdog(tick=0.01, on_finding=lambda finding: time.sleep(0.3))
beat = dog.heartbeat("stuck", timeout=0.01)
time.sleep(0.1)
""",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exit_with_a_thread_inside_python(case):
    code = textwrap.dedent(SLOW_FINALISATION) + textwrap.dedent(CASES[case])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Fatal Python error" not in out.stderr, out.stderr
    assert out.returncode == 0, out.stderr

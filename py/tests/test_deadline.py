import asyncio
import datetime
import threading
import time

import pytest

from failwell import (
    BulkheadFullError,
    Deadline,
    DeadlineExceededError,
    MetricsRegistry,
    Rejected,
    TimeoutPool,
    Watchdog,
    call_with_timeout,
)


def test_deadlines_count_down():
    d = Deadline.after(0.05)
    assert 0.04 < d.remaining <= 0.05 and not d.expired
    time.sleep(0.06)
    assert d.expired and d.remaining == 0.0
    n = Deadline.never()
    assert n.is_never and n.remaining == float("inf") and not n.expired
    assert Deadline.after(datetime.timedelta(milliseconds=100)).remaining > 0.09


def test_child_is_never_later_than_its_parent():
    parent = Deadline.after(0.1)
    assert parent.child(10) is parent
    c = parent.child(0.01)
    assert c.remaining <= 0.01


def test_scopes_propagate_and_cannot_extend():
    assert Deadline.current() is None
    with Deadline.after(1.0) as outer:
        assert Deadline.current() is outer
        with Deadline.after(100) as inner:
            assert inner is outer  # a callee cannot extend its caller's budget
        with Deadline.after(0.01) as tighter:
            assert Deadline.current() is tighter
        assert Deadline.current() is outer
    assert Deadline.current() is None


def test_scopes_are_per_thread_and_per_task():
    seen = []
    with Deadline.after(1):
        t = threading.Thread(target=lambda: seen.append(Deadline.current()))
        t.start()
        t.join()
    assert seen == [None]

    async def task(t):
        async with Deadline.after(t):
            await asyncio.sleep(0.01)
            return Deadline.current().remaining

    async def main():
        a, b = await asyncio.gather(task(5), task(50))
        assert a < 5 < b

    asyncio.run(main())


def test_call_with_timeout():
    assert call_with_timeout(lambda a, b=0: a + b, 1.0, 1, b=2) == 3
    with pytest.raises(ZeroDivisionError):
        call_with_timeout(lambda: 1 / 0, 1.0)
    t0 = time.monotonic()
    with pytest.raises(DeadlineExceededError) as info:
        call_with_timeout(time.sleep, 0.05, 1.0)
    assert isinstance(info.value, (Rejected, TimeoutError))
    assert time.monotonic() - t0 < 0.5
    with Deadline.after(0.02):
        with pytest.raises(DeadlineExceededError):
            call_with_timeout(time.sleep, 10, 0.5)  # the scope is tighter
    assert issubclass(BulkheadFullError, Rejected)


def test_the_caller_waits_without_the_gil():
    progress = []

    def spin():
        end = time.monotonic() + 0.1
        while time.monotonic() < end:
            progress.append(1)  # needs the GIL while the caller waits
        return len(progress)

    assert call_with_timeout(spin, 2.0) > 1000


def test_bad_timeouts():
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout"):
            Deadline.after(bad)
    with pytest.raises(TypeError, match="timeout"):
        Deadline.after("1s")


def test_a_pool_of_ones_own():
    pool = TimeoutPool(1, idle_timeout=0.5)
    assert pool.call(lambda x: x * 2, 1.0, 21) == 42
    release = threading.Event()
    found = []
    with Watchdog(tick=0.02, on_finding=found.append, thread_leak=False) as w:
        g = w.watch_pool("legacy", pool, 0)
        with pytest.raises(DeadlineExceededError):
            pool.call(release.wait, 0.02, 5)  # abandoned, holds the one worker
        with pytest.raises(BulkheadFullError):
            pool.call(lambda: 1, 1.0)
        deadline = time.monotonic() + 3
        while not any(f["name"] == "legacy" for f in found) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert any(f["kind"] == "gauge_leak" and f["name"] == "legacy" for f in found)
        release.set()
        g.close()
    s = pool.snapshot()
    assert (s["max_threads"], s["completed"], s["timed_out"], s["rejected"]) == (1, 1, 1, 1)
    m = MetricsRegistry()
    m.register("legacy", pool)
    assert 'instance="legacy"' in m.render_prometheus()
    with pytest.raises(ValueError, match="max_threads"):
        TimeoutPool(0)
    with pytest.raises(ValueError, match="idle_timeout"):
        TimeoutPool(1, idle_timeout=0)

import asyncio
import inspect
import threading
import time

import pytest

from failwell import Bulkhead, BulkheadFullError, Rejected


def test_with_block_and_counts():
    b = Bulkhead(2)
    with b:
        assert b.in_use == 1
        with b:
            assert b.available == 0
            with pytest.raises(BulkheadFullError) as info:
                with b:
                    pass
            assert isinstance(info.value, Rejected)
            assert info.value.retry_after is None
    assert b.in_use == 0
    s = b.snapshot()
    assert (s["rejected"], s["peak"]) == (1, 2)


def test_permit_returned_when_the_block_raises():
    b = Bulkhead(1)
    with pytest.raises(ZeroDivisionError):
        with b:
            1 / 0
    assert b.available == 1


def test_bare_decorator_with_arguments_and_call():
    b = Bulkhead(1)

    @b
    def one(x: int) -> int:
        """Doc."""
        return x + 1

    @b(timeout=0.01, priority="normal")
    def two(x):
        return x * 2

    assert one(1) == 2 and two(2) == 4
    assert one.__doc__ == "Doc." and str(inspect.signature(one)) == "(x: int) -> int"
    assert b.call(lambda a, k=0: a + k, 1, k=2) == 3
    with b:
        with pytest.raises(BulkheadFullError):
            one(1)
    assert b.available == 1


def test_explicit_permits_release_once():
    b = Bulkhead(1)
    p = b.acquire()
    assert p.held and b.try_acquire() is None
    assert p.release() and not p.release()
    assert b.available == 1
    with b.try_acquire() as q:
        assert q.held and b.in_use == 1
    assert b.in_use == 0
    p = b.acquire()
    del p  # collected: returned
    assert b.available == 1


def test_the_critical_reserve():
    b = Bulkhead(3, critical_reserve=1)
    a = b.acquire()
    c = b.acquire()
    assert b.try_acquire() is None  # the last one is reserved
    crit = b.acquire(priority="critical")
    assert crit.held
    for p in (a, c, crit):
        p.release()
    with pytest.raises(ValueError, match="priority"):
        b.acquire(priority="urgent")


def test_live_reconfiguration():
    b = Bulkhead(1)
    b.set_max_concurrent(3)
    assert b.max_concurrent == 3
    with pytest.raises(ValueError, match="max_concurrent"):
        b.set_max_concurrent(0)
    b.set_critical_reserve(1)
    with pytest.raises(ValueError, match="critical_reserve"):
        b.set_critical_reserve(-1)


def test_timed_acquire_waits_for_a_release():
    b = Bulkhead(1)
    p = b.acquire()
    threading.Timer(0.05, p.release).start()
    t0 = time.monotonic()
    q = b.acquire(timeout=2)
    assert 0.03 < time.monotonic() - t0 < 1.5
    q.release()
    p2 = b.acquire()
    with pytest.raises(BulkheadFullError):
        b.acquire(timeout=0.02)
    p2.release()


def test_a_thread_blocked_in_a_timed_acquire_does_not_stop_other_threads():
    b = Bulkhead(1)
    held = b.acquire()
    progress = []
    stop = threading.Event()

    def blocked():
        with pytest.raises(BulkheadFullError):
            b.acquire(timeout=1.0)

    def counter():
        while not stop.is_set():
            progress.append(1)  # pure Python: needs the GIL
            time.sleep(0.001)

    t = threading.Thread(target=blocked)
    c = threading.Thread(target=counter)
    t.start()
    time.sleep(0.02)  # t is now waiting inside the native acquire
    c.start()
    # This thread sleeps: were the GIL held by the blocked acquire, the
    # counter would make no progress at all in these 0.3 s (it has time
    # for about 300 steps; 20 is a margin for a loaded machine, where this
    # thread's own spinning, below, used to starve it).
    time.sleep(0.3)
    during = len(progress)
    # Pure-Python work on this thread too: it also needs the GIL.
    spins = 0
    deadline = time.monotonic() + 0.1
    while time.monotonic() < deadline:
        spins += 1
    still_blocked = t.is_alive()
    stop.set()
    c.join()
    t.join()
    held.release()
    assert still_blocked, "the timed acquire ended before the checks"
    assert during > 20, "the other thread made no progress"
    assert spins > 1000


def test_never_more_than_max_concurrent_across_16_threads(run_threads):
    limit = 4
    b = Bulkhead(limit, timeout=5)
    lock = threading.Lock()
    inside = 0
    peak = 0
    done = [0] * 16

    def work(i):
        nonlocal inside, peak
        for _ in range(200):
            with b:
                with lock:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0)
                with lock:
                    inside -= 1
            done[i] += 1

    run_threads(16, work)
    assert peak <= limit
    assert sum(done) == 3200
    assert b.in_use == 0 and b.snapshot()["peak"] <= limit


def test_async_forms_wait_without_blocking_the_loop():
    b = Bulkhead(1, timeout=1)

    @b
    async def slow(x):
        await asyncio.sleep(0.05)
        return x

    async def ticker(ticks):
        for _ in range(20):
            await asyncio.sleep(0.005)
            ticks.append(1)

    async def main():
        ticks = []
        results = await asyncio.gather(slow(1), slow(2), ticker(ticks))
        assert results[:2] == [1, 2]
        assert len(ticks) == 20  # the loop kept running while slow(2) waited
        async with b:
            assert b.in_use == 1
            quick = Bulkhead(1)
            async with quick:
                with pytest.raises(BulkheadFullError):
                    async with quick:
                        pass
        assert await b.call_async(asyncio.sleep, 0, 3) == 3

    asyncio.run(main())
    assert b.in_use == 0


@pytest.fixture
def no_rechecks(monkeypatch):
    """Async waiters re-check only every 60 s: a permit reaches one within
    its timeout only if a release wakes it."""
    from failwell import _util

    monkeypatch.setattr(_util.Waiters, "FIRST_PAUSE", 60.0)
    monkeypatch.setattr(_util.Waiters, "MAX_PAUSE", 60.0)


def test_an_async_release_wakes_an_async_waiter(no_rechecks):
    b = Bulkhead(1, timeout=10.0)
    order = []

    async def holder():
        async with b:
            order.append("held")
            await asyncio.sleep(0.05)
        order.append("released")

    async def waiter():
        await asyncio.sleep(0.01)
        async with b:  # waits: woken by the holder's release
            order.append("got it")

    async def main():
        await asyncio.wait_for(asyncio.gather(holder(), waiter()), 5.0)

    asyncio.run(main())
    assert order == ["held", "released", "got it"]
    assert b.available == 1


def test_a_release_on_another_threads_loop_wakes_the_waiter(no_rechecks):
    b = Bulkhead(1, timeout=10.0)
    taken = threading.Event()
    release = threading.Event()

    def other_loop():
        async def hold():
            async with b:
                taken.set()
                while not release.is_set():
                    await asyncio.sleep(0.005)

        asyncio.run(hold())

    t = threading.Thread(target=other_loop)
    t.start()
    assert taken.wait(5.0)

    @b
    async def work():
        return "done"

    async def main():
        task = asyncio.ensure_future(work())
        await asyncio.sleep(0.02)
        assert not task.done(), "waiting for the other loop's permit"
        release.set()
        return await asyncio.wait_for(task, 5.0)

    assert asyncio.run(main()) == "done"
    t.join()


def test_a_waiter_that_times_out_leaves_no_trace(monkeypatch):
    from failwell import _util

    monkeypatch.setattr(_util.Waiters, "FIRST_PAUSE", 0.01)
    monkeypatch.setattr(_util.Waiters, "MAX_PAUSE", 0.01)
    b = Bulkhead(1, timeout=0.05)
    held = b.acquire()

    async def times_out():
        with pytest.raises(BulkheadFullError):
            await b.call_async(asyncio.sleep, 0)

    asyncio.run(times_out())
    assert not b._async_waiters()._queue, "its entry is gone"
    held.release()

"""The adaptive concurrency limit and the SRE throttler."""
import asyncio
import threading
import time

import pytest

from failwell import AdaptiveLimit, ShedError, Throttler


def test_adaptive_limit_admits_up_to_its_limit():
    l = AdaptiveLimit(initial_limit=4, min_limit=4, max_limit=4, critical_fraction=0.25)
    permits = [l.acquire() for _ in range(3)]
    with pytest.raises(ShedError):
        l.acquire()
    crit = l.acquire(priority="critical")
    with pytest.raises(ShedError):
        l.acquire(priority="critical")
    for p in permits:
        p.success()
    crit.dropped()
    with pytest.raises(ValueError, match="already"):
        crit.success()
    s = l.snapshot()
    assert (s["in_flight"], s["admitted"], s["shed"], s["drops"]) == (0, 4, 2, 1)


def test_adaptive_limit_forms():
    l = AdaptiveLimit("aimd", latency_threshold=1.0, initial_limit=2, min_limit=2, max_limit=2, critical_fraction=0.0)

    @l
    def work(x):
        return x

    @l(priority="critical")
    async def awork(x):
        await asyncio.sleep(0)
        return x

    assert work(1) == 1 and l.call(lambda x: x, 2) == 2
    with l:
        with l:
            with pytest.raises(ShedError):
                with l:
                    pass
    with pytest.raises(TimeoutError):
        with l:
            raise TimeoutError()

    async def main():
        assert await awork(3) == 3
        async with l:
            pass

    asyncio.run(main())
    s = l.snapshot()
    assert s["in_flight"] == 0 and s["drops"] == 1


def test_the_limit_backs_off_on_drops():
    l = AdaptiveLimit("aimd", latency_threshold=0.5, initial_limit=50, min_limit=1, max_limit=100)
    for _ in range(30):
        permits = []
        while True:
            try:
                permits.append(l.acquire("critical"))
            except ShedError:
                break
        permits[0].dropped()
        for p in permits[1:]:
            p.success(latency=0.001)
    assert l.limit < 50


def test_in_flight_never_exceeds_the_limit_across_8_threads(run_threads):
    l = AdaptiveLimit(initial_limit=3, min_limit=3, max_limit=3, critical_fraction=0.0)
    lock = threading.Lock()
    inside = 0
    peak = 0

    def work(i):
        nonlocal inside, peak
        for _ in range(300):
            try:
                with l:
                    with lock:
                        inside += 1
                        peak = max(peak, inside)
                    time.sleep(0)
                    with lock:
                        inside -= 1
            except ShedError:
                pass

    run_threads(8, work)
    assert 1 <= peak <= 3
    assert l.snapshot()["in_flight"] == 0


def test_throttler():
    t = Throttler(k=2.0, seed=1)
    for _ in range(100):
        try:
            t.try_send()
        except ShedError:
            pass
    assert t.rejection_probability > 0.5  # nothing accepted
    assert t.throttled > 0
    t2 = Throttler()
    for _ in range(100):
        t2.try_send()
        t2.accepted()
    assert t2.rejection_probability == 0.0
    with pytest.raises(ValueError, match="k"):
        Throttler(k=0.5)

import asyncio
import threading
import time

import pytest

from failwell import RateLimitedError, RateLimiter


def test_try_acquire_and_burst():
    l = RateLimiter(10, 1.0, burst=3)
    assert [l.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert 0 < l.next_ready() <= 0.1
    s = l.snapshot()
    assert (s["admitted"], s["rejected"], s["burst"]) == (3, 1, 3)
    assert s["interval"] == pytest.approx(0.1)


def test_with_decorator_and_call_raise_with_retry_after():
    l = RateLimiter(10, burst=1)

    @l
    def ping():
        return "pong"

    assert ping() == "pong"
    with pytest.raises(RateLimitedError) as info:
        ping()
    assert 0 < info.value.retry_after <= 0.1
    with pytest.raises(RateLimitedError):
        with l:
            pass
    with pytest.raises(RateLimitedError):
        l.call(ping)


def test_weighted_costs_and_timed_waits():
    l = RateLimiter(100, burst=5)

    @l(cost=5, timeout=1.0)
    def heavy():
        return 1

    assert heavy() == 1
    t0 = time.monotonic()
    assert heavy() == 1  # waits ~50 ms for 5 tokens
    assert time.monotonic() - t0 > 0.03
    with pytest.raises(ValueError, match="cost"):
        l.acquire(cost=6)
    with pytest.raises(RateLimitedError):
        l.acquire(cost=5, timeout=0.001)


def test_admissions_never_exceed_the_rate_across_8_threads(run_threads):
    l = RateLimiter(1000, 1.0, burst=10, precise=True)
    admitted = [0] * 8
    t0 = time.monotonic()

    def work(i):
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            if l.try_acquire():
                admitted[i] += 1

    run_threads(8, work)
    elapsed = time.monotonic() - t0
    assert sum(admitted) <= 10 + 1000 * elapsed + 1
    assert l.snapshot()["admitted"] == sum(admitted)


def test_live_reconfiguration():
    l = RateLimiter(1)
    l.set_rate(1000, 2.0)
    l.set_burst(50)
    assert l.snapshot()["burst"] == 50
    with pytest.raises(ValueError, match="requests"):
        l.set_rate(0)
    with pytest.raises(ValueError, match="burst"):
        l.set_burst(0)


def test_async_waits_sleep_with_asyncio():
    l = RateLimiter(50, burst=1)

    @l(timeout=1.0)
    async def call(i):
        return i

    async def ticker(ticks):
        for _ in range(10):
            await asyncio.sleep(0.005)
            ticks.append(1)

    async def main():
        ticks = []
        t0 = time.monotonic()
        out = await asyncio.gather(call(1), call(2), call(3), ticker(ticks))
        assert out[:3] == [1, 2, 3]
        assert time.monotonic() - t0 >= 0.035  # two waits of 20 ms
        assert len(ticks) == 10

    asyncio.run(main())


def test_async_with_and_refusal_past_the_timeout():
    l = RateLimiter(1, 10.0, burst=1)

    async def main():
        async with l:
            pass
        with pytest.raises(RateLimitedError) as info:
            await l.acquire_async(timeout=0.01)
        assert info.value.retry_after > 5

    asyncio.run(main())


def test_timed_wait_releases_the_gil():
    l = RateLimiter(1, 0.3, burst=1)
    l.acquire()
    progress = []

    def blocked():
        l.acquire(timeout=1.0)

    t = threading.Thread(target=blocked)
    t.start()
    end = time.monotonic() + 0.1
    while time.monotonic() < end:
        progress.append(1)
    t.join()
    assert len(progress) > 1000

import asyncio
import inspect
import logging
import threading
import time

import pytest

import failwell
from failwell import CircuitBreaker, CircuitOpenError, Rejected


def trip(breaker, n=1):
    for _ in range(n):
        with pytest.raises(OSError):
            breaker.call(raise_oserror)


def raise_oserror():
    raise OSError("down")


def test_bare_decorator_keeps_name_doc_and_signature():
    b = CircuitBreaker(consecutive_failures=3)

    @b
    def fetch(url: str, *, timeout: float = 1.0) -> str:
        """Fetches."""
        return f"{url}:{timeout}"

    assert fetch("a", timeout=2.0) == "a:2.0"
    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetches."
    assert str(inspect.signature(fetch)) == "(url: str, *, timeout: float = 1.0) -> str"
    assert b.snapshot()["successes"] == 1


def test_decorator_with_arguments_and_on_methods():
    b = CircuitBreaker(consecutive_failures=1)

    class Client:
        def __init__(self):
            self.calls = 0

        @b(exclude=[KeyError])
        def get(self, key):
            self.calls += 1
            raise KeyError(key)

    c = Client()
    for _ in range(3):
        with pytest.raises(KeyError):
            c.get("x")
    # KeyError is excluded: it counts as a success and never trips.
    assert c.calls == 3
    assert b.state == "closed"
    assert b.snapshot()["successes"] == 3
    assert Client.get.__name__ == "get"


def test_consecutive_failures_open_then_half_open_then_close():
    b = CircuitBreaker(consecutive_failures=2, open_for=0.05, half_open_calls=1)
    trip(b, 2)
    assert b.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        b.call(lambda: 1)
    assert isinstance(info.value, Rejected)
    assert 0 < info.value.retry_after <= 0.05
    assert 0 < b.retry_after <= 0.05
    time.sleep(0.06)
    assert b.call(lambda: 7) == 7
    assert b.state == "closed"


def test_failure_rate_over_a_count_window():
    b = CircuitBreaker(failure_rate=0.5, window=10, minimum_calls=10)
    for i in range(10):
        if i % 2:
            trip(b)
        else:
            b.call(lambda: None)
    assert b.state == "open"
    s = b.snapshot()
    assert (s["calls"], s["failures"], s["opened"]) == (10, 5, 1)


def test_exclude_predicates_and_types():
    b = CircuitBreaker(consecutive_failures=1, exclude=lambda e: "404" in str(e))
    with pytest.raises(ValueError):
        b.call(lambda: (_ for _ in ()).throw(ValueError("404 not found")))
    assert b.state == "closed"
    with pytest.raises(ValueError):
        b.call(lambda: (_ for _ in ()).throw(ValueError("500")))
    assert b.state == "open"


def test_a_raising_predicate_fails_the_call_and_chains_both_errors():
    def bad(e):
        raise RuntimeError("predicate broke")

    b = CircuitBreaker(consecutive_failures=1, exclude=bad)
    with pytest.raises(RuntimeError) as info:
        b.call(raise_oserror)
    assert isinstance(info.value.__cause__, OSError)
    assert b.state == "open"
    # The permit form (`with`, async decorators) chains the same way.
    p = CircuitBreaker(consecutive_failures=1, exclude=bad).acquire()
    with pytest.raises(RuntimeError) as info:
        p.record_exception(OSError("call failed"))
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_base_exceptions_never_count_and_free_the_probe(exc):
    b = CircuitBreaker(consecutive_failures=1, open_for=0.01, half_open_calls=1)
    trip(b)
    time.sleep(0.02)

    def interrupted():
        raise exc()

    with pytest.raises(exc):
        b.call(interrupted)  # the one half-open probe, interrupted
    s = b.snapshot()
    assert s["ignored"] == 1 and s["failures"] == 1
    # Its slot was freed: the next probe is admitted and closes the breaker.
    assert b.call(lambda: "ok") == "ok"
    assert b.state == "closed"


def test_with_block_records_success_failure_and_manual_outcomes():
    b = CircuitBreaker(consecutive_failures=2)
    with b:
        pass
    with pytest.raises(OSError):
        with b:
            raise OSError()
    with b as permit:
        permit.failure()  # recorded by hand: the block does not record again
    s = b.snapshot()
    assert (s["successes"], s["failures"]) == (1, 2)
    assert b.state == "open"
    with pytest.raises(CircuitOpenError):
        with b:
            pytest.fail("an open breaker runs nothing")


def test_nested_with_blocks_of_two_breakers():
    a = CircuitBreaker(consecutive_failures=5)
    b = CircuitBreaker(consecutive_failures=5)
    with pytest.raises(OSError):
        with a:
            with b:
                raise OSError()
    assert a.snapshot()["failures"] == 1 and b.snapshot()["failures"] == 1


def test_explicit_permits():
    b = CircuitBreaker(consecutive_failures=1)
    p = b.acquire()
    assert p.pending and p.state == "closed"
    p.success(duration=0.01)
    assert not p.pending
    with pytest.raises(ValueError, match="already recorded"):
        p.failure()
    p = b.acquire()
    p.record_exception(OSError())
    assert b.state == "open"


def test_manual_states_and_open_for():
    b = CircuitBreaker(consecutive_failures=1)
    b.force_open()
    assert b.state == "forced_open"
    with pytest.raises(CircuitOpenError):
        b.call(lambda: 1)
    b.disable()
    assert b.state == "disabled"
    trip(b, 3)
    assert b.call(lambda: 1) == 1
    b.metrics_only()
    trip(b, 3)
    assert b.state == "metrics_only"
    b.reset()
    assert b.state == "closed"
    b.open_for(5)
    assert b.state == "open" and 4 < b.retry_after <= 5


def test_listeners_get_transitions_and_their_exceptions_are_logged_and_counted(caplog):
    b = CircuitBreaker(consecutive_failures=1, open_for=0.01)
    seen = []
    h = b.add_listener(lambda old, new: seen.append((old, new)))

    def broken(old, new):
        raise RuntimeError("listener bug")

    b.add_listener(broken)
    with caplog.at_level(logging.ERROR, logger="failwell"):
        trip(b)
    assert seen == [("closed", "open")]
    assert b.snapshot()["listener_errors"] == 1
    assert any("listener bug" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert b.remove_listener(h)
    assert not b.remove_listener(h)


def test_async_decorator_and_async_with():
    b = CircuitBreaker(consecutive_failures=2, open_for=60)

    @b
    async def call(x):
        await asyncio.sleep(0)
        if x < 0:
            raise OSError()
        return x

    async def main():
        assert inspect.iscoroutinefunction(call)
        assert await call(3) == 3
        for _ in range(2):
            with pytest.raises(OSError):
                await call(-1)
        with pytest.raises(CircuitOpenError):
            await call(1)
        b.reset()
        async with b:
            await asyncio.sleep(0)
        assert await b.call_async(call, 5) == 5

    asyncio.run(main())
    # call(3), the async with block, and call_async's pass plus the
    # decorated function's own.
    assert b.snapshot()["successes"] == 4


def test_cancelled_tasks_never_count_as_failures():
    b = CircuitBreaker(consecutive_failures=1)

    @b
    async def slow():
        await asyncio.sleep(10)

    async def main():
        t = asyncio.ensure_future(slow())
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    asyncio.run(main())
    assert b.state == "closed"
    assert b.snapshot()["ignored"] == 1


def test_interleaved_async_with_blocks_keep_their_own_permits():
    b = CircuitBreaker(consecutive_failures=10)

    async def worker(fail):
        async with b:
            await asyncio.sleep(0.01)
            if fail:
                raise OSError()

    async def main():
        results = await asyncio.gather(*(worker(i % 2 == 1) for i in range(10)), return_exceptions=True)
        assert sum(isinstance(r, OSError) for r in results) == 5

    asyncio.run(main())
    s = b.snapshot()
    assert (s["successes"], s["failures"]) == (5, 5)


def test_half_open_admits_at_most_its_probes_across_16_threads(run_threads):
    probes = 3
    b = CircuitBreaker(consecutive_failures=1, open_for=0.02, half_open_calls=probes, half_open_max_wait=60)
    for _ in range(20):
        b.reset()
        trip(b)
        time.sleep(0.03)
        inside = 0
        peak = 0
        admitted = []
        lock = threading.Lock()
        go = threading.Event()

        def probe(i):
            nonlocal inside, peak
            try:
                permit = b.acquire()
            except CircuitOpenError:
                return
            with lock:
                inside += 1
                peak = max(peak, inside)
                admitted.append(i)
            go.wait(1)
            with lock:
                inside -= 1
            permit.ignore()

        def run(i):
            if i == 0:
                time.sleep(0.05)
                go.set()
            else:
                probe(i)

        run_threads(16, run)
        assert len(admitted) == probes, admitted
        assert peak == probes


def test_concurrent_calls_are_counted_exactly(run_threads):
    b = CircuitBreaker(failure_rate=1.0, window=100)
    calls = [0] * 8

    def work(i):
        for _ in range(2000):
            b.call(lambda: None)
            calls[i] += 1

    run_threads(8, work)
    assert b.snapshot()["successes"] == sum(calls) == 16000


def test_exported_names():
    assert failwell.CircuitBreaker is CircuitBreaker
    assert issubclass(failwell.CircuitOpenError, failwell.Rejected)


def test_reconfigure_a_live_breaker():
    b = CircuitBreaker(consecutive_failures=3, open_for=0.05)
    trip(b, 2)
    b.reconfigure(consecutive_failures=4, open_for=0.2, half_open_calls=1)
    trip(b, 1)
    assert b.state == "closed"
    trip(b, 1)
    assert b.state == "open" and 0.15 < b.retry_after <= 0.2
    c = b.config
    assert (c["consecutive_failures"], c["open_for"], c["half_open_calls"]) == (4, 0.2, 1)
    assert c["failure_rate"] is None and c["window"] is None
    assert b.snapshot()["failures"] == 4
    b.reconfigure(open_for_multiplier=2.0, open_for_max=1.0)
    assert b.config["open_for_max"] == 1.0
    with pytest.raises(ValueError, match="trip_policy"):
        b.reconfigure(failure_rate=0.5)
    with pytest.raises(ValueError, match="consecutive_failures"):
        b.reconfigure(consecutive_failures=0)
    with pytest.raises(ValueError, match="open_for"):
        b.reconfigure(open_for=-1)
    assert b.config["consecutive_failures"] == 4  # refused changes change nothing
    r = CircuitBreaker(failure_rate=0.5, window=10, minimum_calls=10)
    r.reconfigure(failure_rate=0.9, minimum_calls=5)
    assert (r.config["failure_rate"], r.config["minimum_calls"], r.config["window"]) == (0.9, 5, 10)


def test_each_keyword_is_the_builder_setter_of_its_name():
    # As Rust's Builder::slow_call_duration: the duration alone turns the
    # slow-call policy on at a rate of 100 %, the default rate.
    b = CircuitBreaker(slow_call_duration=0.5)
    c = b.config
    assert (c["slow_call_rate"], c["slow_call_duration"]) == (1.0, 0.5)
    b = CircuitBreaker(slow_call_rate=0.25)
    assert (b.config["slow_call_rate"], b.config["slow_call_duration"]) == (0.25, 60.0)
    b = CircuitBreaker(slow_call_rate=0.25, slow_call_duration=2)
    assert (b.config["slow_call_rate"], b.config["slow_call_duration"]) == (0.25, 2.0)
    assert CircuitBreaker().config["slow_call_rate"] is None


def test_open_for_zero_is_a_retry_after_of_zero_as_in_rust_and_c():
    b = CircuitBreaker(consecutive_failures=3, half_open_calls=1)
    b.open_for(0)
    assert b.call(lambda: 7) == 7  # admitted at once, as the probe
    assert b.state == "closed"
    with pytest.raises(ValueError, match="duration"):
        b.open_for(-1)

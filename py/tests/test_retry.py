import asyncio
import inspect
import time

import pytest

import failwell
from failwell import (
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    Deadline,
    DeadlineExceededError,
    Jitter,
    Retry,
    RetryBudget,
    RetryBudgetExhaustedError,
    retry,
)

FAST = dict(backoff=Backoff.constant(0.001), jitter=Jitter.none())


class Flaky:
    def __init__(self, failures, exc=OSError):
        self.failures = failures
        self.calls = 0
        self.exc = exc

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls}")
        return ("ok", args, kwargs)


def test_bare_decorator_retries_with_the_defaults(monkeypatch):
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    f = Flaky(2)

    @retry
    def call(x: int) -> object:
        """Doc."""
        return f(x)

    assert call(1) == ("ok", (1,), {})
    assert f.calls == 3
    assert call.__doc__ == "Doc." and str(inspect.signature(call)) == "(x: int) -> object"
    # Full jitter over 0.1 s, then 0.2 s.
    assert len(slept) == 2 and 0 <= slept[0] <= 0.1 and 0 <= slept[1] <= 0.2


def test_exhaustion_reraises_the_last_error():
    f = Flaky(10)
    call = retry(max_attempts=4, **FAST)(f)
    with pytest.raises(OSError, match="attempt 4"):
        call()
    assert f.calls == 4


def test_only_matching_errors_are_retried():
    f = Flaky(1, exc=KeyError)
    with pytest.raises(KeyError):
        retry(retry_on=OSError, **FAST)(f)()
    assert f.calls == 1
    f = Flaky(1, exc=ConnectionResetError)
    assert retry(retry_on=lambda e: isinstance(e, ConnectionError), **FAST)(f)()[0] == "ok"
    f = Flaky(5, exc=TimeoutError)
    with pytest.raises(TimeoutError):
        retry(max_attempts=5, exclude=[TimeoutError], **FAST)(f)()
    assert f.calls == 1


def test_base_exceptions_are_never_retried():
    f = Flaky(1, exc=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        retry(**FAST)(f)()
    assert f.calls == 1


def test_results_can_be_retried_and_the_hook_sees_each_retry():
    seen = []
    answers = iter([503, 503, 200])
    policy = Retry(
        max_attempts=5,
        retry_if_result=lambda code: code >= 500,
        on_retry=lambda attempt, delay, exc: seen.append((attempt, delay, exc)),
        **FAST,
    )
    assert policy.call(lambda: next(answers)) == 200
    assert seen == [(1, 0.001, None), (2, 0.001, None)]
    # Out of attempts: the last result is returned as it was.
    assert Retry(max_attempts=2, retry_if_result=lambda c: True, **FAST).call(lambda: 503) == 503


def test_rejections_are_not_retried_unless_asked():
    breaker = CircuitBreaker(consecutive_failures=1, open_for=0.05)
    breaker.force_open()
    calls = []
    with pytest.raises(CircuitOpenError):
        Retry(**FAST).call(breaker.call, calls.append, 1)
    breaker.reset()
    breaker.open_for(0.03)
    t0 = time.monotonic()
    Retry(retry_rejected=True, max_attempts=3, **FAST).call(breaker.call, calls.append, 1)
    assert time.monotonic() - t0 >= 0.025  # waited for retry_after, not 1 ms
    assert calls == [1]


def test_the_budget_refuses_retries_with_the_last_error_as_cause():
    budget = RetryBudget(ratio=0.0, min_per_second=0.0)
    policy = Retry(max_attempts=3, budget=budget, **FAST)
    with pytest.raises(RetryBudgetExhaustedError) as info:
        policy.call(Flaky(5))
    assert isinstance(info.value.__cause__, OSError)
    assert budget.refused == 1
    assert policy.snapshot()["budget_refusals"] == 1


def test_the_current_deadline_bounds_the_loop():
    f = Flaky(100)
    policy = Retry(max_attempts=100, backoff=Backoff.constant(0.02), jitter=Jitter.none())
    t0 = time.monotonic()
    with Deadline.after(0.1):
        with pytest.raises(OSError):
            policy.call(f)
    assert time.monotonic() - t0 < 0.1
    assert 3 <= f.calls <= 6
    with Deadline.after(0):
        with pytest.raises(DeadlineExceededError):
            policy.call(f)
    assert policy.snapshot()["deadline_refusals"] == 1


def test_max_elapsed():
    f = Flaky(100)
    with pytest.raises(OSError):
        Retry(max_attempts=100, max_elapsed=0.05, backoff=Backoff.constant(0.01), jitter=Jitter.none()).call(f)
    assert f.calls <= 6


def test_backoffs_and_jitters():
    assert Backoff.exponential(0.1, 2.0, 1.0).delay(1) == pytest.approx(0.1)
    assert Backoff.exponential(0.1, 2.0, 1.0).delay(3) == pytest.approx(0.4)
    assert Backoff.exponential(0.1, 2.0, 1.0).delay(10) == pytest.approx(1.0)
    assert Backoff.linear(0.1, 0.1, 0.25).delay(3) == pytest.approx(0.25)
    assert Backoff.constant(0.5).delay(7) == 0.5
    with pytest.raises(ValueError, match="backoff.max"):
        Backoff.linear(1, 1, 0.5)
    with pytest.raises(ValueError, match="fraction"):
        Jitter.symmetric(1.5)
    policy = Retry(backoff=Backoff.constant(1.0), jitter=Jitter.symmetric(0.1), seed=7)
    delays = [policy.next_delay(1, 1.0) for _ in range(200)]
    assert all(0.9 <= d <= 1.1 for d in delays)
    assert len(set(delays)) > 100
    for j in (Jitter.none(), Jitter.full(), Jitter.equal(), Jitter.decorrelated()):
        Retry(jitter=j, backoff=Backoff.constant(0.1)).next_delay(1, 0.1)


def test_async_retry_sleeps_with_asyncio():
    f = Flaky(2)

    @retry(max_attempts=3, backoff=Backoff.constant(0.02), jitter=Jitter.none())
    async def call(x):
        return f(x)

    async def ticker(ticks):
        for _ in range(5):
            await asyncio.sleep(0.005)
            ticks.append(1)

    async def main():
        ticks = []
        out, _ = await asyncio.gather(call(1), ticker(ticks))
        assert out[0] == "ok" and f.calls == 3
        assert len(ticks) == 5
        assert inspect.iscoroutinefunction(call)

    asyncio.run(main())


def test_async_cancellation_is_not_retried():
    calls = []

    @retry(**FAST)
    async def slow():
        calls.append(1)
        await asyncio.sleep(10)

    async def main():
        t = asyncio.ensure_future(slow())
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    asyncio.run(main())
    assert calls == [1]


def test_policy_objects_decorate_and_count():
    policy = Retry(max_attempts=2, **FAST)
    f = Flaky(1)
    assert policy(f)()[0] == "ok"
    s = policy.snapshot()
    assert (s["calls"], s["attempts"], s["retries"]) == (1, 2, 1)
    with pytest.raises(TypeError, match="keywords"):
        retry(f, max_attempts=2)
    assert isinstance(failwell.retry(max_attempts=2), Retry)

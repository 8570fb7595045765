import asyncio
import inspect
import threading
import time

import pytest

import failwell
from failwell import (
    AdaptiveLimit,
    Backoff,
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    Deadline,
    DeadlineExceededError,
    Jitter,
    Pipeline,
    RateLimitedError,
    RateLimiter,
    Retry,
    RetryBudget,
    RetryBudgetExhaustedError,
)

FAST = dict(backoff=Backoff.constant(0.001), jitter=Jitter.none())


class Flaky:
    """Fails ``failures`` times with ``exc``, then returns ``ok``; records
    the current deadline's remaining time at each attempt."""

    def __init__(self, failures, exc=OSError):
        self.failures = failures
        self.calls = 0
        self.exc = exc
        self.remaining = []

    def __call__(self, *args):
        self.calls += 1
        d = Deadline.current()
        self.remaining.append(None if d is None else d.remaining)
        if self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls}")
        return ("ok",) + args


def test_failures_are_retried_counted_and_each_attempt_has_its_deadline():
    breaker = CircuitBreaker(consecutive_failures=5)
    bulkhead = Bulkhead(2)
    p = Pipeline(
        total_timeout=5.0,
        retry=Retry(max_attempts=3, **FAST),
        breaker=breaker,
        bulkhead=bulkhead,
        attempt_timeout=1.0,
    )
    f = Flaky(2)
    assert p.call(f, 7) == ("ok", 7)
    assert f.calls == 3
    assert all(r is not None and 0.5 < r <= 1.0 for r in f.remaining)
    s = breaker.snapshot()
    assert (s["failures"], s["successes"]) == (2, 1)
    b = bulkhead.snapshot()
    assert (b["in_use"], b["peak"]) == (0, 1), "held only while the call ran"


def test_the_total_deadline_is_never_later_than_the_callers():
    p = Pipeline(total_timeout=10.0)
    f = Flaky(0)
    with Deadline.after(0.5):
        p.call(f)
    assert f.remaining[0] is not None and f.remaining[0] <= 0.5
    assert Deadline.current() is None, "the attempt's deadline does not leak out"


def test_exhaustion_reraises_the_last_error_and_a_tripped_breaker_refuses_next():
    breaker = CircuitBreaker(consecutive_failures=3)
    p = Pipeline(retry=Retry(max_attempts=3, **FAST), breaker=breaker)
    f = Flaky(10)
    with pytest.raises(OSError, match="attempt 3"):
        p.call(f)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as refused:
        p.call(f)
    assert f.calls == 3, "refused before the call, and a refusal is not retried"
    assert refused.value.retry_after is not None and refused.value.retry_after > 0


def test_refusals_are_retried_only_when_the_policy_says_so():
    limiter = RateLimiter(1, 0.05, precise=True)  # one per 50 ms, burst 1
    p = Pipeline(retry=Retry(max_attempts=3, retry_rejected=True, **FAST), rate_limiter=limiter)
    assert p.call(lambda: 1) == 1
    start = time.monotonic()
    assert p.call(lambda: 2) == 2, "the second waits out the limiter's retry_after"
    assert time.monotonic() - start >= 0.03
    strict = Pipeline(retry=Retry(max_attempts=3, **FAST), rate_limiter=RateLimiter(1, 60.0))
    assert strict.call(lambda: 1) == 1
    with pytest.raises(RateLimitedError):
        strict.call(lambda: 2)


def test_a_full_bulkhead_is_no_failure_of_the_dependency():
    breaker = CircuitBreaker(consecutive_failures=1)
    bulkhead = Bulkhead(1)
    p = Pipeline(breaker=breaker, bulkhead=bulkhead)
    held = bulkhead.acquire()
    called = []
    with pytest.raises(BulkheadFullError):
        p.call(called.append, 1)
    held.release()
    assert called == []
    s = breaker.snapshot()
    assert (s["failures"], s["ignored"], s["state"]) == (0, 1, "closed")


def test_exclude_counts_as_success_and_is_not_retried():
    breaker = CircuitBreaker(consecutive_failures=1, exclude=KeyError)
    p = Pipeline(retry=Retry(max_attempts=3, **FAST), breaker=breaker, exclude=lambda e: isinstance(e, LookupError) and "404" in str(e))
    f = Flaky(5, exc=lambda m: IndexError("404 " + m))
    with pytest.raises(IndexError):
        p.call(f)
    g = Flaky(5, exc=KeyError)
    with pytest.raises(KeyError):
        p.call(g)
    assert (f.calls, g.calls) == (1, 1)
    s = breaker.snapshot()
    assert (s["successes"], s["failures"], s["state"]) == (2, 0, "closed")


def test_the_retry_policys_classification_applies():
    seen = []
    policy = Retry(
        max_attempts=4,
        retry_on=OSError,
        retry_if_result=lambda r: r == "busy",
        on_retry=lambda attempt, delay, exc: seen.append((attempt, type(exc).__name__ if exc else None)),
        **FAST,
    )
    breaker = CircuitBreaker(consecutive_failures=10)
    p = Pipeline(retry=policy, breaker=breaker)
    f = Flaky(5, exc=ValueError)
    with pytest.raises(ValueError):
        p.call(f)
    assert f.calls == 1, "not an OSError: not retried (but a failure)"
    answers = iter(["busy", "busy", "done"])
    assert p.call(lambda: next(answers)) == "done"
    assert seen == [(1, None), (2, None)]
    s = breaker.snapshot()
    assert (s["failures"], s["successes"]) == (3, 1), "a retried result counts as a failure"


def test_a_refused_retry_budget_raises_from_the_last_error():
    p = Pipeline(retry=Retry(max_attempts=5, budget=RetryBudget(ratio=0.0, min_per_second=0.0), **FAST))
    with pytest.raises(RetryBudgetExhaustedError) as refused:
        p.call(Flaky(5))
    assert isinstance(refused.value.__cause__, OSError)


def test_base_exceptions_free_the_permits_and_count_for_nothing():
    breaker = CircuitBreaker(consecutive_failures=1)
    bulkhead = Bulkhead(1)
    p = Pipeline(retry=Retry(max_attempts=3, **FAST), breaker=breaker, bulkhead=bulkhead)
    f = Flaky(5, exc=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        p.call(f)
    assert f.calls == 1
    assert bulkhead.snapshot()["in_use"] == 0
    s = breaker.snapshot()
    assert (s["failures"], s["ignored"], s["state"]) == (0, 1, "closed")


def test_fallback_answers_for_failures_and_refusals():
    breaker = CircuitBreaker(consecutive_failures=1)
    p = Pipeline(breaker=breaker, fallback=lambda exc: ("fallback", type(exc).__name__))
    assert p.call(Flaky(1)) == ("fallback", "OSError")
    assert p.call(Flaky(0)) == ("fallback", "CircuitOpenError")


def test_a_deadline_already_passed_refuses_at_once():
    p = Pipeline(retry=Retry(**FAST))
    with Deadline.after(0.001):
        time.sleep(0.01)
        with pytest.raises(DeadlineExceededError):
            p.call(Flaky(0))
    plain = Pipeline(total_timeout=0.001)
    f = Flaky(0)

    def slow_then_call():
        time.sleep(0.01)
        return plain.call(f)

    with pytest.raises(DeadlineExceededError):
        with Deadline.after(0.005):
            slow_then_call()
    assert f.calls == 0


def test_the_decorator_keeps_the_signature_and_works_async():
    breaker = CircuitBreaker(consecutive_failures=5)
    p = Pipeline(retry=Retry(max_attempts=3, **FAST), breaker=breaker, attempt_timeout=1.0)
    f = Flaky(1)

    @p
    def get(x: int) -> tuple:
        """Doc."""
        return f(x)

    assert get(3) == ("ok", 3)
    assert get.__doc__ == "Doc." and str(inspect.signature(get)) == "(x: int) -> tuple"

    slept = []
    calls = []

    @p
    async def aget(x: int) -> int:
        d = Deadline.current()
        calls.append(d.remaining if d else None)
        if len(calls) < 3:
            raise OSError("again")
        return x * 2

    real_sleep = asyncio.sleep

    async def main():
        async def fake_sleep(delay):
            slept.append(delay)
            await real_sleep(0)

        asyncio.sleep = fake_sleep
        try:
            return await aget(21)
        finally:
            asyncio.sleep = real_sleep

    assert asyncio.run(main()) == 42
    assert len(calls) == 3 and all(r is not None and r <= 1.0 for r in calls)
    assert slept == [0.001, 0.001], "async attempts sleep with asyncio.sleep"
    assert inspect.iscoroutinefunction(aget)


def test_call_async_with_fallback_and_refusal():
    bulkhead = Bulkhead(1)
    p = Pipeline(bulkhead=bulkhead, fallback=lambda exc: "stale")

    async def work():
        return "fresh"

    async def main():
        first = await p.call_async(work)
        held = bulkhead.acquire()
        try:
            second = await p.call_async(work)
        finally:
            held.release()
        return first, second

    assert asyncio.run(main()) == ("fresh", "stale")


def test_the_adaptive_limit_layer_sheds_when_full():
    limit = AdaptiveLimit(algorithm="aimd", latency_threshold=1.0, min_limit=1, max_limit=1, initial_limit=1, critical_fraction=0.0)
    p = Pipeline(adaptive_limit=limit)
    assert p.call(lambda: 5) == 5
    held = limit.acquire()
    with pytest.raises(failwell.ShedError):
        p.call(lambda: 6)
    held.ignore()
    assert p.call(lambda: 7) == 7


def test_never_more_than_the_bulkhead_across_8_threads(run_threads):
    limit = 2
    p = Pipeline(
        retry=Retry(max_attempts=50, retry_rejected=True, backoff=Backoff.constant(0.0005), jitter=Jitter.full()),
        bulkhead=Bulkhead(limit),
    )
    lock = threading.Lock()
    inside = 0
    peak = 0
    done = [0] * 8

    def work(i):
        nonlocal inside, peak
        for _ in range(50):
            def body():
                nonlocal inside, peak
                with lock:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0.0002)
                with lock:
                    inside -= 1
                return 1

            try:
                done[i] += p.call(body)
            except BulkheadFullError:
                pass

    run_threads(8, work)
    assert peak <= limit
    assert inside == 0
    assert sum(done) > 0


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        (dict(total_timeout=0), ValueError, "total_timeout"),
        (dict(total_timeout=-1.0), ValueError, "total_timeout"),
        (dict(attempt_timeout=float("nan")), ValueError, "attempt_timeout"),
        (dict(priority="urgent"), ValueError, "priority"),
        (dict(retry="three times"), TypeError, "retry"),
        (dict(breaker=Bulkhead(1)), TypeError, "breaker"),
        (dict(fallback=42), TypeError, "fallback"),
        (dict(exclude=42), TypeError, "exclude"),
        (dict(unknown=1), TypeError, "unknown"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, word):
    with pytest.raises(error, match=word):
        Pipeline(**kwargs)

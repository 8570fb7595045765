"""Bad arguments raise ValueError or TypeError naming the argument — never a
crash, never a silently clamped value."""

import datetime

import pytest

from failwell import (
    AdaptiveLimit,
    Backoff,
    Bulkhead,
    Chaos,
    CircuitBreaker,
    Deadline,
    HealthRegistry,
    Jitter,
    RateLimiter,
    Retry,
    RetryBudget,
    Watchdog,
)

NAN = float("nan")
INF = float("inf")

CASES = [
    # (callable, exception, the name the message must contain)
    (lambda: CircuitBreaker(open_for=-1), ValueError, "open_for"),
    (lambda: CircuitBreaker(open_for=NAN), ValueError, "open_for"),
    (lambda: CircuitBreaker(open_for=INF), ValueError, "open_for"),
    (lambda: CircuitBreaker(open_for=0), ValueError, "open_for"),
    (lambda: CircuitBreaker(open_for="10s"), TypeError, "open_for"),
    (lambda: CircuitBreaker(open_for=True), TypeError, "open_for"),
    (lambda: CircuitBreaker(consecutive_failures=0), ValueError, "consecutive_failures"),
    (lambda: CircuitBreaker(consecutive_failures=-3), ValueError, "consecutive_failures"),
    (lambda: CircuitBreaker(failure_rate=1.5), ValueError, "failure_rate"),
    (lambda: CircuitBreaker(failure_rate=0.0), ValueError, "failure_rate"),
    (lambda: CircuitBreaker(failure_rate=NAN), ValueError, "failure_rate"),
    (lambda: CircuitBreaker(slow_call_rate=-0.1), ValueError, "slow_call_rate"),
    (lambda: CircuitBreaker(slow_call_duration=0), ValueError, "slow_call_duration"),
    (lambda: CircuitBreaker(slow_call_duration=True), TypeError, "slow_call_duration"),
    (lambda: CircuitBreaker(window=0), ValueError, "window"),
    (lambda: CircuitBreaker(window=10, window_duration=1), ValueError, "window"),
    (lambda: CircuitBreaker(half_open_calls=0), ValueError, "half_open_calls"),
    (lambda: CircuitBreaker(half_open_max_wait=-1), ValueError, "half_open_max_wait"),
    (lambda: CircuitBreaker(open_for_multiplier=0.5), ValueError, "open_for"),
    (lambda: CircuitBreaker(exclude=[int]), TypeError, "exclude"),
    (lambda: CircuitBreaker(exclude=42), TypeError, "exclude"),
    (lambda: CircuitBreaker().open_for(-1), ValueError, "duration"),
    (lambda: Bulkhead(0), ValueError, "max_concurrent"),
    (lambda: Bulkhead(-1), ValueError, "max_concurrent"),
    (lambda: Bulkhead(2, critical_reserve=3), ValueError, "reserve"),
    (lambda: Bulkhead(2, timeout=-0.5), ValueError, "timeout"),
    (lambda: Bulkhead(2).acquire(timeout=NAN), ValueError, "timeout"),
    (lambda: Bulkhead(2).acquire(priority="vip"), ValueError, "priority"),
    (lambda: RateLimiter(0), ValueError, "requests"),
    (lambda: RateLimiter(-5), ValueError, "requests"),
    (lambda: RateLimiter(10, 0), ValueError, "period"),
    (lambda: RateLimiter(10, -1), ValueError, "period"),
    (lambda: RateLimiter(10, burst=0), ValueError, "burst"),
    (lambda: RateLimiter(10).acquire(cost=-1), ValueError, "cost"),
    (lambda: RateLimiter(10, burst=2).acquire(cost=3), ValueError, "cost"),
    (lambda: Retry(max_attempts=0), ValueError, "max_attempts"),
    (lambda: Retry(max_elapsed=-1), ValueError, "max_elapsed"),
    (lambda: Retry(max_elapsed=0), ValueError, "max_elapsed"),
    (lambda: Retry(retry_on=[str]), TypeError, "retry_on"),
    (lambda: Retry(exclude=[3]), TypeError, "exclude"),
    (lambda: Retry(on_retry=3), TypeError, "on_retry"),
    (lambda: Retry(max_atempts=3), TypeError, "max_atempts"),
    (lambda: Chaos(falt_rate=1), TypeError, "falt_rate"),
    (lambda: CircuitBreaker(open_fr=1), TypeError, "open_fr"),
    (lambda: Backoff.constant(-1), ValueError, "delay"),
    (lambda: Backoff.exponential(0.1, NAN, 1), ValueError, "multiplier"),
    (lambda: Backoff.exponential(0, 2.0, 1), ValueError, "backoff.initial"),
    (lambda: Jitter.symmetric(-0.1), ValueError, "fraction"),
    (lambda: RetryBudget(ratio=2), ValueError, "ratio"),
    (lambda: RetryBudget(min_per_second=-1), ValueError, "min_per_second"),
    (lambda: RetryBudget(ttl=0), ValueError, "ttl"),
    (lambda: Deadline(-1), ValueError, "timeout"),
    (lambda: AdaptiveLimit("pid"), ValueError, "algorithm"),
    (lambda: AdaptiveLimit("aimd"), ValueError, "latency_threshold"),
    (lambda: AdaptiveLimit(min_limit=0), ValueError, "min_limit"),
    (lambda: AdaptiveLimit(critical_fraction=1.5), ValueError, "critical_fraction"),
    (lambda: Chaos(latency_rate=-1), ValueError, "latency"),
    (lambda: Chaos(latency=NAN), ValueError, "latency"),
    (lambda: Watchdog(tick=0), ValueError, "tick"),
    (lambda: Watchdog(on_finding=5), TypeError, "on_finding"),
    (lambda: Watchdog(on_finding=lambda f: None).heartbeat("x", 0), ValueError, "timeout"),
    (lambda: Watchdog(on_finding=lambda f: None).heartbeat("x", True), TypeError, "timeout"),
    (lambda: HealthRegistry(interval=-1), ValueError, "interval"),
    (lambda: HealthRegistry().register("x", 5), TypeError, "check"),
    (lambda: HealthRegistry().register("x", lambda: None, timeout=0), ValueError, "timeout"),
]


@pytest.mark.parametrize("make, exc, name", CASES, ids=[f"{i}-{c[2]}" for i, c in enumerate(CASES)])
def test_bad_arguments_name_the_argument(make, exc, name):
    with pytest.raises(exc, match=name.replace(".", r"\.")):
        make()


def test_timedelta_is_accepted_wherever_seconds_are():
    td = datetime.timedelta(milliseconds=250)
    assert Bulkhead(1, timeout=td).timeout == 0.25
    assert RateLimiter(1, td).snapshot()["interval"] == pytest.approx(0.25)
    assert 0.2 < Deadline(td).remaining <= 0.25
    CircuitBreaker(open_for=td, window_duration=datetime.timedelta(seconds=10))
    Retry(max_elapsed=td, backoff=Backoff.exponential(td, 2.0, datetime.timedelta(seconds=2)))

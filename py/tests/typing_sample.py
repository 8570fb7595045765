"""A typed usage sample: `mypy --strict` checks it (scripts/test.sh), and
test_typing.py runs it. Decorated functions must keep their signatures."""

from __future__ import annotations

import asyncio
import datetime
from typing import Dict, List, Optional

import failwell

breaker = failwell.CircuitBreaker(consecutive_failures=3, open_for=datetime.timedelta(seconds=5))
bulkhead = failwell.Bulkhead(8, timeout=0.1)
limiter = failwell.RateLimiter(1000, 1.0)
shed = failwell.AdaptiveLimit("gradient", initial_limit=50, min_limit=10, max_limit=100)


@breaker
def get_user(user_id: int, *, verbose: bool = False) -> Dict[str, int]:
    return {"id": user_id}


@breaker(exclude=[KeyError, lambda e: "404" in str(e)])
@bulkhead(timeout=0.2, priority="critical")
@limiter(cost=1)
def get_order(order_id: str) -> Optional[str]:
    return order_id or None


@failwell.retry
def flaky() -> int:
    return 1


@failwell.retry(max_attempts=5, backoff=failwell.Backoff.exponential(0.01, 2.0, 1.0), jitter=failwell.Jitter.full())
async def fetch(urls: List[str]) -> int:
    await asyncio.sleep(0)
    return len(urls)


@breaker
@bulkhead
async def guarded(x: float) -> float:
    return x * 2


@shed
def work(n: int) -> int:
    return n + 1


pipeline = failwell.Pipeline(
    total_timeout=2.0,
    retry=failwell.Retry(max_attempts=3, backoff=failwell.Backoff.constant(0.001)),
    breaker=failwell.CircuitBreaker(consecutive_failures=5),
    bulkhead=failwell.Bulkhead(4),
    attempt_timeout=datetime.timedelta(milliseconds=500),
    fallback=lambda exc: "fallback",
)


@pipeline
def lookup(key: str, *, default: str = "") -> str:
    return key or default


@pipeline
async def alookup(key: str) -> str:
    await asyncio.sleep(0)
    return key


users = failwell.StaleCache(max_stale=60.0)


@users
@failwell.fallback(lambda exc, user_id: f"guest {user_id}")
def user_name(user_id: int) -> str:
    return f"user {user_id}"


def main() -> None:
    user: Dict[str, int] = get_user(1, verbose=True)
    order: Optional[str] = get_order("o-1")
    count: int = flaky()
    with breaker as permit:
        assert permit.pending
    with bulkhead:
        pass
    total: int = asyncio.run(fetch(["a", "b"]))
    doubled: float = asyncio.run(guarded(1.5))
    try:
        limiter.acquire(cost=1, timeout=0.01)
    except failwell.RateLimitedError as e:
        wait: Optional[float] = e.retry_after
        assert wait is None or wait >= 0
    with failwell.Deadline.after(1.0) as d:
        left: float = d.remaining
        assert left > 0
    result: int = failwell.call_with_timeout(work, 1.0, 2)
    state: str = breaker.state
    m = failwell.MetricsRegistry()
    m.register("users", breaker)
    text: str = m.render_prometheus()
    name: str = user_name(3)
    looked: str = lookup("k") + asyncio.run(alookup("a")) + pipeline.call(lookup, "c", default="d")
    assert looked == "kac"
    served: failwell.Served[str] = users.get_or_fetch(("n", 1), user_name, 1)
    assert name == "user 3" and not served.stale
    assert (user, order, count, total, doubled, result, state) == ({"id": 1}, "o-1", 1, 2, 3.0, 3, "closed")
    assert text
    fleet_sample()


def fleet_sample() -> None:
    """The fleet's classes are the ordinary ones (no Redis here: each
    decides on its fallback)."""
    fleet = failwell.Fleet("redis://127.0.0.1:1/", connect=False, io_timeout=0.01)
    quota: failwell.RateLimiter = fleet.rate_limiter("quota", 10, 1.0, mode="exact", instances=2)
    allowed: bool = quota.try_acquire()
    counts: Optional[Dict[str, object]] = quota.fleet_snapshot()
    payments: failwell.CircuitBreaker = fleet.circuit_breaker("payments", consecutive_failures=5, quorum=2)

    @payments
    def charge(amount: int) -> str:
        return f"charged {amount}"

    receipt: str = charge(3)
    assert allowed and counts is not None and receipt == "charged 3"


if __name__ == "__main__":
    main()


def prometheus_collector() -> None:
    import prometheus_client

    import failwell.prometheus

    metrics = failwell.MetricsRegistry()
    collector = failwell.prometheus.Collector(metrics)
    registry = prometheus_client.CollectorRegistry()
    registry.register(collector)
    names: List[str] = [m.name for m in collector.collect()]
    print(names)

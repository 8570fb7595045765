"""The metrics registry and its Prometheus text."""

import pytest

from failwell import AdaptiveLimit, Bulkhead, CircuitBreaker, HealthRegistry, MetricsRegistry, RateLimiter, Retry, StaleCache


def test_metrics_render_every_kind():
    m = MetricsRegistry()
    b = CircuitBreaker(consecutive_failures=3)
    b.call(lambda: None)
    m.register("payments", b)
    m.register("pool", Bulkhead(4))
    m.register("api", RateLimiter(10))
    m.register("retry", Retry())
    m.register("shed", AdaptiveLimit())
    m.register("health", HealthRegistry(interval=60))
    users = StaleCache()
    users.get_or_fetch("u1", lambda: "Ada")

    def down() -> str:
        raise OSError("down")

    assert users.get_or_fetch("u1", down).value == "Ada"
    m.register("users", users)
    text = m.render_prometheus()
    assert 'failwell_breaker_calls_total{instance="payments"} 1' in text
    assert 'failwell_stale_cache_stale_total{instance="users"} 1' in text
    assert 'failwell_stale_cache_fresh_total{instance="users"} 1' in text
    for family in ("failwell_bulkhead_", "failwell_rate_limiter_", "failwell_retry_", "failwell_adaptive_", "failwell_health_"):
        assert family in text, family
    with pytest.raises(ValueError, match="name"):
        m.register("payments", CircuitBreaker(consecutive_failures=1))
    with pytest.raises(TypeError, match="CircuitBreaker"):
        m.register("x", object())

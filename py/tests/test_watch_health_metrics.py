import logging
import threading
import time

import pytest

from failwell import (
    AdaptiveLimit,
    Bulkhead,
    CircuitBreaker,
    HealthRegistry,
    MetricsRegistry,
    RateLimiter,
    Retry,
    StaleCache,
    Watchdog,
)


def wait_for(pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_watchdog_reports_a_stall_once_and_its_recovery():
    found = []
    with Watchdog(tick=0.02, on_finding=found.append, thread_leak=False) as w:
        hb = w.heartbeat("consumer", 0.05)
        hb.beat()
        assert wait_for(lambda: len(found) >= 1)
        f = found[0]
        assert (f["kind"], f["name"], f["key"], f["cleared"]) == ("stall", "consumer", "stall:consumer", False)
        assert f["silent_for"] >= 0.05 and "consumer" in f["message"]
        assert [a["key"] for a in w.active()] == ["stall:consumer"]
        time.sleep(0.1)
        assert len(found) == 1  # reported once, not every tick
        hb.beat()
        assert wait_for(lambda: len(found) >= 2)
        assert found[1]["cleared"] and found[1]["lasted"] > 0
        assert w.active() == []
        hb.close()
    with pytest.raises(ValueError, match="shut down"):
        w.active()
    w.shutdown()  # idempotent


def test_gauges_report_resource_leaks_and_their_errors(caplog):
    found = []
    connections = [object()] * 4
    with Watchdog(tick=0.02, on_finding=found.append, thread_leak=False) as w:
        g = w.gauge("connections", lambda: len(connections))  # baseline 4, limit 8
        connections.extend([object()] * 10)
        assert wait_for(lambda: any(f["kind"] == "gauge_leak" for f in found))
        leak = next(f for f in found if f["kind"] == "gauge_leak")
        assert (leak["name"], leak["baseline"], leak["limit"]) == ("connections", 4, 8)
        assert leak["value"] >= 14
        del connections[4:]
        assert wait_for(lambda: any(f["kind"] == "gauge_leak" and f["cleared"] for f in found))
        g.close()

        def broken():
            raise RuntimeError("gauge bug")

        with caplog.at_level(logging.ERROR, logger="failwell"):
            kept = w.gauge("broken", broken, baseline=1, factor=None, ceiling=10)
            assert wait_for(lambda: w.snapshot()["callback_errors"] >= 1)
            kept.close()
        # Registering from Python while the watchdog thread reads gauges
        # that need the GIL must not deadlock.
        for i in range(50):
            w.heartbeat(f"hb{i}", 10).close()
    assert any("gauge bug" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    with pytest.raises(ValueError, match="factor"):
        Watchdog(thread_leak=False).gauge("x", lambda: 1, factor=None)
    with pytest.raises(TypeError, match="read"):
        Watchdog(thread_leak=False).gauge("x", 5)


def test_a_raising_watchdog_callback_is_logged_and_counted(caplog):
    def broken(finding):
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="failwell"):
        w = Watchdog(tick=0.02, on_finding=broken, thread_leak=False)
        hb = w.heartbeat("x", 0.02)
        assert wait_for(lambda: w.snapshot()["callback_errors"] >= 1)
        hb.close()
        w.shutdown()
    assert any(r.name == "failwell" and r.exc_info for r in caplog.records)


def test_watchdog_thread_leak_check():
    found = []
    with open("/proc/self/status") as status:
        n = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    stop = threading.Event()
    # The watchdog's own thread makes n + 1; five more cross the ceiling.
    w = Watchdog(tick=0.02, on_finding=found.append, thread_ceiling=n + 3)
    threads = [threading.Thread(target=stop.wait) for _ in range(5)]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: any(f["kind"] == "thread_leak" for f in found))
        leak = next(f for f in found if f["kind"] == "thread_leak")
        assert leak["threads"] > leak["limit"] and n > 0
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert wait_for(lambda: any(f["kind"] == "thread_leak" and f["cleared"] for f in found))
    w.shutdown()


def test_health_aggregates_checks_breakers_and_watchdogs(caplog):
    h = HealthRegistry(interval=60)
    release = threading.Event()
    h.register("db", lambda: None)
    h.register("cache", lambda: "cache cold", critical=False)
    h.register("flag", lambda: False, critical=False)

    def raises():
        raise ConnectionError("refused")

    h.register("queue", raises, critical=False)
    h.register("hangs", lambda: release.wait(5), timeout=0.05, critical=False)
    b = CircuitBreaker(consecutive_failures=1)
    h.register_breaker("payments", b, when_open="unhealthy")
    w = Watchdog(tick=0.05, thread_leak=False)
    h.register_watchdog("watchdog", w)
    assert h.report()["round"] == 0
    with caplog.at_level(logging.WARNING, logger="failwell"):
        r = h.check_now()
    by = {c["name"]: c for c in r["checks"]}
    assert r["status"] == "degraded"
    assert by["db"]["status"] == "healthy"
    assert by["cache"]["error"] == "cache cold"
    assert by["flag"]["error"] == "returned False"
    assert "refused" in by["queue"]["error"]
    assert by["hangs"]["status"] != "healthy"
    assert h.check_errors == 1
    assert any("refused" in str(rec.exc_info[1]) for rec in caplog.records if rec.exc_info)
    b.force_open()
    assert h.check_now()["status"] == "unhealthy"
    assert h.status == "unhealthy"
    with pytest.raises(ValueError, match="already registered"):
        h.register("db", lambda: None)
    with pytest.raises(ValueError, match="when_open"):
        h.register_breaker("x", b, when_open="healthy")
    release.set()
    w.shutdown()


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

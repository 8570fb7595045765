"""The health registry."""
import logging
import threading

import pytest

from failwell import CircuitBreaker, HealthRegistry, Watchdog


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

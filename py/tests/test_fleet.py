"""failwell.Fleet against a real redis-server each test module starts on a
free loopback port: both rate limiter modes and the fleet breaker as the
ordinary classes (decorators, with, async with), several worker
processes sharing one limit, every bad argument named, and Redis killed
and restarted under use (calls stay fast, decisions fall back, counts say
so)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time

import pytest

import failwell
from conftest import Redis, free_port

HOUR = 3600.0


def test_connect_ping_and_counts(redis: Redis) -> None:
    fleet = failwell.Fleet(redis.url)
    latency = fleet.ping()
    assert 0 < latency < 1
    assert fleet.redis_state == "closed"
    s = fleet.snapshot()
    assert s["requests"] >= 1 and s["failures"] == 0 and s["latency"] > 0
    assert "Fleet" in repr(fleet)
    assert failwell.Fleet.DEFAULT_IO_TIMEOUT == 0.05 and failwell.Fleet.DEFAULT_CONNECT_TIMEOUT == 0.1
    assert failwell.Fleet.DEFAULT_KEY_PREFIX == "failwell:" and failwell.Fleet.SYNC_EVERY == 0.2


def test_exact_limiter_is_an_ordinary_rate_limiter(redis: Redis) -> None:
    a = failwell.Fleet(redis.url, key_prefix="py-test:")
    b = failwell.Fleet(redis.url, key_prefix="py-test:")
    la = a.rate_limiter("exact", 1, HOUR, burst=10, mode="exact", instances=2)
    lb = b.rate_limiter("exact", 1, HOUR, burst=10, mode="exact", instances=2)
    del a, b  # the limiters keep the connection
    assert isinstance(la, failwell.RateLimiter) and la.name == "exact"
    admitted = sum((la if i % 2 else lb).try_acquire() for i in range(30))
    assert admitted == 10
    with pytest.raises(failwell.RateLimitedError) as e:
        with la:
            pass
    assert e.value.retry_after is not None and 3500 < e.value.retry_after <= 3600
    t = time.monotonic()
    with pytest.raises(failwell.RateLimitedError):
        la.acquire(timeout=0.05)  # the wait Redis names is longer: at once
    assert time.monotonic() - t < 0.04
    with pytest.raises(ValueError, match="cost"):
        la.try_acquire(11)
    assert la.try_acquire(0)
    s = la.snapshot()
    assert s["interval"] == HOUR and s["burst"] == 10
    fa, fb = la.fleet_snapshot(), lb.fleet_snapshot()
    assert fa is not None and fb is not None
    assert fa["mode"] == "exact" and fa["admitted"] + fb["admitted"] == 10 and fa["fallbacks"] == 0
    # The fleet's configuration is every instance's: no reconfigure.
    for change in (lambda: la.reconfigure(5), lambda: la.set_rate(5), lambda: la.set_burst(5)):
        with pytest.raises(ValueError, match="reconfigure: a fleet rate limiter"):
            change()
    with pytest.raises(ValueError, match="next_ready"):
        la.next_ready()
    with pytest.raises(ValueError, match="rate_limiter: a fleet rate limiter"):
        failwell.Pipeline(rate_limiter=la)
    assert failwell.RateLimiter(5).fleet_snapshot() is None


def test_leased_limiter_holds_one_instance_to_the_limit_in_every_form(redis: Redis) -> None:
    fleet = failwell.Fleet(redis.url)
    lim = fleet.rate_limiter("leased", 200, 1.0, burst=20)
    start = time.monotonic()
    admitted = 0
    while time.monotonic() - start < 1.5:
        admitted += lim.try_acquire()
    elapsed = time.monotonic() - start
    assert admitted <= 20 + 200 * elapsed + 1
    assert admitted >= 0.8 * 200 * elapsed
    s = lim.fleet_snapshot()
    assert s is not None and s["mode"] == "leased"
    assert s["admitted"] == admitted and s["leased"] >= admitted and s["instances"] == 1 and s["fallbacks"] == 0
    assert s["leases"] >= 5 and s["last_lease"] <= s["leased"]
    assert lim.snapshot()["interval"] == pytest.approx(0.005) and lim.next_ready() >= 0.0
    # Waiting forms: the next lease brings tokens.
    lim.acquire(timeout=1.0)

    @fleet.rate_limiter("leased-deco", 100, burst=10, timeout=1.0)
    def work(x: int) -> int:
        return x * 2

    assert [work(i) for i in range(15)] == [i * 2 for i in range(15)]

    async def main() -> int:
        async_lim = fleet.rate_limiter("leased-async", 100, burst=5, timeout=1.0)
        n = 0
        for _ in range(10):
            async with async_lim:
                n += 1
        return n

    assert asyncio.run(main()) == 10


def test_one_trip_opens_the_other_instance(redis: Redis) -> None:
    a = failwell.Fleet(redis.url).circuit_breaker("trip", consecutive_failures=3, open_for=60)
    b = failwell.Fleet(redis.url).circuit_breaker("trip", consecutive_failures=3, open_for=60)
    assert isinstance(a, failwell.CircuitBreaker) and a.name == "trip"
    heard = []
    b.add_listener(lambda old, new: heard.append((old, new)))

    @a
    def flaky() -> None:
        raise ConnectionError("down")

    for _ in range(3):
        with pytest.raises(ConnectionError):
            flaky()
    assert a.state == "open"
    t = time.monotonic()
    while b.state != "open":
        assert time.monotonic() - t < 1.0, "the other instance did not learn of the trip"
        time.sleep(0.005)
    with pytest.raises(failwell.CircuitOpenError) as e:
        b.call(lambda: None)
    # Held to the fleet's deadline plus the probe claim and two syncs.
    assert e.value.retry_after is not None and 55 < e.value.retry_after <= 62.4
    assert heard == [("closed", "open")]
    sb, sa = b.fleet_snapshot(), a.fleet_snapshot()
    assert sb is not None and sa is not None
    assert sb["fleet_open"] and sb["opens_applied"] == 1 and sb["syncs"] >= 1 and sa["votes"] == 1
    with pytest.raises(ValueError, match="reconfigure: a fleet breaker"):
        a.reconfigure(consecutive_failures=10)
    assert failwell.CircuitBreaker().fleet_snapshot() is None
    # A pipeline and a health registry take it as any breaker.
    p = failwell.Pipeline(breaker=b)
    with pytest.raises(failwell.CircuitOpenError):
        p.call(lambda: None)
    h = failwell.HealthRegistry()
    h.register_breaker("trip", b)
    assert h.check_now()["status"] == "degraded"


def test_quorum_keeps_one_instance_from_opening_the_fleet(redis: Redis) -> None:
    bs = [
        failwell.Fleet(redis.url).circuit_breaker("quorum", consecutive_failures=2, open_for=60, quorum=2)
        for _ in range(3)
    ]
    for _ in range(2):
        p = bs[0].acquire()
        p.failure()
    assert bs[0].state == "open"
    time.sleep(0.6)
    assert bs[1].state == "closed" and bs[2].state == "closed"
    for _ in range(2):
        p = bs[1].acquire()
        p.failure()
    t = time.monotonic()
    while bs[2].state != "open":
        assert time.monotonic() - t < 1.0, "a quorum of two did not open the fleet"
        time.sleep(0.005)


def test_metrics_name_the_fleet(redis: Redis) -> None:
    fleet = failwell.Fleet(redis.url)
    lim = fleet.rate_limiter("metered", 100, burst=10)
    brk = fleet.circuit_breaker("metered")
    m = failwell.MetricsRegistry()
    m.register("redis", fleet)
    m.register("api", lim)
    m.register("api", brk)
    time.sleep(0.3)
    for _ in range(5):
        lim.try_acquire()
    text = m.render_prometheus()
    assert 'failwell_fleet_redis_requests_total{instance="redis"}' in text
    assert 'failwell_fleet_limiter_leased_tokens_total{instance="api"}' in text
    assert 'failwell_fleet_breaker_syncs_total{instance="api"}' in text
    assert 'failwell_breaker_calls_total{instance="api"}' in text


def test_bad_arguments_are_named(redis: Redis) -> None:
    with pytest.raises(ValueError, match="io_timeout"):
        failwell.Fleet(redis.url, io_timeout=0)
    with pytest.raises(ValueError, match="io_timeout"):
        failwell.Fleet(redis.url, io_timeout=float("nan"))
    with pytest.raises(ValueError, match="connect_timeout"):
        failwell.Fleet(redis.url, connect_timeout=1e9)
    with pytest.raises(ValueError, match="pool_size"):
        failwell.Fleet(redis.url, pool_size=0)
    with pytest.raises(TypeError, match="pool_size"):
        failwell.Fleet(redis.url, pool_size=True)
    with pytest.raises(TypeError):
        failwell.Fleet(redis.url, connect=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="url"):
        failwell.Fleet("http://127.0.0.1/")
    fleet = failwell.Fleet(redis.url)
    with pytest.raises(ValueError, match="mode"):
        fleet.rate_limiter("bad", 10, mode="fast")
    with pytest.raises(ValueError, match="on_unavailable"):
        fleet.rate_limiter("bad", 10, on_unavailable="maybe")
    with pytest.raises(ValueError, match="instances"):
        fleet.rate_limiter("bad", 10, instances=0)
    with pytest.raises(TypeError, match="instances"):
        fleet.rate_limiter("bad", 10, instances=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="requests"):
        fleet.rate_limiter("bad", 0)
    with pytest.raises(TypeError, match="requests"):
        fleet.rate_limiter("bad", True)
    with pytest.raises(ValueError, match="name"):
        fleet.rate_limiter("", 10)
    with pytest.raises(ValueError, match="name"):
        fleet.rate_limiter("x" * 201, 10)
    with pytest.raises(ValueError, match="quorum"):
        fleet.circuit_breaker("bad", quorum=0)
    with pytest.raises(ValueError, match="sync_every"):
        fleet.circuit_breaker("bad", sync_every=0.001)
    with pytest.raises(ValueError, match="probe_claim"):
        fleet.circuit_breaker("bad", probe_claim=0.1)
    with pytest.raises(ValueError, match="fleet_window"):
        fleet.circuit_breaker("bad", fleet_window=1e9)
    with pytest.raises(ValueError, match="failure_rate"):
        fleet.circuit_breaker("bad", failure_rate=2.0)
    with pytest.raises(ValueError, match="sync_every"):
        fleet.circuit_breaker("bad", sync_every=-1)
    with pytest.raises(ValueError, match="on_unavailable"):
        fleet.circuit_breaker("bad", on_unavailable="sometimes")
    with pytest.raises(TypeError, match="on_unavailable"):
        fleet.circuit_breaker("bad", on_unavailable=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mode"):
        fleet.rate_limiter("bad", 10, mode=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_unavailable"):
        fleet.rate_limiter("bad", 10, on_unavailable=b"local")  # type: ignore[arg-type]


def test_a_dead_redis_is_a_fast_fallback_and_a_restarted_one_is_used_again(redis: Redis) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/"
    t = time.monotonic()
    with pytest.raises(failwell.FleetError, match="connect"):
        failwell.Fleet(dead)
    assert time.monotonic() - t < 1.0
    lazy = failwell.Fleet(dead, connect=False)
    with pytest.raises(failwell.FleetError):
        lazy.ping()
    assert lazy.rate_limiter("lazy", 10, mode="exact").try_acquire()  # the local share

    fleet = failwell.Fleet(redis.url)
    leased = fleet.rate_limiter("dead", 100, burst=10)
    exact = fleet.rate_limiter("dead-exact", 100, burst=10, mode="exact")
    closed = fleet.rate_limiter("dead-closed", 100, burst=10, mode="exact", on_unavailable="fail_closed")
    opened = fleet.rate_limiter("dead-open", 100, burst=10, on_unavailable="fail_open")
    brk = fleet.circuit_breaker("dead")
    time.sleep(0.25)
    redis.kill()
    time.sleep(0.4)
    slowest = 0.0
    admitted = closed_admitted = open_admitted = 0
    for _ in range(200):
        t = time.monotonic()
        admitted += leased.try_acquire()
        exact.try_acquire()
        closed_admitted += closed.try_acquire()
        open_admitted += opened.try_acquire()
        brk.call(lambda: None)
        slowest = max(slowest, time.monotonic() - t)
        time.sleep(0.001)
    assert slowest < 0.06, f"a call took {slowest:.3f} s"  # the 50 ms timeout
    assert admitted > 0 and closed_admitted == 0 and open_admitted == 200
    for lim in (leased, exact, closed, opened):
        s = lim.fleet_snapshot()
        assert s is not None and s["fallbacks"] > 0, s
    sb = brk.fleet_snapshot()
    assert sb is not None and sb["failed_syncs"] > 0
    assert fleet.snapshot()["failures"] > 0
    with pytest.raises(failwell.FleetError):
        fleet.ping()
    # Restarted, empty (no scripts loaded): used again without a restart.
    redis.start()
    t = time.monotonic()
    while True:
        s = exact.fleet_snapshot()
        assert s is not None
        before = s["fallbacks"]
        time.sleep(0.05)
        exact.try_acquire()
        s = exact.fleet_snapshot()
        assert s is not None
        if s["fallbacks"] == before:
            break
        assert time.monotonic() - t < 5, "not back on Redis"


def test_a_paused_redis_holds_no_call_past_the_timeout(redis: Redis) -> None:
    fleet = failwell.Fleet(redis.url, io_timeout=0.05)
    exact = fleet.rate_limiter("paused", 1000, mode="exact")
    brk = fleet.circuit_breaker("paused")
    assert exact.try_acquire()
    redis.pause()
    try:
        slowest = 0.0
        for _ in range(50):
            t = time.monotonic()
            exact.try_acquire()
            brk.call(lambda: None)
            slowest = max(slowest, time.monotonic() - t)
        # Each round trip's write and read: two io_timeouts at most.
        assert slowest < 0.16, f"a call took {slowest:.3f} s"
        s = exact.fleet_snapshot()
        assert s is not None and s["fallbacks"] > 0
    finally:
        redis.resume()


def test_worker_processes_share_one_exact_limit(redis: Redis) -> None:
    code = textwrap.dedent(
        f"""
        import sys, time, failwell
        lim = failwell.Fleet({redis.url!r}).rate_limiter("procs", 1, 3600, burst=40, mode="exact", instances=4)
        n = sum(lim.try_acquire() for _ in range(100))
        print(n)
        """
    )
    env = dict(os.environ)
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env) for _ in range(4)
    ]
    counts = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        counts.append(int(out))
    assert sum(counts) == 40, counts


def test_a_forked_worker_uses_the_fleet_on_connections_of_its_own(redis: Redis) -> None:
    # gunicorn --preload: the primitives are made in the master, used in
    # the workers it forks.
    fleet = failwell.Fleet(redis.url)
    leased = fleet.rate_limiter("forked", 1000, burst=50)
    exact = fleet.rate_limiter("forked-exact", 1, HOUR, burst=3, mode="exact")
    brk = fleet.circuit_breaker("forked", consecutive_failures=2, open_for=60)
    assert leased.acquire(timeout=1.0) is None and exact.try_acquire()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its status
        ok = False
        try:
            t = time.monotonic()
            while not leased.try_acquire():  # the child's own lease
                if time.monotonic() - t > 3:
                    os._exit(2)
                time.sleep(0.01)
            s = exact.fleet_snapshot()
            ok = exact.try_acquire() and s is not None and s["fallbacks"] == 0
            for _ in range(2):
                brk.acquire().failure()
            ok = ok and brk.state == "open"
            t = time.monotonic()
            while (brk.fleet_snapshot() or {}).get("votes", 0) < 1:  # reported
                if time.monotonic() - t > 3:
                    os._exit(3)
                time.sleep(0.005)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    # The child's exact decision was the fleet's: one of the burst is left.
    assert exact.try_acquire() and not exact.try_acquire()
    # And its trip reached the parent through the fleet.
    t = time.monotonic()
    while brk.state != "open":
        assert time.monotonic() - t < 1.0, "the child's trip did not reach the parent"
        time.sleep(0.005)


def test_fail_open_and_fail_closed_breakers_while_redis_is_down(redis: Redis) -> None:
    fleet = failwell.Fleet(redis.url)
    shut = fleet.circuit_breaker("shut", on_unavailable="fail_closed")
    opened = fleet.circuit_breaker("opened", consecutive_failures=2, on_unavailable="fail_open")
    own = fleet.circuit_breaker("own")
    redis.kill()
    t = time.monotonic()
    while not all((b.fleet_snapshot() or {}).get("degraded") for b in (shut, opened)):
        assert time.monotonic() - t < 3, "no failed sync applied the fallback"
        time.sleep(0.01)
    assert shut.state == "forced_open"
    with pytest.raises(failwell.CircuitOpenError):
        shut.call(lambda: None)

    @opened
    def down() -> None:
        raise ConnectionError("down")

    for _ in range(3):
        with pytest.raises(ConnectionError):  # admitted, counted, not opened
            down()
    assert opened.state == "metrics_only"
    assert own.state == "closed" and not (own.fleet_snapshot() or {}).get("degraded")
    redis.start()
    t = time.monotonic()
    while (shut.fleet_snapshot() or {}).get("degraded"):
        assert time.monotonic() - t < 5, "not undone once Redis answers"
        time.sleep(0.01)
    assert shut.state == "closed"
    assert shut.call(lambda: 7) == 7

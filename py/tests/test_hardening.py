"""Hardening: bool and out-of-range numbers refused by name, messages that
name what the user passed, decorator factories that check their arguments
at once, the deadline reaching timed calls, no thread-leak report for
failwell's own threads, a silent interpreter exit, and fork()."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

import failwell
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
    StaleCache,
    Throttler,
    TimeoutPool,
    Watchdog,
    call_with_timeout,
)

BOOL_CASES = [
    (lambda: Bulkhead(True), "max_concurrent"),
    (lambda: Bulkhead(4, critical_reserve=True), "critical_reserve"),
    (lambda: Bulkhead(4).set_max_concurrent(True), "max_concurrent"),
    (lambda: CircuitBreaker(failure_rate=True), "failure_rate"),
    (lambda: CircuitBreaker(consecutive_failures=True), "consecutive_failures"),
    (lambda: CircuitBreaker(half_open_calls=True), "half_open_calls"),
    (lambda: CircuitBreaker(window=True), "window"),
    (lambda: CircuitBreaker(open_for_multiplier=True), "open_for_multiplier"),
    (lambda: CircuitBreaker().reconfigure(minimum_calls=True), "minimum_calls"),
    (lambda: Retry(max_attempts=True), "max_attempts"),
    (lambda: Retry(seed=True), "seed"),
    (lambda: RateLimiter(True, 1.0), "requests"),
    (lambda: RateLimiter(10, burst=True), "burst"),
    (lambda: RateLimiter(10).try_acquire(True), "cost"),
    (lambda: RetryBudget(ratio=True), "ratio"),
    (lambda: Chaos(fault_rate=True), "fault_rate"),
    (lambda: AdaptiveLimit(max_limit=True), "max_limit"),
    (lambda: Watchdog(thread_ceiling=True), "thread_ceiling"),
    (lambda: Watchdog(thread_leak_factor=True), "thread_leak_factor"),
    (lambda: HealthRegistry(max_parallel=True), "max_parallel"),
    (lambda: StaleCache(capacity=True), "capacity"),
    (lambda: TimeoutPool(True), "max_threads"),
    (lambda: Backoff.exponential(multiplier=True), "multiplier"),
    (lambda: Jitter.symmetric(True), "fraction"),
    (lambda: Throttler(k=True), "k"),
]


@pytest.mark.parametrize("make, name", BOOL_CASES)
def test_bool_is_refused_where_a_number_is_meant(make, name):
    with pytest.raises(TypeError, match=name):
        make()


OVERFLOW_CASES = [
    (lambda: Bulkhead(2**70), "max_concurrent"),
    (lambda: Bulkhead(-(2**70)), "max_concurrent"),
    (lambda: Retry(seed=-1), "seed"),
    (lambda: Retry(seed=2**64), "seed"),
    (lambda: Retry(max_attempts=2**40), "max_attempts"),
    (lambda: Watchdog(thread_ceiling=-1), "thread_ceiling"),
    (lambda: Watchdog(thread_baseline=2**64), "thread_baseline"),
    (lambda: RateLimiter(2**70), "requests"),
    (lambda: RateLimiter(10, burst=2**64), "burst"),
    (lambda: RateLimiter(10).acquire(cost=2**33), "cost"),
    (lambda: CircuitBreaker(window=2**40), "window"),
    (lambda: CircuitBreaker(window_duration=10, window_buckets=-1), "window_buckets"),
    (lambda: TimeoutPool(2**70), "max_threads"),
    (lambda: StaleCache(capacity=-1), "capacity"),
    (lambda: Chaos(seed=2**64), "seed"),
    (lambda: AdaptiveLimit(initial_limit=-5), "initial_limit"),
    (lambda: Throttler(seed=-1), "seed"),
    (lambda: Backoff.exponential(multiplier=10**400), "multiplier"),
]


@pytest.mark.parametrize("make, name", OVERFLOW_CASES)
def test_an_integer_out_of_range_is_a_value_error_naming_it(make, name):
    with pytest.raises(ValueError, match=name) as info:
        make()
    assert not isinstance(info.value, OverflowError)


def test_messages_name_the_argument_the_user_passed():
    with pytest.raises(ValueError, match="^window_duration"):
        CircuitBreaker(failure_rate=0.5, window_duration=0)
    with pytest.raises(ValueError, match="^window_buckets"):
        CircuitBreaker(failure_rate=0.5, window_duration=10, window_buckets=0)
    # An unset initial limit follows the bounds the user set.
    assert AdaptiveLimit(max_limit=5).limit == 5
    assert AdaptiveLimit(min_limit=300).limit == 300
    with pytest.raises(ValueError, match="initial_limit"):
        AdaptiveLimit(max_limit=5, initial_limit=6)
    # A positive period below the limiter's resolution says so.
    with pytest.raises(ValueError, match="period") as info:
        RateLimiter(10, 1e-12)
    assert "1 ns" in str(info.value) and "> 0" not in str(info.value)
    with pytest.raises(ValueError, match="period must be > 0"):
        RateLimiter(10, 0)


def test_a_rate_that_cannot_be_represented_is_refused_not_rounded():
    with pytest.raises(ValueError, match="requests/period") as info:
        RateLimiter(2**31, 1.0)
    assert "1 %" in str(info.value)
    RateLimiter(10**9, 1.0)  # one per nanosecond is exact
    limiter = RateLimiter(10)
    with pytest.raises(ValueError):
        limiter.set_rate(2**31, 1.0)
    assert limiter.snapshot()["interval"] == pytest.approx(0.1)


def test_decorator_factories_check_their_arguments_when_they_decorate():
    with pytest.raises(TypeError, match="key"):
        StaleCache()(key=5)
    with pytest.raises(TypeError, match="on_stale"):
        StaleCache()(on_stale="log")
    with pytest.raises(ValueError, match="priority"):
        AdaptiveLimit()(priority="vip")
    with pytest.raises(ValueError, match="priority"):
        Bulkhead(2)(priority="vip")
    with pytest.raises(ValueError, match="timeout"):
        Bulkhead(2)(timeout=-1)
    with pytest.raises(TypeError, match="exclude"):
        CircuitBreaker(consecutive_failures=3)(exclude=42)
    with pytest.raises(ValueError, match="cost"):
        RateLimiter(10)(cost=-1)
    # Valid arguments still decorate.
    assert StaleCache()(key=lambda x: x)(lambda x: x + 1)(1) == 2


def test_the_callers_deadline_reaches_the_timed_call():
    seen = []

    def work():
        seen.append(Deadline.current())
        return 7

    assert call_with_timeout(work, 5.0) == 7
    assert seen[0] is not None and 0 < seen[0].remaining <= 5.0
    with Deadline.after(0.5):
        assert call_with_timeout(work, 5.0) == 7
    assert seen[1].remaining <= 0.5, "the caller's earlier deadline wins"
    pool = TimeoutPool(2)
    assert pool.call(work, 2.0) == 7
    assert 0 < seen[2].remaining <= 2.0
    # A timed call inside the timed call stops at the outer deadline.
    inner = []

    def nested():
        t = time.monotonic()
        try:
            call_with_timeout(time.sleep, 10.0, 5)
        except failwell.DeadlineExceededError:
            inner.append(time.monotonic() - t)
        time.sleep(0.5)  # past the outer deadline, whatever the race

    with pytest.raises(failwell.DeadlineExceededError):
        call_with_timeout(nested, 0.3)
    time.sleep(0.8)
    assert inner and inner[0] < 2.0


def run_script(source, timeout=60):
    """Runs `source` in a fresh interpreter; returns (exit code, stderr)."""
    p = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return p.returncode, p.stdout, p.stderr


def test_failwells_own_threads_are_no_thread_leak():
    code, out, err = run_script(
        """
        import time
        from failwell import (
            DeadlineExceededError, HealthRegistry, TimeoutPool, Watchdog, call_with_timeout,
        )

        found = []
        dog = Watchdog(tick=0.01, thread_leak_factor=1.5, on_finding=found.append)
        health = HealthRegistry(interval=0.01)
        health.register("ok", lambda: None, timeout=1.0)
        pool = TimeoutPool(8)
        # Eight workers kept busy by calls abandoned at their deadline, and
        # the default pool's workers: failwell's threads, not the user's.
        for _ in range(8):
            try:
                pool.call(time.sleep, 0.01, 0.5)
            except DeadlineExceededError:
                pass
        for _ in range(8):
            call_with_timeout(lambda: 1, 1.0)
        time.sleep(0.3)
        leaks = [f for f in found if f["kind"] == "thread_leak"]
        print("leaks", len(leaks))
        """
    )
    assert code == 0, err
    assert "leaks 0" in out, out + err


def test_exit_is_silent_with_failwell_threads_running():
    code, out, err = run_script(
        """
        import time
        from failwell import HealthRegistry, Watchdog, call_with_timeout, DeadlineExceededError

        health = HealthRegistry(interval=0.01)
        health.register("slow", lambda: time.sleep(0.2), timeout=0.05)
        dog = Watchdog(tick=0.01)
        beat = dog.heartbeat("work", 0.05)
        try:
            call_with_timeout(time.sleep, 0.01, 0.5)  # abandoned, still running at exit
        except DeadlineExceededError:
            pass
        time.sleep(0.1)
        print("exiting")
        """
    )
    assert code == 0, err
    assert "exiting" in out
    assert "panicked" not in err and "Traceback" not in err, err
    assert err.strip() == "" or "failwell watchdog" in err, err


FORK_CHILD = """
    import os, sys, time
    import failwell
    from failwell import HealthRegistry, Watchdog, TimeoutPool, call_with_timeout, CircuitBreaker

    assert call_with_timeout(lambda: 1, 5.0) == 1
    pool = TimeoutPool(2)
    assert pool.call(lambda: 2, 5.0) == 2
    health = HealthRegistry(interval=0.02)
    health.register("dep", lambda: None, timeout=0.5)
    stalls = []
    dog = Watchdog(tick=0.01, on_finding=lambda f: stalls.append(f) if f["kind"] == "stall" else None)
    breaker = CircuitBreaker(consecutive_failures=3)
    while health.report()["round"] < 2:
        time.sleep(0.01)

    pid = os.fork()
    if pid == 0:
        ok = True
        try:
            t = time.monotonic()
            assert call_with_timeout(lambda: 3, 1.0) == 3
            assert time.monotonic() - t < 0.5, "ran at once"
            assert pool.call(lambda: 4, 1.0) == 4
            report = health.check_now()
            assert report["checks"][0]["status"] == "healthy", report
            r = health.report()["round"]
            t = time.monotonic()
            while health.report()["round"] < r + 3:
                assert time.monotonic() - t < 5, "rounds go on in the child"
                time.sleep(0.01)
            beat = dog.heartbeat("child", 0.03)
            beat.beat()
            t = time.monotonic()
            while not stalls:
                assert time.monotonic() - t < 5, "the watchdog runs in the child"
                time.sleep(0.01)
            assert breaker.call(lambda: 5) == 5
            del health
            dog.shutdown()
        except BaseException as e:
            print("child failed:", repr(e), file=sys.stderr)
            ok = False
        sys.stderr.flush()
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            print("child hung", file=sys.stderr)
            sys.exit(3)
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0, status
    assert call_with_timeout(lambda: 6, 5.0) == 6
    print("fork ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_can_use_every_primitive():
    code, out, err = run_script(FORK_CHILD)
    assert code == 0, err
    assert "fork ok" in out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_multiprocessing_fork_workers_can_use_timed_calls():
    code, out, err = run_script(
        """
        import multiprocessing as mp
        from failwell import call_with_timeout, HealthRegistry

        health = HealthRegistry(interval=0.02)
        health.register("ok", lambda: None, timeout=0.5)
        assert call_with_timeout(lambda: 0, 5.0) == 0

        def work(i):
            return call_with_timeout(lambda: i * 2, 2.0), health.check_now()["status"]

        if __name__ == "__main__":
            with mp.get_context("fork").Pool(3) as p:
                print(p.map(work, range(6), chunksize=1))
        """
    )
    assert code == 0, err
    assert "[(0, 'healthy'), (2, 'healthy'), (4, 'healthy'), (6, 'healthy')" in out, out + err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_many_forks_with_failwell_busy_never_hang_a_child():
    # Every background thread busy and a parent thread making timed calls
    # and heartbeats while the main thread forks: no child may find a lock
    # of failwell's held.
    code, out, err = run_script(
        """
        import os, sys, threading, time, warnings
        from failwell import HealthRegistry, Watchdog, TimeoutPool, call_with_timeout

        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        pool = TimeoutPool(4)
        health = HealthRegistry(interval=0.01)
        for name in ("a", "b"):
            health.register(name, lambda: None, timeout=0.5)
        dog = Watchdog(tick=0.001, on_finding=lambda f: None)
        stop = threading.Event()

        def caller():
            while not stop.is_set():
                pool.call(lambda: 1, 5.0)
                call_with_timeout(lambda: 2, 5.0)
                dog.heartbeat("caller", 60.0).beat()

        t = threading.Thread(target=caller)
        t.start()
        hung = failed = 0
        for k in range(40):
            pid = os.fork()
            if pid == 0:
                ok = (call_with_timeout(lambda: 3, 2.0) == 3
                      and pool.call(lambda: 4, 2.0) == 4
                      and health.check_now()["status"] == "healthy")
                dog.heartbeat("child", 60.0).beat()
                os._exit(0 if ok else 1)
            deadline = time.monotonic() + 10
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    failed += os.waitstatus_to_exitcode(status) != 0
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    hung += 1
                    break
                time.sleep(0.002)
        stop.set()
        t.join()
        print("hung", hung, "failed", failed)
        """
    )
    assert code == 0, err
    assert "hung 0 failed 0" in out, out + err


def test_a_busy_half_open_gives_an_honest_retry_after():
    b = CircuitBreaker(consecutive_failures=1, open_for=0.01, half_open_calls=1)
    with pytest.raises(ValueError):
        b.call(lambda: (_ for _ in ()).throw(ValueError("down")))
    time.sleep(0.02)
    probe = b.acquire()
    with pytest.raises(failwell.CircuitOpenError) as info:
        b.acquire()
    # Not the 60 s half_open_max_wait: about as long as the probe has run.
    assert 0.001 <= info.value.retry_after < 1.0
    probe.success()
    assert b.state == "closed"


def test_reconfiguration_is_all_or_nothing():
    b = Bulkhead(4, critical_reserve=2)
    with pytest.raises(ValueError, match="critical_reserve"):
        b.reconfigure(max_concurrent=8, critical_reserve=8)
    assert b.max_concurrent == 4, "a refused pair changes nothing"
    b.reconfigure(max_concurrent=1, critical_reserve=0)  # one at a time would be refused
    assert b.max_concurrent == 1
    b.reconfigure(max_concurrent=10, critical_reserve=9)
    with b:
        with pytest.raises(failwell.BulkheadFullError):
            b.acquire()
    with pytest.raises(TypeError, match="max_concurrent"):
        b.reconfigure(max_concurrent=True)

    limiter = RateLimiter(100, burst=10)
    before = limiter.snapshot()
    with pytest.raises(ValueError, match="burst"):
        limiter.reconfigure(1000, burst=0)
    assert limiter.snapshot() == before, "the valid rate was not applied alone"
    with pytest.raises(ValueError, match="requests/period"):
        limiter.reconfigure(2**31, 1.0, burst=5)
    with pytest.raises(ValueError, match="period"):
        limiter.reconfigure(period=2.0)
    limiter.reconfigure(1000, burst=50)
    s = limiter.snapshot()
    assert s["interval"] == pytest.approx(0.001) and s["burst"] == 50
    limiter.reconfigure(burst=5)
    assert limiter.snapshot()["burst"] == 5


def test_breaker_defaults_come_from_core() -> None:
    # Nothing given: every value is core's documented default.
    c = CircuitBreaker().config
    assert c["failure_rate"] == 0.5 and c["window"] == 100 and c["minimum_calls"] == 100
    assert c["half_open_calls"] == 10 and c["open_for"] == 60.0 and c["open_for_max"] == 60.0
    assert c["half_open_max_wait"] == 60.0 and c["open_for_multiplier"] == 1.0
    assert c["consecutive_failures"] is None and c["slow_call_rate"] is None
    # A time window without buckets gets core's default bucket count.
    t = CircuitBreaker(window_duration=10).config
    assert t["window_duration"] == 10.0 and t["window_buckets"] == 10
    # Consecutive failures alone turn the default failure rate off (core's rule).
    assert CircuitBreaker(consecutive_failures=3).config["failure_rate"] is None
    # The open period's cap follows open_for unless set.
    assert CircuitBreaker(open_for=5, open_for_multiplier=2).config["open_for_max"] == 5.0


def test_chaos_reconfigure_is_all_or_nothing() -> None:
    c = failwell.Chaos(fault_rate=1.0, seed=5)
    with pytest.raises(ValueError, match="latency_rate"):
        c.reconfigure(fault_rate=0.0, latency_rate=1.5)
    assert c.should_fail(), "a refused change changes nothing"
    c.reconfigure(fault_rate=0.0, latency_rate=1.0, latency=0.001)
    assert not c.should_fail()
    assert c.injected_latency() == pytest.approx(0.001)
    c.reconfigure(latency_rate=0.0)
    assert c.injected_latency() is None, "the delay alone stays, the rate goes to 0"
    c.reconfigure(enabled=False)
    assert c.snapshot()["enabled"] is False
    with pytest.raises(TypeError):
        c.reconfigure(fault_rate=True)

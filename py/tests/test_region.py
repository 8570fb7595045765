"""SharedRegion: rate limiters shared by processes, with the ordinary
RateLimiter's every form, and every refusal as the right exception."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
from typing import Iterator, List, Tuple

import pytest

import failwell

HOUR = 3600.0


@pytest.fixture
def region_name() -> Iterator[str]:
    name = f"failwell-py-{os.getpid()}-{time.monotonic_ns()}"
    yield name
    try:
        failwell.SharedRegion.unlink(name)
    except OSError:
        pass


def test_two_regions_share_one_limiter(region_name: str) -> None:
    a = failwell.SharedRegion(region_name)
    b = failwell.SharedRegion(region_name, size=failwell.SharedRegion.MIN_SIZE)
    assert a.path == f"/dev/shm/{region_name}" and b.size == a.size == 1 << 20
    la = a.rate_limiter("api", 1, HOUR, burst=10)
    lb = b.rate_limiter("api", 1, HOUR, burst=10)
    assert isinstance(la, failwell.RateLimiter) and la.name == "api"
    admitted = sum((la if i % 2 else lb).try_acquire() for i in range(30))
    assert admitted == 10
    assert la.snapshot() == lb.snapshot()
    assert la.snapshot()["admitted"] == 10 and la.snapshot()["rejected"] == 20
    assert a.names() == ["api"]
    del a, b  # the limiters keep the mapping
    assert not lb.try_acquire()


def test_every_form_of_the_ordinary_limiter_works(region_name: str) -> None:
    r = failwell.SharedRegion(region_name)
    limiter = r.rate_limiter("forms", 1, HOUR, burst=4)
    other = failwell.SharedRegion(region_name).attach_rate_limiter("forms")

    @limiter
    def work() -> int:
        return 1

    assert work() == 1
    with other:
        pass
    assert limiter.call(lambda: 2) == 2

    async def main() -> None:
        async with other:
            pass

    import asyncio

    asyncio.run(main())
    with pytest.raises(failwell.RateLimitedError) as e:
        work()
    assert e.value.retry_after is not None and e.value.retry_after > 0
    assert other.snapshot()["admitted"] == 4


def test_another_configuration_raises_and_attach_adopts(region_name: str) -> None:
    r = failwell.SharedRegion(region_name)
    r.rate_limiter("api", 100, burst=10)
    with pytest.raises(failwell.RegionError, match='slot "api" exists.*burst: 10.*attach'):
        r.rate_limiter("api", 100, burst=20)
    with pytest.raises(failwell.RegionError):
        r.rate_limiter("api", 100, burst=10, precise=True)
    adopted = r.attach_rate_limiter("api", timeout=0.5, name="mine")
    assert adopted.snapshot()["burst"] == 10
    assert (adopted.name, adopted.timeout) == ("mine", 0.5)
    with pytest.raises(failwell.RegionError, match='no slot "absent"'):
        r.attach_rate_limiter("absent")
    assert r.names() == ["api"]
    with pytest.raises(ValueError, match="^reconfigure: "):
        adopted.set_burst(3)
    with pytest.raises(ValueError, match="^reconfigure: "):
        adopted.reconfigure(requests=5)
    assert adopted.snapshot()["burst"] == 10


def test_bad_arguments_name_what_was_passed(region_name: str) -> None:
    with pytest.raises(ValueError, match="^name: must not be empty"):
        failwell.SharedRegion("")
    with pytest.raises(ValueError, match="^size: must be at least"):
        failwell.SharedRegion(region_name, size=4096)
    with pytest.raises(TypeError, match="size"):
        failwell.SharedRegion(region_name, size=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        failwell.SharedRegion(region_name, size=-1)
    with pytest.raises(OSError) as e:
        failwell.SharedRegion("/nonexistent-dir/region")
    assert e.value.errno == errno.ENOENT
    r = failwell.SharedRegion(region_name)
    with pytest.raises(ValueError, match="^slot: must not be empty"):
        r.rate_limiter("", 10)
    with pytest.raises(ValueError, match="^slot: .* at most 55"):
        r.rate_limiter("x" * 56, 10)
    with pytest.raises(ValueError, match="^slot: "):
        r.attach_rate_limiter("")
    with pytest.raises(ValueError, match="^burst: must be at least 1"):
        r.rate_limiter("api", 10, burst=0)
    with pytest.raises(TypeError, match="requests"):
        r.rate_limiter("api", True)
    assert r.names() == []


def test_a_foreign_file_is_not_a_region(tmp_path: "os.PathLike[str]") -> None:
    path = os.path.join(str(tmp_path), "foreign")
    with open(path, "wb") as f:
        f.write(b"x" * 70000)
    with pytest.raises(failwell.RegionError, match="not a failwell region"):
        failwell.SharedRegion(path)


WORKER = textwrap.dedent(
    """
    import sys, time, failwell
    name, until = sys.argv[1], float(sys.argv[2])
    limiter = failwell.SharedRegion(name).rate_limiter("shared", 500, 1.0, burst=20)
    tries = admitted = 0
    while time.time() < until:
        for _ in range(100):
            tries += 1
            admitted += limiter.try_acquire()
    print(tries, admitted)
    """
)


def _check_host_limit(results: List[Tuple[int, int]], elapsed: float, limiter: failwell.RateLimiter) -> None:
    tries = sum(t for t, _ in results)
    admitted = sum(a for _, a in results)
    bound = 20 + int(500 * elapsed * 1.01)
    assert admitted <= bound, (admitted, bound)
    assert admitted >= 250, admitted
    assert all(a > 0 for _, a in results), results
    snap = limiter.snapshot()
    assert snap["admitted"] == admitted
    assert snap["admitted"] + snap["rejected"] == tries


def test_eight_worker_processes_share_one_limit(region_name: str) -> None:
    region = failwell.SharedRegion(region_name)
    limiter = region.rate_limiter("shared", 500, 1.0, burst=20)
    start = time.time()
    until = start + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, region_name, str(until)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        t, a = out.split()
        results.append((int(t), int(a)))
    _check_host_limit(results, time.time() - start, limiter)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_workers_share_a_limiter_made_before_the_fork(region_name: str) -> None:
    # gunicorn --preload: the master makes the limiter, the workers inherit it.
    limiter = failwell.SharedRegion(region_name).rate_limiter("shared", 500, 1.0, burst=20)
    start = time.time()
    until = start + 1.0
    pipes = []
    for _ in range(4):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(r)
            tries = admitted = 0
            while time.time() < until:
                tries += 1
                admitted += limiter.try_acquire()
            os.write(w, f"{tries} {admitted}".encode())
            os._exit(0)
        os.close(w)
        pipes.append((pid, r))
    results = []
    for pid, r in pipes:
        chunks = []
        while chunk := os.read(r, 4096):
            chunks.append(chunk)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        t, a = b"".join(chunks).split()
        results.append((int(t), int(a)))
    _check_host_limit(results, time.time() - start, limiter)


def test_retry_policies_share_one_budget(region_name: str) -> None:
    a, b = failwell.SharedRegion(region_name), failwell.SharedRegion(region_name)
    # No ratio, 0.2 retries per second over 10 s: two retries for the host.
    budget_a = a.retry_budget("db", ratio=0.0, min_per_second=0.2, ttl=10)
    budget_b = b.attach_retry_budget("db")
    assert isinstance(budget_b, failwell.RetryBudget)
    calls: List[int] = []

    def make(budget: failwell.RetryBudget) -> "failwell.Retry":
        return failwell.Retry(
            max_attempts=3, backoff=failwell.Backoff.constant(0.001), jitter=failwell.Jitter.none(), budget=budget
        )

    @make(budget_a)
    def flaky_a() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset")
        return "ok"

    assert flaky_a() == "ok" and len(calls) == 3  # the two retries
    calls.clear()

    @make(budget_b)
    def flaky_b() -> str:
        calls.append(1)
        raise ConnectionError("reset")

    with pytest.raises(failwell.RetryBudgetExhaustedError):
        flaky_b()
    assert len(calls) == 1
    assert budget_a.refused == budget_b.refused == 1
    with pytest.raises(failwell.RegionError, match='slot "db" exists.*min_per_sec: 0.2'):
        a.retry_budget("db", ratio=0.0, min_per_second=1.0, ttl=10)
    with pytest.raises(failwell.RegionError, match="holds a retry budget, not a rate limiter"):
        a.rate_limiter("db", 10)
    with pytest.raises(ValueError, match="^ratio: must be in"):
        a.retry_budget("other", ratio=2.0)
    with pytest.raises(ValueError, match="^ttl: must be at least 1 s"):
        a.retry_budget("other", ttl=0.5)
    with pytest.raises(ValueError, match="^slot: must not be empty"):
        a.retry_budget("")
    with pytest.raises(failwell.RegionError, match='no slot "absent"'):
        a.attach_retry_budget("absent")


def test_a_shared_bulkhead_is_one_limit_in_every_form(region_name: str) -> None:
    a, b = failwell.SharedRegion(region_name), failwell.SharedRegion(region_name)
    ba = a.bulkhead("db", 3, critical_reserve=1, timeout=0)
    bb = b.attach_bulkhead("db", timeout=0.01, name="db-b")
    assert isinstance(bb, failwell.Bulkhead) and (ba.name, bb.name) == ("db", "db-b")
    assert bb.max_concurrent == 3 and bb.snapshot()["available"] == 3
    first = ba.acquire()
    with bb:  # the second normal permit; the third is the reserve
        assert ba.try_acquire() is None
        critical = ba.try_acquire(priority="critical")
        assert critical is not None and bb.snapshot()["in_use"] == 3
        with pytest.raises(failwell.BulkheadFullError):
            with bb:
                pass
        assert critical.release() and not critical.release()
    first.release()

    @ba
    def work() -> int:
        return bb.snapshot()["in_use"]

    assert work() == 1 and bb.call(lambda: ba.available) == 2

    async def main() -> int:
        async with bb:
            return ba.snapshot()["in_use"]

    import asyncio

    assert asyncio.run(main()) == 1
    snap = ba.snapshot()
    assert snap["in_use"] == 0 and snap["available"] == 3 and snap["peak"] == 3
    assert snap["rejected"] == bb.snapshot()["rejected"] == 2
    with pytest.raises(ValueError, match="^reconfigure: "):
        ba.reconfigure(max_concurrent=4)
    with pytest.raises(ValueError, match="^reconfigure: "):
        bb.set_max_concurrent(4)
    del a, b  # the bulkheads keep the mapping
    assert ba.try_acquire() is not None  # the dropped permit came back


def test_shared_bulkhead_arguments_and_mismatches(region_name: str) -> None:
    r = failwell.SharedRegion(region_name)
    r.bulkhead("db", 4)
    with pytest.raises(failwell.RegionError, match='slot "db" exists.*max_concurrent: 4.*attach'):
        r.bulkhead("db", 5)
    assert r.bulkhead("db", 4).max_concurrent == 4
    with pytest.raises(failwell.RegionError, match="holds a bulkhead, not a rate limiter"):
        r.rate_limiter("db", 10)
    with pytest.raises(failwell.RegionError, match='no slot "absent"'):
        r.attach_bulkhead("absent")
    with pytest.raises(ValueError, match="^max_concurrent: must be 1"):
        r.bulkhead("other", 0)
    with pytest.raises(ValueError, match="^max_concurrent: .* at most 1048576"):
        r.bulkhead("other", 2**20 + 1)
    with pytest.raises(TypeError, match="max_concurrent"):
        r.bulkhead("other", True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^critical_reserve: must be less than"):
        r.bulkhead("other", 3, critical_reserve=3)
    with pytest.raises(ValueError, match="^slot: must not be empty"):
        r.bulkhead("", 3)
    with pytest.raises(ValueError, match="^timeout"):
        r.bulkhead("other", 3, timeout=float("nan"))
    assert r.names() == ["db"]
    assert r.bulkhead("defaults").max_concurrent == 25


BULKHEAD_WORKER = textwrap.dedent(
    """
    import mmap, sys, time, failwell
    name, counter, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bulkhead = failwell.SharedRegion(name).bulkhead("pool", 3, timeout=5)
    # An independent tally: a byte per worker in a file every worker maps,
    # set while it holds a permit.
    with open(counter, "r+b") as f:
        buf = mmap.mmap(f.fileno(), 8)
    me = int(sys.argv[4])
    over = admitted = refused = 0
    for i in range(rounds):
        try:
            with bulkhead:
                buf[me] = 1
                if sum(buf[:8]) > 3:
                    over += 1
                time.sleep(0.0002)
                admitted += 1
                buf[me] = 0
        except failwell.BulkheadFullError:
            refused += 1
    buf.close()
    print(admitted, refused, over)
    """
)


def test_eight_worker_processes_share_one_bulkhead(region_name: str, tmp_path: "os.PathLike[str]") -> None:
    bulkhead = failwell.SharedRegion(region_name).bulkhead("pool", 3, timeout=5)
    tally = os.path.join(str(tmp_path), "tally")
    with open(tally, "wb") as f:
        f.write(bytes(8))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BULKHEAD_WORKER, region_name, tally, "1000", str(i)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        results.append(tuple(int(x) for x in out.split()))
    assert all(over == 0 for _, _, over in results), results
    assert sum(a for a, _, _ in results) == 8 * 1000  # every waiter got in
    snap = bulkhead.snapshot()
    assert snap["in_use"] == 0 and snap["peak"] == 3 and snap["rejected"] == 0


HOLDER = textwrap.dedent(
    """
    import sys, time, failwell
    bulkhead = failwell.SharedRegion(sys.argv[1]).attach_bulkhead("pool")
    held = [bulkhead.acquire(timeout=5) for _ in range(int(sys.argv[2]))]
    print("READY", flush=True)
    time.sleep(60)
    """
)


def test_permits_of_a_killed_worker_come_back_within_a_second(region_name: str) -> None:
    import signal

    bulkhead = failwell.SharedRegion(region_name).bulkhead("pool", 4, timeout=2)
    for round in range(6):
        held = 1 + round % 4
        with subprocess.Popen(
            [sys.executable, "-c", HOLDER, region_name, str(held)], stdout=subprocess.PIPE, text=True
        ) as p:
            try:
                assert p.stdout is not None and p.stdout.readline().strip() == "READY"
                assert bulkhead.snapshot()["in_use"] == held
                os.kill(p.pid, signal.SIGKILL)
                killed = time.monotonic()
                p.wait(timeout=10)
                permits = [bulkhead.acquire(timeout=2) for _ in range(4)]  # waits for the reaper
                back = time.monotonic() - killed
                assert back < 1.0, back
                for permit in permits:
                    permit.release()
            finally:
                p.kill()
    assert bulkhead.snapshot()["in_use"] == 0


WAITER = textwrap.dedent(
    """
    import sys, time, failwell
    bulkhead = failwell.SharedRegion(sys.argv[1]).attach_bulkhead("pool")
    print("WAITING", flush=True)
    start = time.monotonic()
    with bulkhead:
        pass
    print(time.monotonic() - start, flush=True)
    """
)


def test_a_waiter_is_woken_by_a_release_in_another_process(region_name: str) -> None:
    bulkhead = failwell.SharedRegion(region_name).bulkhead("pool", 1)
    permit = bulkhead.acquire()
    waiter = WAITER.replace('attach_bulkhead("pool")', 'attach_bulkhead("pool", timeout=10)')
    with subprocess.Popen([sys.executable, "-c", waiter, region_name], stdout=subprocess.PIPE, text=True) as p:
        try:
            assert p.stdout is not None and p.stdout.readline().strip() == "WAITING"
            time.sleep(0.3)
            permit.release()
            out, _ = p.communicate(timeout=20)
        finally:
            p.kill()
    assert p.returncode == 0
    assert 0.2 < float(out) < 3.0, out  # woken by the release, not its 10 s timeout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_workers_share_a_bulkhead_made_before_the_fork(region_name: str) -> None:
    bulkhead = failwell.SharedRegion(region_name).bulkhead("pool", 2, timeout=5)
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                for _ in range(500):
                    with bulkhead:
                        if bulkhead.snapshot()["in_use"] > 2:
                            code = 1
            except BaseException:
                code = 2
            os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert bulkhead.snapshot()["in_use"] == 0 and 1 <= bulkhead.snapshot()["peak"] <= 2


def test_a_shared_breaker_is_one_verdict_in_every_form(region_name: str) -> None:
    a, b = failwell.SharedRegion(region_name), failwell.SharedRegion(region_name)
    ba = a.circuit_breaker("dep", consecutive_failures=3, open_for=HOUR)
    bb = b.attach_circuit_breaker("dep", name="dep-b", exclude=KeyError)
    assert isinstance(bb, failwell.CircuitBreaker) and (ba.name, bb.name) == ("dep", "dep-b")
    heard: List[Tuple[str, str]] = []
    bb.add_listener(lambda old, new: heard.append((old, new)))

    @ba
    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        down()
    with pytest.raises(KeyError):  # excluded here: a success, it breaks the run
        with bb:
            raise KeyError("absent")
    for _ in range(2):
        with pytest.raises(ConnectionError):
            bb.call(down.__wrapped__)  # type: ignore[attr-defined]

    async def main() -> None:
        async with bb:
            raise ConnectionError("down")

    import asyncio

    with pytest.raises(ConnectionError):
        asyncio.run(main())  # the third in a row: open for every process
    assert ba.state == bb.state == "open"
    with pytest.raises(failwell.CircuitOpenError) as e:
        down()
    assert e.value.retry_after is not None and e.value.retry_after > HOUR - 60
    with pytest.raises(failwell.CircuitOpenError):
        with bb:  # bb's next call: its listener hears of a's trip
            pass
    assert heard == [("closed", "open")]
    snap = bb.snapshot()
    assert snap["opened"] == 1 and snap["failures"] == 4 and snap["rejected"] == 2
    with pytest.raises(ValueError, match="^reconfigure: "):
        ba.reconfigure(open_for=1)
    ba.reset()
    assert bb.state == "closed"


def test_shared_breaker_arguments_and_mismatches(region_name: str) -> None:
    r = failwell.SharedRegion(region_name)
    r.circuit_breaker("dep", consecutive_failures=3)
    with pytest.raises(failwell.RegionError, match='slot "dep" exists.*consecutive_failures: 3.*attach'):
        r.circuit_breaker("dep", consecutive_failures=4)
    assert r.circuit_breaker("dep", consecutive_failures=3).state == "closed"
    with pytest.raises(failwell.RegionError, match="holds a circuit breaker, not a bulkhead"):
        r.bulkhead("dep", 3)
    with pytest.raises(failwell.RegionError, match='no slot "absent"'):
        r.attach_circuit_breaker("absent")
    with pytest.raises(ValueError, match="^consecutive_failures: must be at least 1"):
        r.circuit_breaker("other", consecutive_failures=0)
    with pytest.raises(TypeError, match="window"):
        r.circuit_breaker("other", failure_rate=0.5, window=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^failure_rate"):
        r.circuit_breaker("other", failure_rate=float("nan"))
    with pytest.raises(ValueError, match="^slot: must not be empty"):
        r.circuit_breaker("", consecutive_failures=1)
    assert r.names() == ["dep"]
    windowed = r.circuit_breaker("windowed", failure_rate=0.25, window_duration=30, minimum_calls=4)
    assert r.attach_circuit_breaker("windowed").snapshot() == windowed.snapshot()


OUTAGE_WORKER = textwrap.dedent(
    """
    import sys, time, failwell
    name, start = sys.argv[1], float(sys.argv[2])
    breaker = failwell.SharedRegion(name).circuit_breaker("dep", consecutive_failures=5, open_for=3600)
    while time.time() < start:
        pass
    made = 0
    while True:
        try:
            with breaker:
                made += 1
                raise ConnectionError("the dependency is down")
        except ConnectionError:
            pass
        except failwell.CircuitOpenError:
            break
    print(made)
    """
)


def test_eight_worker_processes_discover_an_outage_together(region_name: str) -> None:
    breaker = failwell.SharedRegion(region_name).circuit_breaker("dep", consecutive_failures=5, open_for=HOUR)
    start = time.time() + 1.0  # every worker imported and attached by then
    procs = [
        subprocess.Popen([sys.executable, "-c", OUTAGE_WORKER, region_name, str(start)], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    made = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        made.append(int(out))
    # 5 failures trip it; at most one call per other worker was in flight.
    assert 5 <= sum(made) <= 5 + 7, made
    assert breaker.state == "open" and breaker.snapshot()["opened"] == 1


PROBE_HOLDER = textwrap.dedent(
    """
    import sys, time, failwell
    breaker = failwell.SharedRegion(sys.argv[1]).attach_circuit_breaker("dep")
    permit = breaker.acquire()  # the half-open's only probe
    print("READY", flush=True)
    time.sleep(60)
    """
)


def test_the_probe_of_a_killed_worker_comes_back_within_a_second(region_name: str) -> None:
    import signal

    breaker = failwell.SharedRegion(region_name).circuit_breaker(
        "dep", consecutive_failures=1, half_open_calls=1, half_open_max_wait=HOUR, open_for=HOUR
    )
    for _ in range(4):
        breaker.force_open()
        breaker.reset()
        with pytest.raises(ConnectionError):
            with breaker:
                raise ConnectionError("down")
        breaker.open_for(0)  # the next caller is the half-open's probe
        with subprocess.Popen(
            [sys.executable, "-c", PROBE_HOLDER, region_name], stdout=subprocess.PIPE, text=True
        ) as p:
            try:
                assert p.stdout is not None and p.stdout.readline().strip() == "READY"
                assert breaker.state == "half_open"
                with pytest.raises(failwell.CircuitOpenError):
                    with breaker:
                        pass
                os.kill(p.pid, signal.SIGKILL)
                killed = time.monotonic()
                p.wait(timeout=10)
                while True:
                    try:
                        with breaker:
                            break  # the probe slot came back: this is the probe
                    except failwell.CircuitOpenError:
                        assert time.monotonic() - killed < 1.0, "the probe slot is lost"
                        time.sleep(0.005)
            finally:
                p.kill()
        assert breaker.state == "closed"

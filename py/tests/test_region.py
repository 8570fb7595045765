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

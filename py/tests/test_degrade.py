import asyncio
import threading

import pytest

from failwell import Served, StaleCache, fallback


class Source:
    def __init__(self):
        self.up = True
        self.calls = 0

    def get(self, user_id):
        self.calls += 1
        if not self.up:
            raise ConnectionError("db down")
        return {"id": user_id, "v": self.calls}


def test_get_or_fetch_serves_fresh_then_stale_then_raises():
    cache = StaleCache(max_stale=0.2)
    src = Source()
    fresh = cache.get_or_fetch(("user", 7), src.get, 7)
    assert fresh == Served({"id": 7, "v": 1}, False, 0.0, None)
    src.up = False
    stale = cache.get_or_fetch(("user", 7), src.get, 7)
    assert stale.stale and stale.value == {"id": 7, "v": 1}
    assert 0 <= stale.age < 0.2 and isinstance(stale.error, ConnectionError)
    with pytest.raises(ConnectionError):
        cache.get_or_fetch(("user", 8), src.get, 8)  # never cached
    import time

    time.sleep(0.25)
    with pytest.raises(ConnectionError):
        cache.get_or_fetch(("user", 7), src.get, 7)  # too old now
    s = cache.snapshot()
    assert (s["fresh"], s["stale"], s["misses"], s["entries"]) == (1, 1, 2, 1)


def test_base_exceptions_are_not_served_stale():
    cache = StaleCache()
    cache.get_or_fetch("k", lambda: 1)

    def interrupted():
        raise KeyboardInterrupt()

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_fetch("k", interrupted)


def test_keys():
    cache = StaleCache()
    for k in (None, True, 1, 2**100, 1.5, "s", b"b", ("t", (1, None))):
        assert cache.get_or_fetch(k, lambda: k).value == k
    assert cache.snapshot()["entries"] == 8
    with pytest.raises(TypeError, match="key"):
        cache.get_or_fetch(["list"], lambda: 1)
    with pytest.raises(TypeError, match="key"):
        cache.get_or_fetch(("t", {}), lambda: 1)
    with pytest.raises(ValueError, match="128"):
        cache.get_or_fetch(2**200, lambda: 1)


def test_capacity_drops_the_oldest():
    cache = StaleCache(capacity=2)
    for k in "abc":
        cache.get_or_fetch(k, lambda: k)
    assert cache.snapshot()["entries"] == 2

    def down():
        raise OSError()

    with pytest.raises(OSError):
        cache.get_or_fetch("a", down)
    assert cache.get_or_fetch("c", down).stale


def test_decorator_forms_sync_and_async():
    cache = StaleCache()
    src = Source()
    stale_seen = []

    @cache
    def get_user(user_id: int) -> dict:
        """Doc."""
        return src.get(user_id)

    @cache(key=lambda user_id: ("u", user_id), on_stale=stale_seen.append)
    async def get_user_async(user_id: int) -> dict:
        await asyncio.sleep(0)
        return src.get(user_id)

    assert get_user(1)["v"] == 1 and get_user.__doc__ == "Doc."
    src.up = False
    assert get_user(1)["v"] == 1  # stale
    src.up = True
    assert asyncio.run(get_user_async(2))["v"] == 3
    src.up = False
    assert asyncio.run(get_user_async(2))["v"] == 3
    assert len(stale_seen) == 1 and stale_seen[0].stale


def test_concurrent_use_counts_every_serve(run_threads):
    cache = StaleCache()
    for n in range(10):
        cache.get_or_fetch(("k", n), lambda n=n: n)
    fails = threading.Event()
    served = [[0, 0] for _ in range(8)]  # per thread: fresh, stale

    def fetch(n):
        if fails.is_set():
            raise OSError()
        return n

    def work(i):
        for n in range(500):
            if i == 0 and n == 250:
                fails.set()
            out = cache.get_or_fetch(("k", n % 10), fetch, n % 10)
            assert out.value == n % 10
            served[i][out.stale] += 1

    run_threads(8, work)
    s = cache.snapshot()
    assert s["fresh"] == 10 + sum(f for f, _ in served)
    assert s["stale"] == sum(st for _, st in served) > 0
    assert s["misses"] == 0 and s["entries"] == 10


def test_fallback_sync_and_async():
    @fallback(lambda exc, user_id: {"id": user_id, "from": "cache"})
    def get(user_id):
        raise ConnectionError()

    assert get(3) == {"id": 3, "from": "cache"}

    @fallback(lambda exc: "default", on=KeyError)
    def only_key_errors(x):
        raise ValueError()

    with pytest.raises(ValueError):
        only_key_errors(1)

    async def secondary(exc, x):
        return x * 10

    @fallback(secondary)
    async def aget(x):
        raise OSError()

    assert asyncio.run(aget(2)) == 20
    with pytest.raises(TypeError, match="on"):
        fallback(lambda e: 1, on=int)
    with pytest.raises(TypeError, match="handler"):
        fallback(3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_stale"):
        StaleCache(max_stale=0)
    with pytest.raises(ValueError, match="capacity"):
        StaleCache(capacity=0)
    with pytest.raises(ValueError, match="capacity"):
        StaleCache(capacity=-1)

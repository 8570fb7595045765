"""Every guard in every form: decorator bare and with arguments, on sync and
``async def`` functions and on methods, ``with``, ``async with``, ``.call``
and ``.call_async`` — each must run the call once, pass arguments and the
result through, and keep the wrapped function's metadata."""

import asyncio
import inspect

import pytest

import failwell

GUARDS = {
    "breaker": (lambda: failwell.CircuitBreaker(consecutive_failures=3), {"exclude": [KeyError]}),
    "bulkhead": (lambda: failwell.Bulkhead(4, timeout=0.5), {"timeout": 0.1, "priority": "critical"}),
    "rate_limiter": (lambda: failwell.RateLimiter(10_000, burst=100), {"cost": 2, "timeout": 0.1}),
    "adaptive_limit": (lambda: failwell.AdaptiveLimit(initial_limit=8, min_limit=8), {"priority": "critical"}),
}


def subject(x, *, y=1):
    """Adds."""
    return x + y


async def asubject(x, *, y=1):
    """Adds later."""
    await asyncio.sleep(0)
    return x + y


@pytest.mark.parametrize("kind", GUARDS)
@pytest.mark.parametrize("with_args", [False, True], ids=["bare", "with-args"])
def test_sync_decorators(kind, with_args):
    make, kwargs = GUARDS[kind]
    g = make()
    f = g(**kwargs)(subject) if with_args else g(subject)
    assert f(1, y=2) == 3
    assert f.__name__ == "subject" and f.__doc__ == "Adds."
    assert inspect.signature(f) == inspect.signature(subject)
    assert not inspect.iscoroutinefunction(f)

    class Box:
        @(g(**kwargs) if with_args else g)
        def add(self, x):
            return (self, x)

    b = Box()
    assert b.add(5) == (b, 5)


@pytest.mark.parametrize("kind", GUARDS)
@pytest.mark.parametrize("with_args", [False, True], ids=["bare", "with-args"])
def test_async_decorators(kind, with_args):
    make, kwargs = GUARDS[kind]
    g = make()
    f = g(**kwargs)(asubject) if with_args else g(asubject)
    assert inspect.iscoroutinefunction(f)
    assert f.__name__ == "asubject" and inspect.signature(f) == inspect.signature(asubject)

    class Box:
        @(g(**kwargs) if with_args else g)
        async def add(self, x):
            return (self, x)

    async def main():
        b = Box()
        assert await f(1, y=2) == 3
        assert await b.add(5) == (b, 5)

    asyncio.run(main())


@pytest.mark.parametrize("kind", GUARDS)
def test_blocks_and_calls(kind):
    make, _ = GUARDS[kind]
    g = make()
    with g:
        pass
    assert g.call(subject, 1, y=5) == 6

    async def main():
        async with g:
            await asyncio.sleep(0)
        if hasattr(g, "call_async"):
            assert await g.call_async(asubject, 2, y=2) == 4

    asyncio.run(main())


def test_retry_and_chaos_forms():
    for deco in (failwell.retry, failwell.retry(max_attempts=2), failwell.Retry(), failwell.Chaos()):
        f = deco(subject)
        assert f(1, y=2) == 3 and f.__name__ == "subject"
        a = deco(asubject)
        assert inspect.iscoroutinefunction(a)
        assert asyncio.run(a(1, y=2)) == 3
    assert failwell.Retry().call(subject, 1) == 2
    assert asyncio.run(failwell.Retry().call_async(asubject, 1)) == 2
    assert failwell.Chaos().call(subject, 1) == 2
    assert asyncio.run(failwell.Chaos().call_async(asubject, 1)) == 2


@pytest.mark.parametrize("kind", GUARDS)
def test_decorating_a_non_callable_is_a_type_error(kind):
    make, _ = GUARDS[kind]
    with pytest.raises(TypeError):
        make()(42)


def test_an_object_with_an_async_call_is_decorated_in_its_async_form():
    """Counted when its coroutine has run, not when it was created."""
    import asyncio

    import failwell

    class Client:
        def __init__(self):
            self.calls = 0

        async def __call__(self, fail):
            self.calls += 1
            await asyncio.sleep(0)
            if fail:
                raise OSError("down")
            return "ok"

    breaker = failwell.CircuitBreaker(consecutive_failures=2)
    guarded = breaker(Client())
    assert asyncio.iscoroutinefunction(guarded)
    assert asyncio.run(guarded(False)) == "ok"
    for _ in range(2):
        try:
            asyncio.run(guarded(True))
        except OSError:
            pass
    s = breaker.snapshot()
    assert (s["successes"], s["failures"], s["state"]) == (1, 2, "open")
    retried = failwell.Retry(max_attempts=3, backoff=failwell.Backoff.constant(0.001))(Client())
    client_calls = []

    async def main():
        try:
            await retried(True)
        except OSError:
            client_calls.append("gave up")

    asyncio.run(main())
    assert client_calls == ["gave up"]

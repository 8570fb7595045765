"""RateLimiter: the native class plus its decorator and ``async with``
forms (``with`` and ``call`` are native)."""

from __future__ import annotations

import functools
from types import TracebackType
from typing import Any, Awaitable, Callable, Optional, Type, overload

from . import _native, _util
from ._errors import RateLimitedError
from ._types import Decorator, P, R
from ._util import Seconds


class RateLimiter(_native.RateLimiter):
    """``requests`` per ``period`` seconds (default 1 s), bursts up to
    ``burst`` (default ``requests``): GCRA on one atomic word.

    ``timeout``: how long ``with``, the decorator and ``call`` wait for a
    token (default 0: refuse at once with :class:`failwell.RateLimitedError`,
    whose ``retry_after`` says when one will be free). Sync waits sleep with
    the GIL released; async waits ``asyncio.sleep`` exactly as long as the
    limiter says. ``precise=True`` reads CLOCK_MONOTONIC instead of the
    coarse clock (default: up to one clock tick of extra burst).

    Use it as ``@limiter``, ``@limiter(cost=..., timeout=...)``,
    ``with limiter:``, ``async with limiter:``, ``limiter.call(f, ...)``,
    ``try_acquire(cost)`` or ``acquire(cost, timeout)``. Thread-safe.
    """

    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def __call__(
        self, func: None = None, /, *, cost: int = 1, timeout: Optional[Seconds] = None
    ) -> Decorator: ...

    def __call__(self, func: Any = None, /, *, cost: int = 1, timeout: Optional[Seconds] = None) -> Any:
        if func is None:
            self._wrap(_util.noop, cost, timeout)  # validates the arguments now
            return lambda f: self._decorate(f, cost, timeout)
        return self._decorate(func, cost, timeout)

    def _decorate(self, func: Any, cost: int, timeout: Optional[Seconds]) -> Any:
        if not callable(func):
            raise TypeError(f"a rate limiter decorates a callable, got {type(func).__name__}")
        native = self._wrap(func, cost, timeout)  # validates the arguments
        if _util.is_async(func):
            wait = _util.seconds(timeout, "timeout")

            @functools.wraps(func)
            async def limited(*args: Any, **kwargs: Any) -> Any:
                await self.acquire_async(cost, wait)
                return await func(*args, **kwargs)

            return limited
        return functools.update_wrapper(native, func)

    async def acquire_async(self, cost: int = 1, timeout: Optional[Seconds] = None) -> None:
        """Takes ``cost`` tokens, sleeping with asyncio at most ``timeout``
        seconds (default: the limiter's own); raises RateLimitedError."""
        import asyncio

        budget = self.timeout if timeout is None else _util.seconds(timeout, "timeout")
        assert budget is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + budget
        while True:
            wait = self._try_or_wait(cost)
            if wait == 0.0:
                return
            if loop.time() + wait > end:
                raise RateLimitedError("rate limit exceeded", wait)
            await asyncio.sleep(wait)

    async def __aenter__(self) -> None:
        await self.acquire_async(1)

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        return None

    async def call_async(self, func: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Awaits ``func(*args, **kwargs)`` once a token is taken."""
        await self.acquire_async(1)
        return await func(*args, **kwargs)

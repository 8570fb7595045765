"""Bulkhead: the native class plus its decorator and ``async with``
forms (``with`` and ``call`` are native)."""

from __future__ import annotations

import functools
from types import TracebackType
from typing import Any, Awaitable, Callable, Optional, Type, overload

from . import _native, _util
from ._errors import BulkheadFullError
from ._types import Decorator, P, R
from ._util import Seconds


class Bulkhead(_native.Bulkhead):
    """At most ``max_concurrent`` calls at once (default 25), with
    ``critical_reserve`` permits kept for ``priority="critical"`` callers.

    ``timeout``: how long ``with``, the decorator and ``call`` wait for a
    permit (default 0: refuse at once with :class:`failwell.BulkheadFullError`).
    Sync waits sleep with the GIL released. Async waits never block the
    loop: a waiting task is woken at once by a permit returned from async
    code (``async with``, async decorators, ``call_async``) on any loop or
    thread, and otherwise re-checks with ``asyncio.sleep`` (0.5 ms doubling
    to 50 ms), which also covers permits returned by sync code.

    Use it as ``@bulkhead``, ``@bulkhead(timeout=..., priority=...)``,
    ``with bulkhead:``, ``async with bulkhead:``, ``bulkhead.call(f, ...)``,
    or take a permit with ``acquire()`` / ``try_acquire()``. Thread-safe.
    """

    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def __call__(
        self, func: None = None, /, *, timeout: Optional[Seconds] = None, priority: str = "normal"
    ) -> Decorator: ...

    def __call__(
        self, func: Any = None, /, *, timeout: Optional[Seconds] = None, priority: str = "normal"
    ) -> Any:
        if func is None:
            self._wrap(_util.noop, timeout, priority)  # validates the arguments now
            return lambda f: self._decorate(f, timeout, priority)
        return self._decorate(func, timeout, priority)

    def _decorate(self, func: Any, timeout: Optional[Seconds], priority: str) -> Any:
        if not callable(func):
            raise TypeError(f"a bulkhead decorates a callable, got {type(func).__name__}")
        native = self._wrap(func, timeout, priority)  # validates the arguments
        if _util.is_async(func):
            wait = self.timeout if timeout is None else _util.seconds(timeout, "timeout")

            @functools.wraps(func)
            async def held(*args: Any, **kwargs: Any) -> Any:
                await self._atake(wait, priority)
                try:
                    return await func(*args, **kwargs)
                finally:
                    self._arelease()

            return held
        return functools.update_wrapper(native, func)

    def _async_waiters(self) -> _util.Waiters:
        w: Optional[_util.Waiters] = self.__dict__.get("_waiters")
        if w is None:
            w = self.__dict__.setdefault("_waiters", _util.Waiters())
        return w

    async def _atake(self, timeout: Optional[float], priority: str) -> None:
        wait = self.timeout if timeout is None else timeout
        ready = lambda: self.available > 0 and self._try_take(priority)  # noqa: E731
        if not await self._async_waiters().wait(ready, wait):
            if not self._try_take(priority):  # counts the refusal
                raise BulkheadFullError("bulkhead is full")

    def _arelease(self) -> None:
        """Returns a permit taken by ``_atake`` and wakes one async waiter."""
        self._release()
        waiters: Optional[_util.Waiters] = self.__dict__.get("_waiters")
        if waiters is not None:
            waiters.wake_one()

    async def __aenter__(self) -> None:
        await self._atake(None, "normal")

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._arelease()

    async def call_async(self, func: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Awaits ``func(*args, **kwargs)`` holding a permit."""
        async with self:
            return await func(*args, **kwargs)

"""CircuitBreaker: the native breaker plus its decorator, ``with`` and
``async with`` forms."""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, overload

from . import _native, _util
from ._types import Decorator, Exclude, P, R


class CircuitBreaker(_native.CircuitBreaker, _util.Blocks[_native.BreakerPermit]):
    """Fails fast while a dependency is sick.

    Policies (any combination; with none given, the failure rate over the
    last 100 calls trips at 50 %, resilience4j's default):
    ``consecutive_failures=n``; ``failure_rate=f`` over ``window=n`` calls or
    ``window_duration=s`` seconds (``window_buckets``, default 10);
    ``slow_call_rate=f`` for calls of at least ``slow_call_duration`` (60 s;
    given alone, it turns the slow-call policy on at a rate of 100 %).
    ``minimum_calls`` before a rate may trip (default: the count window's
    size, or 100). Open lasts ``open_for`` (60 s), growing by
    ``open_for_multiplier`` up to ``open_for_max`` on repeated trips; then up
    to ``half_open_calls`` (10) probes decide, and a half-open with no
    verdict within ``half_open_max_wait`` (60 s) reopens.

    ``exclude``: exception types or predicates whose exceptions count as
    successes (the dependency answered). Exceptions that are not
    ``Exception`` (KeyboardInterrupt, SystemExit, asyncio.CancelledError)
    never count; their permit is freed.

    Use it as ``@breaker``, ``@breaker(exclude=...)``, ``with breaker:``,
    ``async with breaker:`` or ``breaker.call(f, *args, **kwargs)``. An open
    breaker raises :class:`failwell.CircuitOpenError` with ``retry_after``.
    Thread-safe; one breaker serves every thread and task.
    """

    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def __call__(self, func: None = None, /, *, exclude: Exclude = None) -> Decorator: ...

    def __call__(self, func: Any = None, /, *, exclude: Exclude = None) -> Any:
        if func is None:
            self._wrap(_util.noop, exclude)  # validates the arguments now
            return lambda f: self._decorate(f, exclude)
        return self._decorate(func, exclude)

    def _decorate(self, func: Any, exclude: Exclude) -> Any:
        if not callable(func):
            raise TypeError(f"a breaker decorates a callable, got {type(func).__name__}")
        if _util.is_async(func):
            acquire = self._acquire_with

            @functools.wraps(func)
            async def guarded(*args: Any, **kwargs: Any) -> Any:
                permit = acquire(exclude)
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    permit.record_exception(exc)
                    raise
                permit.success()
                return result

            return guarded
        return functools.update_wrapper(self._wrap(func, exclude), func)

    def _enter(self) -> _native.BreakerPermit:
        return self.acquire()

    def _leave(self, permit: _native.BreakerPermit, exc: Optional[BaseException]) -> None:
        if not permit.pending:
            return  # recorded by hand inside the block
        if exc is None:
            permit.success()
        else:
            permit.record_exception(exc)

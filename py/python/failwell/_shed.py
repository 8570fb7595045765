"""AdaptiveLimit and Chaos: the native classes plus their Python forms."""

from __future__ import annotations

import asyncio
import functools
import time
from types import TracebackType
from typing import Any, Awaitable, Callable, Optional, Type, overload

from . import _native, _util
from ._errors import InjectedFault
from ._types import Decorator, P, R
from ._util import Seconds


def _finish(permit: _native.ShedPermit, exc: Optional[BaseException]) -> None:
    if not permit.pending:
        return
    if exc is None:
        permit.success()
    elif isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        permit.dropped()
    else:
        permit.ignore()


class AdaptiveLimit(_native.AdaptiveLimit, _util.Blocks[_native.ShedPermit]):
    """An adaptive concurrency limit (load shedding): admits calls while
    fewer than ``limit`` are in flight, and moves the limit with the
    latencies it sees — ``"gradient"`` (default) or ``"aimd"``. Over the
    limit, :class:`failwell.ShedError`; ``priority="critical"`` callers may
    use the share normal callers leave (``critical_fraction``, 10 %).

    Use it as ``@limit``, ``with limit:``, ``async with limit:`` or
    ``limit.call(f, ...)``: a call that returns is a latency sample; one
    that raises ``TimeoutError`` is a drop (the limit backs off); other
    exceptions return the permit without a sample. Thread-safe.
    """

    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def __call__(self, func: None = None, /, *, priority: str = "normal") -> Decorator: ...

    def __call__(self, func: Any = None, /, *, priority: str = "normal") -> Any:
        _util.check_priority(priority)
        if func is None:
            return lambda f: self._decorate(f, priority)
        return self._decorate(func, priority)

    def _decorate(self, func: Any, priority: str) -> Any:
        if not callable(func):
            raise TypeError(f"an adaptive limit decorates a callable, got {type(func).__name__}")
        if _util.is_async(func):

            @functools.wraps(func)
            async def limited_async(*args: Any, **kwargs: Any) -> Any:
                permit = self.acquire(priority)
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    _finish(permit, exc)
                    raise
                _finish(permit, None)
                return result

            return limited_async

        @functools.wraps(func)
        def limited(*args: Any, **kwargs: Any) -> Any:
            permit = self.acquire(priority)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                _finish(permit, exc)
                raise
            _finish(permit, None)
            return result

        return limited

    def _enter(self) -> _native.ShedPermit:
        return self.acquire()

    def _leave(self, permit: _native.ShedPermit, exc: Optional[BaseException]) -> None:
        _finish(permit, exc)


class Chaos(_native.Chaos):
    """Seeded fault and latency injection, for tests and game days: delays
    ``latency_rate`` of calls by ``latency`` seconds and fails
    ``fault_rate`` of them with ``error`` (an exception instance or a
    callable making one; default :class:`failwell.InjectedFault`).

    Use it as ``@chaos`` (sync or async; async delays sleep with asyncio) or
    ``chaos.call(f, ...)``; switch it with ``set_enabled``,
    ``set_fault_rate``, ``set_latency``. Thread-safe.
    """

    def __init__(
        self,
        *,
        fault_rate: float = 0.0,
        latency_rate: float = 0.0,
        latency: Optional[Seconds] = None,
        seed: Optional[int] = None,
        enabled: bool = True,
        error: Any = None,
    ) -> None:
        # The native __new__ has taken the injection settings.
        self._error = error

    def _fault(self) -> BaseException:
        e = self._error
        if e is None:
            return InjectedFault("failwell.Chaos injected a fault")
        if isinstance(e, BaseException):
            return e
        made = e()
        if not isinstance(made, BaseException):
            raise TypeError("Chaos error= must be an exception or make one")
        return made

    def call(self, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Maybe sleeps, maybe raises the fault, else calls ``func``."""
        delay = self.injected_latency()
        if delay is not None:
            time.sleep(delay)
        if self.should_fail():
            raise self._fault()
        return func(*args, **kwargs)

    async def call_async(self, func: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """As :meth:`call`, sleeping with asyncio."""
        delay = self.injected_latency()
        if delay is not None:
            await asyncio.sleep(delay)
        if self.should_fail():
            raise self._fault()
        return await func(*args, **kwargs)

    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]:
        if _util.is_async(func):

            @functools.wraps(func)
            async def chaotic_async(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(func, *args, **kwargs)

            return chaotic_async  # type: ignore[return-value]

        @functools.wraps(func)
        def chaotic(*args: Any, **kwargs: Any) -> Any:
            return self.call(func, *args, **kwargs)

        return chaotic

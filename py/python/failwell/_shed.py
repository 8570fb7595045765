"""AdaptiveLimit: the native class plus its Python forms."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Optional, overload

from . import _native, _util
from ._types import Decorator, P, R


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

"""Chaos: the native fault and latency injector plus its Python forms."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Awaitable, Callable, Optional

from . import _native, _util
from ._errors import InjectedFault
from ._types import P, R
from ._util import Seconds


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

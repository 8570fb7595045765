"""Shared pieces of the Python layer: the per-task stack of held permits
and the async waits."""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import math
from types import TracebackType
from typing import Any, Awaitable, Callable, Generic, Optional, Tuple, Type, TypeVar, Union

from ._types import P, R

T = TypeVar("T")

Seconds = Union[float, int, datetime.timedelta]

# (owner, permit, rest): the permits taken by ``with x:`` blocks of the
# current thread or asyncio task, innermost first. A ContextVar, so that
# blocks in different threads and tasks never see each other's permits.
_held: contextvars.ContextVar[Optional[Tuple[Any, Any, Any]]] = contextvars.ContextVar(
    "failwell_held", default=None
)


def push(owner: object, permit: object) -> None:
    _held.set((owner, permit, _held.get()))


def pop(owner: object) -> Any:
    """The innermost permit ``owner`` pushed in this context."""
    node = _held.get()
    skipped = []
    while node is not None and node[0] is not owner:
        skipped.append(node[:2])
        node = node[2]
    if node is None:
        raise RuntimeError("__exit__ without a matching __enter__ in this thread or task")
    rest = node[2]
    for o, p in reversed(skipped):
        rest = (o, p, rest)
    _held.set(rest)
    return node[1]


def seconds(value: Optional[Seconds], name: str) -> Optional[float]:
    """A duration argument as float seconds (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be seconds (float) or a datetime.timedelta, got bool")
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be seconds (float) or a datetime.timedelta, got {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


async def poll(try_once: Any, timeout: float) -> bool:
    """Calls ``try_once()`` until it returns true or ``timeout`` seconds
    pass, sleeping with asyncio between tries (0.5 ms doubling to 50 ms) so
    the event loop never blocks."""
    if try_once():
        return True
    if timeout <= 0:
        return False
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    pause = 0.0005
    while True:
        left = end - loop.time()
        if left <= 0:
            return False
        await asyncio.sleep(min(pause, left))
        if try_once():
            return True
        pause = min(pause * 2, 0.05)


class Blocks(Generic[T]):
    """``with``, ``async with`` and ``call_async`` for a guard whose permit
    must be remembered from a block's entry to its exit (kept per thread and
    per task, see ``push``). Subclasses define ``_enter()``, which takes the
    permit, and ``_leave(permit, exc)``, which records how the block ended."""

    __slots__ = ()

    def _enter(self) -> T:
        raise NotImplementedError

    def _leave(self, held: T, exc: Optional[BaseException]) -> None:
        raise NotImplementedError

    def __enter__(self) -> T:
        held = self._enter()
        push(self, held)
        return held

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._leave(pop(self), exc)

    async def __aenter__(self) -> T:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    async def call_async(self, func: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Awaits ``func(*args, **kwargs)`` inside an ``async with`` block."""
        async with self:
            return await func(*args, **kwargs)

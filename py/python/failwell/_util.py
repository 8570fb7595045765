"""Shared pieces of the Python layer: the per-task stack of held permits
and the async waits."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import datetime
import inspect
import threading
from types import TracebackType
from typing import Any, Awaitable, Callable, Deque, Generic, Optional, Tuple, Type, TypeVar, Union

from . import _native
from ._types import P, R, TypeGuard

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
    """A duration argument as float seconds (None stays None), checked by
    the native rule every constructor uses (seconds or a timedelta; not a
    bool, not negative, finite, representable)."""
    return _native._seconds(value, name)


def noop() -> None:
    """A callable to wrap when only the wrapping's argument checks matter."""


def check_priority(priority: object) -> None:
    """A priority argument: ``"normal"`` or ``"critical"`` (the native rule)."""
    _native._check_priority(priority)


def is_async(func: Any) -> TypeGuard[Callable[..., Awaitable[Any]]]:
    """Whether calling ``func`` gives a coroutine to await: an ``async def``
    function or method (or a ``functools.partial`` of one), or an object
    whose class defines ``async def __call__``. The decorators choose their
    async form by it, so that the call is counted when it has run, not when
    its coroutine was created."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(type(func), "__call__", None))


class Waiters:
    """Async tasks waiting for something that another task (on any loop or
    thread) may hand back: ``wait`` re-checks ``try_once`` with
    ``asyncio`` sleeps (``FIRST_PAUSE`` doubling to ``MAX_PAUSE``), and
    ``wake_one`` cuts the sleep of the longest-waiting task short. A wake is
    a hint — the woken task tries again and may lose the race — so nothing
    is ever given away by it, and a permit returned without a wake (by sync
    code) is still found at the next re-check."""

    __slots__ = ("_lock", "_queue")

    #: The first re-check pause and the most it doubles to, in seconds.
    FIRST_PAUSE = 0.0005
    MAX_PAUSE = 0.05

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: Deque[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]] = collections.deque()

    async def wait(self, try_once: Any, timeout: float) -> bool:
        """Calls ``try_once()`` until it returns true or ``timeout`` seconds
        pass, never blocking the event loop; woken early by
        :meth:`wake_one`."""
        if try_once():
            return True
        if timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        pause = self.FIRST_PAUSE
        while True:
            left = end - loop.time()
            if left <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            entry = (loop, fut)
            with self._lock:
                self._queue.append(entry)
            handle = loop.call_later(min(pause, left), _settle, fut)
            try:
                await fut
            finally:
                handle.cancel()
                with self._lock:
                    try:
                        self._queue.remove(entry)
                    except ValueError:
                        pass  # taken by wake_one
            if try_once():
                return True
            pause = min(pause * 2, self.MAX_PAUSE)

    def wake_one(self) -> None:
        """Wakes the longest-waiting task, if any (thread-safe)."""
        with self._lock:
            if not self._queue:
                return
            loop, fut = self._queue.popleft()
        try:
            loop.call_soon_threadsafe(_settle, fut)
        except RuntimeError:
            pass  # that loop has closed: nobody is waiting on it any more


def _settle(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


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

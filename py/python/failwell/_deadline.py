"""Deadline: propagated timeouts, and timed calls."""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import Any, Callable, Optional, Type, TypeVar

from . import _native, _util
from ._util import Seconds

R = TypeVar("R")

_current: contextvars.ContextVar[Optional["Deadline"]] = contextvars.ContextVar(
    "failwell_deadline", default=None
)


class Deadline(_native.Deadline):
    """An instant by which work must be done, on the monotonic clock.

    ``with Deadline.after(2.0):`` makes it the current deadline of the
    thread or asyncio task for the block — never later than one already in
    force, so a callee cannot extend its caller's budget. Retries
    (:class:`failwell.Retry`) never sleep past the current deadline, and
    :func:`call_with_timeout` never waits past it.
    """

    @classmethod
    def after(cls, timeout: Seconds) -> "Deadline":
        """``timeout`` seconds from now."""
        return cls(timeout)

    @classmethod
    def never(cls) -> "Deadline":
        """A deadline that never passes."""
        return cls(None)

    @staticmethod
    def current() -> Optional["Deadline"]:
        """The deadline in force in this thread or task, if any."""
        return _current.get()

    def child(self, timeout: Seconds) -> "Deadline":
        """The earlier of this deadline and ``timeout`` from now."""
        other = type(self)(timeout)
        return other if other._at_ns < self._at_ns else self

    def __enter__(self) -> "Deadline":
        outer = _current.get()
        effective = self if outer is None or self._at_ns <= outer._at_ns else outer
        _util.push(self, _current.set(effective))
        return effective

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        _current.reset(_util.pop(self))

    async def __aenter__(self) -> "Deadline":
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def current_deadline_ns() -> Optional[int]:
    d = _current.get()
    return None if d is None or d.is_never else d._at_ns


def _until(timeout: Seconds) -> int:
    """The instant `timeout` from now, never past the current deadline."""
    d = Deadline(timeout)
    outer = _current.get()
    return d._at_ns if outer is None or d._at_ns <= outer._at_ns else outer._at_ns


def _in_context(at_ns: int, func: Callable[..., R], args: Any, kwargs: Any) -> Callable[[], R]:
    """``func(*args, **kwargs)`` as a call to run on a pool thread: in a
    copy of the caller's context (its context variables), with the timed
    call's deadline — the earlier of the timeout and the caller's own — as
    the current :class:`Deadline`, so that the worker's own timed calls and
    retries stop in time too."""
    ctx = contextvars.copy_context()
    deadline = Deadline(_at_ns=at_ns)

    def run() -> R:
        _current.set(deadline)
        return func(*args, **kwargs)

    return lambda: ctx.run(run)


def call_with_timeout(func: Callable[..., R], timeout: Seconds, /, *args: Any, **kwargs: Any) -> R:
    """Runs ``func(*args, **kwargs)`` on failwell's default timeout pool (64
    threads) and waits at most ``timeout`` seconds (and never past the
    current deadline), with the GIL released. Raises
    :class:`failwell.DeadlineExceededError` when time runs out — the call is
    abandoned, not killed: it finishes on its own — and
    :class:`failwell.BulkheadFullError` when every pool thread is busy. The
    call's own exception is re-raised. ``func`` runs in a copy of the
    caller's context, with the call's deadline as :meth:`Deadline.current`.
    For ``async`` code use ``asyncio.wait_for``."""
    at = _until(timeout)
    return _native._call_before(at, _in_context(at, func, args, kwargs), ())  # type: ignore[no-any-return]


class TimeoutPool(_native.TimeoutPool):
    """A bounded pool of helper threads of one's own, for calls that cannot
    take a deadline: at most ``max_threads`` run at once (a call that finds
    them all busy raises :class:`failwell.BulkheadFullError` rather than
    spawning more); idle workers exit after ``idle_timeout`` seconds (60).
    Abandoned calls still running each hold a worker — watch them with
    ``Watchdog.watch_pool`` and ``MetricsRegistry.register``."""

    def call(self, func: Callable[..., R], timeout: Seconds, /, *args: Any, **kwargs: Any) -> R:
        """As :func:`call_with_timeout`, on this pool."""
        at = _until(timeout)
        return self._call_before(at, _in_context(at, func, args, kwargs), ())  # type: ignore[no-any-return]

"""Retry: the loop, sync and async. Every decision in it is core's — may the
call start (deadline), how long to wait (backoff, jitter, retry_after), may
it retry at all (attempts, elapsed time, deadline, budget); this module
sleeps, classifies exceptions and calls the hook."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Callable, List, Optional, Tuple, Type, Union, overload

from . import _native, _util
from ._deadline import current_deadline_ns
from ._errors import Rejected, RetryBudgetExhaustedError
from ._types import Exclude, P, R
from ._util import Seconds

RetryOn = Union[Type[BaseException], Tuple[Type[BaseException], ...], Callable[[BaseException], Any]]
OnRetry = Callable[[int, float, Optional[BaseException]], Any]


def _split(arg: Any, name: str) -> Tuple[Tuple[Type[BaseException], ...], Tuple[Callable[[BaseException], Any], ...]]:
    if arg is None:
        return (), ()
    items = [arg] if isinstance(arg, type) or callable(arg) else list(arg)
    types: List[Type[BaseException]] = []
    preds: List[Callable[[BaseException], Any]] = []
    for item in items:
        if isinstance(item, type):
            if not issubclass(item, BaseException):
                raise TypeError(f"{name}: {item.__name__} is a class but not an exception type")
            types.append(item)
        elif callable(item):
            preds.append(item)
        else:
            raise TypeError(f"{name}: expected an exception type or a predicate, got {type(item).__name__}")
    return tuple(types), tuple(preds)


class Retry(_native.Retry):
    """A retry policy: up to ``max_attempts`` (3) attempts, sleeping
    ``backoff`` (:meth:`Backoff.exponential`: 0.1 s doubling to 10 s)
    randomised by ``jitter`` (:meth:`Jitter.full`) between them, within
    ``max_elapsed`` seconds and the current :class:`Deadline`, and only
    while the shared ``budget`` (:class:`RetryBudget`) allows.

    What is retried: exceptions matching ``retry_on`` (exception types or
    predicates; default every ``Exception``) and not ``exclude``; results
    for which ``retry_if_result(result)`` is true. Exceptions that are not
    ``Exception`` (KeyboardInterrupt, SystemExit, asyncio.CancelledError)
    are never retried. failwell's own refusals (:class:`failwell.Rejected`:
    an open breaker, a full bulkhead) are not retried unless
    ``retry_rejected=True``, and then no sooner than their ``retry_after``.

    When the policy gives up, the last exception is re-raised as it was (or
    the last result returned); when the budget refuses,
    :class:`failwell.RetryBudgetExhaustedError` is raised from the last
    exception. ``on_retry(attempt, delay, exception_or_None)`` is called
    before each sleep. Sync calls sleep with ``time.sleep`` (the GIL is
    released); ``async def`` functions with ``asyncio.sleep``.

    Use it as ``@policy``, ``policy.call(f, *args, **kwargs)`` or
    ``await policy.call_async(f, ...)``; or ``@failwell.retry(...)``.
    Thread-safe: one policy serves every caller.
    """

    def __init__(
        self,
        *,
        max_attempts: Optional[int] = None,
        backoff: Optional[_native.Backoff] = None,
        jitter: Optional[_native.Jitter] = None,
        max_elapsed: Optional[Seconds] = None,
        budget: Optional[_native.RetryBudget] = None,
        retry_rejected: bool = False,
        seed: Optional[int] = None,
        retry_on: Optional[RetryOn] = None,
        exclude: Exclude = None,
        retry_if_result: Optional[Callable[[Any], Any]] = None,
        on_retry: Optional[OnRetry] = None,
    ) -> None:
        self._on_types, self._on_preds = _split(Exception if retry_on is None else retry_on, "retry_on")
        self._ex_types, self._ex_preds = _split(exclude, "exclude")
        if retry_if_result is not None and not callable(retry_if_result):
            raise TypeError("retry_if_result must be callable")
        if on_retry is not None and not callable(on_retry):
            raise TypeError("on_retry must be callable")
        self._retry_if_result = retry_if_result
        self._on_retry = on_retry
        self._retry_rejected = retry_rejected

    def _wait_for(self, exc: BaseException) -> Optional[float]:
        """None: do not retry ``exc``; else the least delay before the next
        attempt."""
        if not isinstance(exc, Exception):
            return None
        if isinstance(exc, Rejected):
            if not self._retry_rejected:
                return None
            return exc.retry_after or 0.0
        if self._ex_types and isinstance(exc, self._ex_types):
            return None
        for p in self._ex_preds:
            if p(exc):
                return None
        if self._on_types and isinstance(exc, self._on_types):
            return 0.0
        for p in self._on_preds:
            if p(exc):
                return 0.0
        return None

    def _failed(self, run: _native.RetryRun, exc: Exception) -> float:
        """After a failed attempt: the delay before the next one, or raises
        — ``exc`` itself when it is not retried or the policy gives up,
        RetryBudgetExhaustedError (from ``exc``) when the budget refuses."""
        at_least = self._wait_for(exc)
        if at_least is None:
            raise exc
        try:
            delay = run.next(at_least)
        except RetryBudgetExhaustedError as refused:
            raise refused from exc
        if delay is None:
            raise exc
        if self._on_retry is not None:
            self._on_retry(run.attempt - 1, delay, exc)
        return delay

    def _again(self, run: _native.RetryRun, result: Any) -> Optional[float]:
        """After an attempt that returned: None to return ``result``, else
        the delay before the next attempt."""
        if self._retry_if_result is None or not self._retry_if_result(result):
            return None
        delay = run.next(0.0)
        if delay is not None and self._on_retry is not None:
            self._on_retry(run.attempt - 1, delay, None)
        return delay

    def call(self, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Calls ``func(*args, **kwargs)`` under the policy."""
        run = self._begin(current_deadline_ns())
        while True:
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                time.sleep(self._failed(run, exc))
                continue
            delay = self._again(run, result)
            if delay is None:
                return result
            time.sleep(delay)

    async def call_async(self, func: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Awaits ``func(*args, **kwargs)`` under the policy, sleeping with
        ``asyncio.sleep``."""
        run = self._begin(current_deadline_ns())
        while True:
            try:
                result = await func(*args, **kwargs)
            except Exception as exc:
                await asyncio.sleep(self._failed(run, exc))
                continue
            delay = self._again(run, result)
            if delay is None:
                return result
            await asyncio.sleep(delay)

    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]:
        """Decorates ``func`` (sync or ``async def``)."""
        if not callable(func):
            raise TypeError(f"a retry policy decorates a callable, got {type(func).__name__}")
        if _util.is_async(func):
            call_async = self.call_async

            @functools.wraps(func)
            async def retried_async(*args: Any, **kwargs: Any) -> Any:
                return await call_async(func, *args, **kwargs)

            return retried_async  # type: ignore[return-value]
        if self._retry_if_result is not None:
            call = self.call

            @functools.wraps(func)
            def retried_checked(*args: Any, **kwargs: Any) -> Any:
                return call(func, *args, **kwargs)

            return retried_checked
        begin = self._begin
        failed = self._failed

        @functools.wraps(func)
        def retried(*args: Any, **kwargs: Any) -> Any:
            # `call` without the result check: one native call, then the call.
            run = begin(current_deadline_ns())
            while True:
                try:
                    return func(*args, **kwargs)
                except Exception as exc:
                    time.sleep(failed(run, exc))

        return retried


@overload
def retry(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def retry(
    *,
    max_attempts: Optional[int] = None,
    backoff: Optional[_native.Backoff] = None,
    jitter: Optional[_native.Jitter] = None,
    max_elapsed: Optional[Seconds] = None,
    budget: Optional[_native.RetryBudget] = None,
    retry_rejected: bool = False,
    seed: Optional[int] = None,
    retry_on: Optional[RetryOn] = None,
    exclude: Exclude = None,
    retry_if_result: Optional[Callable[[Any], Any]] = None,
    on_retry: Optional[OnRetry] = None,
) -> Retry: ...


def retry(func: Any = None, /, **options: Any) -> Any:
    """``@retry`` (the defaults of :class:`Retry`) or ``@retry(...)`` with
    :class:`Retry`'s options. Each decorated function gets its own policy."""
    if func is not None:
        if options:
            raise TypeError("retry: pass options as keywords, without the function: @retry(max_attempts=5)")
        return Retry()(func)
    policy = Retry(**options)
    return policy

"""Pipeline: the layers in failwell's fixed order around one call, sync and
async. Every step is core's — the total deadline, admission through the
layers in order, what an outcome records, whether and when to retry; this
module sleeps, runs the call under its attempt's deadline, and classifies
results and exceptions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any, Callable, ContextManager, Optional

from . import _native, _util
from ._deadline import Deadline, current_deadline_ns
from ._errors import Rejected, RetryBudgetExhaustedError
from ._retry import Retry
from ._types import Exclude, P, R
from ._util import Seconds


class Pipeline(_native.Pipeline):
    """Runs a call through the layers in the order failwell fixes,
    outermost first:

    1. ``fallback(exc)`` — if everything below fails, its value instead;
    2. ``total_timeout`` — the whole call, retries included (never later
       than the current :class:`Deadline`);
    3. ``retry`` (a :class:`Retry`, with its budget) — per attempt:
    4. ``breaker`` — fail fast while the dependency is sick;
    5. ``rate_limiter``, then ``adaptive_limit``;
    6. ``bulkhead`` — held only while the call runs;
    7. ``attempt_timeout`` — each attempt's deadline, within the total.

    Every layer is optional. Each attempt runs with its deadline as the
    current :class:`Deadline`, so timed calls and retries inside it honour
    it. The pipeline never waits for a permit (a bulkhead's or limiter's own
    ``timeout`` is for its direct use): a layer that refuses gives back what
    the layers before it took, uncounted, and the retry decides.

    What fails: exceptions, except those matching ``exclude`` or the
    breaker's own ``exclude`` (types or predicates: they count as successes,
    as for a breaker, and are raised at once), and results for which the
    retry's ``retry_if_result`` is true. Exceptions that are not
    ``Exception`` (KeyboardInterrupt, SystemExit, asyncio.CancelledError)
    never count, are never retried, and free the attempt's permits. What is
    retried: failures the retry's ``retry_on`` / ``exclude`` accept;
    refusals (an open breaker, a full bulkhead) only with
    ``Retry(retry_rejected=True)``, no sooner than their ``retry_after``.
    When it gives up, the last exception is re-raised (the last result
    returned); a refusal raises its :class:`failwell.Rejected`; a budget
    refusal raises :class:`failwell.RetryBudgetExhaustedError` from the last
    exception — unless ``fallback`` gives a value for it.

    Use it as ``@pipeline``, ``pipeline.call(f, *args, **kwargs)`` or
    ``await pipeline.call_async(f, ...)``; ``async def`` functions sleep
    with ``asyncio.sleep``. ``priority`` (``"normal"`` or ``"critical"``) is
    the bulkhead's and the adaptive limit's. Thread-safe.
    """

    def __init__(
        self,
        *,
        total_timeout: Optional[Seconds] = None,
        retry: Optional[Retry] = None,
        breaker: Optional[_native.CircuitBreaker] = None,
        rate_limiter: Optional[_native.RateLimiter] = None,
        adaptive_limit: Optional[_native.AdaptiveLimit] = None,
        bulkhead: Optional[_native.Bulkhead] = None,
        attempt_timeout: Optional[Seconds] = None,
        priority: str = "normal",
        exclude: Exclude = None,
        fallback: Optional[Callable[[Exception], Any]] = None,
    ) -> None:
        if fallback is not None and not callable(fallback):
            raise TypeError("fallback must be callable")
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"retry must be a failwell.Retry, got {type(retry).__name__}")
        self._retry = retry
        self._fallback = fallback

    def _after_failure(self, run: _native.PipelineRun, exc: Exception) -> float:
        """After an attempt raised ``exc`` (a failure): the delay before the
        next attempt, or raises — ``exc`` when it is not retried or the
        policy gives up, RetryBudgetExhaustedError from it when the budget
        refuses."""
        policy = self._retry
        if policy is not None and policy._wait_for(exc) is None:
            raise exc
        try:
            delay = run.next_after_failure()
        except RetryBudgetExhaustedError as refused:
            raise refused from exc
        if delay is None:
            raise exc
        return self._retrying(run, delay, exc)

    def _after_refusal(self, run: _native.PipelineRun, refusal: Rejected) -> float:
        delay = run.next_after_refusal()
        if delay is None:
            raise refusal
        return self._retrying(run, delay, refusal)

    def _retrying(self, run: _native.PipelineRun, delay: float, why: Optional[BaseException]) -> float:
        """Calls the retry policy's ``on_retry`` hook before a sleep of
        ``delay``; returns ``delay``."""
        policy = self._retry
        if policy is not None and policy._on_retry is not None:
            policy._on_retry(run.attempt - 1, delay, why)
        return delay

    def _result_fails(self, result: Any) -> bool:
        policy = self._retry
        return policy is not None and policy._retry_if_result is not None and bool(policy._retry_if_result(result))

    def _after_result(self, run: _native.PipelineRun, attempt: _native.PipelineAttempt, result: Any) -> Optional[float]:
        """Records an attempt that returned: None to return ``result``, else
        the delay before the next attempt."""
        if not self._result_fails(result):
            attempt.success()
            return None
        attempt.failure()
        delay = run.next_after_failure()
        return None if delay is None else self._retrying(run, delay, None)

    def _fall_back(self, exc: Exception) -> Any:
        if self._fallback is None:
            raise exc
        return self._fallback(exc)

    def call(self, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Calls ``func(*args, **kwargs)`` through the layers."""
        try:
            result: R = self._run(func, args, kwargs)
        except Exception as exc:
            fallen: R = self._fall_back(exc)
            return fallen
        return result

    def _run(self, func: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        run = self._begin(current_deadline_ns())
        while True:
            try:
                attempt = run.admit()
            except Rejected as refusal:
                time.sleep(self._after_refusal(run, refusal))
                continue
            with _deadline_of(attempt):
                try:
                    result = func(*args, **kwargs)
                except BaseException as exc:
                    if not attempt.record_exception(exc) or not isinstance(exc, Exception):
                        raise
                    delay: Optional[float] = self._after_failure(run, exc)
                else:
                    delay = self._after_result(run, attempt, result)
                    if delay is None:
                        return result
            time.sleep(delay or 0.0)

    async def call_async(self, func: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Awaits ``func(*args, **kwargs)`` through the layers, sleeping
        with ``asyncio.sleep``."""
        try:
            return await self._run_async(func, args, kwargs)
        except Exception as exc:
            return self._fall_back(exc)

    async def _run_async(self, func: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        run = self._begin(current_deadline_ns())
        while True:
            try:
                attempt = run.admit()
            except Rejected as refusal:
                await asyncio.sleep(self._after_refusal(run, refusal))
                continue
            with _deadline_of(attempt):
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    if not attempt.record_exception(exc) or not isinstance(exc, Exception):
                        raise
                    delay: Optional[float] = self._after_failure(run, exc)
                else:
                    delay = self._after_result(run, attempt, result)
                    if delay is None:
                        return result
            await asyncio.sleep(delay or 0.0)

    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]:
        """Decorates ``func`` (sync or ``async def``)."""
        if not callable(func):
            raise TypeError(f"a pipeline decorates a callable, got {type(func).__name__}")
        if _util.is_async(func):
            call_async = self.call_async

            @functools.wraps(func)
            async def piped_async(*args: Any, **kwargs: Any) -> Any:
                return await call_async(func, *args, **kwargs)

            return piped_async  # type: ignore[return-value]
        call = self.call

        @functools.wraps(func)
        def piped(*args: Any, **kwargs: Any) -> Any:
            return call(func, *args, **kwargs)

        return piped


def _deadline_of(attempt: _native.PipelineAttempt) -> ContextManager[Any]:
    """The attempt's deadline as the current one, for the call's duration."""
    at = attempt.deadline_ns
    if at is None:
        return contextlib.nullcontext()
    return Deadline(_at_ns=at)

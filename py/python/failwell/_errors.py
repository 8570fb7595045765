"""failwell's exceptions: every refusal derives from :class:`Rejected`."""

from __future__ import annotations

from typing import Optional


class Rejected(Exception):
    """failwell refused to run the call (it never started).

    ``retry_after`` is how many seconds until trying again may succeed,
    where failwell knows it (an open breaker, a rate limit), else None.
    """

    retry_after: Optional[float]

    def __init__(self, message: str = "rejected", retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __str__(self) -> str:
        msg = super().__str__()
        if self.retry_after is not None:
            return f"{msg} (retry after {self.retry_after:.3f} s)"
        return msg

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.args[0] if self.args else "", self.retry_after))


class CircuitOpenError(Rejected):
    """The circuit breaker is open (or has no half-open probe slot free)."""


class BulkheadFullError(Rejected):
    """No bulkhead permit was free within the wait allowed."""


class RateLimitedError(Rejected):
    """The rate limiter would admit the call only later than allowed."""


class DeadlineExceededError(Rejected, TimeoutError):
    """The deadline passed before the call could start or finish. Also a
    :class:`TimeoutError`."""


class RetryBudgetExhaustedError(Rejected):
    """The shared retry budget refused a retry; the last error is its
    ``__cause__``."""


class ShedError(Rejected):
    """The adaptive concurrency limit shed the call."""


class InjectedFault(Exception):
    """The fault :class:`failwell.Chaos` injects."""


class RegionError(Exception):
    """A shared region refused: its file is not a failwell region or has
    another layout version, the region is full, or a slot name is held by
    another configuration or another kind of primitive (or, attaching, is
    absent). A system call that failed is an :class:`OSError` instead, a
    bad argument a :class:`ValueError`."""


class FleetError(Exception):
    """The fleet's Redis could not be used: unreachable, slower than the
    timeouts, refused by failwell's own breaker around it after recent
    failures, or answering what failwell did not expect. Only
    :class:`failwell.Fleet` itself and its ``ping`` raise it: the limiters
    and breakers a fleet makes never do (they decide on their fallbacks
    and count it). A bad setting or URL is a :class:`ValueError`."""

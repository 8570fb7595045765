"""SharedRegion: state shared by the worker processes of one host."""

from __future__ import annotations

from typing import Optional

from . import _native
from ._breaker import CircuitBreaker
from ._bulkhead import Bulkhead
from ._native import RetryBudget
from ._rate_limit import RateLimiter
from ._types import Exclude
from ._util import Seconds


class SharedRegion(_native.SharedRegion):
    """A named shared-memory file (``/dev/shm/<name>``, or a path if
    ``name`` has a ``/``) that every process on the host opening the same
    name maps: the primitives in it are shared by all of them. A new region
    is ``size`` bytes (default 1 MiB, at least ``SharedRegion.MIN_SIZE``);
    an existing one keeps its size.

    It holds circuit breakers (one verdict for the host: a trip by any
    worker is seen by all), bulkheads (one concurrency limit for the host,
    with permits of a killed process given back within a second), rate
    limiters (one limit for the host) and retry budgets (one allowance for
    the host). The primitives it hands out are the ordinary
    classes — every decorator,
    ``with`` and ``async with`` form works — and stay usable after the
    region object is gone. Open it in each worker (after the fork), or
    before forking (gunicorn ``--preload``): a mapping is inherited.

    Errors: :class:`failwell.RegionError` (not a region, another layout
    version, full, a name held by another configuration), ``OSError`` (the
    file could not be opened or reserved), ``ValueError`` (a bad name or
    size, an invalid configuration).
    """

    def circuit_breaker(
        self,
        slot: str,
        *,
        consecutive_failures: Optional[int] = None,
        failure_rate: Optional[float] = None,
        window: Optional[int] = None,
        window_duration: Optional[Seconds] = None,
        window_buckets: Optional[int] = None,
        slow_call_rate: Optional[float] = None,
        slow_call_duration: Optional[Seconds] = None,
        minimum_calls: Optional[int] = None,
        half_open_calls: Optional[int] = None,
        half_open_max_wait: Optional[Seconds] = None,
        open_for: Optional[Seconds] = None,
        open_for_multiplier: Optional[float] = None,
        open_for_max: Optional[Seconds] = None,
        exclude: Exclude = None,
        name: Optional[str] = None,
    ) -> CircuitBreaker:
        """The circuit breaker ``slot``: one breaker for every process using
        the region — one state, one set of counts and one window — created
        with this configuration (the keywords and defaults of
        :class:`failwell.CircuitBreaker`) if the region has none of that
        name. Asking for the name with another configuration raises
        :class:`failwell.RegionError` (use :meth:`attach_circuit_breaker`
        to adopt the stored one). ``exclude`` and ``name`` (default:
        ``slot``) are this process's own.

        A trip by any worker is seen by every worker on its next call; at
        most ``half_open_calls`` probes are out host-wide, and the probes of
        a worker that dies (even by SIGKILL) come back within about half a
        second. Listeners (``add_listener``) hear of this process's
        transitions at once, and of other processes' on the next call here
        that finds the breaker not closed or from failwell's reaper thread
        within 250 ms. A shared breaker cannot be reconfigured."""
        return CircuitBreaker(
            consecutive_failures=consecutive_failures,
            failure_rate=failure_rate,
            window=window,
            window_duration=window_duration,
            window_buckets=window_buckets,
            slow_call_rate=slow_call_rate,
            slow_call_duration=slow_call_duration,
            minimum_calls=minimum_calls,
            half_open_calls=half_open_calls,
            half_open_max_wait=half_open_max_wait,
            open_for=open_for,
            open_for_multiplier=open_for_multiplier,
            open_for_max=open_for_max,
            exclude=exclude,
            name=slot if name is None else name,
            _region=self,
            _slot=slot,
        )

    def attach_circuit_breaker(
        self, slot: str, *, exclude: Exclude = None, name: Optional[str] = None
    ) -> CircuitBreaker:
        """The circuit breaker ``slot`` with the configuration the region
        holds; :class:`failwell.RegionError` if there is none."""
        return CircuitBreaker(exclude=exclude, name=slot if name is None else name, _region=self, _slot=slot, _attach=True)

    def bulkhead(
        self,
        slot: str,
        max_concurrent: Optional[int] = None,
        *,
        critical_reserve: Optional[int] = None,
        timeout: Optional[Seconds] = None,
        name: Optional[str] = None,
    ) -> Bulkhead:
        """The bulkhead ``slot``: at most ``max_concurrent`` calls at once
        across every process using the region (default 25), with
        ``critical_reserve`` of them kept for ``priority="critical"``
        callers, created with this configuration if the region has none of
        that name. Asking for the name with another configuration raises
        :class:`failwell.RegionError` (use :meth:`attach_bulkhead` to adopt
        the stored one). ``timeout`` and ``name`` (default: ``slot``) are
        this process's own, as for :class:`failwell.Bulkhead`.

        Permits held by a process that dies (even by SIGKILL) come back
        within a second. A waiter is woken by a release in any process
        (Linux: a futex in the region; elsewhere it looks again every
        millisecond) and looks again by itself every 50 ms. At most 2**20
        permits, and 1024 threads of all processes holding or returning
        permits at once. A shared bulkhead cannot be reconfigured, and its
        ``waiting`` count is this process's own. A permit held across
        ``fork()`` is the parent's to return."""
        return Bulkhead(
            max_concurrent,
            critical_reserve=critical_reserve,
            timeout=timeout,
            name=slot if name is None else name,
            _region=self,
            _slot=slot,
        )

    def attach_bulkhead(
        self, slot: str, *, timeout: Optional[Seconds] = None, name: Optional[str] = None
    ) -> Bulkhead:
        """The bulkhead ``slot`` with the configuration the region holds;
        :class:`failwell.RegionError` if there is none."""
        return Bulkhead(
            timeout=timeout,
            name=slot if name is None else name,
            _region=self,
            _slot=slot,
            _attach=True,
        )

    def rate_limiter(
        self,
        slot: str,
        requests: int,
        period: Optional[Seconds] = None,
        *,
        burst: Optional[int] = None,
        precise: bool = False,
        timeout: Optional[Seconds] = None,
        name: Optional[str] = None,
    ) -> RateLimiter:
        """The rate limiter ``slot``: one exact GCRA limit for every
        process using the region, created with this configuration if the
        region has none of that name. Asking for the name with another
        configuration raises :class:`failwell.RegionError` (use
        :meth:`attach_rate_limiter` to adopt the stored one). ``timeout``
        and ``name`` (default: ``slot``) are this process's own, as for
        :class:`failwell.RateLimiter`; a shared limiter cannot be
        reconfigured."""
        return RateLimiter(
            requests,
            period,
            burst=burst,
            precise=precise,
            timeout=timeout,
            name=slot if name is None else name,
            _region=self,
            _slot=slot,
        )

    def attach_rate_limiter(
        self, slot: str, *, timeout: Optional[Seconds] = None, name: Optional[str] = None
    ) -> RateLimiter:
        """The rate limiter ``slot`` with the configuration the region
        holds; :class:`failwell.RegionError` if there is none."""
        return RateLimiter(
            0,
            timeout=timeout,
            name=slot if name is None else name,
            _region=self,
            _slot=slot,
            _attach=True,
        )

    def retry_budget(
        self,
        slot: str,
        ratio: Optional[float] = None,
        min_per_second: Optional[float] = None,
        ttl: Optional[Seconds] = None,
    ) -> RetryBudget:
        """The retry budget ``slot``: retries may be at most ``ratio`` of the
        calls of every process using it, plus ``min_per_second`` per second,
        over ``ttl`` seconds (defaults as for :class:`failwell.RetryBudget`),
        created with these settings if the region has none of that name.
        Give it to each process's ``Retry(budget=...)``."""
        return RetryBudget(ratio, min_per_second, ttl, _region=self, _slot=slot)

    def attach_retry_budget(self, slot: str) -> RetryBudget:
        """The retry budget ``slot`` as the region holds it;
        :class:`failwell.RegionError` if there is none."""
        return RetryBudget(_region=self, _slot=slot, _attach=True)

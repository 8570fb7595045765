"""Fleet: limits and breaker verdicts shared by every instance of a
service through Redis."""

from __future__ import annotations

from typing import Optional

from . import _native
from ._breaker import CircuitBreaker
from ._rate_limit import RateLimiter
from ._types import Exclude
from ._util import Seconds


class Fleet(_native.Fleet):
    """A connection to the fleet's Redis at ``url``
    (``redis://host:port/db``): a small pool of
    connections (``pool_size``, default 4) with a ``connect_timeout``
    (default 0.1 s) and an ``io_timeout`` for each read and write (default
    0.05 s), so no call waits on Redis longer, and failwell's own circuit
    breaker around Redis. Every key it writes starts with ``key_prefix``
    (default ``"failwell:"``).

    ``Fleet(url)`` connects now and loads failwell's scripts, raising
    :class:`failwell.FleetError` if Redis cannot be reached within the
    timeouts; ``Fleet(url, connect=False)`` does not reach Redis (for a
    service that must start while Redis is down): its limiters and
    breakers decide on their fallbacks until it answers. A bad setting or
    URL is a :class:`ValueError` naming it.

    The limiters and breakers it makes are the ordinary
    :class:`failwell.RateLimiter` and :class:`failwell.CircuitBreaker` —
    every decorator, ``with`` and ``async with`` form works — and keep the
    connection: they stay usable after the fleet object is gone. They
    never raise :class:`failwell.FleetError`: while Redis is unreachable
    or slow they decide as configured and count it in ``fleet_snapshot()``
    and the metrics (``MetricsRegistry.register(name, fleet)`` for the
    connection's own). Thread-safe; a child of ``fork()`` opens
    connections of its own.
    """

    def rate_limiter(
        self,
        name: str,
        requests: int,
        period: Optional[Seconds] = None,
        *,
        burst: Optional[int] = None,
        mode: str = "leased",
        instances: int = 1,
        on_unavailable: str = "local",
        timeout: Optional[Seconds] = None,
    ) -> RateLimiter:
        """``requests`` per ``period`` seconds (default 1 s), bursts up to
        ``burst`` (default ``requests``), for every instance using ``name``
        (1 to 200 bytes) with the same Redis and key prefix; every instance
        must give the same rate and burst.

        ``mode="leased"`` (the default): each decision is local (no I/O);
        a background thread leases tokens from the fleet's bucket about 9
        times a second, sized to this instance's demand and share. Over
        any 10 s the fleet admits at most the limit × 1.05 plus the burst.
        ``mode="exact"``: each decision is one round trip to Redis (on
        Redis's clock), never admitting more than the limit.

        ``instances``: how many instances are expected to share the limit
        (default 1), for this instance's share until they are counted and
        while Redis is down. ``on_unavailable``: what the limiter does
        while Redis is unreachable or slow — ``"local"`` (decide on this
        instance's share, the default), ``"fail_open"`` (admit) or
        ``"fail_closed"`` (refuse). ``timeout``: as for
        :class:`failwell.RateLimiter` (default 0: refuse at once).

        The limiter cannot be reconfigured, is no :class:`failwell.Pipeline`
        layer, and an exact one has no ``next_ready`` (each raises
        ``ValueError``)."""
        return RateLimiter(
            requests,
            period,
            burst=burst,
            timeout=timeout,
            name=name,
            _fleet=self,
            _slot=name,
            _fleet_options=(mode, instances, on_unavailable),
        )

    def circuit_breaker(
        self,
        name: str,
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
        quorum: Optional[int] = None,
        sync_every: Optional[Seconds] = None,
        probe_claim: Optional[Seconds] = None,
        fleet_window: Optional[Seconds] = None,
        on_unavailable: str = "local",
    ) -> CircuitBreaker:
        """A circuit breaker ``name`` (1 to 200 bytes) whose verdict every
        instance using the name shares. Calls are admitted by a local
        breaker with these keywords (those of :class:`failwell.CircuitBreaker`,
        same defaults); a background thread syncs with the fleet every
        ``sync_every`` seconds (default 0.2; 0.01 to 60): it reports this
        instance's trips and counts, and applies the fleet's verdict, so
        every instance refuses within about one interval after the fleet
        opens.

        The fleet opens when ``quorum`` instances (default 1; 1 to 100000)
        tripped within ``fleet_window`` seconds (default: the breaker's
        ``window_duration``, or 10 s when it counts calls), or when the
        fleet-wide counts over that window reach the breaker's thresholds
        with failures from at least ``quorum`` instances. Once its open
        period is over, one instance claims the probes for
        ``probe_claim`` seconds (default 2; at least three sync
        intervals): at most ``half_open_calls`` probes run fleet-wide,
        and their verdict closes (or reopens) every instance. No lock is
        held around a call.

        While Redis is unreachable (its syncs fail), ``on_unavailable``
        says what the breaker does: ``"local"`` (the default) lets its own
        policy trip and probe it, ``"fail_open"`` admits every call
        (counting them), ``"fail_closed"`` refuses every call — until a
        sync reaches Redis again (then it closes and follows the fleet);
        ``fleet_snapshot()`` counts the failed syncs and says whether the
        fallback holds it (``degraded``). The breaker cannot be reconfigured
        (``ValueError``); its sync ends when it is garbage-collected."""
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
            name=name,
            _fleet=self,
            _slot=name,
            _quorum=quorum,
            _sync_every=sync_every,
            _probe_claim=probe_claim,
            _fleet_window=fleet_window,
            _on_unavailable=on_unavailable,
        )

"""failwell: fault tolerance for Python services, on a lock-free Rust core.

Circuit breakers, bulkheads, rate limiters, retries with backoff, jitter and
budgets, propagated deadlines, adaptive load shedding, chaos injection,
graceful degradation (fallback, serve-stale), a pipeline that composes the
layers in the right order, health checks, watchdogs and
Prometheus metrics — sync and asyncio, safe to
share between threads; shared by the worker processes of a host
(:class:`SharedRegion`) and by the instances of a fleet through Redis
(:class:`Fleet`). Durations are float seconds or
``datetime.timedelta``. Every refusal is a :class:`Rejected`.
"""

from ._breaker import CircuitBreaker
from ._bulkhead import Bulkhead
from ._chaos import Chaos
from ._deadline import Deadline, TimeoutPool, call_with_timeout
from ._degrade import Served, StaleCache, fallback
from ._errors import (
    BulkheadFullError,
    CircuitOpenError,
    DeadlineExceededError,
    FleetError,
    InjectedFault,
    RateLimitedError,
    RegionError,
    Rejected,
    RetryBudgetExhaustedError,
    ShedError,
)
from ._native import (
    Backoff,
    BreakerPermit,
    BulkheadPermit,
    Gauge,
    HealthRegistry,
    Heartbeat,
    Jitter,
    MetricsRegistry,
    RetryBudget,
    ShedPermit,
    Throttler,
    Watchdog,
    __version__,
)
from ._fleet import Fleet
from ._pipeline import Pipeline
from ._rate_limit import RateLimiter
from ._region import SharedRegion
from ._retry import Retry, retry
from ._shed import AdaptiveLimit

__all__ = [
    "AdaptiveLimit",
    "Backoff",
    "BreakerPermit",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadPermit",
    "Chaos",
    "CircuitBreaker",
    "CircuitOpenError",
    "Deadline",
    "Gauge",
    "DeadlineExceededError",
    "Fleet",
    "FleetError",
    "HealthRegistry",
    "Heartbeat",
    "InjectedFault",
    "Jitter",
    "MetricsRegistry",
    "Pipeline",
    "RateLimitedError",
    "RateLimiter",
    "RegionError",
    "Rejected",
    "Served",
    "StaleCache",
    "Retry",
    "RetryBudget",
    "RetryBudgetExhaustedError",
    "ShedError",
    "ShedPermit",
    "SharedRegion",
    "Throttler",
    "TimeoutPool",
    "Watchdog",
    "__version__",
    "call_with_timeout",
    "fallback",
    "retry",
]

"""failwell's metrics in an application's existing ``prometheus_client``
registry, so that they are served by the ``/metrics`` endpoint the
application already has::

    import prometheus_client
    import failwell
    import failwell.prometheus

    metrics = failwell.MetricsRegistry()
    metrics.register("payments", payments_breaker)
    prometheus_client.REGISTRY.register(failwell.prometheus.Collector(metrics))

Each scrape reads the registry once (``render_prometheus()``, the same
families, names, labels and help texts as failwell's own text exposition)
and hands the families to ``prometheus_client``: counters stay counters
(``failwell_breaker_calls_total``), gauges stay gauges. Needs the
``prometheus_client`` package (``pip install failwell[prometheus]``); this
module imports it, the rest of failwell does not.
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector as _Collector

from ._native import MetricsRegistry

__all__ = ["Collector"]


class Collector(_Collector):
    """A ``prometheus_client`` collector over a :class:`failwell.MetricsRegistry`.

    Register it once (``REGISTRY.register(Collector(metrics))``); primitives
    registered in ``metrics`` later appear at the next scrape. It holds a
    reference to the registry, not a copy.
    """

    def __init__(self, registry: MetricsRegistry) -> None:
        if not isinstance(registry, MetricsRegistry):
            raise TypeError(
                f"registry must be a failwell.MetricsRegistry, not {type(registry).__name__}"
            )
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        """The registry's families as of now."""
        yield from text_string_to_metric_families(self._registry.render_prometheus())

    def __repr__(self) -> str:
        return f"<failwell.prometheus.Collector of {self._registry!r}>"

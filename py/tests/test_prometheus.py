"""failwell.prometheus.Collector: failwell's metrics join an application's
prometheus_client registry and its /metrics endpoint (a real HTTP server on
loopback)."""

import socket
import urllib.request

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

import failwell  # noqa: E402
import failwell.prometheus  # noqa: E402


def families(registry):
    return {m.name: m for m in registry.collect()}


def test_counters_and_gauges_keep_their_types_and_values():
    metrics = failwell.MetricsRegistry()
    breaker = failwell.CircuitBreaker(consecutive_failures=2)
    metrics.register("payments", breaker)
    registry = prometheus_client.CollectorRegistry()
    registry.register(failwell.prometheus.Collector(metrics))

    for _ in range(3):
        try:
            breaker.call(lambda: 1 / 0)
        except (ZeroDivisionError, failwell.CircuitOpenError):
            pass
    fams = families(registry)
    calls = fams["failwell_breaker_calls"]
    assert calls.type == "counter"
    (sample,) = [s for s in calls.samples if s.name == "failwell_breaker_calls_total"]
    assert sample.labels == {"instance": "payments"}
    assert sample.value == 2  # the third call was refused, not made
    rejected = fams["failwell_breaker_rejected"]
    assert [s.value for s in rejected.samples if s.name.endswith("_total")] == [1]
    state = fams["failwell_breaker_state"]
    assert state.type == "gauge"
    open_ = [s for s in state.samples if s.labels.get("state") == "open"]
    assert [s.value for s in open_] == [1]
    # The text prometheus_client writes has failwell's families in it.
    text = prometheus_client.generate_latest(registry).decode()
    assert 'failwell_breaker_calls_total{instance="payments"} 2.0' in text


def test_primitives_registered_later_appear_at_the_next_scrape():
    metrics = failwell.MetricsRegistry()
    registry = prometheus_client.CollectorRegistry()
    registry.register(failwell.prometheus.Collector(metrics))
    assert not any(n.startswith("failwell_bulkhead") for n in families(registry))
    metrics.register("db", failwell.Bulkhead(max_concurrent=4))
    assert "failwell_bulkhead_in_use" in families(registry)


def test_a_non_registry_is_a_type_error():
    with pytest.raises(TypeError, match="registry must be a failwell.MetricsRegistry"):
        failwell.prometheus.Collector({"not": "a registry"})  # type: ignore[arg-type]


def test_served_by_the_apps_own_metrics_endpoint():
    # The application's registry, with a metric of its own, served over HTTP.
    registry = prometheus_client.CollectorRegistry()
    requests = prometheus_client.Counter("app_requests", "Requests served", registry=registry)
    requests.inc(7)
    metrics = failwell.MetricsRegistry()
    limiter = failwell.RateLimiter(10, 1.0, burst=2)
    metrics.register("api", limiter)
    registry.register(failwell.prometheus.Collector(metrics))
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, thread = prometheus_client.start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert r.status == 200
            body = r.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert "app_requests_total 7.0" in body
    assert 'failwell_rate_limiter_admitted_total{instance="api"} 2.0' in body
    assert 'failwell_rate_limiter_rejected_total{instance="api"} 1.0' in body

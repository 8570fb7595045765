"""failwell.web: /health and /metrics as a WSGI app (wsgiref's server) and an
ASGI app (uvicorn), each served by a real HTTP server on loopback."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

import failwell
from failwell.web import asgi_app, wsgi_app


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Service:
    """A health registry with a switchable critical check and a breaker
    that degrades, and a metrics registry with the breaker."""

    def __init__(self):
        self.db_down = False
        self.breaker = failwell.CircuitBreaker(consecutive_failures=1)
        self.health = failwell.HealthRegistry(interval=3600.0)
        self.health.register("db", lambda: "connection refused" if self.db_down else True, timeout=1.0)
        self.health.register_breaker("payments", self.breaker, when_open="degraded")
        self.metrics = failwell.MetricsRegistry()
        self.metrics.register("payments", self.breaker)


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def wsgi_server():
    servers = []

    def start(app):
        server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        servers.append((server, t))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, t in servers:
        server.shutdown()
        server.server_close()
        t.join(5)


@pytest.fixture
def asgi_server():
    uvicorn = pytest.importorskip("uvicorn")
    servers = []

    def start(app):
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                lifespan="on", http="h11", ws="none", loop="asyncio")
        server = uvicorn.Server(config)
        t = threading.Thread(target=server.run, daemon=True)
        t.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        servers.append((server, t))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, t in servers:
        server.should_exit = True
        t.join(10)


def check_service(base, svc):
    svc.health.check_now()
    code, headers, body = fetch(base + "/health")
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    report = json.loads(body)
    assert report["status"] == "healthy"
    assert [c["name"] for c in report["checks"]] == ["db", "payments"]

    # Degraded still serves: 200, with the reason in the body.
    try:
        svc.breaker.call(lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    svc.health.check_now()
    code, _, body = fetch(base + "/health")
    report = json.loads(body)
    assert (code, report["status"]) == (200, "degraded")
    assert report["checks"][1]["error"] == "circuit breaker is open"

    # A failing critical check: 503.
    svc.db_down = True
    svc.health.check_now()
    code, _, body = fetch(base + "/health")
    report = json.loads(body)
    assert (code, report["status"]) == (503, "unhealthy")
    assert report["checks"][0]["error"] == "connection refused"

    code, headers, body = fetch(base + "/metrics")
    assert code == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'failwell_breaker_state{instance="payments",state="open"} 1' in body.decode()

    code, headers, body = fetch(base + "/metrics", method="HEAD")
    assert (code, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0
    code, headers, _ = fetch(base + "/health", method="POST")
    assert (code, headers["Allow"]) == (405, "GET, HEAD")
    assert fetch(base + "/nothing")[0] == 404


def test_wsgi_app_on_a_real_server(wsgi_server):
    svc = Service()
    check_service(wsgi_server(wsgi_app(svc.health, svc.metrics)), svc)


def test_asgi_app_on_uvicorn(asgi_server):
    svc = Service()
    check_service(asgi_server(asgi_app(svc.health, svc.metrics)), svc)


def test_custom_paths_and_a_missing_registry(wsgi_server):
    metrics = failwell.MetricsRegistry()
    base = wsgi_server(wsgi_app(None, metrics, metrics_path="/internal/metrics"))
    assert fetch(base + "/internal/metrics")[0] == 200
    assert fetch(base + "/metrics")[0] == 404
    assert fetch(base + "/health")[0] == 404  # no health registry given


def test_bad_arguments_name_themselves():
    with pytest.raises(TypeError, match="health must be a failwell.HealthRegistry"):
        wsgi_app({"status": "healthy"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metrics must be a failwell.MetricsRegistry"):
        asgi_app(None, "metrics")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="health_path must be a path"):
        wsgi_app(health_path="health")
    with pytest.raises(ValueError, match="are both '/x'"):
        asgi_app(health_path="/x", metrics_path="/x")

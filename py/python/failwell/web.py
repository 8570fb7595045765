"""Health and metrics over HTTP in the idioms Python services already use:
a WSGI app and an ASGI app serving ``/health`` and ``/metrics``.

::

    import failwell
    from failwell.web import wsgi_app, asgi_app

    health = failwell.HealthRegistry(interval=5.0)
    metrics = failwell.MetricsRegistry()
    app = wsgi_app(health, metrics)        # gunicorn, uWSGI, wsgiref, werkzeug
    app = asgi_app(health, metrics)        # uvicorn, hypercorn, Starlette's Mount

``GET /health`` answers with the last round's report as JSON
(``{"status": "degraded", "round": 12, "checks": [...]}``), status 200 while
the service is healthy or degraded — it still serves, and a load balancer
that ejects degraded instances turns a partial outage into a full one — and
503 when it is unhealthy (a critical check fails). Reading it is cheap: the
checks run in the registry's own rounds, never in the request.
``GET /metrics`` answers with the Prometheus text format (version 0.0.4).
``HEAD`` is answered like ``GET`` without a body; other methods get 405,
other paths 404. Either registry may be ``None`` (its path then answers
404). Mount the app where the framework allows (werkzeug's
``DispatcherMiddleware``, Starlette's ``Mount``) or serve it on its own port.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Dict, Iterable, List, MutableMapping, Optional, Tuple

from ._native import HealthRegistry, MetricsRegistry

__all__ = ["asgi_app", "health_response", "metrics_response", "wsgi_app"]

Response = Tuple[int, str, bytes]
"""A status code, a content type and a body."""

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def health_response(health: HealthRegistry) -> Response:
    """``/health``'s answer: the last report as JSON, 200 unless unhealthy
    (then 503)."""
    report = health.report()
    code = 503 if report["status"] == "unhealthy" else 200
    body = json.dumps(report, separators=(",", ":"), sort_keys=False).encode()
    return code, "application/json", body


def metrics_response(metrics: MetricsRegistry) -> Response:
    """``/metrics``'s answer: the Prometheus text exposition format."""
    return 200, "text/plain; version=0.0.4; charset=utf-8", metrics.render_prometheus().encode()


def _check(health: Optional[HealthRegistry], metrics: Optional[MetricsRegistry], health_path: str, metrics_path: str) -> None:
    if health is not None and not isinstance(health, HealthRegistry):
        raise TypeError(f"health must be a failwell.HealthRegistry or None, not {type(health).__name__}")
    if metrics is not None and not isinstance(metrics, MetricsRegistry):
        raise TypeError(f"metrics must be a failwell.MetricsRegistry or None, not {type(metrics).__name__}")
    for name, path in (("health_path", health_path), ("metrics_path", metrics_path)):
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{name} must be a path starting with '/', got {path!r}")
    if health_path == metrics_path:
        raise ValueError(f"health_path and metrics_path are both {health_path!r}")


def _route(
    method: str,
    path: str,
    health: Optional[HealthRegistry],
    metrics: Optional[MetricsRegistry],
    health_path: str,
    metrics_path: str,
) -> Response:
    is_health = path == health_path and health is not None
    if not is_health and not (path == metrics_path and metrics is not None):
        return 404, "text/plain; charset=utf-8", b"not found\n"
    if method not in ("GET", "HEAD"):
        return 405, "text/plain; charset=utf-8", b"method not allowed\n"
    if health is not None and is_health:
        return health_response(health)
    assert metrics is not None
    return metrics_response(metrics)


WSGIApp = Callable[[Dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(
    health: Optional[HealthRegistry] = None,
    metrics: Optional[MetricsRegistry] = None,
    *,
    health_path: str = "/health",
    metrics_path: str = "/metrics",
) -> WSGIApp:
    """A WSGI application serving ``health_path`` and ``metrics_path``
    (see the module's documentation)."""
    _check(health, metrics, health_path, metrics_path)

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        code, ctype, body = _route(method, environ.get("PATH_INFO", "") or "/", health, metrics, health_path, metrics_path)
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
        if code == 405:
            headers.append(("Allow", "GET, HEAD"))
        start_response(f"{code} {_REASONS[code]}", headers)
        return [] if method == "HEAD" else [body]

    return app


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def asgi_app(
    health: Optional[HealthRegistry] = None,
    metrics: Optional[MetricsRegistry] = None,
    *,
    health_path: str = "/health",
    metrics_path: str = "/metrics",
) -> ASGIApp:
    """An ASGI 3 application serving ``health_path`` and ``metrics_path``
    (see the module's documentation); it accepts the lifespan protocol and
    refuses websockets."""
    _check(health, metrics, health_path, metrics_path)

    async def app(
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1003})
            return
        if kind != "http":
            raise ValueError(f"unsupported ASGI scope type {kind!r}")
        method = scope.get("method", "GET")
        # A root_path (the mount point) is not part of the route.
        path = scope.get("path", "/")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        code, ctype, body = _route(method, path, health, metrics, health_path, metrics_path)
        headers = [
            (b"content-type", ctype.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if code == 405:
            headers.append((b"allow", b"GET, HEAD"))
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return app

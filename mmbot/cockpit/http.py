"""The run's HTTP server (issue 13 items 3 and 4): the dashboard page, its JSON state and live
updates (server-sent events), the operator's pause / resume / cancel-all behind a token,
Prometheus ``/metrics`` and ``/healthz``. A Starlette app served by hypercorn on the run's Trio
loop, so every request reads the engine between decision steps (a snapshot is never half a fill).

It reads and never writes decisions: the controls are operator messages to the decision task
(``Controls``), the figures come from a ``SnapshotSource`` and a Prometheus registry of the run's
own that the composition root builds.

Endpoints: ``GET /`` (the page), ``/static/...``, ``GET /api/state``, ``GET /api/stream``,
``POST /api/pause``, ``/api/resume``, ``/api/cancel-all`` (``Authorization: Bearer <token>`` or
``X-MMBOT-Token``), ``GET /metrics``, ``GET /healthz``.
"""

from __future__ import annotations

import functools
import hmac
import importlib.resources
import json
import secrets
from typing import Any, AsyncIterator, Callable
from urllib.parse import urlsplit

import trio
from hypercorn.config import Config as HypercornConfig, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mmbot.cockpit.controls import Controls, SnapshotSource
from mmbot.cockpit.health import Health, assess
from mmbot.cockpit.snapshot import Snapshot, as_json
from mmbot.config import Secret

TOKEN_ENV = "MMBOT_HTTP_TOKEN"
PING_S = 15  # a comment line at least this often on a quiet stream, so proxies keep it open
MAX_STREAMS = 16  # live views at once: each builds a snapshot a second on the run's own thread
MAX_REASON = 200  # characters of an operator's reason kept
MISSING_PAGE = ("<!doctype html><title>mmbot</title><p>The dashboard page (mmbot/cockpit/static/dashboard.html) "
                "is not installed. The API is here: <a href=/api/state>/api/state</a>, "
                "<a href=/metrics>/metrics</a>, <a href=/healthz>/healthz</a>.</p>")
HealthSource = Callable[[Snapshot], Health]
# The page loads nothing but its own files and talks only to this server; no other site may frame it.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; connect-src 'self';"
                                           " frame-ancestors 'none'", "X-Content-Type-Options": "nosniff"}


def new_token() -> str:
    """A fresh token for the operator's actions when ``MMBOT_HTTP_TOKEN`` is not set.

    The one place mmbot draws unseeded randomness: a security token must be unpredictable, so it
    comes from the operating system (``secrets``), never from the run's seeded generators, and
    it plays no part in any decision (a replay is unaffected)."""
    return secrets.token_urlsafe(24)


def _reveal(token: Secret | str) -> str:
    value = token.reveal() if isinstance(token, Secret) else token
    if not isinstance(value, str) or not value:
        raise ValueError("the HTTP token must be a non-empty string")
    return value


def _state(snapshot: SnapshotSource, health: HealthSource) -> dict[str, Any]:
    snap = snapshot()
    verdict = health(snap)
    return {**as_json(snap), "health": {"status": verdict.status, "reasons": list(verdict.reasons)}}


def make_app(
    *,
    snapshot: SnapshotSource,
    controls: Controls,
    metrics: CollectorRegistry,
    token: Secret | str,
    stream_interval_s: float = 1,  # float-ok: seconds between two states on the stream
    health: HealthSource | None = None,
    health_snapshot: SnapshotSource | None = None,
) -> Starlette:
    """The app. ``health(snapshot)`` gives the verdict of ``/healthz`` and of the state's
    ``health`` (default: ``cockpit.health.assess`` on the snapshot alone; the composition root
    passes one with the engine's figures: heartbeats, book staleness)."""
    secret = _reveal(token).encode()
    judge: HealthSource = health or assess
    closing = trio.Event()  # set by serve_http when the run stops: every stream ends cleanly

    async def page(request: Request) -> Response:
        try:
            text = importlib.resources.files("mmbot.cockpit").joinpath("static/dashboard.html").read_text("utf-8")
        except (FileNotFoundError, OSError):
            return HTMLResponse(MISSING_PAGE)
        return HTMLResponse(text, headers={"Cache-Control": "no-store", **PAGE_HEADERS})

    async def state(request: Request) -> Response:
        return JSONResponse(_state(snapshot, judge), headers={"Cache-Control": "no-store"})

    streams = [0]  # open now

    async def stream(request: Request) -> Response:
        if streams[0] >= MAX_STREAMS:
            return JSONResponse({"error": f"{MAX_STREAMS} live views are open already: close one, or poll"
                                          " /api/state"}, status_code=503, headers={"Retry-After": "5"})
        streams[0] += 1

        async def counted() -> AsyncIterator[str]:
            try:
                async for event in events():
                    yield event
            finally:
                streams[0] -= 1

        async def events() -> AsyncIterator[str]:
            while not closing.is_set():
                data = json.dumps(_state(snapshot, judge), separators=(",", ":"))
                yield f"event: state\ndata: {data}\n\n"
                waited = 0.0  # float-ok: seconds of this interval gone
                while waited < stream_interval_s and not closing.is_set():
                    step = min(PING_S, stream_interval_s - waited)
                    with trio.move_on_after(step):
                        await closing.wait()
                    waited += step
                    if waited < stream_interval_s and not closing.is_set():
                        yield ": ping\n\n"

        return StreamingResponse(counted(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def action(name: str, act: Callable[[str, str], None]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            refused = _refuse(request, secret)
            if refused is not None:
                return refused
            body = await request.body()
            reason = ""
            if body.strip():
                try:
                    parsed = json.loads(body)
                except ValueError:
                    return JSONResponse({"ok": False, "error": "the body is not JSON"}, status_code=400)
                if not isinstance(parsed, dict) or not isinstance(parsed.get("reason", ""), str):
                    return JSONResponse({"ok": False, "error": 'the body must be {"reason": "..."}'}, status_code=400)
                reason = " ".join(parsed.get("reason", "").split())[:MAX_REASON]
            act("http", reason)
            return JSONResponse({"ok": True, "action": name})

        return endpoint

    async def metrics_text(request: Request) -> Response:
        return Response(generate_latest(metrics), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: Request) -> Response:
        verdict = judge((health_snapshot or snapshot)())
        body: dict[str, Any] = {"status": verdict.status}
        if verdict.reasons:
            body["reasons"] = list(verdict.reasons)
        return JSONResponse(body, status_code=503 if verdict.status == "down" else 200,
                            headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/api/state", state, methods=["GET"]),
        Route("/api/stream", stream, methods=["GET"]),
        Route("/api/pause", action("pause", controls.pause), methods=["POST"]),
        Route("/api/resume", action("resume", controls.resume), methods=["POST"]),
        Route("/api/cancel-all", action("cancel_all", controls.cancel_all), methods=["POST"]),
        Route("/metrics", metrics_text, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("mmbot.cockpit", "static")], check_dir=False), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.closing = closing
    return app


def _refuse(request: Request, secret: bytes) -> Response | None:
    """Why an action is refused, if it is: a cross-site request (its Origin is not this server),
    or no token or a wrong one (compared in constant time). A form post from another site cannot
    carry the token's header, and the app sets no cookie, so the browser has nothing to lend it."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        if urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
            return JSONResponse({"ok": False, "error": "cross-site request refused"}, status_code=403)
    elif origin == "null":
        return JSONResponse({"ok": False, "error": "cross-site request refused"}, status_code=403)
    given = request.headers.get("x-mmbot-token", "")
    authorization = request.headers.get("authorization", "")
    if not given and authorization[:7].lower() == "bearer ":
        given = authorization[7:].strip()
    if not given or not hmac.compare_digest(given.encode(), secret):
        return JSONResponse({"ok": False, "error": "a valid token is needed (Authorization: Bearer <token>)"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return None


def _config(host: str, port: int) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 2
    return config


def bind(host: str, port: int) -> Sockets:
    """The listening sockets, bound and listening now: a port in use or a bad address raises
    ``OSError`` here, before the run starts (the CLI turns it into one line and exit 2), and a
    browser opening the printed link at once waits in the backlog instead of being refused while
    the run starts. Give them to ``serve_http``."""
    config = _config(host, port)
    sockets = config.create_sockets()
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
    return sockets


async def serve_http(
    app: Starlette,
    host: str,
    port: int,
    *,
    sockets: Sockets | None = None,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until cancelled (or ``stop`` is set: the streams then end cleanly and the
    server shuts down gracefully). ``task_status.started((host, port))`` once listening, with the
    real port when ``port`` is 0. Binding raises ``OSError`` (port in use) before anything starts,
    unless ``sockets`` from ``bind`` are given."""
    config = _config(host, port)

    async def shutdown() -> None:
        await stop.wait()  # type: ignore[union-attr]
        app.state.closing.set()

    if sockets is None:
        sockets = bind(host, port)  # a plain OSError here, not one wrapped in the server's nurseries
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
    # hypercorn's worker_serve is its trio ``serve`` given sockets already bound
    serve = functools.partial(worker_serve, wrap_app(app, config.wsgi_max_body_size, None), config,
                              sockets=sockets, shutdown_trigger=shutdown if stop is not None else None)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve)
        bound = urlsplit(binds[0])
        task_status.started((bound.hostname or host, bound.port or port))

"""The venue simulator on loopback: Polymarket's market channel over trio-websocket, its public
REST and a Gamma-like listing over hypercorn + Starlette, and fault injection — around the sans-IO
``LiveVenue``.

One flow task steps the venue every ``step_ms`` and hands each frame to the connections
subscribed to its assets. Each connection has a bounded queue and its own sender task, so a slow
client never holds the flow up: a client whose queue fills is disconnected (the venue does the
same to consumers that cannot keep up). Faults (``drop``, ``stall``, ``delay``, ``tick``,
``malformed``) come from the admin endpoint (``POST /admin/fault``) or from a schedule in the
settings.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import attrs
import trio
import trio_websocket
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.clock import TrioClock
from mmbot.venues.polymarket.auth import ApiCredentials
from mmbot.model import Side, format_micro, parse_micro
from mmbot.venues.simulator.trading import DEFAULT_FUNDING, SimTrading, VenueRefusal, json_body
from mmbot.venues.simulator.venue import LiveVenue, OutFrame

MALFORMED_FRAME = '{"event_type": "price_change", "market": "0xbad", "price_changes": [{"asset_id": 7'
FAULT_KINDS = ("drop", "stall", "delay", "tick", "malformed", "fail", "throttle", "restart", "lose", "shuffle")
FOREVER = 1 << 63  # a stall with no end


@attrs.frozen(kw_only=True)
class Fault:
    """One injected fault. ``value``: stall seconds (0 = until the connection is dropped), delay
    ms (0 clears it), for ``tick`` "<condition id>:<new tick>", for ``fail`` and ``shuffle`` an
    API key (its next trade fails on chain / its next user messages come twice and reversed), for
    ``throttle`` and ``lose`` a count of order posts (429 / accepted but answered 502), for
    ``restart`` seconds of 425."""

    kind: str
    value: str = ""
    at_s: int = 0  # for a scheduled fault: seconds after the server started

    def __attrs_post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind: expected one of {', '.join(FAULT_KINDS)}, got {self.kind!r}")


@attrs.frozen(kw_only=True)
class SimSettings:
    seed: int = 0
    markets: int = 4  # markets at a time; one Up/Down series per four
    interval_s: int = 300
    step_ms: int = 100  # how often the world moves (and frames go out)
    speed: int = 1  # simulated seconds per real second
    rate: int = 0  # if set: market frames per second, the world's clock running as fast as that needs
    queue_frames: int = 10_000  # per connection; a client this far behind is disconnected
    funding: int = DEFAULT_FUNDING  # pUSD (micro) each trading account starts with
    faults: tuple[Fault, ...] = ()


@attrs.frozen
class SimUrls:
    ws: str  # the market channel
    rest: str  # CLOB public REST and the Gamma-like listing, on one origin

    def lines(self) -> list[str]:
        return [f"market channel  {self.ws}", f"REST            {self.rest}", f"Gamma listing   {self.rest}/markets",
                f"fault injection POST {self.rest}/admin/fault"]


@attrs.define(eq=False)
class _Connection:
    number: int
    ws: trio_websocket.WebSocketConnection
    send: trio.MemorySendChannel[str]
    receive: trio.MemoryReceiveChannel[str]
    scope: trio.CancelScope
    assets: set[str] = attrs.Factory(set)
    stalled_until_ns: int = 0  # FOREVER: until the connection is dropped
    delay_s: float = 0.0  # float-ok: trio sleeps take seconds


class SimServer:
    def __init__(self, venue: LiveVenue, *, settings: SimSettings, clock: TrioClock | None = None) -> None:
        self.venue = venue
        self.trading = SimTrading(venue.engine, venue.user_feed, funding=settings.funding)
        self._clock = clock or TrioClock()
        self._settings = settings
        self._connections: dict[int, _Connection] = {}
        self._user_connections: dict[str, dict[int, _Connection]] = {}  # api key -> its connections
        self._trading_faults = {"throttle": 0, "lose": 0}  # trading requests still to be hit
        self._restart_until_ns = 0  # the matching engine "restarts" (425) until then
        self._opened = 0
        self._delay_s = 0.0  # float-ok: applies to connections opened later too
        self._started_ns = 0
        self._venue_start_ns = venue.now_ns
        self._paused = False
        self._produced = 0  # frames made in rate mode
        self.counts = {"frames_sent": 0, "frames_dropped_stalled": 0, "slow_disconnects": 0, "pings": 0,
                       "bad_client_messages": 0, "faults": 0, "heartbeat_cancels": 0}

    # ------------------------------------------------------------------ running

    async def run(self, *, host: str = "127.0.0.1", http_port: int = 0, ws_port: int = 0,
                  task_status: trio.TaskStatus[SimUrls] = trio.TASK_STATUS_IGNORED) -> None:
        self._started_ns = self._clock.now_ns()
        async with trio.open_nursery() as nursery:
            ws_server = await nursery.start(
                functools.partial(trio_websocket.serve_websocket, self._on_connection, host, ws_port, None,
                                  handler_nursery=nursery, max_message_size=1 << 20)
            )
            config = HypercornConfig()
            config.bind = [f"{host}:{http_port}"]
            config.accesslog = None
            config.errorlog = None
            # hypercorn's 5 s default closes an idle connection just as a client's 5 s heartbeat
            # reuses it (a request lost in flight); the venue's front end keeps them far longer
            config.keep_alive_timeout = 75
            binds = await nursery.start(functools.partial(hypercorn_serve, self.http_app(), config))
            nursery.start_soon(self._flow)
            for fault in self._settings.faults:
                nursery.start_soon(self._scheduled, fault)
            self.user_url = f"ws://{host}:{ws_server.port}/ws/user"
            task_status.started(SimUrls(ws=f"ws://{host}:{ws_server.port}/ws/market", rest=binds[0]))

    def venue_ns(self) -> int:
        """Venue time: the warm-up's end plus ``speed`` times the real time since start."""
        return self._venue_start_ns + (self._clock.now_ns() - self._started_ns) * self._settings.speed

    async def _flow(self) -> None:
        step_ns = self._settings.step_ms * 1_000_000
        deadline = self._clock.now_ns()
        while True:
            deadline += step_ns
            await self._clock.sleep_until(deadline)
            if self._paused:
                continue
            self.counts["heartbeat_cancels"] += self.trading.expire_heartbeats(self._clock.now_ns(), self.venue.now_ns)
            if not self._settings.rate:
                self.publish(self.venue.step(self.venue_ns()))
                self.publish_user()
                continue
            # Rate mode: move the world on in small steps until it has made this second's share.
            due = (self._clock.now_ns() - self._started_ns) * self._settings.rate // 1_000_000_000
            for _ in range(10_000):  # a quiet world cannot hold the loop for ever
                if self._produced >= due:
                    break
                frames = self.venue.step(self.venue.now_ns + 20_000_000)
                self._produced += len(frames)
                self.publish(frames)
                self.publish_user()

    def pause(self) -> None:
        """Hold the world still (frames already queued still go out); ``resume`` lets it go on."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def publish(self, frames: list[OutFrame]) -> None:
        """Hand every frame to the connections it concerns; never waits for any of them."""
        now = self._clock.now_ns()
        for frame in frames:
            for conn in list(self._connections.values()):
                if frame.assets is not None and conn.assets.isdisjoint(frame.assets):
                    continue
                if conn.stalled_until_ns > now:
                    self.counts["frames_dropped_stalled"] += 1
                    continue
                self._enqueue(conn, frame.text)

    def _enqueue(self, conn: _Connection, text: str) -> None:
        try:
            conn.send.send_nowait(text)
        except trio.WouldBlock:
            self.counts["slow_disconnects"] += 1
            conn.scope.cancel()

    # ------------------------------------------------------------------ one connection

    def add_account(self, address: str, creds: ApiCredentials, *, cash: int | None = None) -> None:
        """An account that may trade and listen on the user channel, funded with ``cash`` pUSD
        (the settings' ``funding`` if not given)."""
        self.trading.add_account(address, creds, cash=cash)

    async def _on_connection(self, request: trio_websocket.WebSocketRequest) -> None:
        if request.path == "/ws/user":
            await self._on_user_connection(request)
            return
        if request.path != "/ws/market":
            await request.reject(404, body=b"unknown channel")
            return
        ws = await request.accept()
        self._opened += 1
        send, receive = trio.open_memory_channel[str](self._settings.queue_frames)
        with trio.CancelScope() as scope:
            conn = _Connection(self._opened, ws, send, receive, scope, delay_s=self._delay_s)
            self._connections[conn.number] = conn
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sender, conn)
                    await self._reader(conn)  # returns when the client goes away
                    nursery.cancel_scope.cancel()
            finally:
                del self._connections[conn.number]
        if scope.cancelled_caught:  # dropped by a fault or for being slow: close without a goodbye
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await ws.aclose(code=1012, reason="dropped")

    async def _on_user_connection(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            hello = json.loads(await ws.get_message())
            auth = hello["auth"]
            api_key = self.trading.check_credentials(auth["apiKey"], auth["secret"], auth["passphrase"])
        except (ValueError, KeyError, TypeError, VenueRefusal, trio_websocket.ConnectionClosed):
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await ws.aclose(code=1008, reason="unauthorized")  # bad credentials look like a close
            return
        self._opened += 1
        send, receive = trio.open_memory_channel[str](self._settings.queue_frames)
        with trio.CancelScope() as scope:
            conn = _Connection(self._opened, ws, send, receive, scope, delay_s=self._delay_s)
            self._user_connections.setdefault(api_key, {})[conn.number] = conn
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sender, conn)
                    await self._reader(conn)
                    nursery.cancel_scope.cancel()
            finally:
                del self._user_connections[api_key][conn.number]

    def publish_user(self) -> None:
        for api_key, text in self.venue.user_feed.take(self.venue.now_ns):
            for conn in list(self._user_connections.get(api_key, {}).values()):
                self._enqueue(conn, text)

    async def _reader(self, conn: _Connection) -> None:
        while True:
            try:
                text = await conn.ws.get_message()
            except trio_websocket.ConnectionClosed:
                return
            if conn.stalled_until_ns > self._clock.now_ns():
                continue  # a stalled connection ignores everything, PING included
            if text == "PING":
                self.counts["pings"] += 1
                self._enqueue(conn, "PONG")
                continue
            self._on_request(conn, text)

    def _on_request(self, conn: _Connection, text: str | bytes) -> None:
        try:
            msg = json.loads(text)
            assets = [str(a) for a in msg["assets_ids"]]
        except (ValueError, KeyError, TypeError):
            self.counts["bad_client_messages"] += 1
            return
        if msg.get("operation") == "unsubscribe":
            conn.assets.difference_update(assets)
            return
        fresh = [a for a in dict.fromkeys(assets) if a not in conn.assets]
        conn.assets.update(fresh)
        snapshot = self.venue.snapshot(fresh)
        if snapshot is not None:
            self._enqueue(conn, snapshot)

    async def _sender(self, conn: _Connection) -> None:
        async for text in conn.receive:
            if conn.delay_s:
                await trio.sleep(conn.delay_s)
            if conn.stalled_until_ns > self._clock.now_ns():
                self.counts["frames_dropped_stalled"] += 1
                continue
            try:
                await conn.ws.send_message(text)
            except trio_websocket.ConnectionClosed:
                return  # the reader sees it too and ends the connection
            self.counts["frames_sent"] += 1

    # ------------------------------------------------------------------ faults

    def inject(self, fault: Fault) -> dict[str, Any]:
        """Apply ``fault`` now; returns what it touched (the admin endpoint's answer)."""
        self.counts["faults"] += 1
        conns = list(self._connections.values()) + [
            conn for by_key in self._user_connections.values() for conn in by_key.values()
        ]
        if fault.kind == "drop":
            for conn in conns:
                conn.scope.cancel()
            return {"dropped": len(conns)}
        if fault.kind == "stall":
            seconds = int(fault.value or 0)
            until = FOREVER if seconds == 0 else self._clock.now_ns() + seconds * 1_000_000_000
            for conn in conns:
                conn.stalled_until_ns = until
            return {"stalled": len(conns), "seconds": seconds or None}
        if fault.kind == "delay":
            self._delay_s = int(fault.value or 0) / 1000  # float-ok: a trio sleep
            for conn in conns:
                conn.delay_s = self._delay_s
            return {"delayed": len(conns), "ms": int(fault.value or 0)}
        if fault.kind == "fail":  # the account's next trade goes MATCHED -> RETRYING -> FAILED
            self.venue.user_feed.fail_next.add(fault.value)
            return {"fail_next_trade_of": fault.value}
        if fault.kind == "shuffle":
            self.venue.user_feed.shuffle_next.add(fault.value)
            return {"shuffle_next_messages_of": fault.value}
        if fault.kind in ("throttle", "lose"):
            self._trading_faults[fault.kind] += int(fault.value or 1)
            return {fault.kind: self._trading_faults[fault.kind]}
        if fault.kind == "restart":
            self._restart_until_ns = self._clock.now_ns() + int(fault.value or 90) * 1_000_000_000
            return {"restart_s": int(fault.value or 90)}
        if fault.kind == "tick":
            market, _, tick = fault.value.partition(":")
            frames = self.venue.set_tick(market, parse_micro(tick))
            self.publish(frames)
            return {"market": market, "tick": tick, "frames": len(frames)}
        for conn in self._connections.values():  # malformed: on the market channel
            self._enqueue(conn, MALFORMED_FRAME)
        return {"malformed_to": len(self._connections)}

    async def _scheduled(self, fault: Fault) -> None:
        await self._clock.sleep_until(self._started_ns + fault.at_s * 1_000_000_000)
        self.inject(fault)

    def statistics(self) -> dict[str, Any]:
        return {**self.counts, "connections": len(self._connections), "opened": self._opened,
                "venue_ns": self.venue.now_ns,
                "frames_rendered": self.venue.frames_rendered}

    # ------------------------------------------------------------------ HTTP

    def http_app(self) -> Starlette:
        venue = self.venue

        def token_of(request: Request) -> str:
            return request.query_params.get("token_id", "")

        def unknown() -> JSONResponse:
            return JSONResponse({"error": "No orderbook exists for the requested token id"}, status_code=404)

        async def book(request: Request) -> Response:
            found = venue.book(token_of(request))
            return JSONResponse(found) if found is not None else unknown()

        async def books(request: Request) -> Response:
            try:
                wanted = [str(item["token_id"]) for item in await request.json()]
            except (ValueError, KeyError, TypeError):
                return JSONResponse({"error": "Invalid payload"}, status_code=400)
            return JSONResponse([b for t in wanted if (b := venue.book(t)) is not None])  # unknown: omitted

        async def price(request: Request) -> Response:
            token, side = token_of(request), request.query_params.get("side", "").upper()
            if not venue.engine.has_token(token):
                return unknown()
            if side not in (Side.BUY.value, Side.SELL.value):
                return JSONResponse({"error": "Invalid side"}, status_code=400)
            bid, ask = venue.best(token)
            best = bid if side == Side.BUY.value else ask
            return JSONResponse({"price": "0" if best is None else format_micro(best)})

        async def midpoint(request: Request) -> Response:
            token = token_of(request)
            if not venue.engine.has_token(token):
                return unknown()
            bid, ask = venue.best(token)
            return JSONResponse({"mid": format_micro((bid + ask) // 2) if bid is not None and ask is not None else "0"})

        async def tick_size(request: Request) -> Response:
            token = token_of(request)
            if not venue.engine.has_token(token):
                return unknown()
            return JSONResponse({"minimum_tick_size": venue.tick(token) / 1e6})  # float-ok: the venue sends a number

        async def neg_risk(request: Request) -> Response:
            token = token_of(request)
            if not venue.engine.has_token(token):
                return unknown()
            return JSONResponse({"neg_risk": venue.engine.market_of(token).neg_risk})

        async def time_now(request: Request) -> Response:
            return Response(str(self.venue.now_ns // 1_000_000_000), media_type="text/plain")

        async def ok(request: Request) -> Response:
            return JSONResponse("OK")

        async def markets(request: Request) -> Response:
            listed = [venue.gamma_market(info, i) for i, info in enumerate(venue.markets())]
            if wanted := request.query_params.getlist("condition_ids"):
                listed = [m for m in listed if m["conditionId"] in wanted]
            closed = request.query_params.get("closed")
            if closed is not None:
                listed = [m for m in listed if m["closed"] == (closed == "true")]
            return JSONResponse(listed)

        async def events(request: Request) -> Response:
            listed = [venue.gamma_market(info, i) for i, info in enumerate(venue.markets())]
            return JSONResponse([
                {"id": m["id"], "slug": m["slug"], "title": m["question"], "active": m["active"],
                 "closed": m["closed"], "markets": [m]}
                for m in listed
            ])

        async def fault(request: Request) -> Response:
            try:
                body = await request.json()
                injected = self.inject(Fault(kind=str(body["kind"]), value=str(body.get("value", ""))))
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"error": f"fault: {exc}"}, status_code=400)
            return JSONResponse(injected)

        async def stats(request: Request) -> Response:
            return JSONResponse(self.statistics())

        trading = self.trading

        def authenticated(handler: Any) -> Any:
            """L2-checked endpoints: the handler gets the account and the parsed body."""
            async def endpoint(request: Request) -> Response:
                raw = await request.body()
                faults = self._trading_faults
                if faults["throttle"] and request.url.path in ("/order", "/orders") and request.method == "POST":
                    faults["throttle"] -= 1
                    return JSONResponse({"error": "Too Many Requests"}, status_code=429, headers={"Retry-After": "1"})
                if self._clock.now_ns() < self._restart_until_ns and request.method != "GET":
                    return JSONResponse({"error": "Too Early"}, status_code=425)
                try:
                    headers = {k.lower(): v for k, v in request.headers.items()}
                    account = trading.authenticate(headers, request.method, request.url.path, raw)
                    body = json_body(raw) if raw else None
                    answer = handler(account, body, request)
                except VenueRefusal as refusal:
                    return JSONResponse({"error": refusal.error, **refusal.body}, status_code=refusal.status)
                if faults["lose"] and request.method == "POST":  # done, but the answer is lost
                    faults["lose"] -= 1
                    return JSONResponse({"error": "Bad Gateway"}, status_code=502)
                return JSONResponse(answer)

            return endpoint

        def now() -> int:
            return self.venue.now_ns  # the world's clock, as its own orders use

        async def version(request: Request) -> Response:
            return JSONResponse({"version": 2})

        async def api_key(request: Request) -> Response:
            try:
                creds = trading.l1_account({k.lower(): v for k, v in request.headers.items()},
                                           seed=self._settings.seed)
            except VenueRefusal as refusal:
                return JSONResponse({"error": refusal.error}, status_code=refusal.status)
            return JSONResponse({"apiKey": creds.api_key, "secret": creds.secret.reveal(),
                                 "passphrase": creds.passphrase.reveal()})

        return Starlette(routes=[
            Route("/ok", ok), Route("/time", time_now), Route("/book", book), Route("/books", books, methods=["POST"]),
            Route("/price", price), Route("/midpoint", midpoint),
            Route("/tick-size", tick_size), Route("/neg-risk", neg_risk), Route("/markets", markets),
            Route("/events", events), Route("/admin/fault", fault, methods=["POST"]), Route("/admin/stats", stats),
            Route("/version", version), Route("/auth/api-key", api_key, methods=["POST"]),
            Route("/auth/derive-api-key", api_key),
            Route("/order", authenticated(lambda a, body, r: trading.post(a, body, now())), methods=["POST"]),
            Route("/orders", authenticated(lambda a, body, r: trading.post_batch(a, body, now())), methods=["POST"]),
            Route("/order", authenticated(lambda a, body, r: trading.cancel(a, [body["orderID"]], now())),
                  methods=["DELETE"]),
            Route("/orders", authenticated(lambda a, body, r: trading.cancel(a, list(body), now())), methods=["DELETE"]),
            Route("/heartbeats", authenticated(lambda a, body, r: trading.heartbeat(a, str(body["heartbeat_id"]), self._clock.now_ns())),
                  methods=["POST"]),
            Route("/cancel-all", authenticated(lambda a, body, r: trading.cancel_all(a, now())), methods=["DELETE"]),
            Route("/data/orders", authenticated(
                lambda a, body, r: {"data": trading.open_orders(a), "next_cursor": "LTE="})),
            Route("/data/trades", authenticated(
                lambda a, body, r: {"data": trading.trades(a, _int_or_none(r.query_params.get("after"))),
                                    "next_cursor": "LTE="})),
            Route("/balance-allowance", authenticated(
                lambda a, body, r: trading.balance_allowance(a, r.query_params.get("asset_type", ""),
                                                             r.query_params.get("token_id", "")))),
        ])


def _int_or_none(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise VenueRefusal(400, f"not an integer: {text[:20]!r}") from None

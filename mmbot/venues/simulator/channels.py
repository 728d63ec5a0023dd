"""The simulator's websocket channels: the market channel (``/ws/market``) and the user channel
(``/ws/user``), over trio-websocket.

Each connection has a bounded queue and its own sender task, so a slow client never holds the
world up: a client whose queue fills is disconnected (the venue does the same to consumers that
cannot keep up). ``publish`` hands each market frame to the connections subscribed to its
assets; ``best_bid_ask``, ``new_market`` and ``market_resolved`` only reach connections that
asked for them with ``custom_feature_enabled`` (the last two whatever their assets).
``publish_user`` hands each account its user-channel messages, filtered by each connection's
``markets``. Faults reach the connections through ``everyone``, ``market`` and ``delay_s``.

What one connection may ask for and cost is bounded (``subscriptions``): its assets and markets
are capped, unknown ids are ignored, its requests draw on a budget that makes a churning client
wait, and a user-channel connection that does not authenticate within ``HELLO_TIMEOUT_S`` is
closed. What is refused is counted in the server's counters.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import attrs
import trio
import trio_websocket

from mmbot.clock import TrioClock
from mmbot.venues.simulator.subscriptions import (
    HELLO_TIMEOUT_S, MAX_ASSETS, Budget, Granted, MarketFilter, request_cost, subscribe_assets,
)
from mmbot.venues.simulator.trading import SimTrading, VenueRefusal
from mmbot.venues.simulator.venue import LiveVenue, OutFrame

# What the connections add to the server's counters, besides frames, pings and bad messages.
COUNTERS = ("subscription_requests", "requests_throttled", "snapshot_books", "assets_unknown",
            "assets_over_limit", "markets_unknown", "markets_over_limit", "user_hello_timeouts")


class BadRequest(Exception):
    """A client message the channel cannot read (counted, otherwise ignored)."""


@attrs.define(eq=False)
class Connection:
    number: int
    ws: trio_websocket.WebSocketConnection
    send: trio.MemorySendChannel[str]
    receive: trio.MemoryReceiveChannel[str]
    scope: trio.CancelScope
    budget: Budget
    assets: set[str] = attrs.Factory(set)  # market channel
    custom_feature: bool = False  # market channel: best_bid_ask, new_market, market_resolved wanted
    markets: MarketFilter | None = None  # user channel
    stalled_until_ns: int = 0  # faults.FOREVER: until the connection is dropped
    delay_s: float = 0.0  # float-ok: trio sleeps take seconds


class Channels:
    def __init__(self, *, venue: LiveVenue, trading: SimTrading, clock: TrioClock, queue_frames: int,
                 counts: dict[str, int]) -> None:
        """``counts``: the server's counters, which these connections add to."""
        self._venue = venue
        self._trading = trading
        self._clock = clock
        self._queue_frames = queue_frames
        self._counts = counts
        for name in COUNTERS:
            counts.setdefault(name, 0)
        self.market: dict[int, Connection] = {}
        self.user: dict[str, dict[int, Connection]] = {}  # api key -> its connections
        self.opened = 0
        self.max_assets = MAX_ASSETS  # per market-channel connection
        self.delay_s = 0.0  # float-ok: applies to connections opened later too
        self.refuse_until_ns = 0  # an outage: new websocket connections are refused until then

    def everyone(self) -> list[Connection]:
        return list(self.market.values()) + [conn for by_key in self.user.values() for conn in by_key.values()]

    # ------------------------------------------------------------------ sending

    def publish(self, frames: list[OutFrame]) -> None:
        """Hand every frame to the connections it concerns; never waits for any of them."""
        now = self._clock.now_ns()
        for frame in frames:
            for conn in list(self.market.values()):
                if frame.custom and not conn.custom_feature:
                    continue
                if frame.assets is not None and conn.assets.isdisjoint(frame.assets):
                    continue
                if conn.stalled_until_ns > now:
                    self._counts["frames_dropped_stalled"] += 1
                    continue
                self.enqueue(conn, frame.text)

    def publish_user(self) -> None:
        for api_key, text in self._venue.user_feed.take(self._venue.now_ns):
            conns = list(self.user.get(api_key, {}).values())
            market: str | None = None
            for conn in conns:
                wanted = conn.markets
                if wanted is not None and (not wanted.everything or wanted.excluded):
                    if market is None:
                        market = str(json.loads(text).get("market", ""))
                    if not wanted.wants(market):
                        continue
                self.enqueue(conn, text)

    def enqueue(self, conn: Connection, text: str) -> None:
        try:
            conn.send.send_nowait(text)
        except trio.WouldBlock:
            self._counts["slow_disconnects"] += 1
            conn.scope.cancel()

    def forget_assets(self, tokens: Iterable[str]) -> None:
        """Tokens the venue forgot leave every subscription (their frames can no longer come)."""
        gone = set(tokens)
        for conn in self.market.values():
            conn.assets -= gone

    # ------------------------------------------------------------------ connections

    async def on_connection(self, request: trio_websocket.WebSocketRequest) -> None:
        if self.refuse_until_ns > self._clock.now_ns():
            self._counts["refused_in_outage"] = self._counts.get("refused_in_outage", 0) + 1
            await request.reject(503, body=b"outage")
            return
        if request.path == "/ws/user":
            await self._on_user_connection(request)
            return
        if request.path != "/ws/market":
            await request.reject(404, body=b"unknown channel")
            return
        ws = await request.accept()
        conn = self._open(ws)
        self.market[conn.number] = conn
        try:
            await self._serve(conn)
        finally:
            del self.market[conn.number]
        if conn.scope.cancelled_caught:  # dropped by a fault or for being slow: close without a goodbye
            await _close(ws, 1012, "dropped")

    async def _on_user_connection(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        with trio.move_on_after(HELLO_TIMEOUT_S) as waiting:
            try:
                hello = json.loads(await ws.get_message())
                auth = hello["auth"]
                api_key = self._trading.check_credentials(str(auth["apiKey"]), str(auth["secret"]),
                                                          str(auth["passphrase"]))
                markets = _ids(hello.get("markets") or [])
            except (ValueError, KeyError, TypeError, AttributeError, BadRequest, VenueRefusal,
                    trio_websocket.ConnectionClosed):
                await _close(ws, 1008, "unauthorized")  # bad credentials look like a close
                return
        if waiting.cancelled_caught:
            self._counts["user_hello_timeouts"] += 1
            await _close(ws, 1008, "no subscription")
            return
        conn = self._open(ws)
        conn.budget.charge(request_cost(len(markets)), self._clock.now_ns())
        conn.markets, granted = MarketFilter.first(markets, known=self._known_market)
        self._count_markets(granted)
        self.user.setdefault(api_key, {})[conn.number] = conn
        try:
            await self._serve(conn)
        finally:
            mine = self.user[api_key]
            del mine[conn.number]
            if not mine:
                del self.user[api_key]

    def _open(self, ws: trio_websocket.WebSocketConnection) -> Connection:
        self.opened += 1
        send, receive = trio.open_memory_channel[str](self._queue_frames)
        return Connection(self.opened, ws, send, receive, trio.CancelScope(), Budget(self._clock.now_ns()),
                          delay_s=self.delay_s)

    async def _serve(self, conn: Connection) -> None:
        """Until the client goes away, or a fault or slowness cancels the connection's scope."""
        with conn.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._sender, conn)
                await self._reader(conn)  # returns when the client goes away
                nursery.cancel_scope.cancel()

    async def _reader(self, conn: Connection) -> None:
        while True:
            try:
                text = await conn.ws.get_message()
            except trio_websocket.ConnectionClosed:
                return
            if conn.stalled_until_ns > self._clock.now_ns():
                continue  # a stalled connection ignores everything, PING included
            if text == "PING":
                self._counts["pings"] += 1
                self.enqueue(conn, "PONG")
                continue
            await self._on_request(conn, text)

    async def _on_request(self, conn: Connection, text: str | bytes) -> None:
        """One subscription request, once the connection's budget covers it; a request the budget
        does not cover waits (the client's later messages wait behind it)."""
        key = "markets" if conn.markets is not None else "assets_ids"
        try:
            msg = json.loads(text)
            ids = _ids(msg[key])
            operation = msg.get("operation", "subscribe")
        except (ValueError, KeyError, TypeError, AttributeError, BadRequest):
            msg, ids, operation = None, [], None
        now = self._clock.now_ns()
        wait_ns = conn.budget.charge(request_cost(len(ids)), now)
        if wait_ns:
            self._counts["requests_throttled"] += 1
            await self._clock.sleep_until(now + wait_ns)
        if msg is None or operation not in ("subscribe", "unsubscribe"):
            self._counts["bad_client_messages"] += 1
            return
        self._counts["subscription_requests"] += 1
        if conn.markets is not None:
            self._on_markets(conn.markets, operation, ids)
        else:
            self._on_assets(conn, operation, ids, msg.get("custom_feature_enabled") is True)

    def _on_assets(self, conn: Connection, operation: str, assets: list[str], custom: bool) -> None:
        if operation == "unsubscribe":
            conn.assets.difference_update(assets)
            return
        conn.custom_feature = conn.custom_feature or custom
        granted = subscribe_assets(conn.assets, assets, known=self._venue.engine.has_token, limit=self.max_assets)
        self._counts["assets_unknown"] += granted.unknown
        self._counts["assets_over_limit"] += granted.over_limit
        if granted.fresh:
            snapshot = self._venue.snapshot(granted.fresh)
            if snapshot is not None:
                self._counts["snapshot_books"] += len(granted.fresh)
                self.enqueue(conn, snapshot)

    def _on_markets(self, wanted: MarketFilter, operation: str, markets: list[str]) -> None:
        if operation == "subscribe":
            self._count_markets(wanted.subscribe(markets, known=self._known_market))
        else:
            self._count_markets(wanted.unsubscribe(markets, known=self._known_market))

    def _count_markets(self, granted: Granted) -> None:
        self._counts["markets_unknown"] += granted.unknown
        self._counts["markets_over_limit"] += granted.over_limit

    def _known_market(self, market: str) -> bool:
        try:
            self._venue.engine.market_state(market)
        except KeyError:
            return False
        return True

    async def _sender(self, conn: Connection) -> None:
        async for text in conn.receive:
            if conn.delay_s:
                await trio.sleep(conn.delay_s)
            if conn.stalled_until_ns > self._clock.now_ns():
                self._counts["frames_dropped_stalled"] += 1
                continue
            try:
                await conn.ws.send_message(text)
            except trio_websocket.ConnectionClosed:
                return  # the reader sees it too and ends the connection
            self._counts["frames_sent"] += 1


def _ids(value: Any) -> list[str]:
    """A request's list of ids (strings; integers are read as their decimal form)."""
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise BadRequest("expected a list of ids")
    return [str(v) for v in value]


async def _close(ws: trio_websocket.WebSocketConnection, code: int, reason: str) -> None:
    with trio.move_on_after(1) as cleanup:
        cleanup.shield = True
        await ws.aclose(code=code, reason=reason)

"""The simulator's websocket channels: the market channel (``/ws/market``) and the user channel
(``/ws/user``), over trio-websocket.

Each connection has a bounded queue and its own sender task, so a slow client never holds the
world up: a client whose queue fills is disconnected (the venue does the same to consumers that
cannot keep up). ``publish`` hands each market frame to the connections subscribed to its
assets; ``publish_user`` hands each account its user-channel messages. Faults reach the
connections through ``everyone``, ``market`` and ``delay_s``.
"""

from __future__ import annotations

import json
from typing import Iterable

import attrs
import trio
import trio_websocket

from mmbot.clock import TrioClock
from mmbot.venues.simulator.trading import SimTrading, VenueRefusal
from mmbot.venues.simulator.venue import LiveVenue, OutFrame


@attrs.define(eq=False)
class Connection:
    number: int
    ws: trio_websocket.WebSocketConnection
    send: trio.MemorySendChannel[str]
    receive: trio.MemoryReceiveChannel[str]
    scope: trio.CancelScope
    assets: set[str] = attrs.Factory(set)
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
        self.market: dict[int, Connection] = {}
        self.user: dict[str, dict[int, Connection]] = {}  # api key -> its connections
        self.opened = 0
        self.delay_s = 0.0  # float-ok: applies to connections opened later too

    def everyone(self) -> list[Connection]:
        return list(self.market.values()) + [conn for by_key in self.user.values() for conn in by_key.values()]

    # ------------------------------------------------------------------ sending

    def publish(self, frames: list[OutFrame]) -> None:
        """Hand every frame to the connections it concerns; never waits for any of them."""
        now = self._clock.now_ns()
        for frame in frames:
            for conn in list(self.market.values()):
                if frame.assets is not None and conn.assets.isdisjoint(frame.assets):
                    continue
                if conn.stalled_until_ns > now:
                    self._counts["frames_dropped_stalled"] += 1
                    continue
                self.enqueue(conn, frame.text)

    def publish_user(self) -> None:
        for api_key, text in self._venue.user_feed.take(self._venue.now_ns):
            for conn in list(self.user.get(api_key, {}).values()):
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
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await ws.aclose(code=1012, reason="dropped")

    async def _on_user_connection(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            hello = json.loads(await ws.get_message())
            auth = hello["auth"]
            api_key = self._trading.check_credentials(str(auth["apiKey"]), str(auth["secret"]),
                                                      str(auth["passphrase"]))
        except (ValueError, KeyError, TypeError, VenueRefusal, trio_websocket.ConnectionClosed):
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await ws.aclose(code=1008, reason="unauthorized")  # bad credentials look like a close
            return
        conn = self._open(ws)
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
        return Connection(self.opened, ws, send, receive, trio.CancelScope(), delay_s=self.delay_s)

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
            self._on_request(conn, text)

    def _on_request(self, conn: Connection, text: str | bytes) -> None:
        try:
            msg = json.loads(text)
            assets = [str(a) for a in msg["assets_ids"]]
        except (ValueError, KeyError, TypeError):
            self._counts["bad_client_messages"] += 1
            return
        if msg.get("operation") == "unsubscribe":
            conn.assets.difference_update(assets)
            return
        fresh = [a for a in dict.fromkeys(assets) if a not in conn.assets]
        conn.assets.update(fresh)
        snapshot = self._venue.snapshot(fresh)
        if snapshot is not None:
            self.enqueue(conn, snapshot)

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

"""The channel clients: websocket connections that subscribe, keep alive, notice silence,
reconnect, and shard the venue's assets (protocol doc §2, §3).

A ``ChannelConnection`` holds one websocket for a set of subscription keys: asset ids on the
market channel (at most ``max_assets_per_connection`` of them), condition ids on the user
channel (``user_connection``, which authenticates in its first frame). It
sends the text ``PING`` every ``ping_s``; if neither a frame nor a ``PONG`` arrives for
``silence_s`` it gives the connection up, as it does when the connection drops or cannot be
opened, and reconnects after the project's one backoff (``mmbot.backoff``: doubling from
``backoff_initial_ms`` up to ``backoff_max_s``, with seeded jitter). Subscriptions do not survive a
reconnect, so it resubscribes everything and the venue answers with a fresh snapshot of every
book, which replaces the local one. While it is down its assets' books are marked stale
(``on_gap``), and the gap is recorded.

Every frame goes to ``on_frame(text, recv_ns)`` synchronously: the client never awaits its
consumers (``facts.feed.MarketFrames.on_frame`` does not block). ``MarketChannel`` spreads
subscriptions over as many connections as needed and adds or removes assets as markets come and
go.
"""

from __future__ import annotations

import json
import math
import random
from typing import Callable, Iterable

import trio
import trio_websocket

from mmbot.backoff import Backoff
from mmbot.config import FeedConfig
from mmbot.ports import Clock, EventSink
from mmbot.venues.polymarket.auth import ApiCredentials

FrameSink = Callable[[str, int], None]  # (frame text, receive time ns)
GapSink = Callable[[list[str], str], None]  # (assets whose books are no longer fed, reason)

MAX_FRAME_BYTES = 64 << 20  # the subscription snapshot is the largest frame: tens of MiB at 500 assets


def _market_hello(assets: list[str]) -> dict[str, object]:
    return {"assets_ids": assets, "type": "market", "custom_feature_enabled": True}


def _market_change(assets: list[str], subscribe: bool) -> dict[str, object]:
    if subscribe:
        return {"assets_ids": assets, "operation": "subscribe", "custom_feature_enabled": True}
    return {"assets_ids": assets, "operation": "unsubscribe"}


class ChannelConnection:
    def __init__(
        self, *, name: str, url: str, assets: Iterable[str], on_frame: FrameSink, on_gap: GapSink,
        sink: EventSink, clock: Clock, config: FeedConfig, rng: random.Random,
        hello: Callable[[list[str]], dict[str, object]] = _market_hello,
        change: Callable[[list[str], bool], dict[str, object]] = _market_change,
        on_up: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.url = url
        self.assets: dict[str, None] = dict.fromkeys(assets)  # ordered: subscriptions in the order asked
        self._on_frame = on_frame
        self._on_gap = on_gap
        self._sink = sink
        self._clock = clock
        self._config = config
        self._rng = rng
        self._hello = hello  # the first frame: the subscription (and, on the user channel, the credentials)
        self._change = change  # a live subscribe (True) or unsubscribe (False)
        self._on_up = on_up  # connected and subscribed (the user channel's catch-up starts from here)
        self._outbox: trio.MemorySendChannel[str] | None = None  # set while connected
        self.connected = False
        self.sessions = 0
        self.frames = 0
        self.pongs = 0
        self.down_since_ns: int | None = None

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, assets: Iterable[str]) -> list[str]:
        """Add assets (live if connected); returns the ones that were new."""
        fresh = [a for a in dict.fromkeys(assets) if a not in self.assets]
        self.assets.update(dict.fromkeys(fresh))
        if fresh:
            self._send(self._change(fresh, True))
        return fresh

    def unsubscribe(self, assets: Iterable[str]) -> list[str]:
        gone = [a for a in dict.fromkeys(assets) if a in self.assets]
        for asset in gone:
            del self.assets[asset]
        if gone:
            self._send(self._change(gone, False))
        return gone

    def _send(self, msg: dict[str, object]) -> None:
        if self._outbox is not None:
            self._outbox.send_nowait(json.dumps(msg))  # unbounded: a handful of operations at most

    # ------------------------------------------------------------------ the connection's life

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, and reconnect for ever; cancel the task to stop."""
        task_status.started()
        cfg = self._config
        backoff = Backoff(base_s=cfg.backoff_initial_ms / 1000, cap_s=cfg.backoff_max_s, rng=self._rng)  # float-ok
        while True:
            sessions_before = self.sessions
            self._down(await self._session())
            if self.sessions > sessions_before:  # it did connect: start the backoff afresh
                backoff.reset()
            await trio.sleep(backoff.next_s())

    async def _session(self) -> str:
        """One connection, from opening to losing it; returns why it ended."""
        cfg = self._config
        reason = "closed"
        try:
            async with trio_websocket.open_websocket_url(
                self.url, connect_timeout=cfg.connect_timeout_s, disconnect_timeout=2,
                max_message_size=MAX_FRAME_BYTES,
            ) as ws:
                outbox, pending = trio.open_memory_channel[str](math.inf)
                await ws.send_message(json.dumps(self._hello(list(self.assets))))
                self._outbox = outbox
                self._up()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pinger, ws)
                    nursery.start_soon(self._writer, ws, pending)
                    reason = await self._reader(ws)
                    nursery.cancel_scope.cancel()
        except* (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, OSError, trio.TooSlowError) as lost:
            reason = _describe(lost.exceptions[0])
        finally:
            self._outbox = None
        return reason

    async def _reader(self, ws: trio_websocket.WebSocketConnection) -> str:
        silence = self._config.silence_s
        while True:
            with trio.move_on_after(silence) as quiet:
                try:
                    text = await ws.get_message()
                except trio_websocket.ConnectionClosed as exc:
                    return _describe(exc)
            if quiet.cancelled_caught:
                return f"silent for {silence} s"
            recv_ns = self._clock.now_ns()
            if text == "PONG":
                self.pongs += 1
                continue
            if isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")
            self.frames += 1
            self._on_frame(text, recv_ns)

    async def _pinger(self, ws: trio_websocket.WebSocketConnection) -> None:
        while True:
            await trio.sleep(self._config.ping_s)
            try:
                await ws.send_message("PING")
            except trio_websocket.ConnectionClosed:
                return  # the reader sees it too

    async def _writer(self, ws: trio_websocket.WebSocketConnection, pending: trio.MemoryReceiveChannel[str]) -> None:
        async for text in pending:
            try:
                await ws.send_message(text)
            except trio_websocket.ConnectionClosed:
                return

    def _up(self) -> None:
        self.connected = True
        self.sessions += 1
        now = self._clock.now_ns()
        payload: dict[str, object] = {"connection": self.name, "assets": len(self.assets), "session": self.sessions}
        if self.down_since_ns is not None:
            payload["gap_ms"] = (now - self.down_since_ns) // 1_000_000
        self._sink.record("feed_up", self.name, payload)
        self.down_since_ns = None
        self._on_up()

    def lost(self, reason: str) -> None:
        """The connection is gone without the reader seeing it (its task crashed): a gap, as a drop."""
        self._outbox = None
        self._down(reason)

    def _down(self, reason: str) -> None:
        was_connected = self.connected
        self.connected = False
        if self.down_since_ns is None:
            self.down_since_ns = self._clock.now_ns()
        self._sink.record("feed_down", self.name, {"connection": self.name, "reason": reason,
                                                   "was_connected": was_connected})
        if was_connected:
            self._on_gap(list(self.assets), reason)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return "connect timed out"
    if isinstance(exc, trio_websocket.ConnectionClosed):
        return f"closed by the venue ({exc.reason.code})"
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return f"refused by the venue (HTTP {exc.status_code})"
    if isinstance(exc, trio_websocket.HandshakeError) and not str(exc) and exc.__cause__ is not None:
        return f"cannot connect: {exc.__cause__}"[:200]  # the handshake's own error says nothing
    return f"{type(exc).__name__}: {exc}"[:200]


class MarketChannel:
    """Every subscribed asset, sharded over connections of at most ``max_assets_per_connection``."""

    def __init__(
        self, *, url: str, on_frame: FrameSink, on_gap: GapSink, sink: EventSink, clock: Clock,
        config: FeedConfig, rng: random.Random,
    ) -> None:
        if config.max_assets_per_connection < 1:
            raise ValueError("feed.max_assets_per_connection: expected at least 1")
        self._limit = config.max_assets_per_connection
        # what every connection shares
        self._shared = dict(url=url, on_frame=on_frame, on_gap=on_gap, sink=sink, clock=clock, config=config, rng=rng)
        self.connections: list[ChannelConnection] = []
        self._nursery: trio.Nursery | None = None

    def subscribe(self, assets: Iterable[str]) -> None:
        """Add assets to connections with room, opening new ones as needed (now, if running)."""
        wanted = [a for a in dict.fromkeys(assets) if not any(a in c.assets for c in self.connections)]
        limit = self._limit
        for conn in self.connections:
            room = limit - len(conn.assets)
            if room > 0 and wanted:
                conn.subscribe(wanted[:room])
                wanted = wanted[room:]
        while wanted:
            conn = ChannelConnection(name=f"market-{len(self.connections) + 1}", assets=wanted[:limit], **self._shared)
            wanted = wanted[limit:]
            self.connections.append(conn)
            if self._nursery is not None:
                self._nursery.start_soon(conn.run, name=conn.name)

    def unsubscribe(self, assets: Iterable[str]) -> None:
        gone = set(assets)
        for conn in self.connections:
            conn.unsubscribe([a for a in conn.assets if a in gone])

    @property
    def assets(self) -> int:
        return sum(len(c.assets) for c in self.connections)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for conn in self.connections:
                nursery.start_soon(conn.run, name=conn.name)
            task_status.started()
            await trio.sleep_forever()

    def statistics(self) -> dict[str, object]:
        return {
            "connections": len(self.connections),
            "connected": sum(c.connected for c in self.connections),
            "assets": self.assets,
            "frames": sum(c.frames for c in self.connections),
            "sessions": sum(c.sessions for c in self.connections),
        }


def user_connection(
    *, url: str, creds: ApiCredentials, markets: Iterable[str], on_frame: FrameSink, on_gap: GapSink,
    sink: EventSink, clock: Clock, config: FeedConfig, rng: random.Random, on_up: Callable[[], None] = lambda: None,
) -> ChannelConnection:
    """The authenticated user channel, filtered by condition ids (none: every market).

    The credentials travel only inside the first frame; nothing here logs a frame we send.
    """

    def hello(markets_: list[str]) -> dict[str, object]:
        auth = {"apiKey": creds.api_key, "secret": creds.secret.reveal(), "passphrase": creds.passphrase.reveal()}
        return {"auth": auth, "markets": markets_, "type": "user"}

    def change(markets_: list[str], subscribe: bool) -> dict[str, object]:
        return {"operation": "subscribe" if subscribe else "unsubscribe", "markets": markets_}

    return ChannelConnection(name="user", url=url, assets=markets, on_frame=on_frame, on_gap=on_gap, sink=sink,
                             clock=clock, config=config, rng=rng, hello=hello, change=change, on_up=on_up)

"""The market channel end to end over loopback sockets: the simulator server (the engine is the
oracle) and the client (ws.py + facts/feed.py), under Trio's autojump clock.

Nothing here reaches beyond 127.0.0.1. Every test waits on conditions, never on real time: the
autojump clock skips the simulator's step sleeps, the client's pings and its silence window.
"""

from __future__ import annotations

import json
import random
from typing import Any, Callable

import attrs
import httpx
import trio

from mmbot.app import book_updates
from mmbot.clock import TrioClock
from mmbot.config import FeedConfig
from mmbot.decisions.book import Books
from mmbot.facts.bus import Doorbell, LatestSlots, Stream
from mmbot.facts.feed import MarketFrames
from mmbot.model import BookState
from mmbot.venues.polymarket.discovery import list_markets
from mmbot.venues.polymarket.wire import decode_market_frame
from mmbot.venues.polymarket.ws import MarketChannel
from mmbot.venues.simulator.flow import FlowParams
from mmbot.venues.simulator.server import Fault, SimServer, SimSettings
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000
QUIET = FlowParams(makers_per_market=2)  # fewer background traders: big venues build quickly


class Rows:
    """An EventSink that keeps every row."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, **_: Any) -> None:
        self.rows.append((kind, cid, payload or {}))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [p for k, _, p in self.rows if k == kind]


@attrs.define
class Client:
    books: Books
    frames: MarketFrames
    channel: MarketChannel
    sink: Rows


def client(url: str, *, config: FeedConfig = FeedConfig(), clock: TrioClock | None = None) -> Client:
    sink = Rows()
    clock = clock or TrioClock(anchor_ns=START_NS)
    books = Books(sink)
    doorbell = Doorbell()
    frames = MarketFrames(
        decode=decode_market_frame, apply_books=books.apply, book_update=book_updates(books), observers=[],
        slots=LatestSlots(doorbell), inbox=Stream(doorbell), sink=sink, mark_stale=books.mark_stale,
    )
    channel = MarketChannel(
        url=url, on_frame=frames.on_frame, on_gap=lambda tokens, reason: frames.on_gap(tokens, reason, clock.now_ns()),
        sink=sink, clock=clock, config=config, rng=random.Random(1),
    )
    return Client(books, frames, channel, sink)


async def start_venue(nursery: trio.Nursery, *, markets: int = 4, seed: int = 5, params: FlowParams = FlowParams(),
                      **settings: Any) -> tuple[SimServer, Any]:
    venue = LiveVenue(seed=seed, markets=markets, start_ns=START_NS, warmup_s=10, params=params)
    server = SimServer(venue, settings=SimSettings(seed=seed, markets=markets, **settings))
    urls = await nursery.start(server.run)
    return server, urls


def tokens_of(server: SimServer) -> list[str]:
    return [t for info in server.venue.markets() for t in info.tokens]


async def until(condition: Callable[[], bool], *, step_s: float = 0.05, limit_s: int = 120) -> None:  # float-ok
    """Wait (on the autojump clock) until ``condition()`` holds."""
    with trio.fail_after(limit_s):
        while not condition():
            await trio.sleep(step_s)


def assert_books_equal_engine(c: Client, server: SimServer, tokens: list[str]) -> None:
    engine = server.venue.engine
    for token in tokens:
        book = c.books.get(token)
        assert book is not None and book.state is BookState.SYNCED, token
        bids, asks = engine.book_snapshot(token)
        assert sorted(book.bids.items(), reverse=True) == list(bids), token
        assert sorted(book.asks.items()) == list(asks), token


async def settle(server: SimServer, c: Client) -> None:
    """Stop the world moving and wait until the client has every frame the server sent."""
    server.pause()
    await until(lambda: server.counts["frames_sent"] == c.channel.statistics()["frames"] + server.counts["pings"])


# --------------------------------------------------------------------------- the oracle


async def test_client_books_equal_the_engine_after_many_events_on_hundreds_of_tokens(nursery, autojump_clock):
    server, urls = await start_venue(nursery, markets=200, params=QUIET)
    c = client(urls.ws)
    tokens = tokens_of(server)
    assert len(tokens) >= 300
    c.channel.subscribe(tokens)
    await nursery.start(c.channel.run)
    await until(lambda: c.frames.frames > 2_000)
    await settle(server, c)
    assert c.frames.malformed == 0
    assert_books_equal_engine(c, server, [t for t in tokens if server.venue.engine.has_token(t)])
    assert c.sink.of("feed_down") == []


# --------------------------------------------------------------------------- faults


async def test_dropped_connections_reconnect_resync_and_record_the_gap(nursery, autojump_clock):
    server, urls = await start_venue(nursery)
    c = client(urls.ws)
    tokens = tokens_of(server)
    c.channel.subscribe(tokens)
    await nursery.start(c.channel.run)
    await until(lambda: c.frames.frames > 50)
    server.inject(Fault(kind="drop"))
    await until(lambda: c.sink.of("feed_down") != [])
    # while down, the books are distrusted
    assert all(c.books.get(t).state is BookState.STALE for t in tokens)
    await until(lambda: len(c.sink.of("feed_up")) == 2 and all(c.books.get(t).state is BookState.SYNCED for t in tokens))
    down, up = c.sink.of("feed_down")[0], c.sink.of("feed_up")[1]
    assert down["reason"].startswith("closed by the venue") and down["was_connected"]
    assert up["gap_ms"] >= FeedConfig().backoff_initial_ms // 2  # equal jitter: at least half the first delay
    assert c.sink.of("feed_gap")[0]["stale"] == len(tokens)
    await until(lambda: c.frames.frames > 150)
    await settle(server, c)
    assert_books_equal_engine(c, server, tokens)


async def test_a_stalled_connection_is_detected_within_the_window_and_replaced(nursery, autojump_clock):
    server, urls = await start_venue(nursery)
    config = FeedConfig(ping_s=2, silence_s=6)
    c = client(urls.ws, config=config)
    tokens = tokens_of(server)
    c.channel.subscribe(tokens)
    await nursery.start(c.channel.run)
    # venue-shaped frames come fast: wait for a PING answered too, not only for frames
    await until(lambda: c.frames.frames > 20 and c.channel.connections[0].pongs > 0)
    stalled_at = trio.current_time()
    server.inject(Fault(kind="stall"))  # until dropped: sends nothing, answers no PING
    await until(lambda: c.sink.of("feed_down") != [])
    detected = trio.current_time() - stalled_at
    assert c.sink.of("feed_down")[0]["reason"] == "silent for 6 s"
    # the window runs from the last frame, at most one venue step (0.1 s) before the stall began
    assert 6 - 0.2 <= detected <= 6 + 0.1
    await until(lambda: len(c.sink.of("feed_up")) == 2 and all(c.books.get(t).state is BookState.SYNCED for t in tokens))
    assert server.statistics()["opened"] == 2 and server.counts["frames_dropped_stalled"] > 0
    assert c.channel.connections[0].pongs > 0  # the pings were answered before the stall


async def test_a_malformed_frame_is_counted_recorded_and_the_feed_goes_on(nursery, autojump_clock):
    server, urls = await start_venue(nursery)
    c = client(urls.ws)
    c.channel.subscribe(tokens_of(server))
    await nursery.start(c.channel.run)
    await until(lambda: c.frames.frames > 20)
    server.inject(Fault(kind="malformed"))
    await until(lambda: c.frames.malformed == 1)
    before = c.frames.frames
    await until(lambda: c.frames.frames > before + 20)
    assert c.sink.of("frame_malformed")[0]["channel"] == "market"
    assert c.sink.of("feed_down") == []


async def test_a_tick_change_reaches_the_client_and_the_book_resyncs(nursery, autojump_clock):
    server, urls = await start_venue(nursery)
    c = client(urls.ws)
    info = server.venue.markets()[1]
    c.channel.subscribe(info.tokens)
    await nursery.start(c.channel.run)
    await until(lambda: all(c.books.get(t) is not None for t in info.tokens))
    server.inject(Fault(kind="tick", value=f"{info.market}:0.001"))
    await until(lambda: all(c.books.get(t).tick == 1_000 for t in info.tokens))
    await settle(server, c)
    assert all(c.books.get(t).state is BookState.SYNCED for t in info.tokens)  # the venue sent a fresh book
    assert_books_equal_engine(c, server, list(info.tokens))


# --------------------------------------------------------------------------- sharding and subscriptions


async def test_two_thousand_assets_open_four_connections_and_every_book_syncs(nursery, autojump_clock):
    server, urls = await start_venue(nursery, markets=1_400, params=FlowParams(makers_per_market=1))
    c = client(urls.ws)
    tokens = tokens_of(server)[:2_000]
    c.channel.subscribe(tokens)
    assert len(c.channel.connections) == 4
    await nursery.start(c.channel.run)
    await until(lambda: all(c.books.get(t) is not None and c.books.get(t).state is BookState.SYNCED for t in tokens))
    assert server.statistics()["connections"] == 4
    assert [len(conn.assets) for conn in c.channel.connections] == [500, 500, 500, 500]


async def test_subscribe_and_unsubscribe_while_connected(nursery, autojump_clock):
    server, urls = await start_venue(nursery)
    c = client(urls.ws)
    first, second = server.venue.markets()[:2]
    c.channel.subscribe(first.tokens)
    await nursery.start(c.channel.run)
    await until(lambda: all(c.books.get(t) is not None for t in first.tokens))
    c.channel.subscribe(second.tokens)  # live: the venue answers with their snapshot
    await until(lambda: all(c.books.get(t) is not None for t in second.tokens))
    c.channel.unsubscribe(first.tokens)
    await settle(server, c)
    applied = c.books.statistics().changes_applied
    server.resume()
    await until(lambda: c.books.statistics().changes_applied > applied + 20)
    await settle(server, c)
    assert_books_equal_engine(c, server, list(second.tokens))
    assert len(c.channel.connections) == 1


# --------------------------------------------------------------------------- REST


async def test_public_rest_and_the_gamma_listing(nursery, autojump_clock):
    server, urls = await start_venue(nursery)
    info = server.venue.markets()[0]
    token = info.tokens[0]
    async with httpx.AsyncClient(base_url=urls.gamma) as gamma:
        markets, problems = await list_markets(gamma)
    assert [m.market for m in markets] == [m.market for m in server.venue.markets()] and problems == []
    assert markets[0].tokens == info.tokens and markets[0].fee_rate == info.fee_rate
    async with httpx.AsyncClient(base_url=urls.rest) as http:
        listing = (await http.get("/gamma/markets")).json()[0]
        assert isinstance(listing["clobTokenIds"], str) and json.loads(listing["clobTokenIds"]) == list(info.tokens)
        book = (await http.get("/book", params={"token_id": token})).json()
        bids, asks = server.venue.engine.book_snapshot(token)
        assert book["bids"][-1]["price"] == f"{bids[0][0] / 1e6:g}"  # float-ok: best bid is the last element
        assert book["min_order_size"] == "5" and book["neg_risk"] is False
        assert (await http.get("/book", params={"token_id": "nope"})).status_code == 404
        both = (await http.post("/books", json=[{"token_id": token}, {"token_id": "nope"}])).json()
        assert [b["asset_id"] for b in both] == [token]  # unknown tokens silently omitted
        assert (await http.get("/tick-size", params={"token_id": token})).json() == {"minimum_tick_size": 0.01}
        assert (await http.get("/neg-risk", params={"token_id": token})).json() == {"neg_risk": False}
        mid = (bids[0][0] + asks[0][0]) // 2
        assert (await http.get("/midpoint", params={"token_id": token})).json()["mid"] == f"{mid / 1e6:g}"  # float-ok
        assert (await http.get("/price", params={"token_id": token, "side": "BUY"})).json() == {
            "price": f"{bids[0][0] / 1e6:g}"  # float-ok
        }
        assert int((await http.get("/time")).text) == server.venue.now_ns // 1_000_000_000
        events = (await http.get("/gamma/events")).json()
        assert events[0]["markets"][0]["conditionId"] == info.market
        bad = await http.post("/admin/fault", json={"kind": "explode"}, headers=server.admin_headers())
        assert bad.status_code == 400 and "fault kind" in bad.json()["error"]

"""The simulator's websocket channels: venue-shaped market frames (one or two entries a
``price_change``, ``best_bid_ask`` when a top moves) compared key for key with the captured
samples, the custom-feature gating, the user channel's ``markets`` filter, and the bounds on
what one connection may ask for — the last three over real loopback sockets on a MockClock."""

from __future__ import annotations

import json
import random
from typing import Any

import trio
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.clock import TrioClock
from mmbot.config import FeedConfig, Secret
from mmbot.model import ONE, MarketInfo, Side, TimeInForce, format_micro, parse_micro
from mmbot.venues.polymarket.auth import ApiCredentials
from mmbot.venues.polymarket.ws import ChannelConnection
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.frames import FrameRenderer
from mmbot.venues.simulator.server import SimServer, SimSettings
from mmbot.venues.simulator.subscriptions import (
    BUDGET, BUDGET_PER_S, HELLO_TIMEOUT_S, Budget, MarketFilter, subscribe_assets,
)
from mmbot.venues.simulator.venue import LiveVenue
from tests.shapes import shape_errors

SECOND = 1_000_000_000
START_NS = 1_786_604_100 * SECOND
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
CREDS = ApiCredentials(api_key="0b7c4e2a-1d3f-4a5b-8c6d-7e8f9a0b1c2d",
                       secret=Secret(value="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="),
                       passphrase=Secret(value="channels-test-passphrase"))
AUTH = {"apiKey": CREDS.api_key, "secret": CREDS.secret.reveal(), "passphrase": CREDS.passphrase.reveal()}
CUSTOM = {"best_bid_ask", "new_market", "market_resolved"}


class Rows:
    def record(self, kind, cid, payload=None, **_):  # noqa: ANN001, ANN201
        pass


def messages(text: str) -> list[dict[str, Any]]:
    decoded = json.loads(text)
    return decoded if isinstance(decoded, list) else [decoded]


# --------------------------------------------------------------------------- shapes (sans-IO)


def _every_kind() -> dict[str, dict[str, Any]]:
    """One frame of each kind the simulator sends, from an engine through the venue-shaped renderer."""
    engine, renderer = Engine(), FrameRenderer(best_bid_ask=True)
    kinds: dict[str, dict[str, Any]] = {}

    def take(now_s: int) -> None:
        for text in renderer.render(engine.take_events()):
            for msg in messages(text):
                kind = msg["event_type"]
                if kind == "book":
                    kind = "book (subscription)" if "tick_size" in msg else "book (after a trade)"
                kinds.setdefault(kind, msg)

    engine.add_market(MarketInfo(market="0x" + "ab" * 32, tokens=("1" * 77, "2" * 77)), now_ns=SECOND)
    take(1)
    for side, price in ((Side.BUY, 400_000), (Side.SELL, 600_000)):
        engine.submit("maker", "1" * 77, side, price, 10 * ONE, TimeInForce.GTC, False, 2 * SECOND)
    engine.submit("taker", "1" * 77, Side.SELL, 400_000, 6 * ONE, TimeInForce.FAK, False, 3 * SECOND)
    take(3)
    engine.set_tick("0x" + "ab" * 32, 1_000, 4 * SECOND)
    take(4)
    engine.resolve("0x" + "ab" * 32, "2" * 77, 5 * SECOND)
    take(5)
    return kinds


def test_every_market_frame_kind_has_the_captured_keys_and_types(fixtures_dir):
    """Live captures (C) where one exists; the edited (E) or hand-written (S) sample otherwise."""
    captured = {
        "book (subscription)": "ws_book_snapshot_captured.json",  # C
        "book (after a trade)": "book.json",  # C
        "price_change": "price_change_v2.json",  # E (the S sample has the same keys)
        "last_trade_price": "last_trade_price.json",  # C, from 2024: before transaction_hash
        "tick_size_change": "ws_market_tick_size_msg.json",  # S
        "best_bid_ask": "ws_market_best_bid_ask_msg.json",  # C
        "new_market": "ws_market_new_market_msg.json",  # C
        "market_resolved": "ws_market_resolved_msg.json",  # E
    }
    ours = _every_kind()
    assert set(ours) == set(captured)
    for kind, name in captured.items():
        sample = json.loads((fixtures_dir / "ws-market" / name).read_text())
        if kind == "last_trade_price":
            sample["transaction_hash"] = "0x" + "0" * 64  # current prints carry it (protocol doc §2)
        assert shape_errors(ours[kind], sample) == [], kind
    spare = json.loads((fixtures_dir / "ws-market" / "ws_market_price_change_msg.json").read_text())
    assert shape_errors(ours["price_change"], spare) == []


def test_each_level_change_is_its_own_price_change_and_a_mirrored_pair_shares_one():
    engine, renderer = Engine(), FrameRenderer(best_bid_ask=True)
    engine.add_market(MarketInfo(market="0xm", tokens=("Y", "N")), now_ns=SECOND)
    renderer.render(engine.take_events())
    for side, price in ((Side.BUY, 400_000), (Side.BUY, 410_000), (Side.BUY, 390_000)):
        engine.submit("m", "Y", side, price, 10 * ONE, TimeInForce.GTC, False, 2 * SECOND)
    frames = [json.loads(f) for f in renderer.render(engine.take_events())]
    # a best_bid_ask follows each change of the top (0.40, then 0.41), none for the deeper 0.39
    assert [(f["event_type"], f.get("best_bid")) for f in frames] == [
        ("price_change", None), ("best_bid_ask", "0.4"), ("price_change", None), ("best_bid_ask", "0.41"),
        ("price_change", None)]
    changes = [f["price_changes"] for f in frames if f["event_type"] == "price_change"]
    assert [[(e["price"], e["best_bid"], e["best_ask"]) for e in c] for c in changes] == [
        [("0.4", "0.4", "1")], [("0.41", "0.41", "1")], [("0.39", "0.41", "1")]]
    hashes = [c[0]["hash"] for c in changes]
    assert len(set(hashes)) == 3  # each hashes the book after its own change
    assert frames[1] | {"timestamp": "x"} == {"event_type": "best_bid_ask", "market": "0xm", "asset_id": "Y",
                                              "best_bid": "0.4", "best_ask": "1", "spread": "0.6", "timestamp": "x"}

    # the venue's two legs: a YES bid at 0.3 and a NO ask at 0.7 that change together
    engine.submit("m", "Y", Side.BUY, 300_000, 5 * ONE, TimeInForce.GTC, False, 3 * SECOND)
    engine.submit("m", "N", Side.SELL, 700_000, 5 * ONE, TimeInForce.GTC, False, 3 * SECOND)
    frames = [json.loads(f) for f in renderer.render(engine.take_events())]
    assert [f["event_type"] for f in frames] == ["price_change", "best_bid_ask"]  # N's ask is its new top
    assert [(e["asset_id"], e["side"], e["price"]) for e in frames[0]["price_changes"]] == [
        ("Y", "BUY", "0.3"), ("N", "SELL", "0.7")]

    # the older shape, on request: one message per market and call, with no mirror needed
    batched = FrameRenderer(batched=True)
    engine.add_market(MarketInfo(market="0xb", tokens=("A", "B")), now_ns=4 * SECOND)
    batched.render(engine.take_events())
    for price in (400_000, 410_000, 390_000):
        engine.submit("m", "A", Side.BUY, price, 10 * ONE, TimeInForce.GTC, False, 5 * SECOND)
    (one,) = (json.loads(f) for f in batched.render(engine.take_events()))
    assert [e["price"] for e in one["price_changes"]] == ["0.4", "0.41", "0.39"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["rest", "rest", "take", "cancel", "pair"]), st.integers(0, 1),
                          st.sampled_from([Side.BUY, Side.SELL]), st.integers(30, 70), st.integers(1, 20)),
                max_size=40))
def test_venue_shaped_frames_rebuild_the_books_and_tell_every_top_change(ops):
    """Random resting, taking, cancelling and mirrored pairs: every price_change carries one
    entry or a mirrored pair; each entry's best_bid/best_ask is the top after it; a best_bid_ask
    follows exactly the messages that moved a token's top; the frames rebuild the engine's books."""
    engine, renderer = Engine(), FrameRenderer(best_bid_ask=True)
    tokens = ("Y", "N")
    engine.add_market(MarketInfo(market="0xm", tokens=tokens, min_size=ONE), now_ns=SECOND)
    renderer.render(engine.take_events())
    books: dict[str, tuple[dict[str, str], dict[str, str]]] = {t: ({}, {}) for t in tokens}
    told = {t: ("0", "1") for t in tokens}
    resting: list[str] = []
    level_changes = entries = 0

    def top(token: str) -> tuple[str, str]:
        bids, asks = books[token]
        return (max(bids, key=parse_micro) if bids else "0", min(asks, key=parse_micro) if asks else "1")

    for step, (kind, which, side, cents, size) in enumerate(ops):
        now = (step + 2) * SECOND
        token, price = tokens[which], cents * 10_000
        if kind == "cancel" and resting:
            engine.cancel(resting.pop(0), now)
        elif kind == "pair":  # a level and its mirror on the complement, at once
            engine.submit("m", token, side, price, size * ONE, TimeInForce.GTC, True, now)
            other = Side.SELL if side is Side.BUY else Side.BUY
            engine.submit("m", tokens[1 - which], other, ONE - price, size * ONE, TimeInForce.GTC, True, now)
        else:
            tif = TimeInForce.FAK if kind == "take" else TimeInForce.GTC
            result = engine.submit("m", token, side, price, size * ONE, tif, False, now)
            if result.status == "live":
                resting.append(result.order_id)
        events = engine.take_events()
        level_changes += sum(isinstance(e, ev.LevelChanged) for e in events)
        frames = [json.loads(f) for f in renderer.render(events)]
        expect_tops: list[str] = []  # best_bid_ask frames still owed by the last price_change
        for frame in frames:
            kind_ = frame["event_type"]
            if kind_ == "best_bid_ask":
                assert expect_tops and frame["asset_id"] == expect_tops.pop(0)
                assert (frame["best_bid"], frame["best_ask"]) == top(frame["asset_id"])
                told[frame["asset_id"]] = top(frame["asset_id"])
                continue
            assert not expect_tops, "a moved top was not told"
            if kind_ == "price_change":
                group = frame["price_changes"]
                assert len(group) in (1, 2)
                if len(group) == 2:
                    first, second = group
                    assert first["asset_id"] != second["asset_id"] and first["side"] != second["side"]
                    assert parse_micro(first["price"]) + parse_micro(second["price"]) == ONE
                for entry in group:
                    entries += 1
                    levels = books[entry["asset_id"]][0 if entry["side"] == "BUY" else 1]
                    if entry["size"] == "0":
                        levels.pop(entry["price"], None)
                    else:
                        levels[entry["price"]] = entry["size"]
                    assert (entry["best_bid"], entry["best_ask"]) == top(entry["asset_id"])
                expect_tops = [t for t in dict.fromkeys(e["asset_id"] for e in group) if top(t) != told[t]]
            elif kind_ == "book":
                books[frame["asset_id"]] = ({lv["price"]: lv["size"] for lv in frame["bids"]},
                                            {lv["price"]: lv["size"] for lv in frame["asks"]})
        assert not expect_tops
    assert entries == level_changes
    for token in tokens:
        bids, asks = engine.book_snapshot(token)
        assert books[token] == ({format_micro(p): format_micro(s) for p, s in bids},
                                {format_micro(p): format_micro(s) for p, s in asks})


# --------------------------------------------------------------------------- bounds (sans-IO)


def test_the_budget_lets_a_burst_through_then_paces_requests():
    budget = Budget(0, capacity=10, per_s=5)
    assert [budget.charge(4, 0) for _ in range(2)] == [0, 0]
    assert budget.charge(4, 0) == 400_000_000  # 2 short: 0.4 s at 5 a second
    assert budget.charge(1, 400_000_000) == 200_000_000  # the wait was owed, not forgiven
    assert budget.charge(10_000, 10 * SECOND) == 0  # a request costs at most the whole budget


def test_subscriptions_ignore_unknown_ids_and_stop_at_the_limit():
    held: set[str] = set()
    granted = subscribe_assets(held, ["a", "x", "b", "a", "c", "d"], known=lambda a: a != "x", limit=3)
    assert (granted.fresh, granted.unknown, granted.over_limit, held) == (["a", "b", "c"], 1, 1, {"a", "b", "c"})
    assert subscribe_assets(held, ["e"] * 5 + ["f", "a"], known=lambda a: True, limit=3).over_limit == 2

    everything, _ = MarketFilter.first([], known=lambda m: True)
    assert everything.wants("0xa")
    everything.unsubscribe(["0xa", "0xunknown"], known=lambda m: m == "0xa")
    assert not everything.wants("0xa") and everything.wants("0xb") and everything.excluded == {"0xa"}
    everything.subscribe(["0xa"], known=lambda m: True)
    assert everything.wants("0xa")
    some, granted = MarketFilter.first(["0xa", "0xz"], known=lambda m: m == "0xa")
    assert granted.unknown == 1 and some.wants("0xa") and not some.wants("0xb")
    some.subscribe(["0xb"], known=lambda m: True)
    some.unsubscribe(["0xa"], known=lambda m: True)
    assert (some.wants("0xa"), some.wants("0xb")) == (False, True)


# --------------------------------------------------------------------------- over loopback


async def _serve(nursery: trio.Nursery, **settings: Any) -> tuple[SimServer, LiveVenue, Any]:
    venue = LiveVenue(seed=4, markets=4, start_ns=START_NS, warmup_s=10, interval_s=60)
    server = SimServer(venue, settings=SimSettings(**settings), clock=TrioClock(anchor_ns=START_NS))
    server.add_account(ADDRESS, CREDS)
    urls = await nursery.start(server.run)
    return server, venue, urls


async def _read(ws: trio_websocket.WebSocketConnection, into: list[tuple[float, dict[str, Any]]]) -> None:
    """(receive time, message) of every JSON message until the connection closes."""
    try:
        while True:
            text = await ws.get_message()
            if text[:1] in ("{", "["):
                into.extend((trio.current_time(), msg) for msg in messages(text))
    except trio_websocket.ConnectionClosed:
        pass


async def test_custom_feature_messages_reach_only_connections_that_asked(nursery, autojump_clock):
    """mmbot's own client asks for them (and gets new_market, market_resolved and best_bid_ask);
    a connection that never asked gets none of them; both get the venue's one-or-two-entry shape."""
    _, venue, urls = await _serve(nursery)
    tokens = [t for m in venue.markets() for t in m.tokens]
    plain: list[tuple[float, dict[str, Any]]] = []
    ours: list[dict[str, Any]] = []
    client = ChannelConnection(name="market", url=urls.ws, assets=tokens, sink=Rows(),
                               on_frame=lambda text, t: ours.extend(messages(text)) if text[:1] in ("{", "[") else None,
                               on_gap=lambda assets, why: None, clock=TrioClock(anchor_ns=START_NS),
                               config=FeedConfig(), rng=random.Random(1))
    nursery.start_soon(client.run)
    async with trio_websocket.open_websocket_url(urls.ws) as ws:
        await ws.send_message(json.dumps({"assets_ids": tokens, "type": "market"}))
        with trio.move_on_after(100):  # a window is listed at ~42 s and the first resolves at ~87 s
            await _read(ws, plain)
    plain_kinds = {msg["event_type"] for _, msg in plain}
    our_kinds = {msg["event_type"] for msg in ours}
    assert {"book", "price_change", "last_trade_price"} <= plain_kinds and not plain_kinds & CUSTOM
    assert CUSTOM <= our_kinds
    tops: dict[str, tuple[str, str]] = {}
    for msg in ours:
        if msg["event_type"] == "price_change":
            assert 1 <= len(msg["price_changes"]) <= 2
            tops.update({e["asset_id"]: (e["best_bid"], e["best_ask"]) for e in msg["price_changes"]})
        elif msg["event_type"] == "best_bid_ask":
            assert tops[msg["asset_id"]] == (msg["best_bid"], msg["best_ask"])  # what the last change said
    assert max(len(msg["price_changes"]) for _, msg in plain if msg["event_type"] == "price_change") <= 2


async def test_the_batched_shape_is_an_option(nursery, autojump_clock):
    _, venue, urls = await _serve(nursery, batched_price_changes=True)
    got: list[tuple[float, dict[str, Any]]] = []
    async with trio_websocket.open_websocket_url(urls.ws) as ws:
        await ws.send_message(json.dumps({"assets_ids": [t for m in venue.markets() for t in m.tokens]}))
        with trio.move_on_after(20):
            await _read(ws, got)
    assert max(len(msg["price_changes"]) for _, msg in got if msg["event_type"] == "price_change") > 2


async def test_the_user_channel_sends_only_the_markets_a_connection_asked_for(nursery, autojump_clock):
    server, venue, _ = await _serve(nursery)
    a, b = venue.markets()[:2]
    got: dict[str, list[tuple[float, dict[str, Any]]]] = {"some": [], "all": []}
    async with trio_websocket.open_websocket_url(server.user_url) as some, \
            trio_websocket.open_websocket_url(server.user_url) as every:
        await some.send_message(json.dumps({"auth": AUTH, "markets": [a.market, "0x" + "99" * 32], "type": "user"}))
        await every.send_message(json.dumps({"auth": AUTH, "markets": [], "type": "user"}))
        nursery.start_soon(_read, some, got["some"])
        nursery.start_soon(_read, every, got["all"])
        await trio.sleep(1)

        def rest(info: MarketInfo) -> str:
            result = venue.engine.submit(CREDS.api_key, info.tokens[0], Side.BUY, info.tick, 10 * ONE,
                                         TimeInForce.GTC, True, venue.now_ns)
            assert result.status == "live"
            return result.order_id

        def seen(who: str) -> list[tuple[str, str]]:
            """(market, type) of the order messages since the last look."""
            out = [(m["market"], m["type"]) for _, m in got[who] if m["event_type"] == "order"]
            got[who].clear()
            return out

        orders = {a.market: rest(a), b.market: rest(b)}
        await trio.sleep(1)
        assert seen("some") == [(a.market, "PLACEMENT")]
        assert sorted(seen("all")) == sorted([(a.market, "PLACEMENT"), (b.market, "PLACEMENT")])

        await some.send_message(json.dumps({"operation": "subscribe", "markets": [b.market]}))
        await every.send_message(json.dumps({"operation": "unsubscribe", "markets": [a.market]}))
        await trio.sleep(1)
        for order_id in orders.values():
            venue.engine.cancel(order_id, venue.now_ns)
        await trio.sleep(1)
        assert sorted(seen("some")) == sorted([(a.market, "CANCELLATION"), (b.market, "CANCELLATION")])
        assert seen("all") == [(b.market, "CANCELLATION")]

        await some.send_message(json.dumps({"operation": "unsubscribe", "markets": [a.market, b.market]}))
        await trio.sleep(1)
        rest(a)
        await trio.sleep(1)
        assert seen("some") == [] and seen("all") == []
    assert server.counts["markets_unknown"] == 1


async def test_unknown_assets_are_not_kept_and_a_connection_holds_at_most_its_limit(nursery, autojump_clock):
    server, venue, urls = await _serve(nursery)
    tokens = [t for m in venue.markets() for t in m.tokens]
    unknown = [str(10**76 + i) for i in range(10_000)]  # about 800 kB: under the 1 MiB frame limit
    async with trio_websocket.open_websocket_url(urls.ws) as ws:
        await ws.send_message(json.dumps({"assets_ids": unknown + tokens[:2], "type": "market"}))
        snapshot = json.loads(await ws.get_message())
        assert [book["asset_id"] for book in snapshot] == tokens[:2]
        assert server.statistics()["sizes"]["subscribed_assets"] == 2
        assert server.counts["assets_unknown"] == 10_000

    server.channels.max_assets = 3
    async with trio_websocket.open_websocket_url(urls.ws) as ws:
        await ws.send_message(json.dumps({"assets_ids": tokens, "type": "market"}))
        assert [book["asset_id"] for book in json.loads(await ws.get_message())] == tokens[:3]
        assert server.counts["assets_over_limit"] == len(tokens) - 3
        await ws.send_message(json.dumps({"assets_ids": tokens[:1], "operation": "unsubscribe"}))
        await ws.send_message(json.dumps({"assets_ids": tokens[3:], "operation": "subscribe"}))
        while (text := await ws.get_message())[:1] != "[":
            pass
        assert [book["asset_id"] for book in json.loads(text)] == tokens[3:4]
        assert server.statistics()["sizes"]["subscribed_assets"] == 3


async def test_a_user_connection_that_never_authenticates_is_closed(nursery, autojump_clock):
    server, _, _ = await _serve(nursery)
    async with trio_websocket.open_websocket_url(server.user_url) as ws:
        opened = trio.current_time()
        with trio.fail_after(3 * HELLO_TIMEOUT_S):
            try:
                await ws.get_message()
            except trio_websocket.ConnectionClosed as closed:
                assert closed.reason.code == 1008
        assert HELLO_TIMEOUT_S <= trio.current_time() - opened < HELLO_TIMEOUT_S + 1
    assert server.counts["user_hello_timeouts"] == 1 and server.statistics()["sizes"]["user_connections"] == 0


async def test_a_client_churning_subscriptions_waits_for_itself_and_nobody_else_does(nursery, autojump_clock):
    """300 subscribe/unsubscribe cycles of every asset: the churner's requests are paced by its
    budget (none is lost), while another client's frames keep coming every second."""
    server, venue, urls = await _serve(nursery)
    tokens = [t for m in venue.markets() for t in m.tokens]
    victim: list[tuple[float, dict[str, Any]]] = []
    churned: list[tuple[float, dict[str, Any]]] = []
    cost = 1 + len(tokens)
    async with trio_websocket.open_websocket_url(urls.ws) as calm, trio_websocket.open_websocket_url(urls.ws) as churn:
        await calm.send_message(json.dumps({"assets_ids": tokens, "type": "market"}))
        nursery.start_soon(_read, calm, victim)
        nursery.start_soon(_read, churn, churned)
        await trio.sleep(1)
        started = trio.current_time()
        before = server.counts.get("subscription_requests", 0)

        async def attack() -> None:
            for _ in range(300):
                await churn.send_message(json.dumps({"assets_ids": tokens, "operation": "subscribe"}))
                await churn.send_message(json.dumps({"assets_ids": tokens, "operation": "unsubscribe"}))

        nursery.start_soon(attack)
        await trio.sleep(1)
        snapshots = sum(1 for t, msg in churned if msg["event_type"] == "book" and "tick_size" in msg) // len(tokens)
        assert snapshots <= (BUDGET + BUDGET_PER_S) // cost // 2 + 1  # not 300
        with trio.fail_after(60):
            while server.counts["subscription_requests"] - before < 600:
                await trio.sleep(0.5)
        took = trio.current_time() - started
        assert took >= (600 * cost - BUDGET) / BUDGET_PER_S - 1  # float-ok: test timing
        assert server.counts["requests_throttled"] > 0
        assert server.statistics()["sizes"]["subscribed_assets"] == len(tokens)  # the calm one's; churn ended empty
    seconds = {int(t - started) for t, _ in victim if started <= t < started + took}
    assert seconds >= set(range(int(took)))  # the calm client heard from the venue every second

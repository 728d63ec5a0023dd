"""The simulator's user channel against the venue's: every ``order`` and ``trade`` message kind and
every ``/data/trades`` item has the keys and value types of the captured samples (a live capture
wins over a hand-written one), an order's messages tell its whole life (PLACEMENT first, an UPDATE
per fill with its trades so far, one end), and mmbot's own parser reads all of it right.

Driven sans-IO: an engine, the user feed, and the events between them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.model import FAILED, ONE, MalformedFrame, MarketInfo, Side, TimeInForce, UserTrade
from mmbot.venues.polymarket.user_fills import our_legs
from mmbot.venues.polymarket.wire_user import decode_trade_record, decode_user_frame
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.frames import FrameRenderer
from mmbot.venues.simulator.user_frames import UserFeed
from mmbot.venues.simulator.user_messages import stand_in

S = 1_000_000_000
A, B = "3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe", "ce168652-c146-2d93-a45c-f36cc52ae6f6"
WALLETS = {A: "0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8", B: "0x629BC4a1E53e1d475beB7ea3D388791e96Dd995A"}
UP, DOWN = "1" * 77, "2" * 77
INFO = MarketInfo(market="0x" + "dd" * 32, tokens=(UP, DOWN), outcomes=("Up", "Down"))
HALF = ONE // 2


class Venue:
    """An engine with INFO listed, the feed with accounts A and B, and what each account received."""

    def __init__(self) -> None:
        self.engine = Engine()
        self.feed = UserFeed()
        for key, wallet in WALLETS.items():
            self.feed.add_account(key, wallet)
        self.engine.add_market(INFO, 0)
        self.got: dict[str, list[dict[str, Any]]] = {A: [], B: []}
        self.texts: list[str] = []
        self.now = S
        self.deliver()

    def submit(self, owner: str, token: str, side: Side, price: int, size: int,
               tif: TimeInForce = TimeInForce.GTC) -> str:
        self.now += 1_000_000  # a millisecond: settlement (seconds later) waits for deliver(after_s=)
        result = self.engine.submit(owner, token, side, price, size, tif, False, self.now)
        self.deliver()
        return result.order_id if result.ok else ""

    def deliver(self, after_s: int = 0) -> list[dict[str, Any]]:
        """Everything due ``after_s`` from now, in the order sent; also kept per account."""
        self.feed.on_events(self.engine.take_events())
        sent = []
        for key, text in self.feed.take(self.now + after_s * S):
            self.texts.append(text)
            message = json.loads(text)
            self.got[key].append(message)
            sent.append(message)
        return sent


def fixture(fixtures_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((fixtures_dir / name).read_text())


def types(obj: dict[str, Any]) -> dict[str, str]:
    """Key -> the JSON type of its value (a list's items are compared apart)."""
    return {key: type(value).__name__ for key, value in obj.items()}


def of_kind(messages: list[dict[str, Any]], kind: str, **where: Any) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind and all(m.get(k) == v for k, v in where.items())]


# --------------------------------------------------------------------------- shapes


def test_every_message_kind_and_the_trades_items_have_the_captured_keys_and_types(fixtures_dir):
    venue = Venue()
    resting = venue.submit(A, UP, Side.SELL, HALF, 20 * ONE)
    venue.submit(B, UP, Side.BUY, HALF, 6 * ONE)  # matches on arrival
    venue.feed.fail_next.add(B)
    venue.submit(B, UP, Side.BUY, HALF, 5 * ONE, TimeInForce.FAK)
    venue.engine.cancel(resting, venue.now)
    venue.deliver(after_s=10)
    a, b = venue.got[A], venue.got[B]

    placement = fixture(fixtures_dir, "ws-user/order_placement.json")  # C
    cancel = fixture(fixtures_dir, "ws-user/order_cancel.json")  # C
    update = fixture(fixtures_dir, "ws-user/ws_user_order_update.json")  # S, kept without event_type
    assert types(of_kind(a, "PLACEMENT")[0]) == types(placement)
    assert types(of_kind(a, "CANCELLATION")[0]) == types(cancel)
    for message in of_kind(a, "UPDATE") + of_kind(b, "UPDATE"):
        assert set(message) == set(update) | {"event_type"}
        # the hand-written sample's null expiration gives way to the captures' "0"
        assert types(message) == types(placement) | {"associate_trades": "list"}
        assert all(isinstance(t, str) for t in message["associate_trades"])

    taker = fixture(fixtures_dir, "ws-user/user_trade2.json")  # C: TAKER, MATCHED
    maker = fixture(fixtures_dir, "ws-user/user_trade3.json")  # E: MAKER, CONFIRMED, maker_orders[].side
    entry_types = types(maker["maker_orders"][0])
    assert types(taker["maker_orders"][0]) | {"side": "str"} == entry_types
    statuses = set()
    for message in of_kind(a + b, "TRADE"):
        statuses.add((message["trader_side"], message["status"]))
        assert types(message) == types(taker) == types(maker)
        assert [types(e) for e in message["maker_orders"]] == [entry_types]
    settled = {(side, status) for side in ("TAKER", "MAKER") for status in ("MATCHED", "MINED", "CONFIRMED")}
    assert statuses == settled | {("TAKER", "RETRYING"), ("TAKER", "FAILED")}

    item_c = fixture(fixtures_dir, "ws-user/trades.json")  # C: a /data/trades item
    item_s = fixture(fixtures_dir, "rest/http_trades_page.json")["data"][0]  # S
    items = venue.feed.trades_of(A) + venue.feed.trades_of(B)
    assert len(items) == 4
    for item in items:
        assert list(item) == list(item_c) and types(item) == types(item_c) == types(item_s)
        assert [types(e) for e in item["maker_orders"]] == [types(item_c["maker_orders"][0]) | {"side": "str"}]


# --------------------------------------------------------------------------- an order's life


def test_a_resting_order_gets_an_update_for_every_fill_with_its_trades_so_far():
    venue = Venue()
    resting = venue.submit(A, UP, Side.SELL, HALF, 20 * ONE)
    venue.submit(B, UP, Side.BUY, HALF, 6 * ONE)
    venue.submit(B, UP, Side.BUY, HALF, 8 * ONE)
    trades = [m["id"] for m in of_kind(venue.got[A], "TRADE", status="MATCHED")]
    updates = of_kind(venue.got[A], "UPDATE", id=resting)
    assert [(u["size_matched"], u["status"], u["associate_trades"]) for u in updates] == [
        ("6", "LIVE", trades[:1]), ("14", "LIVE", trades[:2])]
    venue.submit(B, UP, Side.BUY, HALF, 6 * ONE)  # the last 6: filled
    trades = [m["id"] for m in of_kind(venue.got[A], "TRADE", status="MATCHED")]
    mine = [m for m in venue.got[A] if m["event_type"] == "order"]
    assert [(m["type"], m["status"], m["size_matched"]) for m in mine] == [
        ("PLACEMENT", "LIVE", "0"), ("UPDATE", "LIVE", "6"), ("UPDATE", "LIVE", "14"), ("UPDATE", "MATCHED", "20")]
    assert mine[-1]["associate_trades"] == trades and len(trades) == 3
    # each UPDATE comes right after the trade it reports
    kinds = [(m["event_type"], m.get("trader_side")) for m in venue.got[A]]
    assert kinds == [("order", None)] + [("trade", "MAKER"), ("order", None)] * 3
    assert venue.feed.sizes()["orders_followed"] == 0  # nothing kept of an order that ended


def test_an_order_that_matches_on_arrival_is_placed_before_its_trades():
    venue = Venue()
    venue.submit(A, UP, Side.SELL, HALF, 10 * ONE)
    venue.submit(A, UP, Side.SELL, HALF + 10_000, 10 * ONE)
    filled = venue.submit(B, UP, Side.BUY, HALF, 6 * ONE)  # filled at once
    rests = venue.submit(B, UP, Side.BUY, HALF, 8 * ONE)  # 4 filled, 4 rest
    killed = venue.submit(B, UP, Side.BUY, HALF + 10_000, 12 * ONE, TimeInForce.FAK)  # 10 filled, 2 killed

    def life(order_id: str) -> list[tuple[str, str, str]]:
        return [(m["type"], m["status"], m.get("size_matched") or m["size"]) for m in venue.got[B]
                if order_id in (m["id"], m.get("taker_order_id"))]

    assert life(filled) == [("PLACEMENT", "LIVE", "0"), ("TRADE", "MATCHED", "6"), ("UPDATE", "MATCHED", "6")]
    assert life(rests) == [("PLACEMENT", "LIVE", "0"), ("TRADE", "MATCHED", "4"), ("UPDATE", "LIVE", "4")]
    assert life(killed) == [("PLACEMENT", "LIVE", "0"), ("TRADE", "MATCHED", "10"), ("CANCELLATION", "CANCELED", "10")]
    placed = of_kind(venue.got[B], "PLACEMENT", id=killed)[0]
    assert (placed["order_type"], placed["associate_trades"], placed["original_size"]) == ("FAK", None, "12")
    trade = of_kind(venue.got[B], "TRADE", taker_order_id=rests)[0]
    assert of_kind(venue.got[B], "UPDATE", id=rests)[0]["associate_trades"] == [trade["id"]]
    venue.submit(A, UP, Side.SELL, HALF, 5 * ONE)  # fills the rest of the order that rested; 1 rests
    last = of_kind(venue.got[B], "UPDATE", id=rests)[-1]
    assert (last["status"], last["size_matched"], len(last["associate_trades"])) == ("MATCHED", "8", 2)
    assert venue.feed.sizes()["orders_followed"] == 1  # only A's last sell is followed now


def test_cancellations_say_why_and_carry_no_trade_list():
    venue = Venue()
    canceled = venue.submit(A, UP, Side.BUY, 400_000, 10 * ONE)
    closing = venue.submit(A, DOWN, Side.BUY, 400_000, 10 * ONE)
    venue.submit(B, UP, Side.SELL, 400_000, 5 * ONE)
    venue.engine.cancel(canceled, venue.now)
    venue.engine.resolve(INFO.market, UP, venue.now)  # still open: its orders go with the resolution
    venue.deliver()
    ends = {m["id"]: m for m in of_kind(venue.got[A], "CANCELLATION")}
    assert (ends[canceled]["status"], ends[canceled]["size_matched"], ends[canceled]["associate_trades"]) == (
        "CANCELED", "5", None)
    assert ends[closing]["status"] == "CANCELED_MARKET_RESOLVED"
    assert venue.feed.sizes()["orders_followed"] == 0


# --------------------------------------------------------------------------- what a trade says


def test_the_top_level_is_the_takers_order_and_trade_owner_whom_the_message_is_for():
    venue = Venue()
    resting = venue.submit(A, UP, Side.SELL, HALF, 10 * ONE)
    taking = venue.submit(B, UP, Side.BUY, HALF, 5 * ONE)
    to_taker = of_kind(venue.got[B], "TRADE")[0]
    to_maker = of_kind(venue.got[A], "TRADE")[0]
    for message in (to_taker, to_maker):  # as user_trade2 (C) and trades.json (C): the taker's own wallet
        assert (message["owner"], message["maker_address"], message["taker_order_id"]) == (B, WALLETS[B], taking)
        assert (message["asset_id"], message["side"], message["outcome"]) == (UP, "BUY", "Up")
        [entry] = message["maker_orders"]
        assert (entry["order_id"], entry["owner"], entry["maker_address"]) == (resting, A, WALLETS[A])
        assert (entry["side"], entry["outcome"], entry["matched_amount"]) == ("SELL", "Up", "5")
        assert message["bucket_index"] == 0 and message["last_update"] == message["match_time"]
    assert (to_taker["trade_owner"], to_taker["trader_side"]) == (B, "TAKER")
    assert (to_maker["trade_owner"], to_maker["trader_side"]) == (A, "MAKER")


def test_a_mint_names_each_side_by_its_own_outcome_and_strangers_get_venue_shaped_ids():
    venue = Venue()
    venue.submit(A, DOWN, Side.BUY, 400_000, 10 * ONE)
    venue.engine.submit("world-trader", UP, Side.BUY, 600_000, 10 * ONE, TimeInForce.FAK, False, venue.now)
    venue.deliver()
    trade = of_kind(venue.got[A], "TRADE")[0]
    key, wallet = stand_in("world-trader")
    assert (trade["owner"], trade["maker_address"], trade["outcome"], trade["price"]) == (key, wallet, "Up", "0.6")
    assert len(key) == 36 and key.count("-") == 4 and len(wallet) == 42 and wallet != wallet.lower()
    [entry] = trade["maker_orders"]
    assert (entry["asset_id"], entry["side"], entry["outcome"], entry["price"]) == (DOWN, "BUY", "Down", "0.4")
    assert of_kind(venue.got[A], "UPDATE")[0]["outcome"] == "Down"


def test_an_order_for_a_wallet_shows_the_wallet_wherever_its_address_goes():
    venue = Venue()
    proxy_a, proxy_b = "0x" + "A1" * 20, "0x" + "B2" * 20
    venue.engine.submit(A, UP, Side.SELL, HALF, 10 * ONE, TimeInForce.GTC, False, venue.now, maker=proxy_a)
    venue.engine.submit(B, UP, Side.BUY, HALF, 5 * ONE, TimeInForce.GTC, False, venue.now, maker=proxy_b)
    venue.deliver()
    assert {m["maker_address"] for m in venue.got[A] if m["event_type"] == "order"} == {proxy_a}
    assert {m["maker_address"] for m in venue.got[B] if m["event_type"] == "order"} == {proxy_b}
    for message in of_kind(venue.got[A] + venue.got[B], "TRADE"):
        assert (message["maker_address"], message["maker_orders"][0]["maker_address"]) == (proxy_b, proxy_a)


def test_the_transaction_hash_is_the_market_channels_and_the_same_in_every_status():
    venue = Venue()
    renderer = FrameRenderer()
    renderer.render([ev.MarketListed(info=INFO, ts_ns=0)])
    venue.engine.submit(A, UP, Side.SELL, HALF, 10 * ONE, TimeInForce.GTC, False, venue.now)
    venue.engine.submit(B, UP, Side.BUY, HALF, 10 * ONE, TimeInForce.GTC, False, venue.now)
    events = venue.engine.take_events()
    printed = []
    for text in renderer.render(events):
        decoded = json.loads(text)
        printed += [m for m in (decoded if isinstance(decoded, list) else [decoded])
                    if m.get("event_type") == "last_trade_price"]
    venue.feed.on_events(events)
    sent = [json.loads(text) for _, text in venue.feed.take(venue.now + 10 * S)]
    hashes = {m["transaction_hash"] for m in sent if m["event_type"] == "trade"}
    assert hashes == {printed[0]["transaction_hash"]} and len(printed) == 1
    statuses = [m["status"] for m in sent if m["event_type"] == "trade"]
    assert statuses == ["MATCHED"] * 2 + ["MINED"] * 2 + ["CONFIRMED"] * 2
    assert {m["last_update"] for m in sent if m["status"] == "MINED"} == {str(venue.now // S + 2)}
    assert [i["transaction_hash"] for i in venue.feed.trades_of(A)] == [printed[0]["transaction_hash"]]


def test_outcome_names_go_with_their_forgotten_market():
    venue = Venue()
    assert venue.feed.sizes()["outcome_names"] == 2
    venue.engine.resolve(INFO.market, UP, venue.now)
    venue.deliver()
    venue.feed.forget_market(INFO.market)
    assert venue.feed.sizes()["outcome_names"] == 0


# --------------------------------------------------------------------------- any interleaving

PRICES = [470_000 + 10_000 * i for i in range(7)]
ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("order"), st.sampled_from([A, B, "world"]), st.sampled_from([UP, DOWN]),
              st.sampled_from([Side.BUY, Side.SELL]), st.sampled_from(PRICES), st.integers(5, 15),
              st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.FAK])),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("fail"), st.sampled_from([A, B])),
), min_size=3, max_size=40)


@settings(max_examples=300, deadline=None)
@given(ACTIONS)
def test_any_interleaving_tells_each_order_its_whole_life_and_mmbot_books_it_as_the_venue(actions):
    venue = Venue()
    for token in (UP, DOWN):  # the world's quotes around the middle, to trade with
        venue.submit("world", token, Side.BUY, 490_000, 15 * ONE)
        venue.submit("world", token, Side.SELL, 510_000, 15 * ONE)
    ids: list[str] = []
    for action in actions:
        if action[0] == "order":
            _, owner, token, side, price, size, tif = action
            order_id = venue.submit(owner, token, side, price, size * ONE, tif)
            if order_id:
                ids.append(order_id)
        elif action[0] == "cancel" and ids:
            venue.engine.cancel(ids[action[1] % len(ids)], venue.now)
            venue.deliver()
        elif action[0] == "fail":
            venue.feed.fail_next.add(action[1])
    venue.deliver(after_s=10)

    for text in venue.texts:  # mmbot's parser reads every message
        assert not any(isinstance(m, MalformedFrame) for m in decode_user_frame(text, recv_ns=0, cid="t"))
    for key in (A, B):
        stream = venue.got[key]
        lives: dict[str, list[dict[str, Any]]] = {}
        traded: dict[str, list[tuple[str, int]]] = {}  # order id -> (trade id, size) of its MATCHED trades
        for message in stream:
            if message["event_type"] == "order":
                assert message["owner"] == key and message["maker_address"] == WALLETS[key]
                lives.setdefault(message["id"], []).append(message)
                continue
            assert message["trade_owner"] == key
            mine = ([message["taker_order_id"]] if message["trader_side"] == "TAKER"
                    else [e["order_id"] for e in message["maker_orders"] if e["owner"] == key])
            assert mine and all(o in lives for o in mine)  # placed before any trade of it
            if message["status"] == "MATCHED":
                for order_id in mine:
                    traded.setdefault(order_id, []).append((message["id"], round(float(message["size"]) * ONE)))
        for order_id, life in lives.items():
            assert life[0]["type"] == "PLACEMENT" and life[0]["size_matched"] == "0"
            ends = [i for i, m in enumerate(life) if m["type"] == "CANCELLATION" or m["status"] == "MATCHED"]
            assert ends in ([], [len(life) - 1])  # at most one end, and nothing after it
            assert bool(ends) == (venue.engine.order(order_id) is None)
            trades = traded.get(order_id, [])
            updates = [m for m in life if m["type"] == "UPDATE"]
            assert [u["associate_trades"] for u in updates] == [
                [t for t, _ in trades[:n]] for n in range(len(trades) - len(updates) + 1, len(trades) + 1)]
            assert round(float(life[-1]["size_matched"]) * ONE) == sum(size for _, size in trades)
        # mmbot's legs of the trades that did not fail are the venue's positions, token by token
        final = {m["id"]: m["status"] for m in stream if m["event_type"] == "trade"}
        held: dict[str, int] = {}
        for message in stream:
            if message["event_type"] == "trade" and message["status"] == "MATCHED" and final[message["id"]] != FAILED:
                trade = decode_user_frame(json.dumps(message), recv_ns=0, cid="t")[0]
                assert isinstance(trade, UserTrade)
                for leg in our_legs(trade, api_key=key, addresses=frozenset({WALLETS[key].lower()}), our_ids={},
                                    taker_fee=lambda token, price, size: 0):
                    held[leg.token] = held.get(leg.token, 0) + (leg.size if leg.side is Side.BUY else -leg.size)
        assert {t: n for t, n in held.items() if n} == venue.feed.positions.get(key, {})
        for item in venue.feed.trades_of(key):
            assert decode_trade_record(json.dumps(item), recv_ns=0, cid="r").status == final[item["id"]]
    resting = sum(len(venue.engine.open_orders(owner=key)) for key in (A, B))
    assert venue.feed.sizes()["orders_followed"] == resting

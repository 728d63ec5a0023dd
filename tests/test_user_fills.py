"""User-channel frames and ``/data/trades`` records into the executor's inputs (``UserFills``): each
of our legs booked once however often and by whichever path it is reported, every report to the
reconciler, an earlier run's trades left to the balances they are already in."""

from __future__ import annotations

import json

from mmbot.model import Fill, Liquidity, MarketInfo, OrderDone
from mmbot.venues.polymarket.user_fills import UserFills

API_KEY = "3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe"  # the top-level owner of the captured frames
MATCH_S = 1725958681  # user_trade2.json's match time


class Rows:
    def __init__(self) -> None:
        self.rows: list = []

    def record(self, kind, cid, payload=None, **_):  # noqa: ANN001, ANN201
        self.rows.append((kind, cid, payload))


def fills_for(fixtures_dir, our_ids: dict[str, str], since_s: int = MATCH_S):  # noqa: ANN001, ANN201
    trade = json.loads((fixtures_dir / "ws-user" / "user_trade2.json").read_text())
    inbox: list = []
    legs: list = []
    sink = Rows()
    market = MarketInfo(market=trade["market"], tokens=(trade["asset_id"], "2"), tick=10_000, fee_rate=40_000)
    fills = UserFills(api_key=API_KEY, addresses=frozenset(), our_ids=our_ids,
                      markets=lambda token: market if token in market.tokens else None, respond=inbox.append,
                      reconcile=lambda leg, t: legs.append(leg), sink=sink, since_s=since_s)
    return fills, trade, inbox, legs, sink


def as_record(frame: dict, **changes: str) -> dict:
    record = {k: v for k, v in frame.items() if k not in ("event_type", "type")}
    return record | changes


def test_a_trade_seen_on_the_channel_and_again_in_the_catch_up_is_booked_once(fixtures_dir) -> None:
    fills, trade, inbox, legs, _ = fills_for(fixtures_dir, {
        "0x5b605a0e8e40f3402d3cb3bc19edad6733ed23fbc079d2a09ee399c3487ace81": "o7"})
    fills.on_frame(json.dumps(trade), recv_ns=1)
    assert fills.on_records([as_record(trade, status="CONFIRMED")], recv_ns=2) == 0
    [fill] = inbox
    assert isinstance(fill, Fill) and fill.order_id == "o7" and fill.size == 5_000_000 and fill.price == 520_000
    assert fill.liquidity is Liquidity.TAKER and fill.fee > 0  # a taker pays the market's fee
    assert [leg.status for leg in legs] == ["MATCHED", "CONFIRMED"]  # the reconciler hears both
    assert fills.last_match_s == MATCH_S


def test_a_trade_only_the_catch_up_saw_is_booked_and_a_failed_one_is_not(fixtures_dir) -> None:
    fills, trade, inbox, legs, _ = fills_for(fixtures_dir, {})
    missed = as_record(trade, status="MINED")
    failed = as_record(trade, id="another-trade", status="FAILED")
    assert fills.on_records([missed, failed], recv_ns=5) == 1
    assert [f.fill_id for f in inbox] == [trade["id"]]
    assert [(leg.trade_id, leg.status) for leg in legs] == [(trade["id"], "MINED"), ("another-trade", "FAILED")]


def test_an_earlier_runs_trade_is_left_to_the_balances_unless_it_fills_an_order_of_ours(fixtures_dir) -> None:
    fills, trade, inbox, legs, _ = fills_for(fixtures_dir, {}, since_s=MATCH_S + 1)
    fills.on_records([as_record(trade)], recv_ns=5)
    assert inbox == [] and legs == []
    ours, trade, inbox, legs, _ = fills_for(fixtures_dir, {trade["taker_order_id"]: "o1"}, since_s=MATCH_S + 1)
    ours.on_records([as_record(trade)], recv_ns=5)
    assert [f.order_id for f in inbox] == ["o1"] and len(legs) == 1


def test_a_bad_record_is_counted_and_skipped_and_the_rest_still_counts(fixtures_dir) -> None:
    fills, trade, inbox, _, sink = fills_for(fixtures_dir, {})
    assert fills.on_records([{"id": "x", "price": "not a price"}, as_record(trade)], recv_ns=5) == 1
    assert [row[0] for row in sink.rows] == ["frame_malformed"] and sink.rows[0][2]["channel"] == "trades"
    assert len(inbox) == 1


def test_a_cancellation_of_our_order_ends_it_and_anothers_is_ignored(fixtures_dir) -> None:
    cancel = (fixtures_dir / "ws-user" / "order_cancel.json").read_text()
    venue_id = json.loads(cancel)["id"]
    fills, _, inbox, _, _ = fills_for(fixtures_dir, {venue_id: "o3"})
    fills.on_frame(cancel, recv_ns=9)
    assert [(type(m), m.order_id, m.reason) for m in inbox] == [(OrderDone, "o3", "canceled")]
    others, _, inbox, _, _ = fills_for(fixtures_dir, {})
    others.on_frame(cancel, recv_ns=9)
    assert inbox == []

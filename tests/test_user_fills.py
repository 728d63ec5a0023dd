"""User-channel frames and ``/data/trades`` records into the executor's inputs (``UserFills``): each
of our legs booked once however often and by whichever path it is reported, every report to the
reconciler, the trades the account had at start-up (known by id, never by time) left to the
balances they are already in — and reversed if one of them fails later — and what is remembered
bounded."""

from __future__ import annotations

import json

from mmbot.model import Correction, Fill, Liquidity, MalformedFrame, MarketInfo, OrderDone, UserTrade
from mmbot.venues.polymarket.user_fills import UserFills
from mmbot.venues.polymarket.wire_user import decode_trade_record

API_KEY = "3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe"  # the top-level owner of the captured frames
MATCH_S = 1725958681  # user_trade2.json's match time


class Rows:
    def __init__(self) -> None:
        self.rows: list = []

    def record(self, kind, cid, payload=None, **_):  # noqa: ANN001, ANN201
        self.rows.append((kind, cid, payload))


def fills_for(fixtures_dir, our_ids: dict[str, str], prerun: tuple = ()):  # noqa: ANN001, ANN201
    trade = json.loads((fixtures_dir / "ws-user" / "user_trade2.json").read_text())
    inbox: list = []
    legs: list = []
    sink = Rows()
    market = MarketInfo(market=trade["market"], tokens=(trade["asset_id"], "2"), tick=10_000, fee_rate=40_000)
    fills = UserFills(api_key=API_KEY, addresses=frozenset(), our_ids=our_ids,
                      markets=lambda token: market if token in market.tokens else None, respond=inbox.append,
                      reconcile=lambda leg, t: legs.append(leg), sink=sink,
                      prerun=[as_record(trade, **changes) for changes in prerun])
    return fills, trade, inbox, legs, sink


def as_record(frame: dict, **changes: str) -> UserTrade:
    """The trade as a ``/data/trades`` item, decoded as ``ClobRest.trades`` hands it over."""
    record = {k: v for k, v in frame.items() if k not in ("event_type", "type")}
    return decode_trade_record(json.dumps(record | changes), recv_ns=0, cid=f"t-{changes}")


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


def test_a_trade_the_account_had_at_start_up_is_never_booked_whatever_the_clocks_say(fixtures_dir) -> None:
    """Defect 2: with the venue's clock ahead of ours, the old time filter booked every earlier trade again."""
    fills, trade, inbox, legs, _ = fills_for(fixtures_dir, {}, prerun=({},))
    fills.on_records([as_record(trade, match_time=str(MATCH_S + 3_600), status="MINED")], recv_ns=5)
    fills.on_frame(json.dumps(trade | {"status": "CONFIRMED"}), recv_ns=6)
    assert inbox == [] and legs == [] and fills.counts["prerun_reports"] == 2
    fresh, other, inbox, legs, _ = fills_for(fixtures_dir, {}, prerun=({},))
    fresh.on_records([as_record(other, id="a-trade-of-this-run")], recv_ns=5)  # not known at start-up: ours to book
    assert [f.fill_id for f in inbox] == ["a-trade-of-this-run"] and len(legs) == 1


def test_a_trade_from_before_the_run_that_fails_now_is_reversed_once(fixtures_dir) -> None:
    fills, trade, inbox, legs, _ = fills_for(fixtures_dir, {}, prerun=({"status": "MATCHED"},))
    fills.on_frame(json.dumps(trade | {"status": "RETRYING"}), recv_ns=5)
    fills.on_frame(json.dumps(trade | {"status": "FAILED"}), recv_ns=6)
    fills.on_frame(json.dumps(trade | {"status": "FAILED"}), recv_ns=7)
    [correction] = inbox
    assert isinstance(correction, Correction) and correction.size_delta == -5_000_000 and correction.fee_delta < 0
    assert legs == []
    settled, trade, inbox, _, _ = fills_for(fixtures_dir, {}, prerun=({"status": "FAILED"},))  # out of the balances
    settled.on_frame(json.dumps(trade | {"status": "FAILED"}), recv_ns=6)
    assert inbox == []


def test_a_bad_record_is_counted_and_skipped_and_the_rest_still_counts(fixtures_dir) -> None:
    fills, trade, inbox, _, sink = fills_for(fixtures_dir, {})
    bad = MalformedFrame(cid="t1", recv_ns=5, channel="trades", error="bad price", excerpt='{"id": "x"}')
    assert fills.on_records([bad, as_record(trade)], recv_ns=5) == 1
    assert [row[0] for row in sink.rows] == ["frame_malformed"] and sink.rows[0][2]["channel"] == "trades"
    assert len(inbox) == 1


def test_only_trades_final_quiet_and_outside_the_catch_up_window_are_forgotten(fixtures_dir) -> None:
    fills, trade, inbox, _, _ = fills_for(fixtures_dir, {}, prerun=({"id": "old", "status": "CONFIRMED"},))
    fills.on_frame(json.dumps(trade | {"status": "MATCHED"}), recv_ns=10)
    hour = 3_600_000_000_000
    assert fills.forget(now_ns=10 + hour, horizon_ns=hour, window_from_s=MATCH_S + 1) == 1  # "old"; ours is MATCHED
    fills.on_frame(json.dumps(trade | {"status": "CONFIRMED"}), recv_ns=20)
    assert fills.forget(now_ns=20 + hour, horizon_ns=hour, window_from_s=MATCH_S) == 0  # inside the window
    assert fills.forget(now_ns=20 + hour - 1, horizon_ns=hour, window_from_s=MATCH_S + 1) == 0  # not quiet long enough
    assert fills.forget(now_ns=20 + hour, horizon_ns=hour, window_from_s=MATCH_S + 1) == 1
    assert fills.remembered() == 0 and len(inbox) == 1


def test_a_cancellation_of_our_order_ends_it_and_anothers_is_ignored(fixtures_dir) -> None:
    cancel = (fixtures_dir / "ws-user" / "order_cancel.json").read_text()
    venue_id = json.loads(cancel)["id"]
    fills, _, inbox, _, _ = fills_for(fixtures_dir, {venue_id: "o3"})
    fills.on_frame(cancel, recv_ns=9)
    assert [(type(m), m.order_id, m.reason) for m in inbox] == [(OrderDone, "o3", "canceled")]
    others, _, inbox, _, _ = fills_for(fixtures_dir, {})
    others.on_frame(cancel, recv_ns=9)
    assert inbox == []

"""The authenticated user channel over loopback: credentials only in the first frame, trades into
reconciliation legs (taker and maker), reconnect with the subscription resent; no secret in any row."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import trio
import trio_websocket

from mmbot.clock import TrioClock
from mmbot.config import FeedConfig, Secret
from mmbot.decisions.reconcile import FAILED, Reconciler
from mmbot.model import ONE, Correction, Fill, Ids, Liquidity, MalformedFrame, Side
from mmbot.venues.polymarket.auth import ApiCredentials
from mmbot.venues.polymarket.user_fills import our_legs
from mmbot.venues.polymarket.wire_user import decode_trade_record, decode_user_frame
from mmbot.venues.polymarket.ws import user_connection

CREDS = ApiCredentials(api_key="ce168652-c146-2d93-a45c-f36cc52ae6f6",
                       secret=Secret(value="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="),
                       passphrase=Secret(value="very-private-passphrase"))


class Rows:
    def __init__(self) -> None:
        self.rows: list = []

    def record(self, kind, cid, payload=None, **_):  # noqa: ANN001, ANN201
        self.rows.append((kind, cid, payload))


async def test_user_trades_become_our_legs_and_the_session_survives_a_drop(nursery, autojump_clock, fixtures_dir):
    trade2 = (fixtures_dir / "ws-user" / "user_trade2.json").read_text()
    trade3 = (fixtures_dir / "ws-user" / "user_trade3.json").read_text()
    hellos: list[dict] = []

    async def venue(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        hellos.append(json.loads(await ws.get_message()))
        await ws.send_message(trade2 if len(hellos) == 1 else trade3)
        if len(hellos) == 1:
            await ws.aclose(code=1012)  # the venue drops us once
            return
        while True:
            if await ws.get_message() == "PING":
                await ws.send_message("PONG")

    server = await nursery.start(trio_websocket.serve_websocket, venue, "127.0.0.1", 0, None)
    frames: list[str] = []
    gaps: list = []
    sink = Rows()
    conn = user_connection(url=f"ws://127.0.0.1:{server.port}/ws/user", creds=CREDS, markets=["0xm"],
                           on_frame=lambda text, t: frames.append(text), on_gap=lambda keys, why: gaps.append(why),
                           sink=sink, clock=TrioClock(anchor_ns=0), config=FeedConfig(ping_s=5, silence_s=15),
                           rng=random.Random(1))
    nursery.start_soon(conn.run)
    with trio.fail_after(60):
        while len(frames) < 2:
            await trio.sleep(0.1)
    assert len(hellos) == 2 and all(h["type"] == "user" and h["markets"] == ["0xm"] for h in hellos)
    assert hellos[0]["auth"] == {"apiKey": CREDS.api_key, "secret": CREDS.secret.reveal(),
                                 "passphrase": "very-private-passphrase"}
    assert gaps == ["closed by the venue (1012)"]
    assert "very-private-passphrase" not in repr(sink.rows) and CREDS.secret.reveal() not in repr(sink.rows)

    [taker] = decode_user_frame(frames[0], recv_ns=1, cid="u1")
    legs = our_legs(taker, api_key=CREDS.api_key, addresses=frozenset(), our_ids={taker.taker_order_id: "o7"},
                    taker_fee=lambda token, price, size: 123)
    assert taker.trader_side is Liquidity.TAKER
    assert [(l.order_id, l.side, l.size, l.fee, l.status) for l in legs] == [("o7", taker.side, taker.size, 123, "MATCHED")]

    [maker] = decode_user_frame(frames[1], recv_ns=2, cid="u2")
    mine = maker.maker_orders[0]
    legs = our_legs(maker, api_key=mine.owner, addresses=frozenset(), our_ids={}, taker_fee=lambda *a: 99)
    assert [(l.trade_id, l.order_id, l.price, l.size, l.fee, l.side) for l in legs] == [
        (f"{maker.trade_id}:{mine.order_id}", mine.order_id, 513_000, 5 * ONE, 0, Side.BUY)
    ]
    assert our_legs(maker, api_key="someone-else", addresses=frozenset({"0xdead"}), our_ids={},
                    taker_fee=lambda *a: 0) == []


def test_a_maker_entry_without_a_side_gets_it_by_inversion(fixtures_dir) -> None:
    import attrs

    [trade] = decode_user_frame((fixtures_dir / "ws-user" / "user_trade3.json").read_text(), recv_ns=1, cid="u")
    entry = trade.maker_orders[0]
    same_token = attrs.evolve(trade, maker_orders=(attrs.evolve(entry, side=None, token=trade.token),))
    other_token = attrs.evolve(trade, maker_orders=(attrs.evolve(entry, side=None, token="other"),))
    [on_same] = our_legs(same_token, api_key=entry.owner, addresses=frozenset(), our_ids={}, taker_fee=lambda *a: 0)
    [on_other] = our_legs(other_token, api_key=entry.owner, addresses=frozenset(), our_ids={}, taker_fee=lambda *a: 0)
    assert on_same.side is trade.side.opposite and on_other.side is trade.side


# --------------------------------------------------------------------------- a FAILED trade with an ISO time


def _reversed_by(trade_text: str, decode: Callable[[str], list]) -> list[Correction]:
    """Books our fill of the trade, then hands the venue's report of it to reconciliation."""
    [trade] = decode(trade_text)
    assert not isinstance(trade, MalformedFrame), trade.error
    sent: list[Correction] = []
    rec = Reconciler(emit=sent.append, ids=Ids(), timeout_ns=10**10)
    [leg] = our_legs(trade, api_key=CREDS.api_key, addresses=frozenset(), our_ids={trade.taker_order_id: "o7"},
                     taker_fee=lambda token, price, size: 0)
    rec.on_our_fill(Fill(cid="a", fill_id=leg.trade_id, order_id="o7", market=leg.market, token=leg.token,
                         side=leg.side, price=leg.price, size=leg.size, fee=0, liquidity=Liquidity.TAKER, ts_ns=0), 0)
    assert leg.status == FAILED
    rec.on_leg(leg, 1)
    return sent


def test_a_failed_trade_with_an_iso_match_time_reaches_reconciliation(fixtures_dir) -> None:
    frame = json.loads((fixtures_dir / "ws-user" / "user_trade2.json").read_text())
    frame.update(status="FAILED", match_time="2026-05-11T14:03:07.123Z", last_update="2026-05-11T14:03:09+00:00")
    del frame["timestamp"]
    sent = _reversed_by(json.dumps(frame), lambda text: decode_user_frame(text, recv_ns=1, cid="u1"))
    assert [(c.order_id, c.size_delta, c.reason) for c in sent] == [("o7", -5 * ONE, f"trade {frame['id']} failed")]


def test_a_failed_data_trades_record_with_iso_times_reaches_reconciliation(fixtures_dir) -> None:
    [record] = json.loads((fixtures_dir / "rest" / "http_trades_page.json").read_text())["data"]
    record["status"] = "TRADE_STATUS_FAILED"
    sent = _reversed_by(json.dumps(record), lambda text: [decode_trade_record(text, recv_ns=1, cid="r1")])
    assert [(c.order_id, c.size_delta) for c in sent] == [("o7", -10 * ONE)]

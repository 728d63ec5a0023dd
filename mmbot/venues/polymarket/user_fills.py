"""Our fills in a user-channel ``trade`` message, as legs for reconciliation (protocol doc §3).

``trader_side: "TAKER"``: the top-level order, token, side, price and size are ours.
``trader_side: "MAKER"``: the top level is the *taker's* order; ours are the ``maker_orders[]``
entries whose ``owner`` is our API key or whose ``maker_address`` is one of our addresses —
possibly several, at several prices. An entry without a side gets it by the side-inversion rule:
on the taker's token our side is the opposite of the taker's, on the other outcome (a mint or
merge match) it is the same.

Each leg's trade id is the venue's trade id, suffixed with our order id for maker legs (one trade
may fill several of our resting orders). Venue order ids are mapped to ours where we know them; a
leg of an order we never sent keeps the venue's id and reconciliation adopts it.

``UserFills`` turns the channel's frames — and, after a gap in the channel, the ``/data/trades``
records of the same trades — into the executor's inputs: the first report of each of our legs
that has not failed becomes a ``Fill`` (booked at once: optimistic), a cancellation of one of our
orders an ``OrderDone``, and every leg in every status goes to the reconciler, which reverses a
leg that fails later and adopts legs the executor refused or never saw. A trade reported twice,
by the channel and by the catch-up, is booked once.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from mmbot.model import (
    FAILED, Fill, Liquidity, MalformedFrame, MarketInfo, OrderDone, UserOrder, UserTrade, VenueLeg, taker_fee,
)
from mmbot.ports import EventSink
from mmbot.venues.polymarket.wire_base import WireError
from mmbot.venues.polymarket.wire_user import decode_trade_record, decode_user_frame


def our_legs(
    trade: UserTrade, *, api_key: str, addresses: frozenset[str], our_ids: Mapping[str, str],
    taker_fee: Callable[[str, int, int], int],
) -> list[VenueLeg]:
    """``our_ids``: venue order id -> our order id; ``taker_fee(token, price, size)``; addresses lower-case."""
    if trade.trader_side is Liquidity.TAKER:
        return [VenueLeg(
            trade_id=trade.trade_id, order_id=our_ids.get(trade.taker_order_id, trade.taker_order_id),
            market=trade.market, token=trade.token, side=trade.side, price=trade.price, size=trade.size,
            fee=taker_fee(trade.token, trade.price, trade.size), status=trade.status,
        )]
    legs = []
    for entry in trade.maker_orders:
        if entry.owner != api_key and entry.maker_address.lower() not in addresses:
            continue
        side = entry.side or (trade.side.opposite if entry.token == trade.token else trade.side)
        legs.append(VenueLeg(
            trade_id=f"{trade.trade_id}:{entry.order_id}", order_id=our_ids.get(entry.order_id, entry.order_id),
            market=trade.market, token=entry.token, side=side, price=entry.price, size=entry.matched_amount,
            fee=0, status=trade.status, liquidity=Liquidity.MAKER,
        ))
    return legs


class UserFills:
    def __init__(
        self, *, api_key: str, addresses: frozenset[str], our_ids: Mapping[str, str],
        markets: Callable[[str], MarketInfo | None], respond: Callable[[Any], None],
        reconcile: Callable[[VenueLeg, int], None], sink: EventSink, since_s: int = 0,
        placed: Callable[[str, str], None] = lambda venue_id, cid: None,
    ) -> None:
        """``our_ids``: venue order id -> ours (the gateway's, kept current); ``since_s``: trades
        matched before this second belong to an earlier run (already in the balances read at
        start-up) unless they fill an order of ours; ``placed(venue_id, cid)``: the channel saw an
        order rest (PLACEMENT)."""
        self._api_key = api_key
        self._addresses = frozenset(a.lower() for a in addresses)
        self._our_ids = our_ids
        self._markets = markets
        self._respond = respond
        self._reconcile = reconcile
        self._sink = sink
        self._since_s = since_s
        self._placed = placed
        self._booked: set[str] = set()  # legs already sent to the executor as fills
        self._frames = 0
        self.last_match_s = since_s  # the latest match time seen: where a catch-up starts

    def on_frame(self, text: str, recv_ns: int) -> None:
        self._frames += 1
        for msg in decode_user_frame(text, recv_ns=recv_ns, cid=f"u{self._frames}"):
            if isinstance(msg, UserTrade):
                self.on_trade(msg, recv_ns)
            elif isinstance(msg, UserOrder) and msg.event == "CANCELLATION":
                local = self._our_ids.get(msg.order_id)
                if local is not None:
                    self._respond(OrderDone(cid=msg.cid, order_id=local, reason=msg.status.lower()))
            elif isinstance(msg, UserOrder) and msg.event == "PLACEMENT":
                self._placed(msg.order_id, msg.cid)
            elif isinstance(msg, MalformedFrame):
                self._sink.record("frame_malformed", msg.cid, {"channel": "user", "error": msg.error,
                                                               "excerpt": msg.excerpt})

    def on_records(self, records: list[dict[str, Any]], recv_ns: int) -> int:
        """``/data/trades`` items after a gap; returns how many legs were new to us."""
        booked_before = len(self._booked)
        for record in records:
            self._frames += 1
            cid = f"u{self._frames}"
            try:
                trade = decode_trade_record(json.dumps(record), recv_ns=recv_ns, cid=cid)
            except WireError as exc:
                self._sink.record("frame_malformed", cid, {"channel": "trades", "error": str(exc),
                                                           "excerpt": json.dumps(record)[:200]})
                continue
            self.on_trade(trade, recv_ns)
        return len(self._booked) - booked_before

    def on_trade(self, trade: UserTrade, recv_ns: int) -> None:
        legs = our_legs(trade, api_key=self._api_key, addresses=self._addresses, our_ids=self._our_ids,
                        taker_fee=self._fee)
        venue_ids = [trade.taker_order_id, *(m.order_id for m in trade.maker_orders)]
        if trade.match_time_s < self._since_s and not any(v in self._our_ids for v in venue_ids):
            return  # an earlier run's trade: its effect is in the balances we started from
        self.last_match_s = max(self.last_match_s, trade.match_time_s)
        for leg in legs:
            if leg.status != FAILED and leg.trade_id not in self._booked:
                self._booked.add(leg.trade_id)
                self._respond(Fill(
                    cid=trade.cid, fill_id=leg.trade_id, order_id=leg.order_id, market=leg.market, token=leg.token,
                    side=leg.side, price=leg.price, size=leg.size, fee=leg.fee, liquidity=leg.liquidity,
                    ts_ns=recv_ns,
                ))
            self._reconcile(leg, recv_ns)

    def _fee(self, token: str, price: int, size: int) -> int:
        info = self._markets(token)
        return 0 if info is None else taker_fee(size, price, info.fee_rate, info.fee_exponent)

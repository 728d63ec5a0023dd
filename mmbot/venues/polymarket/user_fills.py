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

``UserFills`` turns the channel's frames — and the ``/data/trades`` records of the catch-up —
into the executor's inputs: the first report of each of our legs that has not failed becomes a
``Fill`` (booked at once: optimistic), a cancellation of one of our orders an ``OrderDone``, and
every leg in every status goes to the reconciler, which reverses a leg that fails later and
adopts legs the executor refused or never saw.

Trades are told apart by id, never by time (the venue's clock is not ours): the trades the
account had when the run started (``prerun``, read at start-up right after every order was
cancelled) are already in the balances the ledger started from, so they are never booked; one of
them that fails later is reversed by a ``Correction`` (the simulator's balances count a trade
from its match; see docs/live-trading.md). A leg reported twice, by the channel and by the
catch-up, is booked once. What is remembered is bounded: a trade id is forgotten once its status
is final, it has been quiet for the retention horizon, and its match lies before the window every
catch-up still asks for.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import attrs

from mmbot.model import (
    FAILED, FINAL_STATUSES, TRADE_STATUS_RANK, Correction, Fill, Liquidity, MalformedFrame, MarketInfo, OrderDone,
    UserOrder, UserTrade, VenueLeg, VenueResponse, taker_fee,
)
from mmbot.ports import EventSink
from mmbot.venues.polymarket.wire_user import decode_user_frame

CATCH_UP_MARGIN_S = 60  # a catch-up asks for trades from this long before the last match it can vouch for


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


@attrs.define
class _Seen:
    status: str
    match_s: int  # the venue's match time (its clock: compared only with its own times)
    quiet_since_ns: int  # our clock: the last report of it
    orders: tuple[str, ...] = ()  # the venue ids of our orders with a leg in it


def _rank(status: str) -> int:
    return TRADE_STATUS_RANK.get(status, 0)  # an unknown status ranks lowest and is never final


def venue_order_ids(trade: UserTrade, legs: list[VenueLeg]) -> list[str]:
    """The venue ids of the orders our legs of ``trade`` belong to."""
    if trade.trader_side is Liquidity.TAKER:
        return [trade.taker_order_id] if legs else []
    ours = {leg.trade_id for leg in legs}
    return [m.order_id for m in trade.maker_orders if f"{trade.trade_id}:{m.order_id}" in ours]


def involves(trade: UserTrade, venue_id: str) -> bool:
    """Whether the venue order ``venue_id`` took part in ``trade``."""
    return trade.taker_order_id == venue_id or any(m.order_id == venue_id for m in trade.maker_orders)


class UserFills:
    def __init__(
        self, *, api_key: str, addresses: frozenset[str], our_ids: Mapping[str, str],
        markets: Callable[[str], MarketInfo | None], respond: Callable[[VenueResponse], None],
        reconcile: Callable[[VenueLeg, int], None], sink: EventSink,
        placed: Callable[[str, str], None] = lambda venue_id, cid: None,
        prerun: Sequence[UserTrade] = (), now_ns: int = 0,
    ) -> None:
        """``our_ids``: venue order id -> ours (the gateway's, kept current); ``placed(venue_id, cid)``:
        the channel saw an order rest (PLACEMENT); ``prerun``: the account's trades at start-up."""
        self._api_key = api_key
        self._addresses = frozenset(a.lower() for a in addresses)
        self._our_ids = our_ids
        self._markets = markets
        self._respond = respond
        self._reconcile = reconcile
        self._sink = sink
        self._placed = placed
        self._prerun: dict[str, _Seen] = {
            t.trade_id: _Seen(status=t.status, match_s=t.match_time_s, quiet_since_ns=now_ns) for t in prerun
        }
        self._seen: dict[str, _Seen] = {}  # trade id -> what we know of a trade of this run
        self._booked: dict[str, str] = {}  # leg id -> trade id, for legs sent to the executor as fills
        self._frames = 0
        self.last_match_s = max((t.match_time_s for t in prerun), default=0)  # the venue's clock
        self.counts = {"trades": 0, "prerun_reports": 0, "prerun_failed": 0, "legs_booked": 0, "malformed": 0,
                       "forgotten": 0}

    # ------------------------------------------------------------------ reports in

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
                self._malformed(msg)

    def on_records(self, records: list[UserTrade | MalformedFrame], recv_ns: int) -> int:
        """``/data/trades`` items of a catch-up; returns how many legs were new to us."""
        booked_before = len(self._booked)
        for record in records:
            if isinstance(record, MalformedFrame):
                self._malformed(record)
            else:
                self.on_trade(record, recv_ns)
        return len(self._booked) - booked_before

    def on_trade(self, trade: UserTrade, recv_ns: int) -> None:
        self.counts["trades"] += 1
        if trade.trade_id in self._prerun:
            self._on_prerun(trade, recv_ns)
            return
        legs = our_legs(trade, api_key=self._api_key, addresses=self._addresses, our_ids=self._our_ids,
                        taker_fee=self._fee)
        seen = self._seen.get(trade.trade_id)
        if seen is None:
            self._seen[trade.trade_id] = _Seen(status=trade.status, match_s=trade.match_time_s, quiet_since_ns=recv_ns,
                                               orders=tuple(venue_order_ids(trade, legs)))
        else:
            seen.quiet_since_ns = recv_ns
            if seen.status not in FINAL_STATUSES and _rank(trade.status) >= _rank(seen.status):
                seen.status = trade.status
        self.last_match_s = max(self.last_match_s, trade.match_time_s)
        for leg in legs:
            if leg.status != FAILED and leg.trade_id not in self._booked:
                self._booked[leg.trade_id] = trade.trade_id
                self.counts["legs_booked"] += 1
                self._respond(Fill(
                    cid=trade.cid, fill_id=leg.trade_id, order_id=leg.order_id, market=leg.market, token=leg.token,
                    side=leg.side, price=leg.price, size=leg.size, fee=leg.fee, liquidity=leg.liquidity,
                    ts_ns=recv_ns,
                ))
            self._reconcile(leg, recv_ns)

    def _on_prerun(self, trade: UserTrade, recv_ns: int) -> None:
        """A trade the start-up balances already hold: never booked; reversed if it fails now."""
        self.counts["prerun_reports"] += 1
        seen = self._prerun[trade.trade_id]
        seen.quiet_since_ns = recv_ns
        if seen.status in FINAL_STATUSES or _rank(trade.status) < _rank(seen.status):
            return
        seen.status = trade.status
        if trade.status != FAILED:
            return
        self.counts["prerun_failed"] += 1
        for leg in our_legs(trade, api_key=self._api_key, addresses=self._addresses, our_ids=self._our_ids,
                            taker_fee=self._fee):
            self._respond(Correction(
                cid=trade.cid, order_id=leg.order_id, fill_id=leg.trade_id, market=leg.market, token=leg.token,
                side=leg.side, price=leg.price, size_delta=-leg.size, fee_delta=-leg.fee,
                reason="a trade from before this run failed: the start-up balances held it",
            ))

    def _malformed(self, msg: MalformedFrame) -> None:
        self.counts["malformed"] += 1
        self._sink.record("frame_malformed", msg.cid, {"channel": msg.channel, "error": msg.error,
                                                       "excerpt": msg.excerpt})

    # ------------------------------------------------------------------ bounded memory

    def forget(self, now_ns: int, horizon_ns: int, window_from_s: int,
               tracked: Callable[[str], bool] = lambda venue_id: False) -> int:
        """Forget trades that are final, quiet for ``horizon_ns``, matched before ``window_from_s``
        (the earliest match time a catch-up may still ask about) and of no order still ``tracked``
        (a venue order id the gateway still knows: an order's own trades may be fetched again while
        it is): no report of them can come back that we would book. Returns how many."""
        gone = 0
        for table in (self._seen, self._prerun):
            old = [tid for tid, s in table.items() if s.status in FINAL_STATUSES
                   and now_ns - s.quiet_since_ns >= horizon_ns and s.match_s < window_from_s
                   and not any(tracked(v) for v in s.orders)]
            for trade_id in old:
                del table[trade_id]
            gone += len(old)
        if gone:
            self._booked = {leg: tid for leg, tid in self._booked.items() if tid in self._seen}
        self.counts["forgotten"] += gone
        return gone

    def remembered(self) -> int:
        return len(self._seen) + len(self._prerun)

    def _fee(self, token: str, price: int, size: int) -> int:
        info = self._markets(token)
        return 0 if info is None else taker_fee(size, price, info.fee_rate, info.fee_exponent)

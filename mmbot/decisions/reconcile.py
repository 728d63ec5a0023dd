"""Reconciliation, sans-IO: the fills we booked against the venue's account of its trades.

The executor books a fill the moment our side hears of it (the gateway's answer): optimistic.
The venue's user channel reports every trade leg that involved one of our orders, with a status
that moves MATCHED → MINED → CONFIRMED, or through RETRYING to FAILED; a message may repeat, and
messages may arrive in any order. ``Reconciler`` keeps, per order, what was booked and what the
venue says, and settles every difference with a ``Correction`` handed to ``emit`` (the
executor's inbox). It never touches the executor's state.

* **A FAILED leg** that had been booked is reversed at once (at its price, with its fee).
* **Venue first**: a leg nobody booked waits ``timeout_ns`` for our own fill to catch up; after
  that it is adopted (a fill we never expected, or whose answer was lost).
* **Us first**: a booked fill the venue has not reported waits ``timeout_ns``; then the order is
  listed by ``due_queries`` for the caller to ask the venue, and ``on_order_truth`` with the
  venue's matched size settles it.

Statuses only move forward: CONFIRMED and FAILED are final, and a late MATCHED after MINED or a
RETRYING after CONFIRMED changes nothing.
"""

from __future__ import annotations

from typing import Callable

import attrs

from mmbot.model import (
    CONFIRMED, FAILED, FINAL_STATUSES, MATCHED, MINED, RETRYING, TRADE_STATUS_RANK, Correction, Fill, Ids, Side,
    VenueLeg,
)

__all__ = ["CONFIRMED", "FAILED", "FINAL", "MATCHED", "MINED", "RETRYING", "Reconciler", "VenueLeg"]

FINAL = FINAL_STATUSES
_RANK = TRADE_STATUS_RANK


@attrs.define
class _Order:
    market: str
    token: str
    side: Side
    booked: int = 0  # shares the executor holds for this order: our fills plus corrections
    booked_cost: int = 0  # Σ price × size of those, for the price of a correction
    booked_fee: int = 0
    legs: dict[str, VenueLeg] = attrs.Factory(dict)  # trade id -> latest accepted report
    unsettled_since: int | None = None

    def venue_size(self) -> int:
        return sum(leg.size for leg in self.legs.values() if leg.status != FAILED)


class Reconciler:
    def __init__(self, *, emit: Callable[[Correction], None], ids: Ids, timeout_ns: int) -> None:
        self._emit = emit
        self._ids = ids
        self._timeout_ns = timeout_ns
        self._orders: dict[str, _Order] = {}
        self._fill_ids: set[str] = set()
        self.counts = {"fills": 0, "legs": 0, "duplicates": 0, "stale_statuses": 0, "corrections": 0}

    # ------------------------------------------------------------------ facts in

    def on_our_fill(self, fill: Fill, now_ns: int) -> None:
        """A fill the executor booked (it publishes each one after booking it)."""
        if fill.fill_id in self._fill_ids:
            self.counts["duplicates"] += 1
            return
        self._fill_ids.add(fill.fill_id)
        self.counts["fills"] += 1
        order = self._order(fill.order_id, fill.market, fill.token, fill.side)
        order.booked += fill.size
        order.booked_cost += fill.price * fill.size
        order.booked_fee += fill.fee
        self._mark(order, now_ns)

    def on_leg(self, leg: VenueLeg, now_ns: int) -> None:
        """A user-channel report of one leg (any status, possibly repeated or out of order)."""
        order = self._order(leg.order_id, leg.market, leg.token, leg.side)
        known = order.legs.get(leg.trade_id)
        if known is not None and (known.status in FINAL or _RANK[leg.status] < _RANK[known.status]
                                  or leg.status == known.status):
            self.counts["duplicates" if leg.status == known.status else "stale_statuses"] += 1
            return
        self.counts["legs"] += known is None
        order.legs[leg.trade_id] = leg
        if leg.status == FAILED and order.booked > order.venue_size():
            # booked shares beyond what still stands: reverse this leg's part of them now
            reverse = min(leg.size, order.booked - order.venue_size())
            self._correct(leg.order_id, order, -reverse, leg.price, -leg.fee * reverse // leg.size,
                          f"trade {leg.trade_id} failed", leg.trade_id)
        self._mark(order, now_ns)

    def on_refused_fill(self, fill: Fill, now_ns: int) -> None:
        """The executor would not book ``fill``: its order had ended. Nothing will catch up with the
        venue's report of it, so it is adopted at the next ``due_queries`` instead of after the
        timeout."""
        order = self._orders.get(fill.order_id)
        if order is not None and order.unsettled_since is not None:
            order.unsettled_since = min(order.unsettled_since, now_ns - self._timeout_ns)

    def on_order_truth(self, order_id: str, matched_size: int, price: int, now_ns: int) -> None:
        """The venue's answer to a query: how much of the order (at limit ``price``) it has
        matched, all told."""
        order = self._orders.get(order_id)
        if order is None:
            return
        standing = max(matched_size, order.venue_size())  # a reported leg stands until it fails
        if standing != order.booked:
            self._settle_to(order_id, order, standing, "venue query", price)
        self._mark(order, now_ns)

    # ------------------------------------------------------------------ time

    def due_queries(self, now_ns: int) -> list[str]:
        """Settle what has waited long enough; returns the orders to ask the venue about (us first)."""
        asks = []
        for order_id, order in self._orders.items():
            if order.unsettled_since is None or now_ns - order.unsettled_since < self._timeout_ns:
                continue
            if order.venue_size() > order.booked:  # venue first: adopt what we never booked
                self._settle_to(order_id, order, order.venue_size(), "unexpected fill adopted")
                self._mark(order, now_ns)
            else:
                asks.append(order_id)
        return asks

    def unsettled(self) -> dict[str, int]:
        """Orders whose booked size differs from the venue's, with the difference (venue − booked)."""
        return {oid: o.venue_size() - o.booked for oid, o in self._orders.items() if o.venue_size() != o.booked}

    # ------------------------------------------------------------------ internals

    def _order(self, order_id: str, market: str, token: str, side: Side) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            order = self._orders[order_id] = _Order(market, token, side)
        return order

    def _mark(self, order: _Order, now_ns: int) -> None:
        if order.venue_size() == order.booked:
            order.unsettled_since = None
        elif order.unsettled_since is None:
            order.unsettled_since = now_ns

    def _settle_to(self, order_id: str, order: _Order, target: int, reason: str, price: int = 0) -> None:
        delta = target - order.booked
        if delta > 0:
            # priced leg by leg: the venue shares beyond what was booked, latest legs first
            remaining = delta
            for leg in reversed(list(order.legs.values())):
                if remaining == 0:
                    break
                if leg.status == FAILED:
                    continue
                take = min(remaining, leg.size)
                self._correct(order_id, order, take, leg.price, leg.fee * take // leg.size, reason, leg.trade_id)
                remaining -= take
            if remaining:  # matched per the venue's query, in legs not reported yet: at the order's price
                self._correct(order_id, order, remaining, price, 0, reason, "")
        elif delta < 0:  # booked beyond what the venue matched: back out at the booked average
            price = order.booked_cost // order.booked
            fee = -(order.booked_fee * -delta // order.booked) if order.booked else 0
            self._correct(order_id, order, delta, price, fee, reason, "")

    def _correct(self, order_id: str, order: _Order, size_delta: int, price: int, fee_delta: int, reason: str,
                 fill_id: str) -> None:
        order.booked += size_delta
        order.booked_cost += price * size_delta
        order.booked_fee += fee_delta
        self.counts["corrections"] += 1
        self._emit(Correction(
            cid=self._ids.next("r"), order_id=order_id, fill_id=fill_id, market=order.market, token=order.token,
            side=order.side, price=price, size_delta=size_delta, fee_delta=fee_delta, reason=reason,
        ))

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

**A status we do not know** (the venue may add one, e.g. ``MATCHED_NOT_BROADCASTED``; the decoder
keeps it, upper-cased) ranks below MATCHED and is not final. Its leg stands as a MATCHED one does:
its shares count in the venue's size (the executor books them, and only a FAILED reverses them),
any known status replaces it, and an order with it is never pruned. Each such report is counted in
``counts["unknown_statuses"]``.

**Bounded** (``prune``, in two steps a horizon apart): an order whose every leg is final and whose
booked size has equalled the venue's, with no report or fill changing it, for the horizon is
*pruned*: its legs are folded into a small record (the venue's size of them and each trade's final
status; our fill ids and what was booked stay). A repeat of one of its reports or fills is still a
duplicate, and a new fact about it (a new trade, a query's answer that differs) brings the order
back exactly as it was, so pruning never changes a correction. A horizon after that the record is
*forgotten* with the order's fill ids: from then on the order is taken to be finished at the venue,
with no new trade of it and no report of it still on its way.
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


def _rank(status: str) -> int:
    return _RANK.get(status, 0)  # unknown: below MATCHED


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
    final_since: int | None = None  # every leg final and booked == venue size, unchanged since then
    fill_ids: list[str] = attrs.Factory(list)  # our fills of this order
    folded_size: int = 0  # the venue's size of the legs prune folded away (final: it never changes)
    folded: dict[str, str] = attrs.Factory(dict)  # their trade ids -> final status
    pruned_at: int | None = None

    def venue_size(self) -> int:
        return self.folded_size + sum(leg.size for leg in self.legs.values() if leg.status != FAILED)

    def status_of(self, trade_id: str) -> str | None:
        leg = self.legs.get(trade_id)
        return self.folded.get(trade_id) if leg is None else leg.status

    def fold(self, now_ns: int) -> None:
        self.folded_size = self.venue_size()
        self.folded.update((trade_id, leg.status) for trade_id, leg in self.legs.items())
        self.legs = {}
        self.pruned_at = now_ns


class Reconciler:
    def __init__(self, *, emit: Callable[[Correction], None], ids: Ids, timeout_ns: int) -> None:
        self._emit = emit
        self._ids = ids
        self._timeout_ns = timeout_ns
        self._orders: dict[str, _Order] = {}
        self._pruned: dict[str, _Order] = {}  # folded records, in the order they were pruned
        self._fill_ids: set[str] = set()
        self.counts = {"fills": 0, "legs": 0, "duplicates": 0, "stale_statuses": 0, "unknown_statuses": 0,
                       "corrections": 0, "pruned": 0, "revived": 0, "forgotten": 0}

    # ------------------------------------------------------------------ facts in

    def on_our_fill(self, fill: Fill, now_ns: int) -> None:
        """A fill the executor booked (it publishes each one after booking it)."""
        if fill.fill_id in self._fill_ids:
            self.counts["duplicates"] += 1
            return
        self._fill_ids.add(fill.fill_id)
        self.counts["fills"] += 1
        order = self._order(fill.order_id, fill.market, fill.token, fill.side)
        order.fill_ids.append(fill.fill_id)
        order.booked += fill.size
        order.booked_cost += fill.price * fill.size
        order.booked_fee += fill.fee
        self._mark(order, now_ns)

    def on_leg(self, leg: VenueLeg, now_ns: int) -> None:
        """A user-channel report of one leg (any status, possibly repeated or out of order)."""
        if leg.status not in _RANK:
            self.counts["unknown_statuses"] += 1
        known_order = self._orders.get(leg.order_id) or self._pruned.get(leg.order_id)
        known = None if known_order is None else known_order.status_of(leg.trade_id)
        if known is not None and (known in FINAL or _rank(leg.status) < _rank(known) or leg.status == known):
            self.counts["duplicates" if leg.status == known else "stale_statuses"] += 1
            return
        order = self._order(leg.order_id, leg.market, leg.token, leg.side)
        self.counts["legs"] += known is None
        order.legs[leg.trade_id] = leg
        if leg.status == FAILED and order.booked > order.venue_size():
            # booked shares beyond what still stands: reverse this leg's part of them now
            reverse = min(leg.size, order.booked - order.venue_size())
            self._correct(leg.order_id, order, -reverse, leg.price, -leg.fee * reverse // leg.size,
                          f"trade {leg.trade_id} failed", leg.trade_id)
        order.final_since = None  # a report changed the order: its quiet time starts again
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
        order = self._orders.get(order_id) or self._pruned.get(order_id)
        if order is None:
            return
        standing = max(matched_size, order.venue_size())  # a reported leg stands until it fails
        if standing != order.booked:
            order = self._order(order_id, order.market, order.token, order.side)
            self._settle_to(order_id, order, standing, "venue query", price)
        self._mark(order, now_ns)

    # ------------------------------------------------------------------ time

    def due_queries(self, now_ns: int) -> list[str]:
        """Settle what has waited long enough; returns the orders to ask the venue about (us first).

        Oldest difference first (then by order id): the order of the corrections depends only on
        the facts, not on when an order was last pruned."""
        due = sorted((order.unsettled_since, order_id) for order_id, order in self._orders.items()
                     if order.unsettled_since is not None and now_ns - order.unsettled_since >= self._timeout_ns)
        asks = []
        for _, order_id in due:
            order = self._orders[order_id]
            if order.venue_size() > order.booked:  # venue first: adopt what we never booked
                self._settle_to(order_id, order, order.venue_size(), "unexpected fill adopted")
                self._mark(order, now_ns)
            else:
                asks.append(order_id)
        return asks

    def prune(self, now_ns: int, horizon_ns: int) -> int:
        """Forgets the records pruned ``horizon_ns`` ago or more, then prunes every order final and
        settled, unchanged, for ``horizon_ns`` (see the module's text); returns how many it pruned.

        An order asked about is unsettled until the answer settles it, so a pending query holds
        its pruning off; an answer that comes later anyway still finds the order's record."""
        cutoff = now_ns - horizon_ns
        while self._pruned:
            order_id, record = next(iter(self._pruned.items()))
            if record.pruned_at is None or record.pruned_at > cutoff:
                break
            del self._pruned[order_id]
            self._fill_ids.difference_update(record.fill_ids)
            self.counts["forgotten"] += 1
        done = [order_id for order_id, order in self._orders.items()
                if order.final_since is not None and order.final_since <= cutoff]
        for order_id in done:
            order = self._orders.pop(order_id)
            order.fold(now_ns)
            self._pruned[order_id] = order
        self.counts["pruned"] += len(done)
        return len(done)

    def unsettled(self) -> dict[str, int]:
        """Orders whose booked size differs from the venue's, with the difference (venue − booked)."""
        return {oid: o.venue_size() - o.booked for oid, o in self._orders.items() if o.venue_size() != o.booked}

    def sizes(self) -> dict[str, int]:
        """How many orders are kept in full and how many as pruned records (for statistics)."""
        return {"orders": len(self._orders), "pruned": len(self._pruned), "fill_ids": len(self._fill_ids)}

    # ------------------------------------------------------------------ internals

    def _order(self, order_id: str, market: str, token: str, side: Side) -> _Order:
        """The order in full: kept, brought back from its pruned record, or new."""
        order = self._orders.get(order_id)
        if order is None:
            order = self._pruned.pop(order_id, None)
            if order is None:
                order = _Order(market, token, side)
            else:
                order.pruned_at = None
                self.counts["revived"] += 1
            self._orders[order_id] = order
        return order

    def _mark(self, order: _Order, now_ns: int) -> None:
        settled = order.venue_size() == order.booked
        if settled:
            order.unsettled_since = None
        elif order.unsettled_since is None:
            order.unsettled_since = now_ns
        if not settled or any(leg.status not in FINAL for leg in order.legs.values()):
            order.final_since = None
        elif order.final_since is None:
            order.final_since = now_ns

    def _settle_to(self, order_id: str, order: _Order, target: int, reason: str, price: int = 0) -> None:
        delta = target - order.booked
        if delta > 0:
            # the shares the venue reported and we never booked, priced leg by leg (latest legs
            # first); beyond them, matched per the venue's query in legs not reported yet, at the
            # order's price. Booked never falls below a pruned order's folded size, so the walk
            # stays within the legs reported since it was pruned.
            reported = min(delta, max(0, order.venue_size() - order.booked))
            remaining = reported
            for leg in reversed(list(order.legs.values())):
                if remaining == 0:
                    break
                if leg.status == FAILED:
                    continue
                take = min(remaining, leg.size)
                self._correct(order_id, order, take, leg.price, leg.fee * take // leg.size, reason, leg.trade_id)
                remaining -= take
            if delta - reported + remaining:
                self._correct(order_id, order, delta - reported + remaining, price, 0, reason, "")
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

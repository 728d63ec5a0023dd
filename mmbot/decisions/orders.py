"""The book of our orders, and the choices of their lifecycle (``order_lifecycle``: the table; DESIGN §3).

The executor turns every venue response and every decision about an order into an
``OrderEvent`` and asks ``Orders`` to apply it. A pair the table does not list raises
``IllegalTransition`` and changes nothing, so a confused venue answer or an executor bug is
seen at once instead of corrupting the order's state.

Choices worth knowing:

* A fill may arrive before the submit is acknowledged, while a cancel is pending, and for an
  order whose submit outcome is unknown (reconciliation learned it exists). All are legal.
* A cancel may be requested in any open state, including before the acknowledgement (the
  kill switch must not wait) and for UNKNOWN orders. If the venue refuses it, the order goes
  back to the status it would have had without the cancel: what it had when the cancel was
  requested, moved on by any acknowledgement or fill that arrived while it was pending.
* DONE means the venue ended an order that will not fill further. After our cancel request it
  is CANCELED; without one (FAK/FOK remainder, GTD expiry, venue-side cancellation) EXPIRED.
* Terminal states (FILLED, CANCELED, REJECTED, EXPIRED) accept nothing, not even a late
  acknowledgement or a late fill. A late fill for a finished order is still a venue fact: the
  executor records it as a `late_fill` row and leaves it to reconciliation, which books it
  through a Correction; the order does not reopen.
* A market (FOK/FAK) BUY is bound by its budget, not its size: the venue spends the pUSD it was
  signed for (``market_buy_budget``) at prices up to its limit, so price improvement fills it past
  ``size``. A fill beyond its size is taken while the cost of its fills stays within that budget;
  it is FILLED at its size or when what is left of the budget buys no hundredth of a share at its
  limit, and the rest of its matching reported after that is still booked (a fill that reached
  its size exactly may be followed by one at a worse price). Every other order is bound by size.
* Every transition is told the time (``now_ns``, from the executor's clock): an order remembers
  when it ended, and ``prune`` forgets orders that ended at least a horizon ago, so a week-long
  run does not keep every order it ever placed. Open orders are never forgotten.
"""

from __future__ import annotations

from typing import Iterable

import attrs

from mmbot.decisions.order_lifecycle import (  # noqa: F401  (re-exported: the lifecycle's names are the orders')
    ENDED,
    RETURNS_TO_PREVIOUS,
    TERMINAL,
    TRANSITIONS,
    E,
    IllegalTransition,
    OrderEvent,
    OrderStatus,
    Overfill,
    S,
    is_legal,
)
from mmbot.model import SHARE_STEP, Side, TimeInForce, notional
from mmbot.model.money import market_buy_budget


@attrs.define(kw_only=True)
class Order:
    """One of our orders. Read it freely; only ``Orders`` changes it."""

    order_id: str
    cid: str
    strategy: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    tif: TimeInForce
    post_only: bool
    created_ns: int
    filled: int = 0
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    group: str = ""
    ended_ns: int | None = None  # when it reached a terminal status
    spent: int = 0  # a market BUY: what its fills cost, each rounded up (fees apart)

    @property
    def remaining(self) -> int:
        """Shares still to fill of its size (none once a market BUY fills past it)."""
        return max(0, self.size - self.filled)

    @property
    def budget(self) -> int | None:
        """A market (FOK/FAK) BUY's pUSD, what its fills may cost together; None for any other order."""
        if self.side is Side.BUY and self.tif in _MARKET:
            return market_buy_budget(self.price, self.size)
        return None

    def fits(self, size: int, price: int) -> bool:
        """Whether a fill of ``size`` at ``price`` stays within the order: its size, or a market
        BUY's budget."""
        if self.filled + size <= self.size:
            return True
        budget = self.budget
        return budget is not None and self.spent + notional(price, size) <= budget

    def beyond_size(self, size: int) -> int:
        """The part of a fill of ``size`` that takes the order past its size."""
        return max(0, self.filled + size - max(self.size, self.filled))

    @property
    def is_open(self) -> bool:
        return self.status not in ENDED


_NONE: dict[str, "Order"] = {}
_MARKET = (TimeInForce.FOK, TimeInForce.FAK)


@attrs.frozen
class OrdersStatistics:
    orders_remembered: int  # open and ended orders still in memory
    orders_open: int
    orders_pruned: int  # ended orders forgotten so far


class Orders:
    """Our orders in creation order: the open ones, indexed, and the ended ones until pruned."""

    def __init__(self) -> None:
        self._all: dict[str, Order] = {}
        self._open: dict[str, Order] = {}  # insertion order is creation order
        # The open orders again, by market and by token (each in creation order), and the open
        # buys' notional and remaining shares per token kept as running sums: risk and the
        # strategies ask these on every order and book update, and a scan of every open order
        # there grows with the venue.
        self._open_by_market: dict[str, dict[str, Order]] = {}
        self._open_by_token: dict[str, dict[str, Order]] = {}
        self._buy_notional = 0
        self._open_buys: dict[str, int] = {}  # token -> Σ remaining of its open buys, while not 0
        self._changes = 0  # counts every change to an open order: new, a status, a fill
        self._changed: dict[str, int] = {}  # market -> that count at its last change, while it has open orders
        self._before_cancel: dict[str, OrderStatus] = {}
        self._ended: dict[str, int] = {}  # ended order id -> when, in the order they ended
        self._pruned = 0

    def new(self, *, order_id: str, cid: str, strategy: str, market: str, token: str, side: Side, price: int,
            size: int, tif: TimeInForce, post_only: bool, created_ns: int, group: str = "") -> Order:
        if order_id in self._all:
            raise ValueError(f"order id {order_id} is already in use")
        if price <= 0 or size <= 0:
            raise ValueError(f"order {order_id}: price and size must be positive, got {price}, {size}")
        order = Order(
            order_id=order_id, cid=cid, strategy=strategy, market=market, token=token, side=side,
            price=price, size=size, tif=tif, post_only=post_only, created_ns=created_ns, group=group,
        )
        self._all[order_id] = order
        self._open[order_id] = order
        self._open_by_market.setdefault(market, {})[order_id] = order
        self._open_by_token.setdefault(token, {})[order_id] = order
        self._changes += 1
        self._changed[market] = self._changes
        if side is Side.BUY:
            self._buy_notional += notional(price, size)
            self._shift_open_buys(token, size)
        return order

    def get(self, order_id: str) -> Order | None:
        return self._all.get(order_id)

    def transition(self, order_id: str, event: OrderEvent, *, now_ns: int) -> OrderStatus:
        """Apply ``event`` at ``now_ns``; report fills through ``record_fill`` so ``filled`` stays true."""
        order = self._require(order_id)
        status = order.status
        if order.market in self._changed:  # not once the order is closed: then nothing open changes
            self._changes += 1
            self._changed[order.market] = self._changes
        target = TRANSITIONS.get((status, event))  # never a pair that RETURNS_TO_PREVIOUS lists
        if target is None:
            if (status, event) not in RETURNS_TO_PREVIOUS:
                raise IllegalTransition(f"order {order_id}: {event.name} is not legal in {status.name}")
            target = self._before_cancel.pop(order_id)
        if status is S.PENDING_CANCEL and target is S.PENDING_CANCEL:
            self._move_on_while_cancelling(order_id, event)
        elif target is S.PENDING_CANCEL:
            self._before_cancel[order_id] = status
        elif status is S.PENDING_CANCEL:
            self._before_cancel.pop(order_id, None)
        order.status = target
        if target in ENDED:
            self._close(order)
            order.ended_ns = now_ns
            self._ended[order_id] = now_ns
        return target

    def record_fill(self, order_id: str, size: int, *, now_ns: int, price: int | None = None) -> OrderStatus:
        """Add a fill of ``size`` at ``price`` (the order's limit if not given): FILLED when it
        completes the order, else PARTIAL_FILL. A FILLED market BUY takes the rest of its matching
        (see the module's notes) and stays FILLED."""
        order = self._require(order_id)
        if size <= 0:
            raise ValueError(f"order {order_id}: a fill must be positive, got {size}")
        price = order.price if price is None else price
        if not order.fits(size, price):
            budget = "" if order.budget is None else f" and {order.budget - order.spent} of its budget"
            raise Overfill(f"order {order_id}: fill of {size} exceeds the {order.remaining} remaining{budget}")
        spent = order.spent + notional(price, size) if order.budget is not None else 0
        if order.status is S.FILLED and order.budget is not None:
            order.filled += size
            order.spent = spent
            return S.FILLED
        done = order.filled + size >= order.size or (
            order.budget is not None and order.budget - spent < notional(order.price, SHARE_STEP)
        )
        status = self.transition(order_id, E.FILLED if done else E.PARTIAL_FILL, now_ns=now_ns)  # raises first
        if order.side is Side.BUY and status not in ENDED:  # a closed order left the sum already
            left = max(0, order.remaining - size)  # a market BUY may fill past its size while open
            self._buy_notional += notional(order.price, left) - notional(order.price, order.remaining)
            self._shift_open_buys(order.token, left - order.remaining)
        order.filled += size
        order.spent = spent
        return status

    def open_orders(self, *, market: str | None = None, token: str | None = None,
                    strategy: str | None = None) -> list[Order]:
        """Open orders matching every filter given, in creation order."""
        if token is not None:
            candidates = self._open_by_token.get(token, _NONE)
        elif market is not None:
            candidates = self._open_by_market.get(market, _NONE)
        else:
            candidates = self._open
        return [
            o for o in candidates.values()
            if (market is None or o.market == market)
            and (token is None or o.token == token)
            and (strategy is None or o.strategy == strategy)
        ]

    def open_in_market(self, market: str) -> Iterable[Order]:
        """The open orders in ``market``, in creation order: a live view, read it before any change."""
        return self._open_by_market.get(market, _NONE).values()

    def open_count(self) -> int:
        return len(self._open)

    def changed_in(self, market: str) -> int:
        """A number that is new whenever an open order of ``market`` changed (placed, a status,
        a fill), and 0 exactly while it has none: equal answers mean the same open orders."""
        return self._changed.get(market, 0)

    def open_by_market(self) -> dict[str, int]:
        """How many orders are open in each market that has any (a market with none is not a key)."""
        return {market: len(group) for market, group in self._open_by_market.items()}

    def open_buy_notional(self) -> int:
        """Σ remaining × price of open buys, each rounded up as a buyer's cost is."""
        return self._buy_notional

    def open_shares(self, token: str, side: Side) -> int:
        """Remaining size of the open orders on ``token`` on one side."""
        if side is Side.BUY:
            return self._open_buys.get(token, 0)
        total = 0
        for order in self._open_by_token.get(token, _NONE).values():
            if order.side is side:
                total += order.remaining
        return total

    def check(self) -> None:
        """Raise AssertionError if an index, the running notional or the record of ended orders
        disagrees with a full scan."""
        assert all(self._all.get(order_id) is order for order_id, order in self._open.items())
        assert set(self._ended) == {order_id for order_id, order in self._all.items() if not order.is_open}
        assert all(self._all[oid].ended_ns == ended_ns for oid, ended_ns in self._ended.items())
        pending = {oid for oid, o in self._open.items() if o.status is S.PENDING_CANCEL}
        assert set(self._before_cancel) == pending, (sorted(self._before_cancel), sorted(pending))
        by_market: dict[str, dict[str, Order]] = {}
        by_token: dict[str, dict[str, Order]] = {}
        for order_id, order in self._open.items():
            by_market.setdefault(order.market, {})[order_id] = order
            by_token.setdefault(order.token, {})[order_id] = order
        assert {m: list(d) for m, d in self._open_by_market.items()} == {m: list(d) for m, d in by_market.items()}
        assert set(self._changed) == set(by_market) and all(0 < n <= self._changes for n in self._changed.values())
        assert {t: list(d) for t, d in self._open_by_token.items()} == {t: list(d) for t, d in by_token.items()}
        scan, buys = 0, {}  # the open buys' notional, and their remaining shares per token
        for o in self._open.values():
            if o.side is Side.BUY:
                scan += notional(o.price, o.remaining)
                buys[o.token] = buys.get(o.token, 0) + o.remaining
        assert self._buy_notional == scan, (self._buy_notional, scan)
        assert self._open_buys == {t: n for t, n in buys.items() if n}, (self._open_buys, buys)

    def prune(self, now_ns: int, horizon_ns: int) -> list[str]:
        """Forget the orders that ended at least ``horizon_ns`` before ``now_ns`` (the event log
        keeps them); returns their ids, oldest end first. ``get`` answers None for them from now on.

        The scan stops at the first order that ended too recently: ends are kept in the order they
        happened, and the executor's clock does not go back (if one did, pruning would only wait).
        """
        cutoff = now_ns - horizon_ns
        gone = []
        for order_id, ended_ns in self._ended.items():
            if ended_ns > cutoff:
                break
            gone.append(order_id)
        for order_id in gone:
            del self._ended[order_id]
            del self._all[order_id]
        self._pruned += len(gone)
        return gone

    def statistics(self) -> OrdersStatistics:
        return OrdersStatistics(orders_remembered=len(self._all), orders_open=len(self._open), orders_pruned=self._pruned)

    def _move_on_while_cancelling(self, order_id: str, event: OrderEvent) -> None:
        """Keep the status to return to if the cancel is refused in step with what arrives."""
        before = self._before_cancel[order_id]
        if event is E.PARTIAL_FILL:
            self._before_cancel[order_id] = S.PARTIALLY_FILLED
        elif event is E.ACCEPTED and before in (S.PENDING_SUBMIT, S.UNKNOWN):
            self._before_cancel[order_id] = S.LIVE

    def _close(self, order: Order) -> None:
        order_id = order.order_id
        del self._open[order_id]
        for index, key in ((self._open_by_market, order.market), (self._open_by_token, order.token)):
            group = index[key]
            del group[order_id]
            if not group:
                del index[key]
        if order.market not in self._open_by_market:
            del self._changed[order.market]
        if order.side is Side.BUY:
            self._buy_notional -= notional(order.price, order.remaining)
            self._shift_open_buys(order.token, -order.remaining)

    def _shift_open_buys(self, token: str, change: int) -> None:
        if left := self._open_buys.get(token, 0) + change:
            self._open_buys[token] = left
        else:
            self._open_buys.pop(token, None)

    def _require(self, order_id: str) -> Order:
        order = self._all.get(order_id)
        if order is None:
            raise KeyError(f"no order {order_id}")
        return order

"""The executor's answer path: what the venue (and reconciliation) says about our orders.

Acknowledgements, rejections, fills, ends, cancel refusals, lost outcomes and corrections come
back to the executor's inbox as ordinary input (acknowledgement-as-input, DESIGN §3) and are
applied here: order transitions, reservations released, fills booked in the ledger before they
are published (the chain's answers about merges and redemptions are ``capital``'s). An answer
that contradicts what we know is recorded as an ``error`` row and left to reconciliation; it is
never half-applied.

Ended orders and the fill ids booked for them are forgotten ``prune``'s horizon after the end
(``RetentionConfig.ended_after_s``). A message about a forgotten order is then one about an order
we do not know: an ack, a reject, a done or a fill is an ``error`` row and changes nothing — in
particular a fill repeated after its fill id was forgotten is not booked a second time, and a
genuinely new one is adopted by reconciliation from the venue's report of the trade, as any fill
for an unknown order is.
"""

from __future__ import annotations

from typing import Any, Callable, MutableMapping

from mmbot.decisions.ledger import Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import IllegalTransition, Order, OrderEvent, Orders, OrderStatus, is_legal
from mmbot.model import (
    CancelRejected,
    Correction,
    Fill,
    OrderAccepted,
    OrderDone,
    OrderOutcomeUnknown,
    OrderRejected,
    notional,
)
from mmbot.ports import Clock, EventSink


class AnswerPath:
    def __init__(
        self,
        *,
        ledger: Ledger,
        orders: Orders,
        markets: Markets,
        sink: EventSink,
        clock: Clock,
        counts: MutableMapping[str, int],
        publish_fill: Callable[[Fill], None],
        publish_refused: Callable[[Fill], None],
    ) -> None:
        """``counts`` are the executor's, shared with the intent path."""
        self._ledger = ledger
        self._orders = orders
        self._markets = markets
        self._sink = sink
        self._clock = clock
        self._counts = counts
        self.publish_fill = publish_fill
        self.publish_refused = publish_refused
        # Every fill booked, so a repeated one is not booked twice, and per order, so that the
        # fill ids go when their order is forgotten.
        self._fill_order: dict[str, str] = {}  # fill id -> order id
        self._fills_of: dict[str, list[str]] = {}  # order id -> its fill ids

    def accepted(self, msg: OrderAccepted) -> None:
        order = self._orders.get(msg.order_id)
        if order is None:
            self._error(msg.cid, "ack for an unknown order", msg.order_id)
            return
        if is_legal(order.status, OrderEvent.ACCEPTED):  # also under a pending cancel, or after UNKNOWN
            self._transition(order, OrderEvent.ACCEPTED, msg.cid)
        payload = {"order_id": msg.order_id}
        if msg.venue_order_id:  # the venue's own id (the order's digest on Polymarket): what its records show
            payload["venue_order_id"] = msg.venue_order_id
        self._order_row("ack", msg.cid, order, payload)

    def rejected(self, msg: OrderRejected) -> None:
        order = self._orders.get(msg.order_id)
        if order is None:
            self._error(msg.cid, "reject for an unknown order", msg.order_id)
            return
        if not self._transition(order, OrderEvent.REJECTED, msg.cid):
            return  # a reject that contradicts what we know: the reservation stays, reconciliation decides
        self._ledger.release(order.order_id)
        self._counts["rejections"] += 1
        self._order_row("reject", msg.cid, order, {"order_id": msg.order_id, "reason": msg.reason})

    def fill(self, fill: Fill) -> None:
        order = self._orders.get(fill.order_id)
        problem = None
        if fill.fill_id in self._fill_order:
            problem = f"fill {fill.fill_id} was booked already"
        elif order is None:
            problem = "fill for an unknown order"
        elif not order.fits(fill.size, fill.price):
            problem = f"fill of {fill.size} exceeds the {order.remaining} remaining"
            if order.budget is not None:
                problem += f" and the {order.budget - order.spent} left of its budget"
        # a FILLED market BUY still spends its budget: the rest of its matching may follow the fill
        # that filled it (see orders.py)
        spending_on = problem is None and order.status is OrderStatus.FILLED and order.budget is not None
        beyond = 0
        if problem is None and (order.is_open or spending_on):
            beyond = order.beyond_size(fill.size)
            cost = notional(fill.price, fill.size) + fill.fee
            covered = self._ledger.reservation(fill.order_id) + self._ledger.available_cash()
            if (beyond or spending_on) and cost > covered:
                # past what the order reserved, a fill draws on available cash: too little is left
                problem = f"fill beyond its size costs {cost}, more than its reservation and the cash available"
        if problem is None and not order.is_open and not spending_on:
            # a venue race, not a fault: the trade matched before the cancel, and was reported after
            self._order_row("late_fill", fill.cid, order, {
                "order_id": fill.order_id, "fill_id": fill.fill_id, "price": fill.price, "size": fill.size,
                "status": order.status.value, "then": "reconciliation adopts it",
            })
            self.publish_refused(fill)
            return
        if problem is not None:
            # a venue fact we did not expect: recorded, left to reconciliation, never half-applied
            self._error(fill.cid, problem, fill.order_id)
            return
        self._fill_order[fill.fill_id] = fill.order_id
        self._fills_of.setdefault(fill.order_id, []).append(fill.fill_id)
        self._ledger.apply_fill(
            fill.order_id, token=fill.token, side=fill.side, price=fill.price, size=fill.size, fee=fill.fee
        )
        status = self._orders.record_fill(fill.order_id, fill.size, price=fill.price, now_ns=self._clock.now_ns())
        if status is OrderStatus.FILLED:
            self._ledger.release(fill.order_id)  # what price improvement and unpaid fees left over
        self._counts["fills"] += 1
        payload: dict[str, Any] = {
            "fill_id": fill.fill_id,
            "order_id": fill.order_id,
            "token": fill.token,
            "side": fill.side.value,
            "price": fill.price,
            "size": fill.size,
            "fee": fill.fee,
            "liquidity": fill.liquidity.value,
            "strategy": order.strategy,
            "cash": self._ledger.cash,
            "position": self._ledger.position(fill.token),
        }
        if beyond:
            payload["beyond_size"] = beyond  # a market BUY's price improvement, within its budget
        elif status is OrderStatus.FILLED and order.remaining:
            payload["short_of_size"] = order.remaining  # a market BUY whose budget bought less than its size
        self._sink.record("fill", fill.cid, payload, market=fill.market, token=fill.token)
        self.publish_fill(fill)

    def done(self, msg: OrderDone) -> None:
        order = self._orders.get(msg.order_id)
        if order is None:
            self._error(msg.cid, "done for an unknown order", msg.order_id)
            return
        if not order.is_open:
            return  # told twice (the cancel's answer and the user channel): it ended once
        self._transition(order, OrderEvent.DONE, msg.cid)
        self._ledger.release(order.order_id)
        self._order_row(
            "order_done", msg.cid, order, {"order_id": msg.order_id, "reason": msg.reason, "filled": order.filled}
        )

    def cancel_rejected(self, msg: CancelRejected) -> None:
        order = self._orders.get(msg.order_id)
        if order is not None and order.status is OrderStatus.PENDING_CANCEL:
            self._transition(order, OrderEvent.CANCEL_REJECTED, msg.cid)
        self._sink.record("cancel_rejected", msg.cid, {"order_id": msg.order_id, "reason": msg.reason})

    def unknown(self, msg: OrderOutcomeUnknown) -> None:
        order = self._orders.get(msg.order_id)
        if order is not None and order.is_open:
            self._transition(order, OrderEvent.OUTCOME_UNKNOWN, msg.cid)
        self._sink.record("outcome_unknown", msg.cid, {"order_id": msg.order_id, "detail": msg.detail})

    def correction(self, msg: Correction) -> None:
        """Reconciliation's verdict, booked as it says. Its row carries all it takes to replay it
        (side, price, the token in its column, and the ledger's cash and position after it, as a
        fill row does): the order it names may be from an earlier run, or long forgotten."""
        self._ledger.adjust(
            token=msg.token, side=msg.side, price=msg.price, size_delta=msg.size_delta, fee_delta=msg.fee_delta
        )
        self._sink.record(
            "correction",
            msg.cid,
            {
                "order_id": msg.order_id,
                "fill_id": msg.fill_id,
                "side": msg.side.value,
                "price": msg.price,
                "size_delta": msg.size_delta,
                "fee_delta": msg.fee_delta,
                "reason": msg.reason,
                "cash": self._ledger.cash,
                "position": self._ledger.position(msg.token),
            },
            market=msg.market,
            token=msg.token,
        )

    def forget_fills(self, order_ids: list[str]) -> None:
        """Forget the fill ids booked for these (forgotten) orders."""
        for order_id in order_ids:
            for fill_id in self._fills_of.pop(order_id, ()):
                del self._fill_order[fill_id]

    def fill_ids_remembered(self) -> int:
        return len(self._fill_order)

    def _transition(self, order: Order, event: OrderEvent, cid: str) -> bool:
        try:
            self._orders.transition(order.order_id, event, now_ns=self._clock.now_ns())
        except IllegalTransition as exc:
            self._error(cid, f"illegal transition: {exc}", order.order_id)
            return False
        return True

    def _order_row(self, kind: str, cid: str, order: Order, payload: dict[str, Any]) -> None:
        self._sink.record(kind, cid, payload, market=order.market, token=order.token)

    def _error(self, cid: str, error: str, subject: str) -> None:
        self._sink.record("error", cid, {"where": "executor", "error": error, "subject": subject})

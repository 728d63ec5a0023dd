"""The executor: the single writer of cash, reservations, positions and open orders.

Everything that changes our state arrives here as a message and is handled by plain synchronous
code (DESIGN §3): intent → risk.check → ledger.reserve → orders.new(PENDING_SUBMIT) → gateway.send;
venue responses come back later as input (acknowledgement-as-input), so a slow round-trip for one
market never stalls the others. Fills update the ledger before they are published.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping


from mmbot.decisions.ledger import InsufficientFunds, Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import IllegalTransition, Order, OrderEvent, Orders, OrderStatus, is_legal
from mmbot.decisions.risk import Risk
from mmbot.decisions.view import StateView
from mmbot.model import (
    ONE,
    CancelOrder,
    CancelRejected,
    CancelRequest,
    Correction,
    Fill,
    Ids,
    KillSwitch,
    TradingGate,
    MarketClosing,
    MergeDone,
    MergeRequest,
    MergeSets,
    OrderAccepted,
    OrderDone,
    OrderOutcomeUnknown,
    OrderRejected,
    PlaceOrder,
    Side,
    SubmitRequest,
    taker_fee,
)
from mmbot.ports import Clock, EventSink, OrderGateway


def _merge_hold(cid: str, leg: int) -> str:
    """The reservation id that holds one leg's shares while a merge is in flight."""
    return f"merge:{cid}:{leg}"


class Executor:
    def __init__(
        self,
        *,
        ledger: Ledger,
        orders: Orders,
        risk: Risk,
        books: Any,  # decisions.book.Books: get(token) -> Book | None
        markets: Markets,
        gateway: OrderGateway,
        sink: EventSink,
        clock: Clock,
        ids: Ids,
        publish_fill: Callable[[Fill], None] = lambda fill: None,
        pays_on_resolution: bool = True,
        publish_refused: Callable[[Fill], None] = lambda fill: None,
    ) -> None:
        """``pays_on_resolution``: the venue pays winning shares out when a market resolves (the
        paper venue); otherwise (Polymarket) they stay held, marked at 1 (and losers at 0), until
        redeemed on chain. ``publish_refused``: a fill the executor would not book because its order
        had ended (a venue race: the fill was reported after the cancel was answered), so that
        reconciliation can adopt it now rather than after its timeout."""
        self.ledger = ledger
        self.orders = orders
        self.risk = risk
        self.books = books
        self.markets = markets
        self._gateway = gateway
        self._sink = sink
        self._clock = clock
        self._ids = ids
        self._publish_fill = publish_fill
        self._pays_on_resolution = pays_on_resolution
        self._publish_refused = publish_refused
        self._merges_pending: dict[str, str] = {}  # market -> merge cid
        self.view = StateView(
            ledger=ledger, orders=orders, books=books, markets=markets, clock=clock,
            merges_pending=self._merges_pending, max_open_orders=risk.config.max_open_orders,
        )
        self._fill_ids: set[str] = set()  # every fill booked, so a repeated one is not booked twice
        self.counts = {"intents": 0, "orders": 0, "fills": 0, "rejections": 0}

    def adopt_holdings(self, cid: str, holdings: Mapping[str, tuple[int, int]], *, basis: str) -> None:
        """At start-up, before any strategy acts: positions found at the venue, {token: (shares,
        cost)}, taken into the ledger and recorded."""
        for token, (shares, cost) in holdings.items():
            self.ledger.adopt_position(token, shares, cost)
            info = self.markets.for_token(token)
            self._sink.record("position_adopted", cid, {"shares": shares, "cost": cost, "basis": basis},
                              market=info.market if info else "", token=token)

    # ------------------------------------------------------------------ dispatch

    def handle(self, msg: Any) -> None:
        handler = self._handlers.get(type(msg))
        if handler is None:
            raise TypeError(f"the executor has no handler for {type(msg).__name__}")
        handler(self, msg)

    # ------------------------------------------------------------------ intents

    def _on_place(self, intent: PlaceOrder) -> None:
        self.counts["intents"] += 1
        verdict = self.risk.check(intent, self.view, self._clock.now_ns())
        if not verdict.accepted:
            self._record_intent(intent, "place")
            self._verdict(intent, False, verdict.reason)
            return
        order_id = self._ids.next("o")
        try:
            reserved = self._reserve(order_id, intent)
        except InsufficientFunds as exc:
            self._record_intent(intent, "place")
            self._verdict(intent, False, exc.reason)
            return
        request = SubmitRequest(
            cid=intent.cid,
            order_id=order_id,
            market=intent.market,
            token=intent.token,
            side=intent.side,
            price=intent.price,
            size=intent.size,
            tif=intent.tif,
            post_only=intent.post_only,
        )
        self.orders.new(
            order_id=order_id, cid=intent.cid, market=intent.market, token=intent.token, side=intent.side,
            price=intent.price, size=intent.size, tif=intent.tif, post_only=intent.post_only,
            strategy=intent.strategy,
            created_ns=self._clock.now_ns(),
            group=intent.group,
        )
        self.counts["orders"] += 1
        # The order leaves first and its three rows follow, stamped with the same instant and in
        # the same order as ever: logging is off the tick-to-submit path, and nothing between the
        # send and the rows can change what they say (no await, the books cannot move).
        try:
            self._gateway.send(request)
        finally:  # rows even if a gateway broke its promise not to raise
            self._record_intent(intent, "place")
            self._verdict(intent, True, "ok")
            self._sink.record(
                "submit",
                intent.cid,
                {
                    "order_id": order_id,
                    "token": intent.token,
                    "side": intent.side.value,
                    "price": intent.price,
                    "size": intent.size,
                    "tif": intent.tif.value,
                    "reserved": reserved,
                    "strategy": intent.strategy,
                },
                market=intent.market,
                token=intent.token,
            )

    def _reserve(self, order_id: str, intent: PlaceOrder) -> int:
        """Capital before I/O: a buy holds its worst cost plus the largest fee it could pay."""
        if intent.side is Side.SELL:
            self.ledger.reserve_sell(order_id, intent.token, intent.size)
            return intent.size
        info = self.markets.get(intent.market)
        fee = 0
        if info is not None and not intent.post_only and info.fee_rate:
            # p(1-p) peaks at 0.5: a fill at or below the limit can cost at most this in fees,
            # plus half a fee unit (5 micro) of rounding on each fill of at least 0.01 share
            fee = taker_fee(intent.size, min(intent.price, ONE // 2), info.fee_rate, info.fee_exponent)
            fee += 5 * -(-intent.size // 10_000)
        amount = -((-intent.price * intent.size) // ONE) + fee  # cost rounds up
        self.ledger.reserve_buy(order_id, amount)
        return amount

    def _on_cancel(self, intent: CancelOrder) -> None:
        order = self.orders.get(intent.order_id)
        if order is None or not order.is_open or order.status is OrderStatus.PENDING_CANCEL:
            return
        self.orders.transition(order.order_id, OrderEvent.CANCEL_REQUESTED)
        self._order_row(
            "cancel", intent.cid, order, {"order_id": order.order_id, "reason": intent.reason, "strategy": intent.strategy}
        )
        self._gateway.send(CancelRequest(cid=intent.cid, order_id=order.order_id))

    def _on_merge(self, intent: MergeSets) -> None:
        info = self.markets.get(intent.market)
        if info is None or intent.market in self._merges_pending:
            return
        self.counts["intents"] += 1
        self._record_intent(intent, "merge")
        try:  # both legs' shares are held until the venue answers, like an open sell
            self.ledger.reserve_sell(_merge_hold(intent.cid, 0), info.tokens[0], intent.size)
            try:
                self.ledger.reserve_sell(_merge_hold(intent.cid, 1), info.tokens[1], intent.size)
            except InsufficientFunds:
                self.ledger.release(_merge_hold(intent.cid, 0))
                raise
        except InsufficientFunds as exc:
            self._verdict(intent, False, exc.reason)
            return
        self._verdict(intent, True, "ok")
        self._merges_pending[intent.market] = intent.cid
        self._gateway.send(MergeRequest(cid=intent.cid, market=intent.market, tokens=info.tokens, size=intent.size))

    # ------------------------------------------------------------------ venue responses

    def _on_accepted(self, msg: OrderAccepted) -> None:
        order = self.orders.get(msg.order_id)
        if order is None:
            self._error(msg.cid, "ack for an unknown order", msg.order_id)
            return
        if is_legal(order.status, OrderEvent.ACCEPTED):  # also under a pending cancel, or after UNKNOWN
            self._transition(order, OrderEvent.ACCEPTED, msg.cid)
        payload = {"order_id": msg.order_id}
        if msg.venue_order_id:  # the venue's own id (the order's digest on Polymarket): what its records show
            payload["venue_order_id"] = msg.venue_order_id
        self._order_row("ack", msg.cid, order, payload)

    def _on_rejected(self, msg: OrderRejected) -> None:
        order = self.orders.get(msg.order_id)
        if order is None:
            self._error(msg.cid, "reject for an unknown order", msg.order_id)
            return
        if not self._transition(order, OrderEvent.REJECTED, msg.cid):
            return  # a reject that contradicts what we know: the reservation stays, reconciliation decides
        self.ledger.release(order.order_id)
        self.counts["rejections"] += 1
        self._order_row("reject", msg.cid, order, {"order_id": msg.order_id, "reason": msg.reason})

    def _on_fill(self, fill: Fill) -> None:
        order = self.orders.get(fill.order_id)
        problem = None
        if fill.fill_id in self._fill_ids:
            problem = f"fill {fill.fill_id} was booked already"
        elif order is None:
            problem = "fill for an unknown order"
        elif fill.size > order.remaining:
            problem = f"fill of {fill.size} exceeds the {order.remaining} remaining"
        if problem is None and not order.is_open:
            # a venue race, not a fault: the trade matched before the cancel, and was reported after
            self._order_row("late_fill", fill.cid, order, {
                "order_id": fill.order_id, "fill_id": fill.fill_id, "price": fill.price, "size": fill.size,
                "status": order.status.value, "then": "reconciliation adopts it",
            })
            self._publish_refused(fill)
            return
        if problem is not None:
            # a venue fact we did not expect: recorded, left to reconciliation, never half-applied
            self._error(fill.cid, problem, fill.order_id)
            return
        self._fill_ids.add(fill.fill_id)
        self.ledger.apply_fill(
            fill.order_id, token=fill.token, side=fill.side, price=fill.price, size=fill.size, fee=fill.fee
        )
        status = self.orders.record_fill(fill.order_id, fill.size)
        if status is OrderStatus.FILLED:
            self.ledger.release(fill.order_id)  # what price improvement and unpaid fees left over
        self.counts["fills"] += 1
        self._sink.record(
            "fill",
            fill.cid,
            {
                "fill_id": fill.fill_id,
                "order_id": fill.order_id,
                "token": fill.token,
                "side": fill.side.value,
                "price": fill.price,
                "size": fill.size,
                "fee": fill.fee,
                "liquidity": fill.liquidity.value,
                "strategy": order.strategy,
                "cash": self.ledger.cash,
                "position": self.ledger.position(fill.token),
            },
            market=fill.market,
            token=fill.token,
        )
        self._publish_fill(fill)

    def _on_done(self, msg: OrderDone) -> None:
        order = self.orders.get(msg.order_id)
        if order is None:
            self._error(msg.cid, "done for an unknown order", msg.order_id)
            return
        if not order.is_open:
            return  # told twice (the cancel's answer and the user channel): it ended once
        self._transition(order, OrderEvent.DONE, msg.cid)
        self.ledger.release(order.order_id)
        self._order_row("order_done", msg.cid, order, {"order_id": msg.order_id, "reason": msg.reason, "filled": order.filled})

    def _on_cancel_rejected(self, msg: CancelRejected) -> None:
        order = self.orders.get(msg.order_id)
        if order is not None and order.status is OrderStatus.PENDING_CANCEL:
            self._transition(order, OrderEvent.CANCEL_REJECTED, msg.cid)
        self._sink.record("cancel_rejected", msg.cid, {"order_id": msg.order_id, "reason": msg.reason})

    def _on_unknown(self, msg: OrderOutcomeUnknown) -> None:
        order = self.orders.get(msg.order_id)
        if order is not None and order.is_open:
            self._transition(order, OrderEvent.OUTCOME_UNKNOWN, msg.cid)
        self._sink.record("outcome_unknown", msg.cid, {"order_id": msg.order_id, "detail": msg.detail})

    def _on_merged(self, msg: MergeDone) -> None:
        info = self.markets.get(msg.market)
        if info is None or self._merges_pending.get(msg.market) != msg.cid:
            self._error(msg.cid, "merge answer for no merge of ours", msg.market)
            return
        del self._merges_pending[msg.market]
        self.ledger.release(_merge_hold(msg.cid, 0))
        self.ledger.release(_merge_hold(msg.cid, 1))
        self.ledger.merge(info.tokens[0], info.tokens[1], msg.size)
        self._sink.record("merge", msg.cid, {"size": msg.size, "cash": self.ledger.cash}, market=msg.market)

    def _on_correction(self, msg: Correction) -> None:
        self.ledger.adjust(
            token=msg.token, side=msg.side, price=msg.price, size_delta=msg.size_delta, fee_delta=msg.fee_delta
        )
        self._sink.record(
            "correction",
            msg.cid,
            {
                "order_id": msg.order_id,
                "fill_id": msg.fill_id,
                "size_delta": msg.size_delta,
                "fee_delta": msg.fee_delta,
                "reason": msg.reason,
            },
            market=msg.market,
            token=msg.token,
        )

    # ------------------------------------------------------------------ operator and lifecycle

    def _on_kill(self, msg: KillSwitch) -> None:
        if msg.engaged:
            self.risk.engage(msg.reason)
            self._sink.record("kill_switch", msg.cid, {"reason": msg.reason})
            self.cancel_all(msg.cid, f"kill switch: {msg.reason}")
        else:
            self.risk.release()
            self._sink.record("kill_switch_released", msg.cid, {"reason": msg.reason})

    def _on_gate(self, msg: TradingGate) -> None:
        """Closed: no new order passes risk, and every open order is cancelled (a quote that fills
        unseen would part the ledger from the venue). Open: quoting may resume."""
        if msg.open:
            if self.risk.gate_closed:
                self.risk.open_gate()
                self._sink.record("trading_resumed", msg.cid, {"reason": msg.reason})
            return
        first = not self.risk.gate_closed
        self.risk.close_gate(msg.reason)
        if first:
            self._sink.record("trading_paused", msg.cid, {"reason": msg.reason})
        self.cancel_all(msg.cid, f"venue not ready: {msg.reason}")

    @property
    def gate_open(self) -> bool:
        return not self.risk.gate_closed

    def _on_closing(self, msg: MarketClosing) -> None:
        self.cancel_all(msg.cid, "market closing" if msg.winning_token is None else "market resolved", msg.market)
        info = self.markets.get(msg.market)
        if msg.winning_token is None or info is None:
            return
        losing = info.tokens[1] if msg.winning_token == info.tokens[0] else info.tokens[0]
        if not self._pays_on_resolution:
            self.view.settle(msg.winning_token, ONE)
            self.view.settle(losing, 0)
            self._sink.record("resolution", msg.cid, {
                "winning_token": msg.winning_token, "payout": 0, "cash": self.ledger.cash,
                "redeemable": self.ledger.position(msg.winning_token), "worthless": self.ledger.position(losing),
            }, market=msg.market)
            return
        payout = self.ledger.resolve(msg.winning_token, losing)
        self._sink.record(
            "resolution",
            msg.cid,
            {"winning_token": msg.winning_token, "payout": payout, "cash": self.ledger.cash},
            market=msg.market,
        )

    def cancel_all(self, cid: str, reason: str, market: str | None = None) -> int:
        """Ask the venue to cancel every open order (of one market): the safe stop."""
        count = 0
        for order in self.orders.open_orders(market=market):
            if order.status is OrderStatus.PENDING_CANCEL:
                continue  # already asked; an UNKNOWN order may be resting, so it is asked too
            self._on_cancel(CancelOrder(cid=cid, cause=cid, strategy=order.strategy, order_id=order.order_id, reason=reason))
            count += 1
        return count

    # ------------------------------------------------------------------ helpers

    def _transition(self, order: Order, event: OrderEvent, cid: str) -> bool:
        try:
            self.orders.transition(order.order_id, event)
        except IllegalTransition as exc:
            self._error(cid, f"illegal transition: {exc}", order.order_id)
            return False
        return True

    def _record_intent(self, intent: PlaceOrder | MergeSets, action: str) -> None:
        info = self.markets.get(intent.market)
        book = {}
        for token in info.tokens if info else ():
            b = self.books.get(token)
            if b is not None:
                book[token] = [b.best_bid, b.best_ask]
        payload: dict[str, Any] = {
            "strategy": intent.strategy,
            "action": action,
            "cause": intent.cause,
            "cause_recv_ns": intent.cause_ns,
            "book": book,
            "size": intent.size,
        }
        token = ""
        if isinstance(intent, PlaceOrder):
            token = intent.token
            payload.update(
                token=intent.token,
                side=intent.side.value,
                price=intent.price,
                tif=intent.tif.value,
                post_only=intent.post_only,
                group=intent.group,
                pair_cost=intent.pair_cost,
                reason=intent.reason,
            )
        self._sink.record("intent", intent.cid, payload, market=intent.market, token=token)

    def _verdict(self, intent: PlaceOrder | MergeSets, accepted: bool, reason: str) -> None:
        self._sink.record(
            "risk_verdict",
            intent.cid,
            {"accepted": accepted, "reason": reason, "strategy": intent.strategy},
            market=intent.market,
            token=getattr(intent, "token", ""),
        )

    def _order_row(self, kind: str, cid: str, order: Order, payload: dict[str, Any]) -> None:
        self._sink.record(kind, cid, payload, market=order.market, token=order.token)

    def _error(self, cid: str, error: str, subject: str) -> None:
        self._sink.record("error", cid, {"where": "executor", "error": error, "subject": subject})

    _handlers: dict[type, Callable[[Executor, Any], None]] = {
        PlaceOrder: _on_place,
        CancelOrder: _on_cancel,
        MergeSets: _on_merge,
        OrderAccepted: _on_accepted,
        OrderRejected: _on_rejected,
        Fill: _on_fill,
        OrderDone: _on_done,
        CancelRejected: _on_cancel_rejected,
        OrderOutcomeUnknown: _on_unknown,
        MergeDone: _on_merged,
        Correction: _on_correction,
        KillSwitch: _on_kill,
        TradingGate: _on_gate,
        MarketClosing: _on_closing,
    }

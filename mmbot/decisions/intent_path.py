"""The executor's intent path: a strategy's wish → risk → capital reserved → a request to the gateway.

Plain synchronous code, called by ``Executor.handle`` (DESIGN §3). Capital is reserved before the
request leaves, so nothing the venue answers later can find it missing; every intent leaves an
``intent`` and a ``risk_verdict`` row, and an accepted one a ``submit`` (or the merge request).
"""

from __future__ import annotations

from typing import Any, MutableMapping

from mmbot.decisions.book import Books
from mmbot.decisions.capital import Capital
from mmbot.decisions.ledger import InsufficientFunds, Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import OrderEvent, Orders, OrderStatus
from mmbot.decisions.risk import Risk
from mmbot.decisions.view import StateView
from mmbot.model import (
    ONE,
    CancelOrder,
    CancelRequest,
    Ids,
    MergeSets,
    PlaceOrder,
    Side,
    SubmitRequest,
    taker_fee,
)
from mmbot.ports import Clock, EventSink, OrderGateway


class IntentPath:
    def __init__(
        self,
        *,
        ledger: Ledger,
        orders: Orders,
        risk: Risk,
        books: Books,
        markets: Markets,
        view: StateView,
        gateway: OrderGateway,
        sink: EventSink,
        clock: Clock,
        ids: Ids,
        capital: Capital,
        counts: MutableMapping[str, int],
    ) -> None:
        """``capital`` (merges and redemptions on chain) and ``counts`` are the executor's, shared
        with the answer path."""
        self._ledger = ledger
        self._orders = orders
        self._risk = risk
        self._books = books
        self._markets = markets
        self._view = view
        self._gateway = gateway
        self._sink = sink
        self._clock = clock
        self._ids = ids
        self._capital = capital
        self._counts = counts

    def place(self, intent: PlaceOrder) -> None:
        self._counts["intents"] += 1
        verdict = self._risk.check(intent, self._view, self._clock.now_ns())
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
            cid=intent.cid, order_id=order_id, market=intent.market, token=intent.token, side=intent.side,
            price=intent.price, size=intent.size, tif=intent.tif, post_only=intent.post_only,
        )
        # The order is entered before its request leaves: an order the venue may know of is always
        # one the executor knows of (an entry refused here sends nothing). Its three rows follow
        # the send, stamped with the same instant and in the same order as ever: logging is off the
        # tick-to-submit path, and nothing between the send and the rows can change what they say
        # (no await, the books cannot move).
        self._orders.new(
            order_id=order_id, cid=intent.cid, market=intent.market, token=intent.token, side=intent.side,
            price=intent.price, size=intent.size, tif=intent.tif, post_only=intent.post_only,
            strategy=intent.strategy, created_ns=self._clock.now_ns(), group=intent.group,
        )
        self._counts["orders"] += 1
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
            self._ledger.reserve_sell(order_id, intent.token, intent.size)
            return intent.size
        info = None if intent.post_only else self._markets.get(intent.market)  # a maker pays no fee
        fee = 0
        if info is not None and info.fee_rate:
            # p(1-p) peaks at 0.5: a fill at or below the limit can cost at most this in fees,
            # plus half a fee unit (5 micro) of rounding on each fill of at least 0.01 share
            fee = taker_fee(intent.size, min(intent.price, ONE // 2), info.fee_rate, info.fee_exponent)
            fee += 5 * -(-intent.size // 10_000)
        amount = -((-intent.price * intent.size) // ONE) + fee  # cost rounds up
        self._ledger.reserve_buy(order_id, amount)
        return amount

    def cancel(self, intent: CancelOrder) -> None:
        """Ask the venue to cancel an open order; an ended, forgotten or already cancelling one is
        left alone."""
        order = self._orders.get(intent.order_id)
        if order is None or not order.is_open or order.status is OrderStatus.PENDING_CANCEL:
            return
        self._orders.transition(order.order_id, OrderEvent.CANCEL_REQUESTED, now_ns=self._clock.now_ns())
        self._sink.record(
            "cancel",
            intent.cid,
            {"order_id": order.order_id, "reason": intent.reason, "strategy": intent.strategy},
            market=order.market,
            token=order.token,
        )
        self._gateway.send(CancelRequest(cid=intent.cid, order_id=order.order_id))

    def merge(self, intent: MergeSets) -> None:
        """A merge of complete sets (``capital``): none while one of the market is in flight (nor a
        redemption); refused while its merges back off after a failure or once it resolved. Not
        put to risk: a merge only lowers exposure, so the kill switch does not stop it."""
        info = self._markets.get(intent.market)
        if info is None or self._capital.in_flight(intent.market):
            return
        self._counts["intents"] += 1
        self._record_intent(intent, "merge")
        refusal = self._capital.merge_refusal(intent.market)
        if refusal is not None:
            self._verdict(intent, False, refusal)
            return
        try:  # both legs' shares are held until the chain answers, like an open sell
            self._capital.merge(intent.cid, info, intent.size)
        except InsufficientFunds as exc:
            self._verdict(intent, False, exc.reason)
            return
        self._verdict(intent, True, "ok")

    def _record_intent(self, intent: PlaceOrder | MergeSets, action: str) -> None:
        info = self._markets.get(intent.market)
        book = {}
        if info is not None:
            books = self._books
            for token in info.tokens:
                b = books.get(token)
                if b is not None:
                    book[token] = [b.best_bid, b.best_ask]
        if isinstance(intent, PlaceOrder):
            token = intent.token
            payload: dict[str, Any] = {
                "strategy": intent.strategy, "action": action, "cause": intent.cause,
                "cause_recv_ns": intent.cause_ns, "book": book, "size": intent.size, "token": token,
                "side": intent.side.value, "price": intent.price, "tif": intent.tif.value,
                "post_only": intent.post_only, "group": intent.group, "pair_cost": intent.pair_cost,
                "reason": intent.reason,
            }
        else:
            token = ""
            payload = {"strategy": intent.strategy, "action": action, "cause": intent.cause,
                       "cause_recv_ns": intent.cause_ns, "book": book, "size": intent.size}
        self._sink.record("intent", intent.cid, payload, market=intent.market, token=token)

    def _verdict(self, intent: PlaceOrder | MergeSets, accepted: bool, reason: str) -> None:
        self._sink.record(
            "risk_verdict",
            intent.cid,
            {"accepted": accepted, "reason": reason, "strategy": intent.strategy},
            market=intent.market,
            token=getattr(intent, "token", ""),
        )

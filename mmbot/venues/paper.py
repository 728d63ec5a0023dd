"""The paper venue: an in-process OrderGateway that fills against the book the feed shows.

Replay and paper modes inject it in place of the live gateway (DESIGN §7). ``send`` only
schedules: each request is evaluated after a simulated latency, against the book as it is at
that instant, and the answers go to the executor's inbox through ``respond``
(acknowledgement-as-input, DESIGN §3). Everything is ordered by rule, never by hashing or
scheduling luck, so a replay answers identically on every run (DESIGN §8).

Paper fills are kept honest rather than flattering. What an order may take from the books —
liquidity taken once is not there twice, mirrored books count once — is ``paper_liquidity``'s
part. Here: **a resting order waits its turn.** It joins the back of the queue at its price and
fills only from trades printed at that price once the queue ahead has traded, from trades
printed through its price, or from the opposite side crossing it in the book.

Assumption: the feed prints a trade (``LastTrade``) before the level change that reflects it;
a level that shrinks first is taken for cancellations, so the trade then eats the queue again.

Bounded memory: the engine passes on what the executor forgets — ended orders (``forget``) and
markets over with nothing left in them (``forget_markets``). A late resolution of a market the
registry no longer knows is not remembered.
"""

from __future__ import annotations

import functools
import random
from typing import Callable, Iterable

import attrs

from mmbot.model import (
    ONE,
    size_off_step,
    BookSnapshot,
    CancelRejected,
    CancelRequest,
    Fill,
    LastTrade,
    Liquidity,
    MarketInfo,
    MarketMessage,
    MarketResolved,
    MergeDone,
    MergeRequest,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    PriceChange,
    Side,
    SubmitRequest,
    TimeInForce,
    VenueRequest,
    VenueResponse,
    taker_fee,
)
from mmbot.ports import Clock, Scheduler
from mmbot.venues.paper_liquidity import BookSource, PaperLiquidity, reaches

# The venue's own strings (protocol doc §4) and the paper venue's done reasons.
MIN_TICK_SIZE = "INVALID_ORDER_MIN_TICK_SIZE"
MIN_SIZE = "INVALID_ORDER_MIN_SIZE"
DUPLICATED = "INVALID_ORDER_DUPLICATED"
POST_ONLY_CROSSES = "INVALID_POST_ONLY_ORDER"
POST_ONLY_TYPE = "INVALID_POST_ONLY_ORDER_TYPE"
FOK_NOT_FILLED = "FOK_ORDER_NOT_FILLED_ERROR"
MARKET_NOT_READY = "MARKET_NOT_READY"
ALREADY_DONE = "already canceled or matched"
CANCELED = "canceled"
FAK_REMAINDER = "fak_remainder_canceled"
MARKET_RESOLVED = "market_resolved"


@attrs.define(eq=False)
class _Order:
    request: SubmitRequest
    market: MarketInfo
    complement: str | None
    remaining: int
    queue_ahead: int = 0
    fills: int = 0


@attrs.frozen(kw_only=True)
class PaperOrder:
    """A resting paper order as seen from outside (a copy: changing it changes nothing)."""

    order_id: str
    token: str
    side: Side
    price: int
    remaining: int
    queue_ahead: int


def _complement(market: MarketInfo, token: str) -> str | None:
    yes, no = market.tokens
    return no if token == yes else yes if token == no else None


_NO_ORDERS: dict[str, _Order] = {}


class PaperGateway:
    """An ``OrderGateway`` answering on the injected clock from the books the feed maintains."""

    def __init__(
        self,
        *,
        books: BookSource,
        markets: Callable[[str], MarketInfo | None],
        scheduler: Scheduler,
        clock: Clock,
        respond: Callable[[VenueResponse], None],
        rng: random.Random,
        ack_latency_ns: int,
        jitter_ns: int = 0,
    ) -> None:
        if ack_latency_ns < 0 or jitter_ns < 0:
            raise ValueError("latency and jitter must not be negative")
        self._books = books
        self._liquidity = PaperLiquidity(books)
        self._markets = markets
        self._scheduler = scheduler
        self._clock = clock
        self._respond = respond
        self._rng = rng
        self._ack_latency_ns = ack_latency_ns
        self._jitter_ns = jitter_ns
        self._resting: dict[str, _Order] = {}  # insertion order is the order fills are reported in
        # The same orders by market, each in insertion order: a market message can only fill
        # orders of its own market, so it need not look at the others.
        self._resting_in: dict[str, dict[str, _Order]] = {}
        self._accepted_ids: set[str] = set()  # membership only, never iterated
        self._submits_due: dict[str, int] = {}  # order id -> when its submit is evaluated, until it is
        self._resolved_markets: set[str] = set()  # membership only, never iterated

    # ----------------------------------------------------------------------- the port

    def send(self, request: VenueRequest) -> None:
        """Schedule ``request`` to be evaluated after the latency; never blocks."""
        at = self._clock.now_ns() + self._ack_latency_ns + self._rng.randrange(self._jitter_ns + 1)
        if isinstance(request, SubmitRequest):
            self._submits_due[request.order_id] = at
            handle = functools.partial(self._submit, request, at)
        elif isinstance(request, CancelRequest):
            # never before its own submit: jitter must not let a cancel overtake the order it ends
            at = max(at, self._submits_due.get(request.order_id, at))
            handle = functools.partial(self._cancel, request)
        elif isinstance(request, MergeRequest):
            handle = functools.partial(self._merge, request)
        else:
            raise TypeError(f"not a venue request: {type(request).__name__}")
        self._scheduler.call_at(at, handle)

    def on_market(self, msg: MarketMessage) -> None:
        """Let a market message (already applied to the books) fill resting orders."""
        if isinstance(msg, PriceChange):  # the commonest by far
            changes = msg.changes
            self._liquidity.restated_changes(changes)
            if self._resting:
                tokens = {changes[0].token} if len(changes) == 1 else {change.token for change in changes}
                self._on_levels_changed(tokens, msg.recv_ns)
        elif isinstance(msg, LastTrade):
            self._on_trade(msg)
        elif isinstance(msg, BookSnapshot):
            self._liquidity.snapshot(msg.token)
            self._on_levels_changed({msg.token}, msg.recv_ns)
        elif isinstance(msg, MarketResolved):
            self._on_resolved(msg)

    def forget(self, order_ids: Iterable[str]) -> int:
        """Forget ended orders (the executor pruned them); returns how many were remembered. Only
        their ids are kept once they end, against a duplicate submit, and ids are never reused."""
        gone = 0
        for order_id in order_ids:
            if order_id in self._accepted_ids and order_id not in self._resting:
                self._accepted_ids.discard(order_id)
                gone += 1
        return gone

    def forget_markets(self, markets: Iterable[MarketInfo]) -> None:
        """Forget what is kept of these markets (the executor forgot them, with no order left in
        them): their resolution and what paper orders took from their tokens' books."""
        for info in markets:
            self._resolved_markets.discard(info.market)
            self._liquidity.forget(info.tokens)

    def remembered(self) -> dict[str, int]:
        """How much is kept per order, market and token, for the engine's statistics."""
        return {"accepted_ids": len(self._accepted_ids), "resting": len(self._resting),
                "resolved_markets": len(self._resolved_markets), "liquidity_tokens": self._liquidity.remembered()}

    def open_orders(self) -> list[PaperOrder]:
        """The resting paper orders, oldest first."""
        return [
            PaperOrder(
                order_id=order.request.order_id,
                token=order.request.token,
                side=order.request.side,
                price=order.request.price,
                remaining=order.remaining,
                queue_ahead=order.queue_ahead,
            )
            for order in self._resting.values()
        ]

    # ----------------------------------------------------------------------- requests

    def _submit(self, request: SubmitRequest, at: int) -> None:
        self._submits_due.pop(request.order_id, None)
        market = self._markets(request.token)
        reason = self._rejection(request, market, at)
        if reason is not None:
            self._respond(OrderRejected(cid=request.cid, order_id=request.order_id, reason=reason))
            return
        assert market is not None  # _rejection refuses an unknown market
        order = _Order(request, market, _complement(market, request.token), remaining=request.size)
        levels = self._liquidity.takeable(request.token, order.complement, request.side, request.price)
        if request.tif is TimeInForce.FOK and sum(level.available for level in levels) < request.size:
            self._respond(OrderRejected(cid=request.cid, order_id=request.order_id, reason=FOK_NOT_FILLED))
            return
        self._accepted_ids.add(request.order_id)
        self._respond(OrderAccepted(cid=request.cid, order_id=request.order_id))
        for level in levels:
            if order.remaining == 0:
                break
            size = min(order.remaining, level.available)
            self._liquidity.consume(level, size)
            fee = taker_fee(size, level.price, market.fee_rate, market.fee_exponent)
            self._fill(order, level.price, size, fee, Liquidity.TAKER, at)
        if order.remaining == 0:
            return
        if request.tif is TimeInForce.FAK:
            self._respond(OrderDone(cid=request.cid, order_id=request.order_id, reason=FAK_REMAINDER))
            return
        order.queue_ahead = self._liquidity.shown(request.token, request.side, request.price)
        self._resting[request.order_id] = order
        self._resting_in.setdefault(market.market, {})[request.order_id] = order

    def _rejection(self, request: SubmitRequest, market: MarketInfo | None, at: int) -> str | None:
        """The venue's reason to refuse ``request`` outright, or None."""
        if (
            market is None
            or market.market in self._resolved_markets
            or (market.end_ns is not None and at >= market.end_ns)
        ):
            return MARKET_NOT_READY
        if request.order_id in self._accepted_ids:
            return DUPLICATED
        book = self._books.get(request.token)
        tick = book.tick if book is not None and book.tick else market.tick
        if request.price % tick or not tick <= request.price <= ONE - tick:
            return MIN_TICK_SIZE
        if request.size < market.min_size:
            return MIN_SIZE
        if (off_step := size_off_step(request.size)) is not None:
            return f"local: {off_step}"  # as the live gateway refuses it, before signing
        if request.post_only:
            if request.tif is TimeInForce.FOK or request.tif is TimeInForce.FAK:
                return POST_ONLY_TYPE
            complement = _complement(market, request.token)
            if self._liquidity.takeable(request.token, complement, request.side, request.price):
                return POST_ONLY_CROSSES
        return None

    def _cancel(self, request: CancelRequest) -> None:
        order = self._stop_resting(request.order_id)
        if order is None:
            self._respond(CancelRejected(cid=request.cid, order_id=request.order_id, reason=ALREADY_DONE))
        else:
            self._respond(OrderDone(cid=request.cid, order_id=request.order_id, reason=CANCELED))

    def _merge(self, request: MergeRequest) -> None:
        # Paper merges are pure accounting, which the ledger does on MergeDone.
        self._respond(MergeDone(cid=request.cid, market=request.market, size=request.size))

    # ----------------------------------------------------------------------- market facts

    def _on_trade(self, trade: LastTrade) -> None:
        for order in self._resting_for({trade.token}):
            if order.request.token == trade.token:
                price, taker = trade.price, trade.side
            elif order.complement == trade.token:
                # A taker BUY NO at q is a taker SELL YES at 1 - q (and the other way round).
                price, taker = ONE - trade.price, trade.side.opposite
            else:
                continue
            self._trade_against(order, price, taker, trade.size, trade.recv_ns)

    def _trade_against(self, order: _Order, price: int, taker: Side, size: int, ts_ns: int) -> None:
        ours = order.request
        if taker is ours.side or size <= 0:
            return
        if price != ours.price and reaches(ours.side, price, ours.price):
            # Printed through our price: every order at our price traded before it.
            filled = order.remaining
        elif price == ours.price:
            filled = min(order.remaining, max(0, size - order.queue_ahead))
            order.queue_ahead = max(0, order.queue_ahead - size)
        else:
            return
        if filled:
            self._fill(order, ours.price, filled, 0, Liquidity.MAKER, ts_ns)

    def _on_levels_changed(self, tokens: set[str], ts_ns: int) -> None:
        liquidity = self._liquidity
        for order in self._resting_for(tokens):
            ours = order.request
            if ours.token in tokens:
                # Only cancellations shrink a level without a trade (trades already ate the
                # queue), and orders that join later queue behind us: never grow the queue
                # (nor look, at the head of it).
                if order.queue_ahead:
                    shown = liquidity.shown(ours.token, ours.side, ours.price)
                    if shown < order.queue_ahead:
                        order.queue_ahead = shown
            elif order.complement not in tokens:
                continue
            if liquidity.may_cross(ours.token, order.complement, ours.side, ours.price):
                self._fill_crossed(order, ts_ns)  # seldom: the usual case is told by the two best prices

    def _fill_crossed(self, order: _Order, ts_ns: int) -> None:
        """The book shows the other side at or through our price: it would have matched us."""
        wanted = order.remaining
        ours = order.request
        for level in self._liquidity.takeable(ours.token, order.complement, ours.side, ours.price):
            size = min(wanted, level.available)
            self._liquidity.consume(level, size)
            wanted -= size
            if wanted == 0:
                break
        if wanted < order.remaining:
            self._fill(order, ours.price, order.remaining - wanted, 0, Liquidity.MAKER, ts_ns)

    def _on_resolved(self, msg: MarketResolved) -> None:
        if any(self._markets(token) is not None for token in msg.tokens):
            self._resolved_markets.add(msg.market)  # not a market forgotten, or never known
        for order_id, order in list(self._resting.items()):
            if order.market.market == msg.market:
                self._stop_resting(order_id)
                self._respond(OrderDone(cid=order.request.cid, order_id=order_id, reason=MARKET_RESOLVED))

    def _resting_for(self, tokens: set[str]) -> list[_Order]:
        """The resting orders a message about ``tokens`` may concern, in insertion order."""
        if not self._resting:
            return []
        if len(tokens) == 1:  # the commonest message: one token's levels
            (token,) = tokens
            info = self._markets(token)
            return [] if info is None else list(self._resting_in.get(info.market, _NO_ORDERS).values())
        markets = {info.market for token in tokens if (info := self._markets(token)) is not None}
        if len(markets) == 1:
            return list(self._resting_in.get(markets.pop(), _NO_ORDERS).values())
        if not markets:
            return []  # an order's tokens are always those of a known market
        return list(self._resting.values())

    def _stop_resting(self, order_id: str) -> _Order | None:
        order = self._resting.pop(order_id, None)
        if order is not None:
            in_market = self._resting_in[order.market.market]
            del in_market[order_id]
            if not in_market:
                del self._resting_in[order.market.market]
        return order

    def _fill(self, order: _Order, price: int, size: int, fee: int, liquidity: Liquidity, ts_ns: int) -> None:
        if not 0 < size <= order.remaining:
            raise AssertionError(f"fill of {size} against {order.remaining} remaining")
        ours = order.request
        order.fills += 1
        order.remaining -= size
        if order.remaining == 0:
            self._stop_resting(ours.order_id)
        self._respond(
            Fill(
                cid=ours.cid,
                fill_id=f"{ours.order_id}.{order.fills}",
                order_id=ours.order_id,
                market=ours.market,
                token=ours.token,
                side=ours.side,
                price=price,
                size=size,
                fee=fee,
                liquidity=liquidity,
                ts_ns=ts_ns,
            )
        )

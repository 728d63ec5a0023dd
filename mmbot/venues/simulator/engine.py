"""The simulator's matching engine: sans-IO, deterministic, integer micro-units.

Binary markets with two tokens, each token with its own price-time-priority book (the markets
and books themselves: ``engine_markets``). No I/O, no clock, no randomness: time is passed in as
``now_ns``, order ids come from a counter (or from the caller, who may use the signed order's
hash), and every state change is recorded as an event (``events.py``) that ``take_events()``
drains in order. The books are the oracle the project's tests compare against ("the engine is the
oracle").

Matching (``matching.py``): price-time priority, DIRECT against the token's own book and MINT or
MERGE against the complement's. Takers pay ``model.taker_fee``; makers pay nothing. An order is
first planned (the fills it would make, ``matching.plan``), checked against that plan (FOK, FAK,
and the caller's ``check``, where the simulator's balance rules plug in), then exactly those
fills are made: a check and the matching it guards are one step.

Modelling simplification: resting orders are only checked against the same token's book when
they are posted. A limit order that does not cross its own book rests without looking at the
complement, and complementary resting orders that could mint or merge with each other are
never crossed. Real Polymarket mirrors the two books into one; this simulator does not, and
that is what lets complete-set mispricings (asks summing below 1, bids above 1) persist long
enough for mmbot's strategies to find them. Post-only likewise only rejects an order that
crosses its own token's book. ``Engine(mirrored=True)`` is the venue's way instead: an order
that would mint or merge with the complement's book is marketable (and post-only refuses it),
so the two books seen through each other (``frames.FrameRenderer(mirrored=True)``) are never
crossed, and no complete-set mispricing rests.

Other simplifications: sizes are shares for every order type except a market BUY given a
``budget`` (pUSD to spend); FOK/FAK orders have no minimum number of shares (the server applies
the venue's $1 minimum to marketable BUYs); GTD expiry is an exact ``expires_ns`` (the server
applies the venue's margin); a tick change leaves resting orders where they are and only new
orders must be on the new grid; no self-trade prevention.
"""

from __future__ import annotations

from typing import Callable

from mmbot.model import ONE, Side, TimeInForce, notional, taker_fee
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.book import RestingOrder
from mmbot.venues.simulator.engine_markets import Market, MarketBooks
from mmbot.venues.simulator.matching import Take, affordable, crosses, crosses_complement, plan
from mmbot.venues.simulator.orders import OrderIndex

_MARKETABLE = (TimeInForce.FOK, TimeInForce.FAK)
Check = Callable[[ev.OrderRequest, list[Take]], str]  # an order and its fills -> a refusal, or ""


class Engine(MarketBooks):
    """Books, orders and markets of one simulated venue. Not thread-safe; one caller drives it."""

    def __init__(self, *, admission: Callable[[ev.OrderRequest], str | None] | None = None,
                 mirrored: bool = False) -> None:
        super().__init__()
        self._admission = admission
        self.mirrored = mirrored
        self._orders = OrderIndex()
        self._trade_seq = 0

    def forget_ended(self, before_ns: int) -> int:
        """Forget the ids of orders that ended before ``before_ns`` (see ``orders.OrderIndex``)."""
        return self._orders.forget_ended(before_ns)

    def sizes(self) -> dict[str, int]:
        """How much the engine holds (for the admin statistics)."""
        return {"markets": len(self._markets), "books": len(self._books), **self._orders.sizes()}

    # ------------------------------------------------------------------ reading orders

    def order(self, order_id: str) -> ev.OrderView | None:
        """A resting order, or None once it has ended."""
        order = self._orders.get(order_id)
        return order.view() if order else None

    def open_orders(self, owner: str | None = None, market: str | None = None) -> list[ev.OrderView]:
        """Resting orders in arrival order, of one owner (an index, not a scan) and/or one market."""
        orders = self._orders.resting if owner is None else self._orders.of_owner(owner)
        return [o.view() for o in orders.values() if market is None or o.market == market]

    def committed(self, owner: str, token: str) -> tuple[int, int]:
        """What ``owner``'s resting orders hold: pUSD on all its BUYs, shares on its SELLs of ``token``."""
        return self._orders.committed(owner, token)

    def take_events(self) -> list[ev.Event]:
        """Every event since the last call, in the order things happened."""
        taken, self._events = self._events, []
        return taken

    # ------------------------------------------------------------------ orders

    def submit(
        self,
        owner: str,
        token: str,
        side: Side,
        price: int,
        size: int,
        tif: TimeInForce,
        post_only: bool,
        now_ns: int,
        *,
        expires_ns: int | None = None,
        order_id: str | None = None,
        budget: int | None = None,
        maker: str = "",
        check: Check | None = None,
    ) -> ev.SubmitResult:
        """Enter an order. ``budget``: a FOK/FAK BUY that spends this much pUSD (``price`` its worst
        price; ``size`` is then only what the signed amounts name). ``maker``: the wallet it trades
        for, shown on its views. ``check``: sees the order and the fills it would make, after the
        venue's own rules, and may refuse it with an error string."""
        self.expire_due(now_ns)
        duplicate = order_id is not None and self._orders.known(order_id)
        if order_id is None:
            order_id = self._orders.new_id()
        market = self._token_market[token]  # callers check has_token() first
        if budget is not None and (side is not Side.BUY or tif not in _MARKETABLE):
            raise ValueError("a budget is for FOK/FAK BUY orders")
        order = RestingOrder(
            order_id=order_id, owner=owner, market=market.info.market, token=token, side=side,
            price=price, size=size, tif=tif, post_only=post_only, created_ns=now_ns,
            expires_ns=expires_ns if tif is TimeInForce.GTD else None, maker=maker,
        )
        if budget is not None:
            order.size = max(size, affordable(budget, market.tick))  # more than it can ever buy
        error, takes = self._validate(order, market, now_ns, duplicate, budget, check)
        if error:
            return ev.SubmitResult(order_id=order_id, status="rejected", error=error)
        trades = [self._fill(order, take, market, now_ns) for take in takes]
        if budget is not None:  # what the money left would still buy at the worst price
            spent = sum(notional(t.price, t.size) for t in takes)
            order.size = order.matched + affordable(budget - spent, price)
        if order.remaining and tif in (TimeInForce.GTC, TimeInForce.GTD):
            self._rest(order, now_ns)
            status = "live"
        else:
            self._orders.ended(order_id, now_ns)
            reason = ev.EndReason.KILLED if order.remaining else ev.EndReason.MATCHED
            self._events.append(ev.OrderEnded(order=order.view(), reason=reason, ts_ns=now_ns))
            status = "matched"
        return ev.SubmitResult(order_id=order_id, status=status, size_matched=order.matched, trades=tuple(trades))

    def cancel(self, order_id: str, now_ns: int) -> ev.CancelResult:
        order = self._orders.get(order_id)
        if order is None:
            reason = ev.ALREADY_DONE if self._orders.known(order_id) else ev.UNKNOWN_ORDER
            return ev.CancelResult(not_canceled=((order_id, reason),))
        self._end_resting(order, ev.EndReason.CANCELED, now_ns)
        return ev.CancelResult(canceled=(order_id,))

    def cancel_all(
        self, owner: str, now_ns: int, *, market: str | None = None, token: str | None = None
    ) -> ev.CancelResult:
        """Cancel ``owner``'s resting orders, optionally only those of one market or token."""
        canceled = self._cancel_where(
            lambda o: o.owner == owner and market in (None, o.market) and token in (None, o.token),
            ev.EndReason.CANCELED,
            now_ns,
        )
        return ev.CancelResult(canceled=canceled)

    def expire_due(self, now_ns: int) -> None:
        """End every GTD order whose expiry is at or before ``now_ns``."""
        for order_id in self._orders.due(now_ns):
            order = self._orders.get(order_id)
            if order is not None:
                self._end_resting(order, ev.EndReason.EXPIRED, now_ns)

    # ------------------------------------------------------------------ internals

    def _validate(
        self, order: RestingOrder, market: Market, now_ns: int, duplicate: bool, budget: int | None,
        check: Check | None,
    ) -> tuple[str, list[Take]]:
        """The venue's refusal of ``order`` (or "") and the fills it would make."""
        tif, post_only, price = order.tif, order.post_only, order.price
        if market.state is not ev.MarketState.OPEN:
            return ev.MARKET_NOT_READY, []
        if duplicate:
            return ev.INVALID_ORDER_DUPLICATED, []
        if post_only and tif not in (TimeInForce.GTC, TimeInForce.GTD):
            return ev.INVALID_POST_ONLY_ORDER_TYPE, []
        if tif is TimeInForce.GTD and (order.expires_ns is None or order.expires_ns <= now_ns):
            return ev.INVALID_ORDER_EXPIRATION, []
        if price % market.tick or not market.tick <= price <= ONE - market.tick:
            return ev.INVALID_ORDER_MIN_TICK_SIZE, []
        if order.size <= 0 or (tif not in _MARKETABLE and order.size < market.info.min_size):
            return ev.INVALID_ORDER_MIN_SIZE, []
        request = ev.OrderRequest(
            owner=order.owner, market=order.market, token=order.token, side=order.side, price=price,
            size=order.size, tif=tif, post_only=post_only, expires_ns=order.expires_ns, budget=budget,
        )
        if self._admission is not None and (refusal := self._admission(request)):
            return refusal, []
        direct, comp = self._sources(order)
        marketable = tif in _MARKETABLE or crosses(order, direct) or (self.mirrored and crosses_complement(order, comp))
        if post_only and marketable:
            return ev.INVALID_POST_ONLY_ORDER, []
        takes = plan(order, direct, comp, budget) if marketable else []
        if check is not None and (refusal := check(request, takes)):
            return refusal, []
        if tif is TimeInForce.FOK:
            if budget is None:
                filled = sum(t.size for t in takes) == order.size
            else:
                filled = affordable(budget - sum(notional(t.price, t.size) for t in takes), price) == 0
            if not filled:
                return ev.FOK_ORDER_NOT_FILLED_ERROR, []
        if tif is TimeInForce.FAK and not takes:
            return ev.FAK_ORDER_NOT_FILLED, []
        return "", takes

    def _fill(self, taker: RestingOrder, take: Take, market: Market, now_ns: int) -> ev.Trade:
        maker, qty = take.maker, take.size
        taker.matched += qty
        maker.matched += qty
        level_total = take.ladder.reduce(maker, qty)
        self._trade_seq += 1
        trade_id = f"{self._trade_seq:08x}-0000-4000-8000-{self._trade_seq:012x}"
        taker.trades.append(trade_id)
        maker.trades.append(trade_id)
        info = market.info
        trade = ev.Trade(
            trade_id=trade_id,
            market=info.market,
            kind=ev.MatchKind.DIRECT if take.direct else (ev.MatchKind.MINT if taker.side is Side.BUY else ev.MatchKind.MERGE),
            size=qty,
            taker_order_id=taker.order_id, taker_owner=taker.owner, taker_token=taker.token,
            taker_side=taker.side, taker_price=take.price,
            taker_fee=taker_fee(qty, take.price, info.fee_rate, info.fee_exponent),
            taker_size_matched=taker.matched,
            maker_order_id=maker.order_id, maker_owner=maker.owner, maker_token=maker.token,
            maker_side=maker.side, maker_price=maker.price, maker_size_matched=maker.matched,
            ts_ns=now_ns, taker_wallet=taker.maker, maker_wallet=maker.maker,
        )
        self._last_trade[taker.token] = take.price
        self._last_trade[maker.token] = maker.price
        self._events.append(trade)
        self._level_changed(maker, level_total, now_ns)
        if maker.remaining == 0:
            self._orders.remove(maker, now_ns)
            self._events.append(ev.OrderEnded(order=maker.view(), reason=ev.EndReason.MATCHED, ts_ns=now_ns))
        return trade

    def _rest(self, order: RestingOrder, now_ns: int) -> None:
        bids, asks = self._books[order.token]
        total = (bids if order.side is Side.BUY else asks).add(order)
        self._orders.add(order)
        self._level_changed(order, total, now_ns)
        self._events.append(ev.OrderRested(order=order.view(), ts_ns=now_ns))

    def _end_resting(self, order: RestingOrder, reason: ev.EndReason, now_ns: int) -> None:
        bids, asks = self._books[order.token]
        total = (bids if order.side is Side.BUY else asks).remove(order)
        self._orders.remove(order, now_ns)
        self._level_changed(order, total, now_ns)
        self._events.append(ev.OrderEnded(order=order.view(), reason=reason, ts_ns=now_ns))

    def _cancel_where(self, predicate: Callable[[RestingOrder], bool], reason: ev.EndReason, now_ns: int) -> tuple[str, ...]:
        doomed = [o for o in self._orders.resting.values() if predicate(o)]
        for order in doomed:
            self._end_resting(order, reason, now_ns)
        return tuple(o.order_id for o in doomed)

    def _level_changed(self, order: RestingOrder, total: int, now_ns: int) -> None:
        bids, asks = self._books[order.token]
        self._events.append(
            ev.LevelChanged(
                market=order.market, token=order.token, side=order.side, price=order.price, size=total,
                best_bid=bids.best(), best_ask=asks.best(), ts_ns=now_ns,
            )
        )


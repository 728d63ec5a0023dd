"""The simulator's matching engine: sans-IO, deterministic, integer micro-units.

Binary markets with two tokens, each token with its own price-time-priority book. No I/O, no
clock, no randomness: time is passed in as ``now_ns``, order ids come from a counter (or from
the caller, who may use the signed order's hash), and every state change is recorded as an
event (``events.py``) that ``take_events()`` drains in order. The books are the oracle the
project's tests compare against ("the engine is the oracle").

Matching (``matching.py``): price-time priority, DIRECT against the token's own book and MINT or
MERGE against the complement's. Takers pay ``model.taker_fee``; makers pay nothing.

Modelling simplification: resting orders are only checked against the same token's book when
they are posted. A limit order that does not cross its own book rests without looking at the
complement, and complementary resting orders that could mint or merge with each other are
never crossed. Real Polymarket mirrors the two books into one; this simulator does not, and
that is what lets complete-set mispricings (asks summing below 1, bids above 1) persist long
enough for mmbot's strategies to find them. Post-only likewise only rejects an order that
crosses its own token's book.

Other simplifications: sizes are shares for every order type (the server converts FOK/FAK
BUY collateral amounts); GTD expiry is an exact ``expires_ns`` (the server applies the venue's
60 s margin); a tick change leaves resting orders where they are and only new orders must be on
the new grid; no self-trade prevention. Balances are not modelled: the ``admission`` hook sees
every validated order before it can match and may refuse it with a venue error string, which
is where a later balance check plugs in.
"""

from __future__ import annotations

from typing import Callable

import attrs

from mmbot.model import ONE, MarketInfo, Side, TimeInForce, taker_fee
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.book import Ladder, Level, RestingOrder
from mmbot.venues.simulator.matching import available, crosses, next_maker
from mmbot.venues.simulator.orders import OrderIndex


@attrs.define(eq=False)
class _Market:
    info: MarketInfo
    tick: int
    number: int  # listing order, from 0: the venue's market id follows it
    state: ev.MarketState = ev.MarketState.OPEN
    winner: str | None = None
    resolved_ns: int | None = None


class Engine:
    """Books, orders and markets of one simulated venue. Not thread-safe; one caller drives it."""

    def __init__(self, *, admission: Callable[[ev.OrderRequest], str | None] | None = None) -> None:
        self._admission = admission
        self._markets: dict[str, _Market] = {}
        self._token_market: dict[str, _Market] = {}
        self._books: dict[str, tuple[Ladder, Ladder]] = {}  # token -> (bids, asks)
        self._orders = OrderIndex()
        self._last_trade: dict[str, int] = {}
        self._events: list[ev.Event] = []
        self._trade_seq = 0
        self._listed = 0

    # ------------------------------------------------------------------ markets

    def add_market(self, info: MarketInfo, now_ns: int) -> None:
        if info.market in self._markets or any(t in self._token_market for t in info.tokens):
            raise ValueError(f"market {info.market} or one of its tokens is already listed")
        market = _Market(info=info, tick=info.tick, number=self._listed)
        self._listed += 1
        self._markets[info.market] = market
        for token in info.tokens:
            self._token_market[token] = market
            self._books[token] = (Ladder(Side.BUY), Ladder(Side.SELL))
        self._events.append(ev.MarketListed(info=info, ts_ns=now_ns))

    def set_tick(self, market_id: str, new_tick: int, now_ns: int) -> None:
        if not 0 < new_tick < ONE or ONE % new_tick:
            raise ValueError(f"tick {new_tick} does not divide 1")
        market = self._markets[market_id]
        if new_tick == market.tick:
            return
        old, market.tick = market.tick, new_tick
        self._events.append(
            ev.TickChanged(market=market_id, tokens=market.info.tokens, old_tick=old, new_tick=new_tick, ts_ns=now_ns)
        )

    def close_market(self, market_id: str, now_ns: int) -> None:
        """Trading ends: every resting order is cancelled and new orders are refused."""
        market = self._markets[market_id]
        if market.state is ev.MarketState.OPEN:
            self._cancel_where(lambda o: o.market == market_id, ev.EndReason.MARKET_CLOSED, now_ns)
            market.state = ev.MarketState.CLOSED
            self._fresh_books(market)

    def resolve(self, market_id: str, winning_token: str, now_ns: int) -> None:
        market = self._markets[market_id]
        tokens = market.info.tokens
        if winning_token not in tokens:
            raise ValueError(f"{winning_token} is not a token of {market_id}")
        if market.state is ev.MarketState.RESOLVED:
            raise ValueError(f"market {market_id} is already resolved")
        self._cancel_where(lambda o: o.market == market_id, ev.EndReason.MARKET_RESOLVED, now_ns)
        market.state = ev.MarketState.RESOLVED
        market.winner = winning_token
        market.resolved_ns = now_ns
        self._fresh_books(market)
        outcome = market.info.outcomes[tokens.index(winning_token)]
        self._events.append(
            ev.Resolved(market=market_id, tokens=tokens, winning_token=winning_token, winning_outcome=outcome, ts_ns=now_ns)
        )

    def _fresh_books(self, market: _Market) -> None:
        """New empty books for a market that can no longer trade: its old ones are empty too, but a
        dict keeps the room it once needed, and a long run closes thousands of markets."""
        for token in market.info.tokens:
            self._books[token] = (Ladder(Side.BUY), Ladder(Side.SELL))

    def resolved_before(self, before_ns: int) -> list[str]:
        """Markets resolved before ``before_ns``, in listing order."""
        return [m.info.market for m in self._markets.values()
                if m.resolved_ns is not None and m.resolved_ns < before_ns]

    def forget_market(self, market_id: str) -> None:
        """Drop a resolved market (no order rests on it): its tokens become unknown, as on a venue
        that removed the books."""
        market = self._markets[market_id]
        if market.state is not ev.MarketState.RESOLVED:
            raise ValueError(f"market {market_id} is not resolved")
        del self._markets[market_id]
        for token in market.info.tokens:
            del self._token_market[token]
            del self._books[token]
            self._last_trade.pop(token, None)

    def forget_ended(self, before_ns: int) -> int:
        """Forget the ids of orders that ended before ``before_ns`` (see ``orders.OrderIndex``)."""
        return self._orders.forget_ended(before_ns)

    # ------------------------------------------------------------------ reading

    def listing_number(self, market_id: str) -> int:
        """The market's place in the listing order, from 0 (kept when earlier markets are forgotten)."""
        return self._markets[market_id].number

    def sizes(self) -> dict[str, int]:
        """How much the engine holds (for the admin statistics)."""
        return {"markets": len(self._markets), "books": len(self._books), **self._orders.sizes()}


    def markets(self) -> tuple[MarketInfo, ...]:
        """Every listed market, with its current tick."""
        return tuple(attrs.evolve(m.info, tick=m.tick) for m in self._markets.values())

    def market_of(self, token: str) -> MarketInfo:
        market = self._token_market[token]
        return attrs.evolve(market.info, tick=market.tick)

    def market_of_id(self, market_id: str) -> MarketInfo:
        market = self._markets[market_id]
        return attrs.evolve(market.info, tick=market.tick)

    def has_token(self, token: str) -> bool:
        return token in self._token_market

    def tick(self, market_id: str) -> int:
        return self._markets[market_id].tick

    def market_state(self, market_id: str) -> ev.MarketState:
        return self._markets[market_id].state

    def winner(self, market_id: str) -> str | None:
        return self._markets[market_id].winner

    def book_snapshot(self, token: str) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """(bids, asks) as (price, size) pairs, best first on both sides."""
        bids, asks = self._books[token]
        return bids.levels(), asks.levels()

    def best(self, token: str) -> tuple[int | None, int | None]:
        bids, asks = self._books[token]
        return bids.best(), asks.best()

    def last_trade_price(self, token: str) -> int | None:
        return self._last_trade.get(token)

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
    ) -> ev.SubmitResult:
        self.expire_due(now_ns)
        duplicate = order_id is not None and self._orders.known(order_id)
        if order_id is None:
            order_id = self._orders.new_id()
        error = self._validate(owner, token, side, price, size, tif, post_only, now_ns, expires_ns, order_id, duplicate)
        if error:
            return ev.SubmitResult(order_id=order_id, status="rejected", error=error)
        market = self._token_market[token]
        order = RestingOrder(
            order_id=order_id, owner=owner, market=market.info.market, token=token, side=side,
            price=price, size=size, tif=tif, post_only=post_only, created_ns=now_ns,
            expires_ns=expires_ns if tif is TimeInForce.GTD else None,
        )
        trades: list[ev.Trade] = []
        if tif in (TimeInForce.FOK, TimeInForce.FAK) or crosses(order, self._sources(order)[0]):
            trades = self._match(order, market, now_ns)
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
        self, owner: str, token: str, side: Side, price: int, size: int, tif: TimeInForce,
        post_only: bool, now_ns: int, expires_ns: int | None, order_id: str, duplicate: bool,
    ) -> str:
        market = self._token_market.get(token)
        if market is None:
            raise KeyError(f"unknown token {token}")  # callers check has_token() first
        if market.state is not ev.MarketState.OPEN:
            return ev.MARKET_NOT_READY
        if duplicate:
            return ev.INVALID_ORDER_DUPLICATED
        if post_only and tif not in (TimeInForce.GTC, TimeInForce.GTD):
            return ev.INVALID_POST_ONLY_ORDER_TYPE
        if tif is TimeInForce.GTD and (expires_ns is None or expires_ns <= now_ns):
            return ev.INVALID_ORDER_EXPIRATION
        if price % market.tick or not market.tick <= price <= ONE - market.tick:
            return ev.INVALID_ORDER_MIN_TICK_SIZE
        if size <= 0 or size < market.info.min_size:
            return ev.INVALID_ORDER_MIN_SIZE
        if self._admission is not None:
            request = ev.OrderRequest(
                owner=owner, market=market.info.market, token=token, side=side, price=price,
                size=size, tif=tif, post_only=post_only, expires_ns=expires_ns,
            )
            refusal = self._admission(request)
            if refusal:
                return refusal
        probe = RestingOrder(
            order_id=order_id, owner=owner, market=market.info.market, token=token, side=side,
            price=price, size=size, tif=tif, post_only=post_only, created_ns=now_ns, expires_ns=None,
        )
        direct, comp = self._sources(probe)
        if post_only and crosses(probe, direct):
            return ev.INVALID_POST_ONLY_ORDER
        if tif is TimeInForce.FOK and available(probe, direct, comp, size) < size:
            return ev.FOK_ORDER_NOT_FILLED_ERROR
        if tif is TimeInForce.FAK and available(probe, direct, comp, 1) == 0:
            return ev.FAK_ORDER_NOT_FILLED
        return ""

    def _complement(self, token: str) -> str:
        a, b = self._token_market[token].info.tokens
        return b if token == a else a

    def _sources(self, order: RestingOrder) -> tuple[Ladder, Ladder]:
        """(the token's opposite side, the complement's same side) for an incoming order."""
        own = self._books[order.token]
        comp = self._books[self._complement(order.token)]
        if order.side is Side.BUY:
            return own[1], comp[0]
        return own[0], comp[1]

    def _match(self, taker: RestingOrder, market: _Market, now_ns: int) -> list[ev.Trade]:
        direct, comp = self._sources(taker)
        trades = []
        while taker.remaining and (meet := next_maker(taker, direct, comp)) is not None:
            ladder, maker, is_direct = meet
            trades.append(self._fill(taker, maker, ladder, is_direct, market, now_ns))
        return trades

    def _fill(
        self, taker: RestingOrder, maker: RestingOrder, ladder: Ladder, direct: bool, market: _Market, now_ns: int
    ) -> ev.Trade:
        qty = min(taker.remaining, maker.remaining)
        taker_price = maker.price if direct else ONE - maker.price
        taker.matched += qty
        maker.matched += qty
        level_total = ladder.reduce(maker, qty)
        self._trade_seq += 1
        info = market.info
        trade = ev.Trade(
            trade_id=f"{self._trade_seq:08x}-0000-4000-8000-{self._trade_seq:012x}",
            market=info.market,
            kind=ev.MatchKind.DIRECT if direct else (ev.MatchKind.MINT if taker.side is Side.BUY else ev.MatchKind.MERGE),
            size=qty,
            taker_order_id=taker.order_id, taker_owner=taker.owner, taker_token=taker.token,
            taker_side=taker.side, taker_price=taker_price,
            taker_fee=taker_fee(qty, taker_price, info.fee_rate, info.fee_exponent),
            taker_size_matched=taker.matched,
            maker_order_id=maker.order_id, maker_owner=maker.owner, maker_token=maker.token,
            maker_side=maker.side, maker_price=maker.price, maker_size_matched=maker.matched,
            ts_ns=now_ns,
        )
        self._last_trade[taker.token] = taker_price
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

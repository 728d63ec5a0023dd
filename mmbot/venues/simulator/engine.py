"""The simulator's matching engine: sans-IO, deterministic, integer micro-units.

Binary markets with two tokens, each token with its own price-time-priority book. No I/O, no
clock, no randomness: time is passed in as ``now_ns``, order ids come from a counter (or from
the caller, who may use the signed order's hash), and every state change is recorded as an
event (``events.py``) that ``take_events()`` drains in order. The books are the oracle the
project's tests compare against ("the engine is the oracle").

Matching. An incoming order is *marketable* when it is FOK/FAK, or when it crosses its own
token's opposite side. A marketable order walks two sources level by level, taking whichever
gives it the better price, and each resting level at its own price (price improvement goes to
the taker): the token's opposite side (DIRECT), and the complement's same side - a BUY YES at
``p`` takes a resting BUY NO at ``q`` when ``p + q >= 1`` and pays ``1 - q`` (MINT), a SELL YES
at ``p`` takes a resting SELL NO at ``q`` when ``p + q <= 1`` and receives ``1 - q`` (MERGE).
On a price tie the direct level goes first. Takers pay ``model.taker_fee``; makers pay nothing.

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

import heapq
from typing import Callable

import attrs

from mmbot.model import ONE, MarketInfo, Side, TimeInForce, notional, taker_fee
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.book import Ladder, Level, RestingOrder


@attrs.define(eq=False)
class _Market:
    info: MarketInfo
    tick: int
    state: ev.MarketState = ev.MarketState.OPEN
    winner: str | None = None


def _better_or_equal(side: Side, price: int, limit: int) -> bool:
    """Whether a taker on ``side`` with ``limit`` accepts ``price``."""
    return price <= limit if side is Side.BUY else price >= limit


class Engine:
    """Books, orders and markets of one simulated venue. Not thread-safe; one caller drives it."""

    def __init__(self, *, admission: Callable[[ev.OrderRequest], str | None] | None = None) -> None:
        self._admission = admission
        self._markets: dict[str, _Market] = {}
        self._token_market: dict[str, _Market] = {}
        self._books: dict[str, tuple[Ladder, Ladder]] = {}  # token -> (bids, asks)
        self._orders: dict[str, RestingOrder] = {}  # resting orders, in arrival order
        self._by_owner: dict[str, dict[str, RestingOrder]] = {}  # the same, per owner
        self._seen_ids: set[str] = set()
        self._expiries: list[tuple[int, int, str]] = []  # (expires_ns, seq, order id) of GTD orders
        self._last_trade: dict[str, int] = {}
        self._events: list[ev.Event] = []
        self._order_seq = 0
        self._trade_seq = 0
        self._expiry_seq = 0

    # ------------------------------------------------------------------ markets

    def add_market(self, info: MarketInfo, now_ns: int) -> None:
        if info.market in self._markets or any(t in self._token_market for t in info.tokens):
            raise ValueError(f"market {info.market} or one of its tokens is already listed")
        market = _Market(info=info, tick=info.tick)
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
        outcome = market.info.outcomes[tokens.index(winning_token)]
        self._events.append(
            ev.Resolved(market=market_id, tokens=tokens, winning_token=winning_token, winning_outcome=outcome, ts_ns=now_ns)
        )

    # ------------------------------------------------------------------ reading

    def markets(self) -> tuple[MarketInfo, ...]:
        """Every listed market, with its current tick."""
        return tuple(attrs.evolve(m.info, tick=m.tick) for m in self._markets.values())

    def market_of(self, token: str) -> MarketInfo:
        market = self._token_market[token]
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
        orders = self._orders if owner is None else self._by_owner.get(owner, {})
        return [o.view() for o in orders.values() if market is None or o.market == market]

    def committed(self, owner: str, token: str) -> tuple[int, int]:
        """What ``owner``'s resting orders hold: pUSD on all its BUYs, shares on its SELLs of ``token``."""
        buying = selling = 0
        for o in self._by_owner.get(owner, {}).values():
            if o.side is Side.BUY:
                buying += notional(o.price, o.remaining)
            elif o.token == token:
                selling += o.remaining
        return buying, selling

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
        if order_id is None:
            self._order_seq += 1
            order_id = f"0x{self._order_seq:064x}"
        error = self._validate(owner, token, side, price, size, tif, post_only, now_ns, expires_ns, order_id)
        if error:
            return ev.SubmitResult(order_id=order_id, status="rejected", error=error)
        market = self._token_market[token]
        self._seen_ids.add(order_id)
        order = RestingOrder(
            order_id=order_id, owner=owner, market=market.info.market, token=token, side=side,
            price=price, size=size, tif=tif, post_only=post_only, created_ns=now_ns,
            expires_ns=expires_ns if tif is TimeInForce.GTD else None,
        )
        trades: list[ev.Trade] = []
        if tif in (TimeInForce.FOK, TimeInForce.FAK) or self._crosses_own_book(order):
            trades = self._match(order, market, now_ns)
        if order.remaining and tif in (TimeInForce.GTC, TimeInForce.GTD):
            self._rest(order, now_ns)
            status = "live"
        else:
            if order.remaining:
                self._events.append(ev.OrderEnded(order=order.view(), reason=ev.EndReason.KILLED, ts_ns=now_ns))
            else:
                self._events.append(ev.OrderEnded(order=order.view(), reason=ev.EndReason.MATCHED, ts_ns=now_ns))
            status = "matched"
        return ev.SubmitResult(order_id=order_id, status=status, size_matched=order.matched, trades=tuple(trades))

    def cancel(self, order_id: str, now_ns: int) -> ev.CancelResult:
        order = self._orders.get(order_id)
        if order is None:
            reason = ev.ALREADY_DONE if order_id in self._seen_ids else ev.UNKNOWN_ORDER
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
        while self._expiries and self._expiries[0][0] <= now_ns:
            _, _, order_id = heapq.heappop(self._expiries)
            order = self._orders.get(order_id)
            if order is not None:
                self._end_resting(order, ev.EndReason.EXPIRED, now_ns)

    # ------------------------------------------------------------------ internals

    def _validate(
        self, owner: str, token: str, side: Side, price: int, size: int, tif: TimeInForce,
        post_only: bool, now_ns: int, expires_ns: int | None, order_id: str,
    ) -> str:
        market = self._token_market.get(token)
        if market is None:
            raise KeyError(f"unknown token {token}")  # callers check has_token() first
        if market.state is not ev.MarketState.OPEN:
            return ev.MARKET_NOT_READY
        if order_id in self._seen_ids:
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
        if post_only and self._crosses_own_book(probe):
            return ev.INVALID_POST_ONLY_ORDER
        if tif is TimeInForce.FOK and self._available(probe, size) < size:
            return ev.FOK_ORDER_NOT_FILLED_ERROR
        if tif is TimeInForce.FAK and self._available(probe, 1) == 0:
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

    def _crosses_own_book(self, order: RestingOrder) -> bool:
        best = self._sources(order)[0].best()
        return best is not None and _better_or_equal(order.side, best, order.price)

    def _available(self, order: RestingOrder, enough: int) -> int:
        """Shares ``order`` could take right now at acceptable prices (stops counting at ``enough``)."""
        direct, comp = self._sources(order)
        total = 0
        for price, size in direct.levels():
            if total >= enough or not _better_or_equal(order.side, price, order.price):
                break
            total += size
        for price, size in comp.levels():
            if total >= enough or not _better_or_equal(order.side, ONE - price, order.price):
                break
            total += size
        return total

    def _match(self, taker: RestingOrder, market: _Market, now_ns: int) -> list[ev.Trade]:
        direct, comp = self._sources(taker)
        trades = []
        while taker.remaining:
            d = direct.best()
            c = comp.best()
            d_ok = d is not None and _better_or_equal(taker.side, d, taker.price)
            c_ok = c is not None and _better_or_equal(taker.side, ONE - c, taker.price)
            if not (d_ok or c_ok):
                break
            # A tie between the two sources goes to the direct level.
            use_direct = d_ok and (not c_ok or _better_or_equal(taker.side, d, ONE - c))  # type: ignore[operator]
            ladder = direct if use_direct else comp
            maker = ladder.queues[d if use_direct else c][0]  # type: ignore[index]
            trades.append(self._fill(taker, maker, ladder, use_direct, market, now_ns))
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
            del self._orders[maker.order_id]
            del self._by_owner[maker.owner][maker.order_id]
            self._events.append(ev.OrderEnded(order=maker.view(), reason=ev.EndReason.MATCHED, ts_ns=now_ns))
        return trade

    def _rest(self, order: RestingOrder, now_ns: int) -> None:
        bids, asks = self._books[order.token]
        total = (bids if order.side is Side.BUY else asks).add(order)
        self._orders[order.order_id] = order
        self._by_owner.setdefault(order.owner, {})[order.order_id] = order
        if order.expires_ns is not None:
            self._expiry_seq += 1
            heapq.heappush(self._expiries, (order.expires_ns, self._expiry_seq, order.order_id))
        self._level_changed(order, total, now_ns)
        self._events.append(ev.OrderRested(order=order.view(), ts_ns=now_ns))

    def _end_resting(self, order: RestingOrder, reason: ev.EndReason, now_ns: int) -> None:
        bids, asks = self._books[order.token]
        total = (bids if order.side is Side.BUY else asks).remove(order)
        del self._orders[order.order_id]
        del self._by_owner[order.owner][order.order_id]
        self._level_changed(order, total, now_ns)
        self._events.append(ev.OrderEnded(order=order.view(), reason=reason, ts_ns=now_ns))

    def _cancel_where(self, predicate: Callable[[RestingOrder], bool], reason: ev.EndReason, now_ns: int) -> tuple[str, ...]:
        doomed = [o for o in self._orders.values() if predicate(o)]
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

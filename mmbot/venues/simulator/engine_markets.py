"""The engine's markets, sans-IO: which markets are listed, their ticks and states, each token's
two ladders, resolution and forgetting. ``engine.Engine`` builds order entry and matching on top.

A market is OPEN (accepting orders), CLOSED (trading over, waiting for resolution; every resting
order cancelled) or RESOLVED (a winning token). A resolved market can be forgotten: its tokens
become unknown, as on a venue that removed the books.
"""

from __future__ import annotations

from typing import Callable

import attrs

from mmbot.model import ONE, MarketInfo, Side
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.book import Ladder, Level, RestingOrder


@attrs.define(eq=False)
class Market:
    info: MarketInfo
    tick: int
    number: int  # listing order, from 0: the venue's market id follows it
    state: ev.MarketState = ev.MarketState.OPEN
    winner: str | None = None
    resolved_ns: int | None = None


class MarketBooks:
    """The listed markets and their books; events go to ``_events`` in the order things happen."""

    def __init__(self) -> None:
        self._markets: dict[str, Market] = {}
        self._token_market: dict[str, Market] = {}
        self._books: dict[str, tuple[Ladder, Ladder]] = {}  # token -> (bids, asks)
        self._last_trade: dict[str, int] = {}
        self._events: list[ev.Event] = []
        self._listed = 0

    def _cancel_where(self, predicate: Callable[[RestingOrder], bool], reason: ev.EndReason,
                      now_ns: int) -> tuple[str, ...]:
        raise NotImplementedError  # the engine's: ending resting orders is order business

    # ------------------------------------------------------------------ markets

    def add_market(self, info: MarketInfo, now_ns: int) -> None:
        if info.market in self._markets or any(t in self._token_market for t in info.tokens):
            raise ValueError(f"market {info.market} or one of its tokens is already listed")
        market = Market(info=info, tick=info.tick, number=self._listed)
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

    def _fresh_books(self, market: Market) -> None:
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

    # ------------------------------------------------------------------ reading

    def listing_number(self, market_id: str) -> int:
        """The market's place in the listing order, from 0 (kept when earlier markets are forgotten)."""
        return self._markets[market_id].number

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

"""The markets we know: static facts per market, the token → market index, runtime tick changes.

A market is forgotten (``forget``) a retention horizon after it is over (``decisions/forgetting.py``);
from then on it is one we never knew: its resolution, if one comes late, is not remembered.
"""

from __future__ import annotations

from typing import Iterable

import attrs

from mmbot.model import BookSnapshot, MarketInfo, MarketMessage, MarketResolved, NewMarket, PriceChange, TickSizeChange


class Markets:
    """Registry of ``MarketInfo`` by condition id and by token; ticks follow ``tick_size_change``."""

    def __init__(self, markets: Iterable[MarketInfo] = (), *, learn_listings: bool = True) -> None:
        """``learn_listings``: take in markets announced by ``new_market`` with the little it says
        (replay, which has nothing else); off where their full facts are fetched instead."""
        self._learn_listings = learn_listings
        self._by_market: dict[str, MarketInfo] = {}
        self._by_token: dict[str, str] = {}
        self.resolved: dict[str, str] = {}  # market -> winning token
        for info in markets:
            self.add(info)

    def add(self, info: MarketInfo) -> None:
        self._by_market[info.market] = info
        for token in info.tokens:
            self._by_token[token] = info.market

    def forget(self, market: str) -> MarketInfo | None:
        """Drop a market, its tokens and its resolution; returns what was known of it."""
        info = self._by_market.pop(market, None)
        if info is not None:
            for token in info.tokens:
                if self._by_token.get(token) == market:
                    del self._by_token[token]
        self.resolved.pop(market, None)
        return info

    def get(self, market: str) -> MarketInfo | None:
        return self._by_market.get(market)

    def for_token(self, token: str) -> MarketInfo | None:
        market = self._by_token.get(token)
        return None if market is None else self._by_market[market]

    def complement(self, token: str) -> str | None:
        info = self.for_token(token)
        if info is None:
            return None
        yes, no = info.tokens
        return no if token == yes else yes

    def __iter__(self):
        return iter(self._by_market.values())

    def __len__(self) -> int:
        return len(self._by_market)

    def _set_tick(self, token: str, tick: int) -> None:
        info = self.for_token(token)
        if info is not None and info.tick != tick:
            self._by_market[info.market] = attrs.evolve(info, tick=tick)

    def apply(self, msg: MarketMessage) -> None:
        """Keep ticks and resolutions current; learn markets announced by ``new_market``."""
        if type(msg) is PriceChange:
            return  # the commonest message says nothing kept here
        if isinstance(msg, TickSizeChange):
            self._set_tick(msg.token, msg.new_tick)
        elif isinstance(msg, BookSnapshot) and msg.tick is not None:
            self._set_tick(msg.token, msg.tick)  # a subscription snapshot carries the current tick
        elif isinstance(msg, MarketResolved):
            if msg.market in self._by_market:  # not for a market we never knew, or forgot
                self.resolved[msg.market] = msg.winning_token
        elif (isinstance(msg, NewMarket) and self._learn_listings and msg.market not in self._by_market
              and len(msg.tokens) == 2):
            outcomes = tuple(msg.outcomes) if len(msg.outcomes) == 2 else ("Yes", "No")
            info = MarketInfo(
                market=msg.market,
                tokens=(msg.tokens[0], msg.tokens[1]),
                outcomes=(outcomes[0], outcomes[1]),
                slug=msg.slug,
                question=msg.question,
            )
            if msg.tick is not None:
                info = attrs.evolve(info, tick=msg.tick)
            self.add(info)

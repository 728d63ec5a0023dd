"""One token's book: its levels in plain dicts (price -> size), the best bid and ask cached.

DESIGN §13 measured this ~5x faster than a sorted container, because almost every change lands
away from the top or moves the top outward, and only the removal of the best level needs a scan.
``decisions/book.py``'s ``Books`` keeps one per token and is the only one that changes them.
"""

from __future__ import annotations

import heapq

from mmbot.model import BookState, Side

_BUY = Side.BUY


class Book:
    """One token's levels, their cached best prices, and whether they can be trusted."""

    __slots__ = ("token", "market", "tick", "state", "bids", "asks", "updated_ns", "best_bid", "best_ask")

    def __init__(self, token: str, market: str, tick: int | None = None) -> None:
        self.token = token
        self.market = market
        self.tick = tick
        self.state = BookState.EMPTY
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.updated_ns = 0
        self.best_bid: int | None = None
        self.best_ask: int | None = None

    def __repr__(self) -> str:
        return (
            f"Book(token={self.token!r}, state={self.state.value}, best_bid={self.best_bid},"
            f" best_ask={self.best_ask}, bids={len(self.bids)}, asks={len(self.asks)})"
        )

    def apply_change(self, side: Side, price: int, size: int) -> None:
        """Set the total size resting at ``price`` (0 removes the level); keeps the bests right."""
        if side is _BUY:
            bids = self.bids
            if size:
                bids[price] = size
                best = self.best_bid
                if best is None or price > best:
                    self.best_bid = price
            elif bids.pop(price, None) is not None and price == self.best_bid:
                self.best_bid = max(bids) if bids else None
        else:
            asks = self.asks
            if size:
                asks[price] = size
                best = self.best_ask
                if best is None or price < best:
                    self.best_ask = price
            elif asks.pop(price, None) is not None and price == self.best_ask:
                self.best_ask = min(asks) if asks else None

    def replace(self, bids: dict[int, int], asks: dict[int, int]) -> None:
        """Adopt a full snapshot's levels (the dicts are taken over, not copied)."""
        self.bids = bids
        self.asks = asks
        self.best_bid = max(bids) if bids else None
        self.best_ask = min(asks) if asks else None

    def is_crossed(self) -> bool:
        """Best bid at or above best ask: locked or crossed, which the venue never is."""
        bid, ask = self.best_bid, self.best_ask
        return bid is not None and ask is not None and bid >= ask

    def best_bid_size(self) -> int:
        return 0 if self.best_bid is None else self.bids[self.best_bid]

    def best_ask_size(self) -> int:
        return 0 if self.best_ask is None else self.asks[self.best_ask]

    def levels(self, side: Side, depth: int | None = None) -> list[tuple[int, int]]:
        """(price, size) pairs best first: bids for BUY, asks for SELL; at most ``depth`` of them."""
        if side is _BUY:
            items = self.bids.items()
            if depth is None:
                return sorted(items, reverse=True)
            return heapq.nlargest(depth, items)
        items = self.asks.items()
        if depth is None:
            return sorted(items)
        return heapq.nsmallest(depth, items)

    def size_at(self, side: Side, price: int) -> int:
        """The size resting at exactly ``price`` on ``side`` (0 when there is no level)."""
        return (self.bids if side is _BUY else self.asks).get(price, 0)

    def size_at_or_better(self, side: Side, limit: int) -> int:
        """Resting size on ``side`` priced at ``limit`` or better for whoever trades against it.

        SELL (asks): the shares a buyer paying at most ``limit`` could take (price <= limit).
        BUY (bids): the shares a seller accepting at least ``limit`` could hit (price >= limit).
        """
        if side is _BUY:
            return sum(size for price, size in self.bids.items() if price >= limit)
        return sum(size for price, size in self.asks.items() if price <= limit)

    def mid(self) -> int | None:
        """Midpoint of the best bid and ask, rounded down; None unless both sides have a level."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) // 2

"""What a strategy sees: a read-only window onto the books and our own orders and positions.

``decisions/view.py``'s ``StateView`` implements it; strategies (``decisions/strategy.py``) decide
from it alone and cannot change anything through it.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from mmbot.model import BookState, MarketInfo, Side


class BookLike(Protocol):
    state: BookState
    best_bid: int | None
    best_ask: int | None

    def levels(self, side: Side, depth: int | None = None) -> list[tuple[int, int]]: ...
    def size_at(self, side: Side, price: int) -> int: ...


class OrderLike(Protocol):
    order_id: str
    token: str
    side: Side
    price: int

    @property
    def remaining(self) -> int: ...


class StrategyView(Protocol):
    """What a strategy may look at. The executor implements it; strategies cannot change it."""

    def now_ns(self) -> int: ...
    def book(self, token: str) -> BookLike | None: ...
    def market(self, market: str) -> MarketInfo | None: ...
    def position(self, token: str) -> int: ...
    def available_shares(self, token: str) -> int: ...
    def quotes(self, market: str, strategy: str) -> Sequence[OrderLike]:
        """Our open orders of that strategy in that market, not already being cancelled."""
    def orders_changed(self, market: str) -> int:
        """New whenever one of our open orders in that market changed, 0 exactly while it has
        none: equal answers mean the same open orders (``Orders.changed_in``)."""
    def busy(self, market: str, strategy: str) -> bool:
        """True while an order or merge of that strategy in that market awaits the venue, while a
        redemption of the market awaits the chain, and for the merge strategy while the market's
        merges back off after a failure or once its resolution is known."""
    def held_markets(self) -> Sequence[MarketInfo]:
        """The markets of which we hold both tokens (deterministic order)."""
    def order_room(self) -> int:
        """How many more orders risk's open-order limit allows right now."""
    def buy_room(self, market: str, token: str) -> int:
        """How many more shares of ``token`` risk's position limits (the token's and its market's)
        let a BUY bring in right now, counting what is held and what open buys may still bring."""

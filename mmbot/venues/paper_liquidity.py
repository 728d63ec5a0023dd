"""What the paper venue may take from the books the feed shows.

The feed does not know about paper trades, and the venue keeps one book per market shown twice,
so the books cannot be taken at their word:

- **Liquidity we took is not there twice.** The size taken at each (token, side, price) is
  remembered and subtracted from what the book shows until the feed restates that level (a
  level change at that price, or a snapshot).
- **Mirrored books count once.** A YES bid at p is shown as a NO ask at 1 - p as well. An order
  may take either view (complete-set crossing mints or merges), so at each price the better of
  the two views is available, not their sum, and what is taken is charged to both.

An EMPTY or STALE book offers nothing: its levels are not trustworthy (a tick change, a
resolution, a lost update), and taking from it could fill against liquidity long gone.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Protocol, Sequence

import attrs

from mmbot.model import ONE, BookState, LevelChange, Side


class BookView(Protocol):
    """What the paper venue reads of one token's book (decisions/book.py's ``Book``)."""

    # Read-only properties, so a Book whose attributes are plain (mutable) fields conforms.
    @property
    def tick(self) -> int | None: ...
    @property
    def state(self) -> BookState: ...
    @property
    def bids(self) -> Mapping[int, int]: ...
    @property
    def asks(self) -> Mapping[int, int]: ...
    @property
    def best_bid(self) -> int | None: ...
    @property
    def best_ask(self) -> int | None: ...

    def levels(self, side: Side, depth: int | None = None) -> Sequence[tuple[int, int]]: ...


class BookSource(Protocol):
    def get(self, token: str) -> BookView | None: ...


_Key = tuple[Side, int]  # a level of one token's book: (BUY for bids / SELL for asks, price)


@attrs.frozen
class Level:
    """Liquidity an order can take at one price, and the book levels that show it."""

    price: int  # what the order trades at: the book price, or 1 - price through the mirror
    available: int
    shown_at: tuple[tuple[str, Side, int], ...]  # (token, book side, book price)


_BUY = Side.BUY
_STALE, _EMPTY = BookState.STALE, BookState.EMPTY


def reaches(side: Side, price: int, limit: int) -> bool:
    """Whether an order on ``side`` with ``limit`` may trade at ``price``."""
    return price <= limit if side is Side.BUY else price >= limit


def _tradable(book: BookView) -> bool:
    return book.state is not BookState.STALE and book.state is not BookState.EMPTY


class PaperLiquidity:
    """The books as the paper venue sees them: what the feed shows, less what paper orders took."""

    def __init__(self, books: BookSource) -> None:
        self._books = books
        self._consumed: dict[str, dict[_Key, int]] = {}  # token -> level -> size we took

    def restated(self, token: str, book_side: Side, price: int) -> None:
        """The feed restated one level: it shows what is there now."""
        taken = self._consumed.get(token)
        if taken is not None and taken.pop((book_side, price), None) is not None and not taken:
            del self._consumed[token]

    def restated_changes(self, changes: Iterable[LevelChange]) -> None:
        """The feed restated these levels (a price_change's entries)."""
        if self._consumed:  # nothing to forget while paper orders took nothing
            for change in changes:
                self.restated(change.token, change.side, change.price)

    def snapshot(self, token: str) -> None:
        """The feed restated the whole book of ``token``."""
        self._consumed.pop(token, None)

    def forget(self, tokens: Iterable[str]) -> None:
        """Forget what we took from these tokens' books (their market was forgotten)."""
        for token in tokens:
            self._consumed.pop(token, None)

    def remembered(self) -> int:
        """Tokens with takes remembered."""
        return len(self._consumed)

    def shown(self, token: str, book_side: Side, price: int) -> int:
        """Size the book shows at a level, less what we took there since the feed last said."""
        book = self._books.get(token)
        if book is None:
            return 0
        visible = (book.bids if book_side is _BUY else book.asks).get(price, 0)
        taken = self._consumed.get(token)
        if taken is None:
            return visible if visible > 0 else 0
        return max(0, visible - taken.get((book_side, price), 0))

    def may_cross(self, token: str, complement: str | None, side: Side, limit: int) -> bool:
        """Whether ``takeable`` could find anything: the best level of each view reaches
        ``limit`` (levels further from the top reach it only if the best does)."""
        buy = side is _BUY
        book = self._books.get(token)
        if book is not None and book.state is not _STALE and book.state is not _EMPTY:
            best = book.best_ask if buy else book.best_bid
            if best is not None and (best <= limit if buy else best >= limit):
                return True
        book = self._books.get(complement) if complement is not None else None
        if book is not None and book.state is not _STALE and book.state is not _EMPTY:
            best = book.best_bid if buy else book.best_ask
            if best is not None and (ONE - best <= limit if buy else ONE - best >= limit):
                return True
        return False

    def takeable(self, token: str, complement: str | None, side: Side, limit: int) -> list[Level]:
        """The liquidity an order on ``side`` of ``token`` up to ``limit`` reaches, best price
        first, one entry per price."""
        best_view: dict[int, int] = {}
        shown_at: dict[int, list[tuple[str, Side, int]]] = {}
        # Direct: the same token's opposite side. Mirrored: the complement's same side, where a
        # BUY NO at q is a SELL YES at 1 - q (merge/mint crossing, protocol doc §8).
        views = [(token, side.opposite, False)]
        if complement is not None:
            views.append((complement, side, True))
        for view_token, book_side, mirrored in views:
            book = self._books.get(view_token)
            if book is None or not _tradable(book):
                continue
            for book_price, _ in book.levels(book_side):
                price = ONE - book_price if mirrored else book_price
                if not reaches(side, price, limit):
                    break
                available = self.shown(view_token, book_side, book_price)
                if available > 0:
                    best_view[price] = max(best_view.get(price, 0), available)
                    shown_at.setdefault(price, []).append((view_token, book_side, book_price))
        prices = sorted(best_view, reverse=side is Side.SELL)
        return [Level(price, best_view[price], tuple(shown_at[price])) for price in prices]

    def consume(self, level: Level, size: int) -> None:
        """``size`` was taken at ``level``: every book view that showed it is charged."""
        for token, book_side, price in level.shown_at:
            taken = self._consumed.setdefault(token, {})
            taken[(book_side, price)] = taken.get((book_side, price), 0) + size

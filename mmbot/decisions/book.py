"""The L2 book of every token, kept from market-channel snapshots and absolute-size changes.

One token's levels are a ``Book`` (``decisions/levels.py``: plain dicts with the bests cached).

``Books`` is the single place book state changes. It follows the venue's quirks (protocol
doc §2, §10): a snapshot replaces a token's levels whatever their order; a tick size change,
a reconnect or a disagreement with the venue's own best bid/ask makes the book STALE, and a
STALE book drops level changes until the next snapshot; a locally crossed or locked book is
CROSSED until a later change uncrosses it. Every state transition is recorded as a
``book_state`` event, every disagreement as ``book_mismatch``.

A forgotten market's books go with it (``forget``, ``decisions/forgetting.py``). A frame that
comes for one of its tokens later is one for a token never seen.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Callable, Iterable

import attrs

from mmbot.decisions.levels import Book
from mmbot.model import (
    ONE,
    BestBidAsk,
    BookSnapshot,
    BookState,
    LastTrade,
    LevelChange,
    MarketMessage,
    MarketResolved,
    NewMarket,
    PriceChange,
    TickSizeChange,
)
from mmbot.ports import EventSink

_EMPTY = BookState.EMPTY
_SYNCED = BookState.SYNCED
_CROSSED = BookState.CROSSED
_STALE = BookState.STALE
_NONE: frozenset[str] = frozenset()


@attrs.frozen
class BookStatistics:
    books: int
    changes_applied: int
    changes_without_book: int  # for a token with no snapshot yet
    changes_dropped_stale: int  # for a STALE book waiting for its snapshot
    invalid_levels: int  # price outside (0, 1) or negative size, skipped
    mismatches: int  # local best differed from the venue's
    crossings: int  # times a book became CROSSED
    resyncs: int  # snapshots that brought a STALE or CROSSED book back to SYNCED


def _disagrees(local: int | None, venue: int | None, empty_side: int) -> bool:
    """Whether the venue's best contradicts ours. None: the venue did not say.

    The venue writes an empty side as "0" (bids) or "1" (asks); ``empty_side`` is that value.
    """
    if venue is None:
        return False
    if venue == empty_side:
        return local is not None
    return local != venue


def _valid(price: int, size: int) -> bool:
    return 0 < price < ONE and size >= 0


class Books:
    """Every token's book; applies market messages; the single place book state changes."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink
        self._books: dict[str, Book] = {}
        # The book of a token, or None: the dict's own get, with no method around it (asked ~8
        # times per book update, by the strategies, the view and the paper venue).
        self.get: Callable[[str], Book | None] = self._books.get
        self._changes_applied = 0
        self._changes_without_book = 0
        self._changes_dropped_stale = 0
        self._invalid_levels = 0
        self._mismatches = 0
        self._crossings = 0
        self._resyncs = 0
        self._touched: set[str] = set()  # tokens apply() listed since take_touched()
        self._handlers: dict[type, Callable[[Any], list[str]]] = {
            PriceChange: self._on_price_change,
            BookSnapshot: self._on_snapshot,
            BestBidAsk: self._on_best_bid_ask,
            TickSizeChange: self._on_tick_size_change,
            MarketResolved: self._on_resolved,
            LastTrade: self._no_change,
            NewMarket: self._no_change,
        }

    def apply(self, msg: MarketMessage) -> list[str]:
        """Apply one market message; returns the tokens it touched, in message order.

        A token is listed when its levels were written or its state changed (a change that
        rewrites a level with the size it already had still lists it).
        """
        handler = self._handlers.get(type(msg))
        if handler is None:
            raise TypeError(f"not a market message: {type(msg).__name__}")
        touched = handler(msg)
        if touched:
            self._touched.update(touched)
        return touched

    def take_touched(self) -> AbstractSet[str]:
        """The tokens ``apply`` listed since the last call (every level write is among them;
        for one consumer: the view's running equity), then forget them."""
        touched = self._touched
        if not touched:
            return _NONE  # asked after every decision step: spare it a new empty set
        self._touched = set()
        return touched

    def __len__(self) -> int:
        return len(self._books)

    def needing_resync(self) -> list[str]:
        """Tokens whose book is STALE or CROSSED, in the order their books were created."""
        return [token for token, book in self._books.items() if book.state is _STALE or book.state is _CROSSED]

    def mark_stale(self, tokens: Iterable[str], reason: str, cid: str) -> list[str]:
        """Distrust these books until their next snapshot (after a reconnect, say).

        Tokens with no snapshot yet, or already STALE, are left alone. Returns the tokens whose
        state changed.
        """
        changed = []
        for token in tokens:
            book = self._books.get(token)
            if book is not None and book.state is not _EMPTY and book.state is not _STALE:
                self._transition(book, _STALE, reason, cid)
                changed.append(token)
        return changed

    def forget(self, tokens: Iterable[str]) -> int:
        """Drop these tokens' books (their market was forgotten); returns how many there were. A
        later frame for one is a frame for a token never seen: a snapshot makes a fresh book.
        They count as touched, so that a position's value moves off the mark the book gave."""
        dropped = 0
        for token in tokens:
            if self._books.pop(token, None) is not None:
                self._touched.add(token)
                dropped += 1
        return dropped

    def forget_orphans(self, known: Callable[[str], bool], *, quiet_before_ns: int) -> list[str]:
        """Drop the books of markets not ``known`` that nothing updated after ``quiet_before_ns``
        (a late frame after their market was forgotten; a listing whose details never came);
        returns their tokens, in the order the books were made."""
        orphans = [
            token for token, book in self._books.items()
            if book.updated_ns <= quiet_before_ns and not known(book.market)
        ]
        self.forget(orphans)
        return orphans

    def statistics(self) -> BookStatistics:
        return BookStatistics(
            books=len(self._books),
            changes_applied=self._changes_applied,
            changes_without_book=self._changes_without_book,
            changes_dropped_stale=self._changes_dropped_stale,
            invalid_levels=self._invalid_levels,
            mismatches=self._mismatches,
            crossings=self._crossings,
            resyncs=self._resyncs,
        )

    @property
    def mismatches(self) -> int:
        return self._mismatches

    @property
    def resyncs(self) -> int:
        return self._resyncs

    # ----------------------------------------------------------------------- handlers

    def _on_price_change(self, msg: PriceChange) -> list[str]:
        # The venue's best_bid/best_ask on an entry is that token's top after every entry up to
        # it. The top after a token's *last* entry is therefore the one our finished book must
        # show, and checking only there is right whether the venue repeats the message-final
        # top on every entry or gives each entry its own: a per-entry check would flag the
        # former falsely, and a false STALE costs a book until the venue next sends one.
        # Crossing is judged at the same point, so an order of entries that locks the book for
        # a moment (new bid before the consumed ask's removal) is not taken for a lost update.
        changes = msg.changes
        if len(changes) == 1:  # the venue's usual message: no token's last entry to find
            change = changes[0]
            book = self._write(change)
            if book is None:
                return []
            book.updated_ns = msg.recv_ns
            self._check(book, change.best_bid, change.best_ask, msg.cid)
            return [change.token]
        last_entry: dict[str, tuple[Book, LevelChange]] = {}
        for change in changes:
            book = self._write(change)
            if book is not None:
                last_entry[change.token] = (book, change)
        for book, change in last_entry.values():
            book.updated_ns = msg.recv_ns
            self._check(book, change.best_bid, change.best_ask, msg.cid)
        return list(last_entry)

    def _write(self, change: LevelChange) -> Book | None:
        """Write one entry to its token's book and return the book, or count why it cannot be
        written (no book yet, a STALE one waiting for its snapshot, an invalid level): None."""
        book = self._books.get(change.token)
        if book is None or book.state is _EMPTY:
            self._changes_without_book += 1
            return None
        if book.state is _STALE:
            self._changes_dropped_stale += 1
            return None
        price, size = change.price, change.size
        if not 0 < price < ONE or size < 0:
            self._invalid_levels += 1
            return None
        book.apply_change(change.side, price, size)
        self._changes_applied += 1
        return book

    def _on_snapshot(self, msg: BookSnapshot) -> list[str]:
        book = self._books.get(msg.token)
        if book is None:
            book = self._books[msg.token] = Book(msg.token, msg.market)
        book.market = msg.market
        book.replace(self._level_dict(msg.bids), self._level_dict(msg.asks))
        if msg.tick is not None:
            book.tick = msg.tick
        book.updated_ns = msg.recv_ns
        if book.is_crossed():
            if book.state is not _CROSSED:
                self._crossings += 1
                self._transition(book, _CROSSED, "snapshot", msg.cid)
        elif book.state is not _SYNCED:
            if book.state is not _EMPTY:
                self._resyncs += 1
            self._transition(book, _SYNCED, "snapshot", msg.cid)
        return [msg.token]

    def _on_best_bid_ask(self, msg: BestBidAsk) -> list[str]:
        book = self._books.get(msg.token)
        if book is None or book.state is _EMPTY or book.state is _STALE:
            return []
        if self._mismatch(book, msg.best_bid, msg.best_ask, msg.cid):
            book.updated_ns = msg.recv_ns
            return [msg.token]
        return []

    def _on_tick_size_change(self, msg: TickSizeChange) -> list[str]:
        # Keep the new tick even before any snapshot: subscription snapshots carry the tick,
        # later ones do not, so this may be the only word on it.
        book = self._books.get(msg.token)
        if book is None:
            book = self._books[msg.token] = Book(msg.token, msg.market)
        book.tick = msg.new_tick
        book.updated_ns = msg.recv_ns
        if book.state is not _EMPTY and book.state is not _STALE:
            self._transition(book, _STALE, "tick_size_change", msg.cid)
        return [msg.token]

    def _on_resolved(self, msg: MarketResolved) -> list[str]:
        changed = self.mark_stale(msg.tokens, "resolved", msg.cid)
        for token in changed:
            self._books[token].updated_ns = msg.recv_ns
        return changed

    def _no_change(self, msg: LastTrade | NewMarket) -> list[str]:
        return []

    # ----------------------------------------------------------------------- helpers

    def _level_dict(self, levels: tuple[tuple[int, int], ...]) -> dict[int, int]:
        """A snapshot side as price -> size: the last entry for a price wins, size 0 removes it,
        invalid levels are counted and skipped."""
        result: dict[int, int] = {}
        for price, size in levels:
            if not _valid(price, size):
                self._invalid_levels += 1
            elif size:
                result[price] = size
            else:
                result.pop(price, None)
        return result

    def _check(self, book: Book, venue_bid: int | None, venue_ask: int | None, cid: str) -> None:
        """After a token's changes: compare with the venue, then settle CROSSED vs SYNCED."""
        bid, ask = book.best_bid, book.best_ask
        # ``_mismatch``'s test first, inline: the venue agrees on almost every change
        if not ((venue_bid is None or (bid is None if venue_bid == 0 else bid == venue_bid))
                and (venue_ask is None or (ask is None if venue_ask == ONE else ask == venue_ask))):
            self._mismatch(book, venue_bid, venue_ask, cid)
            return
        if bid is not None and ask is not None and bid >= ask:  # book.is_crossed()
            if book.state is not _CROSSED:
                self._crossings += 1
                self._transition(book, _CROSSED, "crossed", cid)
        elif book.state is _CROSSED:
            self._transition(book, _SYNCED, "uncrossed", cid)

    def _mismatch(self, book: Book, venue_bid: int | None, venue_ask: int | None, cid: str) -> bool:
        """If the venue's top contradicts ours: record it, make the book STALE, return True."""
        if not (_disagrees(book.best_bid, venue_bid, 0) or _disagrees(book.best_ask, venue_ask, ONE)):
            return False
        self._mismatches += 1
        self._sink.record(
            "book_mismatch",
            cid,
            {
                "local_bid": book.best_bid,
                "local_ask": book.best_ask,
                "venue_bid": venue_bid,
                "venue_ask": venue_ask,
            },
            market=book.market,
            token=book.token,
        )
        self._transition(book, _STALE, "mismatch", cid)
        return True

    def _transition(self, book: Book, state: BookState, reason: str, cid: str) -> None:
        previous = book.state
        if previous is state:
            return
        book.state = state
        self._sink.record(
            "book_state",
            cid,
            {"state": state.value, "previous": previous.value, "reason": reason},
            market=book.market,
            token=book.token,
        )

"""The read-only window onto the executor's state that risk and the strategies are given.

Risk (``RiskView``) and the strategies (``StrategyView``) decide from what this shows; neither can
change anything through it. The executor owns the one instance and stays the single writer.
What it keeps per token goes when the token's market is forgotten (``decisions/forgetting.py``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from mmbot.decisions.ledger import Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import Order, Orders, OrderStatus
from mmbot.decisions.risk import position_room
from mmbot.model import BookState, MarketInfo, Side, notional_down
from mmbot.ports import Clock

DAY_NS = 86_400 * 1_000_000_000
_BUY = Side.BUY
_PENDING_CANCEL = OrderStatus.PENDING_CANCEL
_AWAITING_VENUE = (OrderStatus.PENDING_SUBMIT, OrderStatus.PENDING_CANCEL, OrderStatus.UNKNOWN)


class StateView:
    def __init__(
        self,
        *,
        ledger: Ledger,
        orders: Orders,
        books: Any,  # decisions.book.Books
        markets: Markets,
        clock: Clock,
        merges_pending: Mapping[str, str],
        max_open_orders: int,
        max_position_per_token: int = 2**62,
        max_position_per_market: int = 2**62,
        chain_busy: Callable[[str, str], bool] | None = None,
    ) -> None:
        """``max_*``: risk's limits, for the room strategies may ask about (default: none).
        ``chain_busy(market, strategy)``: whether what is in flight on chain for ``market`` (a
        redemption; for the merge strategy also a merge, or merges backing off) keeps the strategy
        away (``capital.Capital.busy``)."""
        self.ledger = ledger
        self.orders = orders
        self.books = books
        self.markets = markets
        self._clock = clock
        self._merges_pending = merges_pending
        self._chain_busy = chain_busy
        self._max_open_orders = max_open_orders
        self._max_per_token = max_position_per_token
        self._max_per_market = max_position_per_market
        # The plain reads are their owners' own methods, not methods of this view that would call
        # them: risk and the strategies ask them many times per order, and a hop costs each a call.
        self.now_ns: Callable[[], int] = clock.now_ns
        self.book: Callable[[str], Any] = books.get
        self.market: Callable[[str], MarketInfo | None] = markets.get
        self.position: Callable[[str], int] = ledger.position
        self.available_shares: Callable[[str], int] = ledger.available_shares
        self.open_orders: Callable[[], int] = orders.open_count
        self.orders_changed: Callable[[str], int] = orders.changed_in
        # What each position counts for in equity (shares at the mid, or at cost without one),
        # and their sum: refreshed only for tokens whose book or position changed, so risk's
        # daily-loss check costs the same with 50 tokens or 5,000.
        self._valued: dict[str, int] = {}
        self._valued_at: dict[str, tuple[int | None, int | None] | None] = {}  # the book's top then (None: no book)
        self._valued_total = 0
        self._settled: dict[str, int] = {}  # token -> what a share redeems for, once its market resolved
        self._newly_settled: set[str] = set()
        self._day = clock.now_ns() // DAY_NS
        self._day_start_equity = self.equity()

    def book_state(self, token: str) -> BookState | None:
        book = self.books.get(token)
        return None if book is None else book.state

    def open_buy_shares(self, token: str) -> int:
        return self.orders.open_shares(token, _BUY)

    def gross_exposure(self) -> int:
        return self.ledger.cost_basis() + self.orders.open_buy_notional()

    def settle(self, token: str, price: int) -> None:
        """``token``'s market resolved and its shares wait to be redeemed at ``price``: their mark from now."""
        self._settled[token] = price
        self._newly_settled.add(token)

    def forget(self, tokens: Iterable[str]) -> None:
        """Forget these tokens' redemption marks (their market was forgotten). Their values in
        the running sum follow their books: ``Books.forget`` lists them as touched."""
        for token in tokens:
            self._settled.pop(token, None)
            self._newly_settled.discard(token)

    def remembered(self) -> dict[str, int]:
        return {"settled_marks": len(self._settled), "values": len(self._valued)}

    def mark(self, token: str) -> int | None:
        """What a share of ``token`` is worth now: its redemption price once resolved, else the book's mid."""
        if token in self._settled:
            return self._settled[token]
        book = self.books.get(token)
        if book is not None and book.best_bid is not None and book.best_ask is not None:
            return (book.best_bid + book.best_ask) // 2
        return None

    def marks(self) -> dict[str, int]:
        return {token: mark for token in self.ledger.tokens() if (mark := self.mark(token)) is not None}

    def equity(self) -> int:
        """Cash plus every position at its mark (cost basis where the book has no mid):
        ``cash + cost_basis + unrealised(marks())``, kept as a running sum."""
        return self.ledger.cash + self._positions_value()

    def _positions_value(self) -> int:
        touched, moved, settled = self.books.take_touched(), self.ledger.take_moved(), self._newly_settled
        if not (touched or moved or settled):
            return self._valued_total  # nothing moved since the last call: the usual case
        if settled:
            self._newly_settled = set()
        ledger, valued, valued_at, book = self.ledger, self._valued, self._valued_at, self.book
        position = ledger.position
        # the order tokens are valued in changes nothing: each adds its own difference to the sum
        for token in (touched | moved | settled) if (moved or settled) else touched:
            if token not in valued and not position(token):
                continue  # held neither before nor now: worth nothing either time (most books' tokens)
            shown = book(token)
            top = None if shown is None else (shown.best_bid, shown.best_ask)
            if token in valued_at and valued_at[token] == top and token not in moved and token not in settled:
                continue  # a level below the top changed: the same holding at the same mark
            before = valued.pop(token, 0)
            valued_at.pop(token, None)
            held = ledger.holding(token)
            value = 0
            if held.shares:
                mark = self.mark(token)
                # marked value rounds DOWN, as in Ledger.unrealised
                value = held.cost if mark is None else notional_down(mark, held.shares)
                valued[token] = value
                valued_at[token] = top
            self._valued_total += value - before
        return self._valued_total

    def daily_pnl(self) -> int:
        day = self._clock.now_ns() // DAY_NS
        if day != self._day:
            self._day, self._day_start_equity = day, self.equity()
        return self.equity() - self._day_start_equity

    def quotes(self, market: str, strategy: str) -> list[Order]:
        return [
            o for o in self.orders.open_in_market(market)
            if o.strategy == strategy and o.status is not _PENDING_CANCEL
        ]

    def busy(self, market: str, strategy: str) -> bool:
        if self._chain_busy is not None and self._chain_busy(market, strategy):
            return True
        if strategy == "merge":
            return market in self._merges_pending
        for o in self.orders.open_in_market(market):
            if o.strategy == strategy and o.status in _AWAITING_VENUE:
                return True
        return False

    def held_markets(self) -> list[MarketInfo]:
        """The markets of which we hold both tokens, in the ledger's token order (deterministic):
        where complete sets may wait to be merged."""
        ledger, seen, found = self.ledger, set(), []
        for token in ledger.tokens():
            info = self.markets.for_token(token)
            if info is None or info.market in seen:
                continue
            seen.add(info.market)
            if all(ledger.position(t) for t in info.tokens):
                found.append(info)
        return found

    def order_room(self) -> int:
        return self._max_open_orders - self.orders.open_count()

    def buy_room(self, market: str, token: str) -> int:
        """Risk's ``max_position_token`` and ``max_position_market`` rules, as room left."""
        info = self.markets.get(market)
        tokens = info.tokens if info is not None else (token,)
        token_room, market_room = position_room(self, tokens, token, self._max_per_token, self._max_per_market)
        return token_room if token_room < market_room else market_room

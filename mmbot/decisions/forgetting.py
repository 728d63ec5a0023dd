"""Forgetting markets that are over, so that a week-long run of short Up/Down markets stays bounded.

A market is *over* once the executor has handled its resolution, or its closing (the boundary
before its end) and its end has passed. It is forgotten ``horizon`` after it was over — and, if we
still held shares of it, had open orders in it or a merge or redemption in flight, ``horizon`` after the first
moment found with all of those gone: the closing itself, or a forgetting round (they run every
minute, so forgetting is never early and at most a round late). Shares of a resolved market that
wait to be redeemed on chain keep it, and their marks, for as long as they are held — but not its
books: a horizon after the resolution those go (with their slots, strategy memory, timers and
subscription), since nothing trades the market any more; a long run holds thousands of them.

Forgetting a market drops, everywhere at once, what is kept per market and per token: its entry in
``Markets`` (with its resolution), its tokens' books, the view's marks and values, and — through
the engine (``app_engine.Engine.prune``) — the strategies' memory, the boundary timers, the book
slots and the paper venue's state. The ledger is the truth and keeps positions, but it already
keeps no zero ones, and a forgotten market has none. Books of tokens whose market is unknown (a
late frame after forgetting; a listing whose details never came) are dropped once quiet for a
horizon.

A message about a forgotten market is one about a market we never knew: a late book frame makes
a fresh book that nothing trades (strategies skip unknown markets, risk refuses them) and that is
dropped again a horizon later; a late resolution cancels nothing, settles nothing and is not
remembered; a late fill names an order forgotten too, which is an ``error`` row (see
``answer_path``), and what reconciliation then books goes into the ledger, valued at cost.
"""

from __future__ import annotations

from typing import Callable

import attrs

from mmbot.decisions.book import Books
from mmbot.decisions.ledger import Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import Orders
from mmbot.decisions.view import StateView
from mmbot.model import MarketInfo


@attrs.frozen
class Forgotten:
    """What one forgetting round dropped."""

    markets: tuple[MarketInfo, ...] = ()  # in the order they were over
    orphans: tuple[str, ...] = ()  # tokens of unknown markets whose quiet books were dropped
    # resolved markets kept only for the shares still held: their books and everything fed by them go
    held: tuple[MarketInfo, ...] = ()

    @property
    def tokens(self) -> list[str]:
        """Every token whose book went: the markets', the orphans' and the held resolved markets'."""
        return [token for info in (*self.markets, *self.held) for token in info.tokens] + list(self.orphans)

    def __bool__(self) -> bool:
        return bool(self.markets or self.orphans or self.held)


@attrs.define
class _Over:
    since_ns: int  # when the market was over: its resolution, else its end
    resolved: bool
    quiet_since_ns: int | None  # the first moment found with no shares, orders, merge or redemption; None while busy
    books_released: bool = False  # resolved and a horizon past, kept only for shares held: no book


class MarketLifecycle:
    """Which markets are over, since when, and the forgetting of those due. Sans-IO; the executor
    tells it of closings and runs its rounds."""

    def __init__(
        self, *, markets: Markets, books: Books, view: StateView, ledger: Ledger, orders: Orders,
        in_flight: Callable[[str], bool],
    ) -> None:
        """``in_flight(market)``: a merge or redemption of the market awaits the chain's answer."""
        self._markets = markets
        self._books = books
        self._view = view
        self._ledger = ledger
        self._orders = orders
        self._in_flight = in_flight
        self._over: dict[str, _Over] = {}  # market -> since when (first closing first)
        self.forgotten = 0

    def closed(self, market: str, *, resolved: bool, now_ns: int) -> None:
        """The executor handled a closing (``resolved``: a resolution) of ``market`` at ``now_ns``.
        A market we do not know (never, or no longer) is not remembered."""
        info = self._markets.get(market)
        if info is None:
            return
        over = self._over.get(market)
        quiet = None if self._busy(info) else now_ns
        if resolved:
            if over is None or not over.resolved:  # the first resolution counts, not the end before it
                self._over[market] = _Over(now_ns, True, quiet)
        elif over is None and info.end_ns is not None:
            self._over[market] = _Over(info.end_ns, False, quiet)

    def over(self) -> int:
        """How many markets are over and not forgotten yet."""
        return len(self._over)

    def forget_due(self, now_ns: int, horizon_ns: int) -> Forgotten:
        due: list[MarketInfo] = []
        held: list[MarketInfo] = []
        for market, over in list(self._over.items()):
            info = self._markets.get(market)
            if info is None:  # forgotten another way (a test, a registry reset): nothing left here
                del self._over[market]
                continue
            if self._busy(info):
                over.quiet_since_ns = None
                if (over.resolved and not over.books_released and now_ns - over.since_ns >= horizon_ns
                        and self._only_held(info)):
                    # its shares wait to be redeemed, marked at 1 and 0 (the view keeps the marks);
                    # nothing trades it any more, so its books need not wait with them
                    over.books_released = True
                    held.append(info)
                    self._books.forget(info.tokens)
                continue
            if over.quiet_since_ns is None:
                over.quiet_since_ns = now_ns
            if now_ns - max(over.since_ns, over.quiet_since_ns) >= horizon_ns:
                due.append(info)
        for info in due:
            del self._over[info.market]
            self._markets.forget(info.market)
            self._books.forget(info.tokens)
            self._view.forget(info.tokens)
        orphans = self._books.forget_orphans(
            lambda market: self._markets.get(market) is not None, quiet_before_ns=now_ns - horizon_ns
        )
        self.forgotten += len(due)
        return Forgotten(markets=tuple(due), orphans=tuple(orphans), held=tuple(held))

    def _only_held(self, info: MarketInfo) -> bool:
        """Busy only because shares are held: no open order, no merge or redemption in flight."""
        return not self._orders.open_orders(market=info.market) and not self._in_flight(info.market)

    def _busy(self, info: MarketInfo) -> bool:
        ledger = self._ledger
        return (
            any(ledger.position(token) for token in info.tokens)
            or bool(self._orders.open_orders(market=info.market))
            or self._in_flight(info.market)
        )

"""Strategies: read the books and our own state, return intents. Nothing else.

A strategy never sees the executor or a gateway (DESIGN §2): it gets a read-only
``StrategyView`` and returns ``PlaceOrder`` / ``CancelOrder`` / ``MergeSets`` intents, which the
executor puts through risk and capital reservation. Three kinds, configured per market:

- ``CompleteSetTaker``: buy both asks when a complete set costs less than 1 after taker fees by at
  least ``min_edge`` (and sell complete sets we hold into both bids when they pay more than 1);
- ``CompleteSetMaker``: rest bids on both tokens whose sum stays ``target_edge`` below 1, skewed by
  inventory, refreshed when the wanted price moves, pulled on stale/crossed books or near the end;
- ``SetMerger``: merge accumulated complete sets back into pUSD (after fills, and on the capital
  sweep of signed trading).

What they see is ``strategy_view.StrategyView``. Only the taker keeps anything of its own (the
takes it has not seen the book show yet); it goes when the market is forgotten (``forget``).
"""

from __future__ import annotations

from typing import Callable, Iterable

from mmbot.config import MakerConfig, MergeConfig, StrategiesConfig, TakerConfig
from mmbot.decisions.strategy_view import BookLike, OrderLike, StrategyView
from mmbot.model import (
    ONE,
    SHARE_STEP,
    BookState,
    BookUpdate,
    CancelOrder,
    Fill,
    Ids,
    Intent,
    MarketInfo,
    MergeSets,
    PlaceOrder,
    Side,
    TimeInForce,
    taker_fee,
)


def round_down(value: int, step: int) -> int:
    return value - value % step


def sets_fundable(view: StrategyView, info: MarketInfo) -> bool:
    return all((book := view.book(t)) is not None and book.state is BookState.SYNCED for t in info.tokens)


def _tops_may_pay(book_yes: BookLike, book_no: BookLike, min_edge: int) -> bool:
    """Whether the best asks sum to at most 1 - min_edge or the best bids to at least 1 + min_edge:
    fees only widen the gap, so when neither holds no set can be bought or sold at an edge."""
    ask_yes, ask_no, bid_yes, bid_no = book_yes.best_ask, book_no.best_ask, book_yes.best_bid, book_no.best_bid
    if ask_yes is not None and ask_no is not None and ask_yes + ask_no <= ONE - min_edge:
        return True
    return bid_yes is not None and bid_no is not None and bid_yes + bid_no >= ONE + min_edge


def walk_pair(
    first: list[tuple[int, int]],
    second: list[tuple[int, int]],
    accept: Callable[[int, int, int], bool],
    max_size: int,
) -> tuple[int, int, int]:
    """Walk two ladders best-first, taking equal sizes from both while ``accept(p1, p2, q)`` holds.

    Returns (size, worst price taken on the first ladder, worst on the second).
    """
    i = j = 0
    left1 = first[0][1] if first else 0
    left2 = second[0][1] if second else 0
    size = worst1 = worst2 = 0
    while i < len(first) and j < len(second) and size < max_size:
        p1, p2 = first[i][0], second[j][0]
        take = min(left1, left2, max_size - size)
        if take <= 0 or not accept(p1, p2, take):
            break
        size += take
        worst1, worst2 = p1, p2
        left1 -= take
        left2 -= take
        if left1 == 0:
            i += 1
            left1 = first[i][1] if i < len(first) else 0
        if left2 == 0:
            j += 1
            left2 = second[j][1] if j < len(second) else 0
    return size, worst1, worst2


class _Strategy:
    """What every strategy is given: its per-market settings and the run's id counters."""

    name = ""

    def __init__(self, *, config_for: Callable[[str], StrategiesConfig], ids: Ids) -> None:
        self._config_for = config_for
        self._ids = ids


class CompleteSetTaker(_Strategy):
    """Takes both asks when a complete set is cheap, or both bids when sets we hold are dear."""

    name = "taker"

    def __init__(self, *, config_for: Callable[[str], StrategiesConfig], ids: Ids) -> None:
        super().__init__(config_for=config_for, ids=ids)
        # (token, side, price) -> (size the book showed, size we set out to take). Until the feed
        # shows that level changed, our own take is not in the book yet: do not count it twice.
        self._taken: dict[tuple[str, Side, int], tuple[int, int]] = {}

    def forget(self, tokens: Iterable[str]) -> None:
        """Forget the takes remembered on these tokens' levels (their market was forgotten)."""
        gone = set(tokens)
        if gone and self._taken:
            self._taken = {key: taken for key, taken in self._taken.items() if key[0] not in gone}

    def remembered(self) -> int:
        return len(self._taken)

    def _ladder(self, book: BookLike, token: str, side: Side) -> list[tuple[int, int]]:
        ladder = []
        for price, size in book.levels(side):
            key = (token, side, price)
            taken = self._taken.get(key)
            if taken is not None:
                if taken[0] == size:
                    size -= taken[1]
                else:
                    del self._taken[key]  # the feed moved on: the level speaks for itself again
            if size > 0:
                ladder.append((price, size))
        return ladder

    def _remember(self, token: str, side: Side, ladder_before: list[tuple[int, int]], book: BookLike, worst: int, size: int) -> None:
        """Note how much of each level down to ``worst`` an order of ``size`` will take."""
        left = size
        for price, available in ladder_before:
            if left <= 0 or (side is Side.SELL and price > worst) or (side is Side.BUY and price < worst):
                break
            take = min(left, available)
            seen, before = self._taken.get((token, side, price), (book.size_at(side, price), 0))
            self._taken[(token, side, price)] = (seen, before + take)
            left -= take

    def on_book(self, update: BookUpdate, view: StrategyView) -> list[Intent]:
        info = view.market(update.market)
        cfg = self._config_for(update.market).taker
        if info is None or not cfg.enabled or not sets_fundable(view, info):
            return []
        yes, no = info.tokens
        book_yes, book_no = view.book(yes), view.book(no)
        assert book_yes is not None and book_no is not None
        if not _tops_may_pay(book_yes, book_no, cfg.min_edge):
            return []  # the common case, decided before anything costlier is looked at
        if view.busy(info.market, self.name):
            return []
        intents = self._buy_sets(update, info, cfg, book_yes, book_no)
        if not intents:
            intents = self._sell_sets(update, info, cfg, view, book_yes, book_no)
        return intents

    def _fee_per_set(self, info: MarketInfo, p1: int, p2: int, size: int) -> int:
        fees = taker_fee(size, p1, info.fee_rate, info.fee_exponent) + taker_fee(
            size, p2, info.fee_rate, info.fee_exponent
        )
        return -((-fees * ONE) // size)  # per set, rounded up: never flatter the edge

    def _buy_sets(self, update, info, cfg: TakerConfig, book_yes, book_no) -> list[Intent]:
        limit = ONE - cfg.min_edge
        if book_yes.best_ask is None or book_no.best_ask is None or book_yes.best_ask + book_no.best_ask > limit:
            return []  # the cheapest set already costs too much, before fees: the common case

        def cheap(p1: int, p2: int, q: int) -> bool:
            return p1 + p2 + self._fee_per_set(info, p1, p2, q) <= limit

        yes, no = info.tokens
        asks_yes, asks_no = self._ladder(book_yes, yes, Side.SELL), self._ladder(book_no, no, Side.SELL)
        size, worst_yes, worst_no = walk_pair(asks_yes, asks_no, cheap, cfg.max_sets)
        size = round_down(size, SHARE_STEP)
        if size < info.min_size:
            return []
        self._remember(yes, Side.SELL, asks_yes, book_yes, worst_yes, size)
        self._remember(no, Side.SELL, asks_no, book_no, worst_no, size)
        pair_cost = worst_yes + worst_no + self._fee_per_set(info, worst_yes, worst_no, size)
        return self._legs(update, info, Side.BUY, (worst_yes, worst_no), size, pair_cost, "asks sum below 1")

    def _sell_sets(self, update, info, cfg: TakerConfig, view, book_yes, book_no) -> list[Intent]:
        yes, no = info.tokens
        held = min(view.available_shares(yes), view.available_shares(no))
        if held < info.min_size:
            return []
        floor = ONE + cfg.min_edge
        if book_yes.best_bid is None or book_no.best_bid is None or book_yes.best_bid + book_no.best_bid < floor:
            return []

        def dear(p1: int, p2: int, q: int) -> bool:
            return p1 + p2 - self._fee_per_set(info, p1, p2, q) >= floor

        bids_yes, bids_no = self._ladder(book_yes, yes, Side.BUY), self._ladder(book_no, no, Side.BUY)
        size, worst_yes, worst_no = walk_pair(bids_yes, bids_no, dear, min(cfg.max_sets, held))
        size = round_down(size, SHARE_STEP)
        if size < info.min_size:
            return []
        self._remember(yes, Side.BUY, bids_yes, book_yes, worst_yes, size)
        self._remember(no, Side.BUY, bids_no, book_no, worst_no, size)
        # for a sale the "cost" of the set is what we give up relative to 1: 2 - proceeds
        proceeds = worst_yes + worst_no - self._fee_per_set(info, worst_yes, worst_no, size)
        return self._legs(update, info, Side.SELL, (worst_yes, worst_no), size, 2 * ONE - proceeds, "bids sum above 1")

    def _legs(self, update, info, side, prices, size, pair_cost, reason) -> list[Intent]:
        group = self._ids.next("g")
        return [
            PlaceOrder(
                cid=self._ids.next("i"),
                cause=update.cid,
                cause_ns=update.recv_ns,
                strategy=self.name,
                market=info.market,
                token=token,
                side=side,
                price=price,
                size=size,
                tif=TimeInForce.FOK,
                group=group,
                pair_cost=pair_cost,
                reason=reason,
            )
            for token, price in zip(info.tokens, prices)
        ]


class CompleteSetMaker(_Strategy):
    """Rests bids on both tokens so that a filled pair is a complete set below 1 - target_edge."""

    name = "maker"

    def on_book(self, update: BookUpdate, view: StrategyView) -> list[Intent]:
        info = view.market(update.market)
        if info is None:
            return []
        cfg = self._config_for(info.market).maker
        quotes = list(view.quotes(info.market, self.name))
        if not cfg.enabled:
            return self._pull(update, quotes, "maker disabled")
        if not sets_fundable(view, info):
            return self._pull(update, quotes, "book not synced")
        if info.end_ns is not None and view.now_ns() >= info.end_ns - cfg.end_buffer_s * 1_000_000_000:
            return self._pull(update, quotes, "market near its end")
        if view.busy(info.market, self.name):
            return []
        wanted = self._wanted_bids(info, cfg, view)
        intents: list[Intent] = []
        for token, price in zip(info.tokens, wanted):
            mine = [q for q in quotes if q.token == token]
            keep = price is not None and any(
                abs(q.price - price) < cfg.refresh_threshold for q in mine
            )
            if keep:
                continue
            intents.extend(self._cancel(update, q, "requote") for q in mine)
            # a replacement takes the room its cancelled quote frees only once the venue confirms:
            # at the open-order limit, cancel now and quote again on a later update. At a position
            # limit, bid nothing: risk would refuse it on every book update (two log rows each)
            if price is not None and view.order_room() > 0 and view.buy_room(info.market, token) >= cfg.size:
                intents.append(self._bid(update, info, token, price, cfg.size, sum(p or 0 for p in wanted)))
        return intents

    def _wanted_bids(self, info: MarketInfo, cfg: MakerConfig, view: StrategyView) -> list[int | None]:
        yes, no = info.tokens
        book_yes, book_no = view.book(yes), view.book(no)
        assert book_yes is not None and book_no is not None
        fair = _fair_yes(book_yes, book_no)
        if fair is None:
            return [None, None]
        imbalance = (view.position(yes) - view.position(no)) // ONE  # whole shares
        skew = max(-cfg.max_skew, min(cfg.max_skew, imbalance * cfg.skew_per_share))
        half = cfg.target_edge // 2
        raw = (fair - half - skew, ONE - fair - (cfg.target_edge - half) + skew)
        bids: list[int | None] = []
        for price, book, other in ((raw[0], book_yes, book_no), (raw[1], book_no, book_yes)):
            price = round_down(price, info.tick)
            # rest, never take: stay under our ask and under what the other token's bids mint at
            ask = _effective_ask(book, other)
            if ask is not None:
                price = min(price, round_down(ask - info.tick, info.tick))
            bids.append(price if info.tick <= price <= ONE - info.tick else None)
        if bids[0] is not None and bids[1] is not None:
            assert bids[0] + bids[1] <= ONE - cfg.target_edge
        return bids

    def _bid(self, update, info, token, price, size, pair_cost) -> PlaceOrder:
        return PlaceOrder(
            cid=self._ids.next("i"),
            cause=update.cid,
            cause_ns=update.recv_ns,
            strategy=self.name,
            market=info.market,
            token=token,
            side=Side.BUY,
            price=price,
            size=size,
            tif=TimeInForce.GTC,
            post_only=True,
            pair_cost=pair_cost,
            reason="quote",
        )

    def _cancel(self, update, quote: OrderLike, reason: str) -> CancelOrder:
        return CancelOrder(
            cid=self._ids.next("i"), cause=update.cid, cause_ns=update.recv_ns, strategy=self.name,
            order_id=quote.order_id, reason=reason,
        )

    def _pull(self, update, quotes, reason) -> list[Intent]:
        return [self._cancel(update, q, reason) for q in quotes]


def _effective_ask(book: BookLike, other: BookLike) -> int | None:
    """The lowest price a buyer of ``book``'s token can be matched at, directly or by minting."""
    asks = [book.best_ask] if book.best_ask is not None else []
    if other.best_bid is not None:
        asks.append(ONE - other.best_bid)
    return min(asks) if asks else None


def _fair_yes(book_yes: BookLike, book_no: BookLike) -> int | None:
    """The YES price both books agree on: the mean of YES's mid and one minus NO's mid."""
    mids = []
    if book_yes.best_bid is not None and book_yes.best_ask is not None:
        mids.append((book_yes.best_bid + book_yes.best_ask) // 2)
    if book_no.best_bid is not None and book_no.best_ask is not None:
        mids.append(ONE - (book_no.best_bid + book_no.best_ask) // 2)
    return sum(mids) // len(mids) if mids else None


class SetMerger(_Strategy):
    """Merges complete sets back into pUSD once ``min_sets`` are available: after each fill, and
    on every capital sweep for every market held (signed trading), so sets bought while merges
    were failing still merge when fills stop."""

    name = "merge"

    def on_fill(self, fill: Fill, view: StrategyView) -> list[Intent]:
        info = view.market(fill.market)
        if info is None:
            return []
        intent = self._offer(info, fill.cid, fill.ts_ns, view)
        return [intent] if intent is not None else []

    def on_sweep(self, cause: str, view: StrategyView) -> list[Intent]:
        now = view.now_ns()
        return [intent for info in view.held_markets() if (intent := self._offer(info, cause, now, view))]

    def _offer(self, info: MarketInfo, cause: str, cause_ns: int, view: StrategyView) -> MergeSets | None:
        cfg: MergeConfig = self._config_for(info.market).merge
        if not cfg.enabled or view.busy(info.market, self.name):
            return None
        sets = round_down(min(view.available_shares(t) for t in info.tokens), SHARE_STEP)
        if sets < cfg.min_sets:
            return None
        return MergeSets(
            cid=self._ids.next("i"), cause=cause, cause_ns=cause_ns, strategy=self.name, market=info.market, size=sets
        )


class Strategies:
    """Runs every strategy for each book update and fill, in a fixed order."""

    def __init__(self, *, config_for: Callable[[str], StrategiesConfig], ids: Ids) -> None:
        self.taker = CompleteSetTaker(config_for=config_for, ids=ids)
        self.maker = CompleteSetMaker(config_for=config_for, ids=ids)
        self.merger = SetMerger(config_for=config_for, ids=ids)

    def on_book(self, update: BookUpdate, view: StrategyView) -> list[Intent]:
        return self.taker.on_book(update, view) + self.maker.on_book(update, view)

    def on_fill(self, fill: Fill, view: StrategyView) -> list[Intent]:
        return self.merger.on_fill(fill, view)

    def on_sweep(self, cause: str, view: StrategyView) -> list[Intent]:
        """The capital sweep's offers: merges of complete sets held in any market."""
        return self.merger.on_sweep(cause, view)

    def forget(self, tokens: Iterable[str]) -> None:
        """Forget what any strategy keeps on these tokens (their market was forgotten). Only the
        taker keeps anything: the maker and the merger decide from the view alone."""
        self.taker.forget(tokens)

    def remembered(self) -> int:
        """Entries kept per token or market, all strategies together."""
        return self.taker.remembered()

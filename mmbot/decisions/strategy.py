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

What they see is ``strategy_view.StrategyView``. The taker keeps the takes it has not seen the
book show yet, the maker what it read when it last chose to do nothing (so that an update which
changed none of it costs a comparison); both go when the market is forgotten (``forget``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from mmbot.config import MakerConfig, MergeConfig, StrategiesConfig, TakerConfig
from mmbot.decisions.strategy_prices import fair_yes, near, resting_bid, round_down, tops_may_pay, walk_pair
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

_SYNCED = BookState.SYNCED


def _both_synced(book_yes: BookLike | None, book_no: BookLike | None) -> bool:
    """Whether both books of a market can be traded on: complete sets are fundable."""
    return book_yes is not None and book_yes.state is _SYNCED and book_no is not None and book_no.state is _SYNCED


class _Strategy:
    """What every strategy is given: its per-market settings and the run's id counters."""

    name = ""

    def __init__(self, *, config_for: Callable[[str], StrategiesConfig], ids: Ids) -> None:
        self._config_for = config_for
        self._ids = ids


class _BookStrategy(_Strategy):
    """A strategy that decides on book updates; its settings are the section named as it is."""

    def on_book(self, update: BookUpdate, view: StrategyView) -> list[Intent]:
        info = view.market(update.market)
        if info is None:
            return []
        yes, no = info.tokens
        cfg = getattr(self._config_for(info.market), self.name)
        return self.decide(update, view, info, cfg, view.book(yes), view.book(no))

    def decide(self, update: BookUpdate, view: StrategyView, info: MarketInfo, cfg: Any,
               book_yes: BookLike | None, book_no: BookLike | None) -> list[Intent]:
        """``on_book`` given what it looks up first: the market, its settings and both its books
        (``Strategies`` looks them up once for every strategy)."""
        raise NotImplementedError


class CompleteSetTaker(_BookStrategy):
    """Takes both asks when a complete set is cheap, or both bids when sets we hold are dear."""

    name = "taker"

    def __init__(self, *, config_for: Callable[[str], StrategiesConfig], ids: Ids) -> None:
        super().__init__(config_for=config_for, ids=ids)
        # (token, side, price) -> (size the book showed, size we set out to take). Until the feed
        # shows that level changed, our own take is not in the book yet: do not count it twice.
        self._taken: dict[tuple[str, Side, int], tuple[int, int]] = {}
        self._sides_taken: dict[tuple[str, Side], set[int]] = {}  # the prices of those keys, per book side

    def forget(self, tokens: Iterable[str]) -> None:
        """Forget the takes remembered on these tokens' levels (their market was forgotten)."""
        gone = set(tokens)
        if gone and self._taken:
            self._taken = {key: taken for key, taken in self._taken.items() if key[0] not in gone}
            self._sides_taken = {}
            for token, side, price in self._taken:
                self._sides_taken.setdefault((token, side), set()).add(price)

    def remembered(self) -> int:
        return len(self._taken)

    def _ladder(self, book: BookLike, token: str, side: Side) -> list[tuple[int, int]]:
        prices = self._sides_taken.get((token, side))
        if prices is None:
            return [(price, size) for price, size in book.levels(side) if size > 0]
        ladder = []
        for price, size in book.levels(side):
            if price in prices:
                key = (token, side, price)
                taken = self._taken[key]
                if taken[0] == size:
                    size -= taken[1]
                else:
                    del self._taken[key]  # the feed moved on: the level speaks for itself again
                    self._note_taken(token, side, price, False)
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
            taken = self._taken.get((token, side, price))
            if taken is None:
                taken = (book.size_at(side, price), 0)
                self._note_taken(token, side, price, True)
            self._taken[(token, side, price)] = (taken[0], taken[1] + take)
            left -= take

    def _note_taken(self, token: str, side: Side, price: int, taken: bool) -> None:
        """Keep ``_sides_taken`` in step with a key of ``_taken`` added (``taken``) or deleted."""
        if taken:
            self._sides_taken.setdefault((token, side), set()).add(price)
            return
        prices = self._sides_taken[token, side]
        prices.discard(price)
        if not prices:
            del self._sides_taken[token, side]

    def decide(self, update: BookUpdate, view: StrategyView, info: MarketInfo, cfg: TakerConfig,
               book_yes: BookLike | None, book_no: BookLike | None) -> list[Intent]:
        if not cfg.enabled or not _both_synced(book_yes, book_no):
            return []
        assert book_yes is not None and book_no is not None
        if not tops_may_pay(book_yes, book_no, cfg.min_edge):
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
        sides = self._sides_taken
        if (yes, Side.SELL) not in sides and (no, Side.SELL) not in sides and info.min_size > 0 and cfg.max_sets > 0:
            # walk_pair's first step from the two best levels alone (with no takes remembered there
            # they head the ladders): when even it is refused, no set is bought. The common case.
            ask_yes, ask_no = book_yes.best_ask, book_no.best_ask
            first = min(book_yes.size_at(Side.SELL, ask_yes), book_no.size_at(Side.SELL, ask_no), cfg.max_sets)
            if first <= 0 or not cheap(ask_yes, ask_no, first):
                return []
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
            PlaceOrder(cid=self._ids.next("i"), cause=update.cid, cause_ns=update.recv_ns, strategy=self.name,
                       market=info.market, token=token, side=side, price=price, size=size, tif=TimeInForce.FOK,
                       group=group, pair_cost=pair_cost, reason=reason)
            for token, price in zip(info.tokens, prices)
        ]


class CompleteSetMaker(_BookStrategy):
    """Rests bids on both tokens so that a filled pair is a complete set below 1 - target_edge."""

    name = "maker"

    def __init__(self, *, config_for: Callable[[str], StrategiesConfig], ids: Ids) -> None:
        super().__init__(config_for=config_for, ids=ids)
        # YES token -> what the maker read when it last decided to do nothing in that market.
        # Most book updates change a level below the top, which it never reads: while what it
        # reads is the same, so is its decision, and nothing needs working out again.
        self._idle: dict[str, tuple[Any, ...]] = {}

    def forget(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            self._idle.pop(token, None)

    def remembered(self) -> int:
        return len(self._idle)

    def decide(self, update: BookUpdate, view: StrategyView, info: MarketInfo, cfg: MakerConfig,
               book_yes: BookLike | None, book_no: BookLike | None) -> list[Intent]:
        if not cfg.enabled:
            return self._pull(update, view.quotes(info.market, self.name), "maker disabled")
        if not _both_synced(book_yes, book_no):
            return self._pull(update, view.quotes(info.market, self.name), "book not synced")
        assert book_yes is not None and book_no is not None
        if info.end_ns is not None and view.now_ns() >= info.end_ns - cfg.end_buffer_s * 1_000_000_000:
            return self._pull(update, view.quotes(info.market, self.name), "market near its end")
        yes, no = info.tokens
        # Everything the rest reads: both tops, both positions, our open orders in the market
        # (its quotes, whether one awaits the venue, the open buys in its position room), whether
        # the open-order limit leaves room, the market and the settings.
        read = (book_yes.best_bid, book_yes.best_ask, book_no.best_bid, book_no.best_ask,
                view.position(yes), view.position(no), view.orders_changed(info.market), view.order_room() > 0,
                info, cfg)
        if self._idle.get(yes) == read:
            return []
        if view.busy(info.market, self.name):
            return []  # not remembered: what is in flight on chain is not among what was read
        intents = self._requote(update, view, info, cfg, book_yes, book_no)
        if intents:
            self._idle.pop(yes, None)
        else:
            self._idle[yes] = read
        return intents

    def _requote(self, update: BookUpdate, view: StrategyView, info: MarketInfo, cfg: MakerConfig,
                 book_yes: BookLike, book_no: BookLike) -> list[Intent]:
        quotes = view.quotes(info.market, self.name)
        wanted = self._wanted_bids(info, cfg, view, book_yes, book_no)
        pair_cost = (wanted[0] or 0) + (wanted[1] or 0)
        threshold = cfg.refresh_threshold
        intents: list[Intent] = []
        for token, price in zip(info.tokens, wanted):
            if price is not None and near(quotes, token, price, threshold):
                continue  # a quote close enough rests already
            for q in quotes:
                if q.token == token:
                    intents.append(self._cancel(update, q, "requote"))
            # a replacement takes the room its cancelled quote frees only once the venue confirms:
            # at the open-order limit, cancel now and quote again on a later update. At a position
            # limit, bid nothing: risk would refuse it on every book update (two log rows each)
            if price is not None and view.order_room() > 0 and view.buy_room(info.market, token) >= cfg.size:
                intents.append(self._bid(update, info, token, price, cfg.size, pair_cost))
        return intents

    def _wanted_bids(self, info: MarketInfo, cfg: MakerConfig, view: StrategyView,
                     book_yes: BookLike, book_no: BookLike) -> tuple[int | None, int | None]:
        fair = fair_yes(book_yes, book_no)
        if fair is None:
            return None, None
        yes, no = info.tokens
        imbalance = (view.position(yes) - view.position(no)) // ONE  # whole shares
        skew = imbalance * cfg.skew_per_share  # clamped to ±max_skew
        if skew > cfg.max_skew:
            skew = cfg.max_skew
        if skew < -cfg.max_skew:
            skew = -cfg.max_skew
        half = cfg.target_edge // 2
        tick = info.tick
        # rest, never take: stay under our ask and under what the other token's bids mint at
        bid_yes = resting_bid(fair - half - skew, tick, book_yes, book_no)
        bid_no = resting_bid(ONE - fair - (cfg.target_edge - half) + skew, tick, book_no, book_yes)
        if bid_yes is not None and bid_no is not None:
            assert bid_yes + bid_no <= ONE - cfg.target_edge
        return bid_yes, bid_no

    def _bid(self, update, info, token, price, size, pair_cost) -> PlaceOrder:
        return PlaceOrder(cid=self._ids.next("i"), cause=update.cid, cause_ns=update.recv_ns, strategy=self.name,
                          market=info.market, token=token, side=Side.BUY, price=price, size=size,
                          tif=TimeInForce.GTC, post_only=True, pair_cost=pair_cost, reason="quote")

    def _cancel(self, update, quote: OrderLike, reason: str) -> CancelOrder:
        return CancelOrder(
            cid=self._ids.next("i"), cause=update.cid, cause_ns=update.recv_ns, strategy=self.name,
            order_id=quote.order_id, reason=reason,
        )

    def _pull(self, update, quotes, reason) -> list[Intent]:
        return [self._cancel(update, q, reason) for q in quotes]


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
        self._config_for = config_for
        self.taker = CompleteSetTaker(config_for=config_for, ids=ids)
        self.maker = CompleteSetMaker(config_for=config_for, ids=ids)
        self.merger = SetMerger(config_for=config_for, ids=ids)

    def on_book(self, update: BookUpdate, view: StrategyView) -> list[Intent]:
        """The taker's intents, then the maker's; the market, its settings and its books are
        looked up once for both (nothing changes between the two: intents are handled after)."""
        info = view.market(update.market)
        if info is None:
            return []
        config = self._config_for(info.market)
        yes, no = info.tokens
        book_yes, book_no = view.book(yes), view.book(no)
        taken = self.taker.decide(update, view, info, config.taker, book_yes, book_no)
        quoted = self.maker.decide(update, view, info, config.maker, book_yes, book_no)
        return taken + quoted if taken else quoted

    def on_fill(self, fill: Fill, view: StrategyView) -> list[Intent]:
        return self.merger.on_fill(fill, view)

    def on_sweep(self, cause: str, view: StrategyView) -> list[Intent]:
        """The capital sweep's offers: merges of complete sets held in any market."""
        return self.merger.on_sweep(cause, view)

    def forget(self, tokens: Iterable[str]) -> None:
        """Forget what any strategy keeps on these tokens (their market was forgotten): the
        taker's takes and the maker's last idle reading. The merger decides from the view alone."""
        tokens = list(tokens)
        self.taker.forget(tokens)
        self.maker.forget(tokens)

    def remembered(self) -> int:
        """Entries kept per token or market, all strategies together."""
        return self.taker.remembered() + self.maker.remembered()

"""NautilusTrader strategies for the side-by-side bench: mmbot's taker and maker, in NT's terms.

``CompleteSets`` subscribes the L2 book deltas of every instrument and, on each update, reads
the best bid and ask of both tokens of the updated token's market from NT's managed books:

- always (the "top-of-book" configuration): buy a complete set with two FOK limit BUYs at the
  asks when ask(YES) + ask(NO) + the taker fee per set (Polymarket's formula,
  ``mmbot.model.taker_fee``) is at most 1 - min_edge, sized by the smaller top level and
  ``max_sets``; like mmbot's taker it does not take the same levels again until the book shows
  them changed (NT's simulated book does not consume what we took);
- with ``maker=True``: also mmbot's re-quoting maker (``CompleteSetMaker`` in
  mmbot/decisions/strategy.py, same formulas): a post-only GTC bid on each token at the fair
  price minus half the target edge, skewed by inventory and kept under what the token can be
  bought for; cancelled and replaced when the wanted price moves by ``refresh_threshold``,
  pulled when a book is crossed or the market nears its end, nothing new while an order of
  the market is in flight. Risk's open-order and position limits are kept (the position as it
  stands after merging complete sets, which mmbot does and NT cannot).

Every number comes from ``mmbot.config.Config()``'s defaults, in integer micro-units; NT's
``Price``/``Quantity`` are converted through their raw fixed-point values, never a float.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from nautilus_data import price, quantity, to_micro
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import OrderBookDeltas
from nautilus_trader.model.enums import BookType, OrderSide, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import BinaryOption
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from mmbot.config import Config
from mmbot.decisions.strategy import round_down
from mmbot.model import ONE, SHARE_STEP, MarketInfo, taker_fee


class CompleteSetsConfig(StrategyConfig, frozen=True):
    maker: bool = False


class Pair:
    """One market as the strategy sees it: both instruments, its orders, its position."""

    __slots__ = ("ids", "info", "instruments", "orders", "position", "quotes", "taken")

    def __init__(self, info: MarketInfo, ids: tuple[InstrumentId, InstrumentId],
                 instruments: tuple[BinaryOption, BinaryOption]) -> None:
        self.info = info
        self.ids = ids
        self.instruments = instruments
        self.orders: list[Order] = []  # every order of ours not yet closed, taker's and maker's
        self.quotes: dict[InstrumentId, list[Order]] = {ids[0]: [], ids[1]: []}  # the maker's bids
        self.position = {ids[0]: 0, ids[1]: 0}  # micro-shares held
        self.taken: tuple[int, int, int, int] | None = None  # the tops (price, size) x2 we last took

    def busy(self) -> bool:
        return any(o.is_inflight or o.is_pending_cancel for o in self.orders)

    def held_after_merge(self, iid: InstrumentId) -> int:
        return self.position[iid] - min(self.position.values())


Tops = tuple[int | None, int | None]  # best bid, best ask in micro-units


def _tops(book: OrderBook) -> Tops:
    bid, ask = book.best_bid_price(), book.best_ask_price()
    return (None if bid is None else to_micro(bid.raw)), (None if ask is None else to_micro(ask.raw))


def _fair_yes(yes: Tops, no: Tops) -> int | None:
    """mmbot's fair YES price: the mean of YES's mid and one minus NO's mid."""
    mids = []
    if yes[0] is not None and yes[1] is not None:
        mids.append((yes[0] + yes[1]) // 2)
    if no[0] is not None and no[1] is not None:
        mids.append(ONE - (no[0] + no[1]) // 2)
    return sum(mids) // len(mids) if mids else None


def _effective_ask(own: Tops, other: Tops) -> int | None:
    """The lowest price a buyer of this token can be matched at, directly or by minting."""
    asks = [own[1]] if own[1] is not None else []
    if other[0] is not None:
        asks.append(ONE - other[0])
    return min(asks) if asks else None


class CompleteSets(Strategy):
    def __init__(self, config: CompleteSetsConfig, markets: list[MarketInfo],
                 ids: dict[str, InstrumentId], instruments: dict[InstrumentId, BinaryOption]) -> None:
        super().__init__(config)
        mm = Config()
        self._taker, self._maker_cfg, self._risk = mm.strategies.taker, mm.strategies.maker, mm.risk
        self._maker = config.maker
        self._pairs: dict[InstrumentId, Pair] = {}
        for info in markets:
            pair_ids = (ids[info.tokens[0]], ids[info.tokens[1]])
            pair = Pair(info, pair_ids, (instruments[pair_ids[0]], instruments[pair_ids[1]]))
            self._pairs[pair_ids[0]] = self._pairs[pair_ids[1]] = pair
        self._by_order: dict[Any, Pair] = {}  # client order id -> its market
        self.figures: Counter[str] = Counter()

    def on_start(self) -> None:
        for iid in self._pairs:
            self.subscribe_order_book_deltas(iid, book_type=BookType.L2_MBP)

    # ----------------------------------------------------------------------- book updates

    def on_order_book_deltas(self, deltas: OrderBookDeltas) -> None:
        pair = self._pairs[deltas.instrument_id]
        self.figures["book_updates"] += 1
        book_yes, book_no = self.cache.order_book(pair.ids[0]), self.cache.order_book(pair.ids[1])
        if book_yes is None or book_no is None:
            return
        yes, no = _tops(book_yes), _tops(book_no)
        if not all(b is not None and a is not None and b < a for b, a in (yes, no)):
            if self._maker:  # mmbot's maker pulls its bids from a book it cannot trust
                self._pull(pair)
            return
        self._take(pair, yes, no, book_yes, book_no)
        if self._maker:
            self._quote(pair, yes, no)

    def _take(self, pair: Pair, yes: Tops, no: Tops, book_yes: OrderBook, book_no: OrderBook) -> None:
        cfg, info = self._taker, pair.info
        limit = ONE - cfg.min_edge
        if yes[1] + no[1] > limit or pair.busy():
            return
        size_yes, size_no = to_micro(book_yes.best_ask_size().raw), to_micro(book_no.best_ask_size().raw)
        tops = (yes[1], size_yes, no[1], size_no)
        if tops == pair.taken:
            return  # what we took is still on the simulated book: the feed has not moved
        size = round_down(min(size_yes, size_no, cfg.max_sets), SHARE_STEP)
        if size < info.min_size:
            return
        fees = (taker_fee(size, yes[1], info.fee_rate, info.fee_exponent)
                + taker_fee(size, no[1], info.fee_rate, info.fee_exponent))
        fee_per_set = -((-fees * ONE) // size)  # rounded up, as mmbot's taker: never flatter the edge
        if yes[1] + no[1] + fee_per_set > limit:
            return
        pair.taken = tops
        for instrument, ask in zip(pair.instruments, (yes[1], no[1])):
            self._submit(pair, instrument, ask, size, TimeInForce.FOK, post_only=False)
        self.figures["taker_sets"] += 1

    def _quote(self, pair: Pair, yes: Tops, no: Tops) -> None:
        cfg, info = self._maker_cfg, pair.info
        if info.end_ns is not None and self.clock.timestamp_ns() >= info.end_ns - cfg.end_buffer_s * 1_000_000_000:
            self._pull(pair)
            return
        if pair.busy():
            return
        wanted = self._wanted_bids(pair, yes, no)
        for iid, instrument, bid in zip(pair.ids, pair.instruments, wanted):
            mine = pair.quotes[iid]
            if bid is not None and any(abs(to_micro(q.price.raw) - bid) < cfg.refresh_threshold for q in mine):
                continue
            for q in mine:
                self.cancel_order(q)
                self.figures["cancels"] += 1
            if bid is not None and self._room(pair, iid) >= cfg.size:
                pair.quotes[iid].append(self._submit(pair, instrument, bid, cfg.size, TimeInForce.GTC, post_only=True))

    def _wanted_bids(self, pair: Pair, yes: Tops, no: Tops) -> list[int | None]:
        cfg = self._maker_cfg
        fair = _fair_yes(yes, no)
        if fair is None:
            return [None, None]
        imbalance = (pair.position[pair.ids[0]] - pair.position[pair.ids[1]]) // ONE
        skew = max(-cfg.max_skew, min(cfg.max_skew, imbalance * cfg.skew_per_share))
        half = cfg.target_edge // 2
        raw = (fair - half - skew, ONE - fair - (cfg.target_edge - half) + skew)
        bids: list[int | None] = []
        for want, instrument, own, other in ((raw[0], pair.instruments[0], yes, no), (raw[1], pair.instruments[1], no, yes)):
            tick = to_micro(instrument.price_increment.raw)
            bid = round_down(want, tick)
            ask = _effective_ask(own, other)
            if ask is not None:
                bid = min(bid, round_down(ask - tick, tick))
            bids.append(bid if tick <= bid <= ONE - tick else None)
        return bids

    def _room(self, pair: Pair, iid: InstrumentId) -> int:
        """Risk's open-order and position limits as shares a new bid may still bring."""
        if len(self._by_order) >= self._risk.max_open_orders:  # every order of ours not closed yet
            return 0
        resting = {i: sum(to_micro(q.leaves_qty.raw) for q in pair.quotes[i]) for i in pair.ids}
        token = self._risk.max_position_per_token - pair.held_after_merge(iid) - resting[iid]
        market = self._risk.max_position_per_market - sum(pair.held_after_merge(i) + resting[i] for i in pair.ids)
        return min(token, market)

    def _pull(self, pair: Pair) -> None:
        for quotes in pair.quotes.values():
            for q in quotes:
                if not q.is_pending_cancel and not q.is_closed:
                    self.cancel_order(q)
                    self.figures["cancels"] += 1

    def _submit(self, pair: Pair, instrument: BinaryOption, at: int, size: int, tif: TimeInForce,
                *, post_only: bool) -> Order:
        order = self.order_factory.limit(
            instrument.id, OrderSide.BUY, quantity(size, instrument.size_precision),
            price(at, instrument.price_precision), time_in_force=tif, post_only=post_only,
        )
        pair.orders.append(order)
        self._by_order[order.client_order_id] = pair
        self.submit_order(order)
        self.figures["orders"] += 1
        return order

    # ----------------------------------------------------------------------- order events

    def _closed(self, event: Any) -> None:
        pair = self._by_order.pop(event.client_order_id, None)
        if pair is None:
            return
        pair.orders = [o for o in pair.orders if o.client_order_id != event.client_order_id]
        for quotes in pair.quotes.values():
            quotes[:] = [q for q in quotes if q.client_order_id != event.client_order_id]

    def on_order_filled(self, event: Any) -> None:
        self.figures["fills"] += 1
        pair = self._by_order.get(event.client_order_id)
        if pair is not None:
            pair.position[event.instrument_id] += to_micro(event.last_qty.raw)
            order = self.cache.order(event.client_order_id)
            if order is not None and order.is_closed:
                self._closed(event)

    def on_order_canceled(self, event: Any) -> None:
        self.figures["canceled"] += 1
        self._closed(event)

    def on_order_rejected(self, event: Any) -> None:
        self.figures["rejected"] += 1
        self._closed(event)

    def on_order_denied(self, event: Any) -> None:
        self.figures["denied"] += 1
        self._closed(event)

    def on_order_expired(self, event: Any) -> None:
        self.figures["expired"] += 1
        self._closed(event)

"""The replay bench's recording as NautilusTrader objects, decoded by mmbot's own decoder.

``convert(recording)`` reads the recording with ``mmbot.facts.recording.iter_frames``, decodes
each market frame with ``mmbot.venues.polymarket.wire.decode_market_frame`` (the decoder
``mmbot replay`` uses) and builds, in recording order:

- one ``BinaryOption`` per token of the header's markets (instrument id
  ``{condition id}-{token id}.POLYMARKET``, as NT's Polymarket adapter names them; quoted in
  USDC.e, NT's Polymarket currency: pUSD has no NT currency, and both have six decimals);
- ``OrderBookDeltas`` for a book snapshot (CLEAR, then one ADD per level, all F_SNAPSHOT, the
  last also F_LAST) and for each token of a price_change (UPDATE, or DELETE when the size is 0;
  F_LAST on that token's last delta: an ``OrderBookDeltas`` holds one instrument);
- a ``TradeTick`` for each last_trade_price.

Money never passes through a float: mmbot's integer micro-units become NT's fixed-point raw
values by a power of ten. Precisions are chosen so nothing is lost: a token's price precision
covers its finest tick (header, snapshots, tick_size_change) and every price it shows; the size
precision covers every size in the recording (Polymarket's are 2 dp).

What NT has no object for in a market-data stream (tick_size_change, best_bid_ask, new_market,
market_resolved), malformed frames, messages for tokens the header does not list and invalid
levels are counted, never silently dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.model.currencies import USDC_POS
from nautilus_trader.model.data import (
    BookOrder,
    OrderBookDelta,
    OrderBookDeltas,
    TradeTick,
)
from nautilus_trader.model.enums import (
    AggressorSide,
    AssetClass,
    BookAction,
    OrderSide,
    RecordFlag,
)
from nautilus_trader.model.identifiers import InstrumentId, Symbol, TradeId, Venue
from nautilus_trader.model.instruments import BinaryOption
from nautilus_trader.model.objects import FIXED_PRECISION, Price, Quantity

from mmbot.facts.recording import iter_frames, read_header
from mmbot.model import (
    ONE,
    BookSnapshot,
    LastTrade,
    MalformedFrame,
    MarketInfo,
    PriceChange,
    Side,
    TickSizeChange,
)
from mmbot.venues.polymarket.wire import decode_market_frame

VENUE = Venue("POLYMARKET")
MICRO_DIGITS = 6
RAW_PER_MICRO = 10 ** (FIXED_PRECISION - MICRO_DIGITS)  # NT's fixed-point raw units per micro-unit
TEN_YEARS_NS = 10 * 365 * 86_400 * 1_000_000_000  # expiry of a market with no end time

# What a reader of the figures must see even at zero.
REPORTED = ("malformed", "skipped_unknown_token", "skipped_unknown_token_change", "skipped_invalid_level",
            "skipped_invalid_trade")

_SNAPSHOT = int(RecordFlag.F_SNAPSHOT)
_LAST = int(RecordFlag.F_LAST)


def decimals(micro: int) -> int:
    """The fewest decimal places that show ``micro`` micro-units exactly (0.57 -> 2)."""
    for places in range(MICRO_DIGITS):
        if micro % 10 ** (MICRO_DIGITS - places) == 0:
            return places
    return MICRO_DIGITS


def price(micro: int, precision: int) -> Price:
    return Price.from_raw(micro * RAW_PER_MICRO, precision)


def quantity(micro: int, precision: int) -> Quantity:
    return Quantity.from_raw(micro * RAW_PER_MICRO, precision)


def to_micro(raw: int) -> int:
    """An NT Price/Quantity raw value back in micro-units (exact at precisions up to 6)."""
    micro, rest = divmod(raw, RAW_PER_MICRO)
    if rest:
        raise ValueError(f"raw value {raw} is finer than a micro-unit")
    return micro


def instrument_id(market: str, token: str) -> InstrumentId:
    return InstrumentId(Symbol(f"{market}-{token}"), VENUE)


@dataclass
class Converted:
    """What the NT child feeds to BacktestEngine, and what was left out, counted."""

    instruments: list[BinaryOption]
    data: list[Any]  # OrderBookDeltas and TradeTick, in recording order (ts_init never decreases)
    markets: list[MarketInfo]
    ids: dict[str, InstrumentId]  # token -> instrument id
    price_precision: dict[str, int]  # token -> NT price precision
    size_precision: int
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class _Scan:
    """Pass one: the decoded messages and the precisions they need."""

    messages: list[tuple[int, Any]]  # (recv ns, decoded message)
    finest_tick: dict[str, int]
    price_places: dict[str, int]
    size_places: int
    counts: Counter[str]


def _scan(recording: Path, markets: list[MarketInfo]) -> _Scan:
    finest_tick = {token: info.tick for info in markets for token in info.tokens}
    places = {token: decimals(info.tick) for info in markets for token in info.tokens}
    size_places = 0
    messages: list[tuple[int, Any]] = []
    counts: Counter[str] = Counter(dict.fromkeys(REPORTED, 0))  # shown even when nothing was left out
    frames = 0

    def see_price(token: str, micro: int) -> None:
        if token in places and 0 < micro < ONE:
            places[token] = max(places[token], decimals(micro))

    for t_ns, channel, text in iter_frames(recording):
        if channel != "market":
            counts[f"frames_{channel}_not_market"] += 1
            continue
        frames += 1
        for msg in decode_market_frame(text, recv_ns=t_ns, cid=f"f{frames}"):
            if isinstance(msg, MalformedFrame):
                counts["malformed"] += 1
                continue
            messages.append((t_ns, msg))
            kind = type(msg)
            if kind is PriceChange:
                for change in msg.changes:
                    see_price(change.token, change.price)
                    if change.size > 0:
                        size_places = max(size_places, decimals(change.size))
            elif kind is BookSnapshot:
                for level_price, size in (*msg.bids, *msg.asks):
                    see_price(msg.token, level_price)
                    if size > 0:
                        size_places = max(size_places, decimals(size))
                if msg.tick is not None and msg.token in finest_tick:
                    finest_tick[msg.token] = min(finest_tick[msg.token], msg.tick)
            elif kind is LastTrade:
                see_price(msg.token, msg.price)
                if msg.size > 0:
                    size_places = max(size_places, decimals(msg.size))
            elif kind is TickSizeChange and msg.token in finest_tick:
                finest_tick[msg.token] = min(finest_tick[msg.token], msg.new_tick)
    counts["market_frames"] = frames
    for token, tick in finest_tick.items():
        places[token] = max(places[token], decimals(tick))
    return _Scan(messages, finest_tick, places, size_places, counts)


def _instrument(info: MarketInfo, index: int, tick: int, places: int, size_places: int,
                start_ns: int) -> BinaryOption:
    token = info.tokens[index]
    expires = info.end_ns if info.end_ns is not None else start_ns + TEN_YEARS_NS
    return BinaryOption(
        instrument_id=instrument_id(info.market, token),
        raw_symbol=Symbol(token),
        asset_class=AssetClass.ALTERNATIVE,
        currency=USDC_POS,
        price_precision=places,
        size_precision=size_places,
        price_increment=price(tick, places),
        size_increment=quantity(10 ** (MICRO_DIGITS - size_places), size_places),
        activation_ns=0,
        expiration_ns=expires,
        ts_event=start_ns,
        ts_init=start_ns,
        min_quantity=quantity(info.min_size, size_places),
        # Polymarket's fee (rate x (p(1-p))^e per share) is no percentage of notional, which is
        # all NT's fee model knows: the account charges none; the strategies' edge includes it.
        maker_fee=Decimal(0),
        taker_fee=Decimal(0),
        outcome=info.outcomes[index],
        description=info.question or info.slug or info.market,
        info={"fee_rate_micro": info.fee_rate, "fee_exponent": info.fee_exponent, "tick_micro": info.tick},
    )


class _Builder:
    """Pass two: NT objects from decoded messages, counting what has no NT object."""

    def __init__(self, ids: dict[str, InstrumentId], places: dict[str, int], size_places: int,
                 counts: Counter[str]) -> None:
        self.ids, self.places, self.size_places, self.counts = ids, places, size_places, counts
        self.data: list[Any] = []

    def _order(self, side: OrderSide, micro_price: int, size: int, places: int) -> BookOrder:
        return BookOrder(side, price(micro_price, places), quantity(size, self.size_places), 0)

    def snapshot(self, msg: BookSnapshot, t_ns: int) -> None:
        iid = self.ids.get(msg.token)
        if iid is None:
            self.counts["skipped_unknown_token"] += 1
            return
        ts_event, places, counts = msg.venue_ts_ms * 1_000_000, self.places[msg.token], self.counts
        levels: list[tuple[OrderSide, int, int]] = []
        for side, entries in ((OrderSide.BUY, msg.bids), (OrderSide.SELL, msg.asks)):
            book: dict[int, int] = {}  # as mmbot's Books reads a snapshot: the last entry for a price wins
            for level_price, size in entries:
                if not (0 < level_price < ONE and size >= 0):
                    counts["skipped_invalid_level"] += 1
                elif size:
                    book[level_price] = size
                else:
                    book.pop(level_price, None)
            levels.extend((side, level_price, size) for level_price, size in book.items())
        deltas = [OrderBookDelta(iid, BookAction.CLEAR, None, _SNAPSHOT if levels else _SNAPSHOT | _LAST, 0,
                                 ts_event, t_ns)]
        last = len(levels) - 1
        for i, (side, level_price, size) in enumerate(levels):
            deltas.append(OrderBookDelta(iid, BookAction.ADD, self._order(side, level_price, size, places),
                                         _SNAPSHOT | _LAST if i == last else _SNAPSHOT, 0, ts_event, t_ns))
        counts["book_snapshots"] += 1
        counts["deltas"] += len(deltas)
        self.data.append(OrderBookDeltas(iid, deltas))

    def price_change(self, msg: PriceChange, t_ns: int) -> None:
        by_token: dict[str, list[Any]] = {}
        counts = self.counts
        for change in msg.changes:
            if change.token not in self.ids:
                counts["skipped_unknown_token_change"] += 1
                continue
            if not (0 < change.price < ONE and change.size >= 0):
                counts["skipped_invalid_level"] += 1
                continue
            by_token.setdefault(change.token, []).append(change)
        ts_event = msg.venue_ts_ms * 1_000_000
        for token, changes in by_token.items():
            iid, places, last = self.ids[token], self.places[token], len(changes) - 1
            deltas = []
            for i, change in enumerate(changes):
                side = OrderSide.BUY if change.side is Side.BUY else OrderSide.SELL
                action = BookAction.UPDATE if change.size else BookAction.DELETE
                deltas.append(OrderBookDelta(iid, action, self._order(side, change.price, change.size, places),
                                             _LAST if i == last else 0, 0, ts_event, t_ns))
            counts["deltas"] += len(deltas)
            self.data.append(OrderBookDeltas(iid, deltas))
        counts["price_changes"] += 1

    def trade(self, msg: LastTrade, t_ns: int) -> None:
        iid = self.ids.get(msg.token)
        if iid is None:
            self.counts["skipped_unknown_token"] += 1
            return
        if msg.size <= 0 or not 0 < msg.price < ONE:
            self.counts["skipped_invalid_trade"] += 1
            return
        self.counts["trade_ticks"] += 1
        self.data.append(TradeTick(
            iid, price(msg.price, self.places[msg.token]), quantity(msg.size, self.size_places),
            AggressorSide.BUYER if msg.side is Side.BUY else AggressorSide.SELLER,
            TradeId(msg.cid), msg.venue_ts_ms * 1_000_000, t_ns,
        ))


def convert(recording: Path) -> Converted:
    header = read_header(recording)
    markets = list(header.markets)
    scan = _scan(recording, markets)
    size_places = max(scan.size_places, max((decimals(info.min_size) for info in markets), default=0))
    ids = {token: instrument_id(info.market, token) for info in markets for token in info.tokens}
    instruments = [
        _instrument(info, i, scan.finest_tick[token], scan.price_places[token], size_places, header.start_ns)
        for info in markets for i, token in enumerate(info.tokens)
    ]
    counts = scan.counts
    counts["messages"] = len(scan.messages)
    builder = _Builder(ids, scan.price_places, size_places, counts)
    handlers = {BookSnapshot: builder.snapshot, PriceChange: builder.price_change, LastTrade: builder.trade}
    for t_ns, msg in scan.messages:
        kind = type(msg)
        handle = handlers.get(kind)
        if handle is None:
            counts[f"not_converted_{kind.__name__}"] += 1
        else:
            handle(msg, t_ns)
        if kind is PriceChange:
            counts["level_changes"] += len(msg.changes)
    return Converted(instruments, builder.data, markets, ids, scan.price_places, size_places, counts)


def decoded_messages(recording: Path) -> list[Any]:
    """Every decoded market message in recording order (for the book check against mmbot)."""
    return [msg for _, msg in _scan(recording, list(read_header(recording).markets)).messages]

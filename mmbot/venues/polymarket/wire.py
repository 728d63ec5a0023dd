"""Polymarket market-channel frames -> domain messages, and the public decoding API.

The venue-shaped Structs below mirror the market channel's JSON (protocol doc §2); the
mapping functions turn them into mmbot.model messages. The machinery both channels share is
in wire_base.py and the user channel in wire_user.py; this module is the one to import.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from mmbot.model import (
    BestBidAsk,
    BookSnapshot,
    LastTrade,
    LevelChange,
    MalformedFrame,
    MarketMessage,
    MarketResolved,
    NewMarket,
    PriceChange,
    TickSizeChange,
    parse_micro,
)
from mmbot.venues.polymarket.wire_base import (
    BAD_JSON,
    BEST_ASKS,
    BEST_BIDS,
    FRACTIONS,
    PRICES,
    SIDES,
    WHOLES,
    FrameDecoder,
    Stamp,
    WireError,
    best_ask_of,
    best_bid_of,
    optional_count,
    optional_price,
    parse_count,
    parse_price,
    parse_size,
    required,
    side_of,
    string_list,
    tick_value,
    valid_tick,
)
from mmbot.venues.polymarket.wire_user import (
    decode_order_record,
    decode_trade_record,
    decode_user_frame,
)

__all__ = [
    "WireError",
    "decode_market_frame",
    "decode_order_record",
    "decode_trade_record",
    "decode_user_frame",
    "parse_price",
]


# --------------------------------------------------------------------------- market wire shapes
# Fields that are nullable or optional on the venue are declared `X | None = None`; unknown
# fields are skipped by msgspec without being materialised. The two hot message kinds and their
# parts are ``gc=False``: decoded JSON holds no reference cycles, and untracked objects do not
# trigger or lengthen the garbage collector's passes.


class _Level(msgspec.Struct, gc=False):
    price: str
    size: str


class _Book(msgspec.Struct, tag_field="event_type", tag="book", gc=False):
    market: str
    asset_id: str
    timestamp: Stamp
    bids: list[_Level]
    asks: list[_Level]
    hash: str | None = None
    tick_size: str | None = None
    last_trade_price: str | None = None


class _ChangeEntry(msgspec.Struct, gc=False):
    """One entry of the current (2025-09) ``price_changes[]``."""

    asset_id: str
    price: str
    size: str
    side: str
    hash: str | None = None
    best_bid: str | None = None
    best_ask: str | None = None


class _LegacyChange(msgspec.Struct, gc=False):
    price: str
    size: str
    side: str


class _PriceChangeFields(msgspec.Struct, gc=False):
    """All three shapes in one Struct: the current one and the two legacy ones (protocol §2)."""

    market: str
    timestamp: Stamp
    price_changes: list[_ChangeEntry] | None = None
    changes: list[_LegacyChange] | None = None  # legacy: asset_id + hash at top level
    asset_id: str | None = None
    hash: str | None = None
    price: str | None = None  # legacy: one change at top level
    size: str | None = None
    side: str | None = None


class _PriceChange(_PriceChangeFields, tag_field="event_type", tag="price_change", gc=False):
    """price_change in the market channel's tagged union."""


class _PriceChangeFrame(_PriceChangeFields, kw_only=True, gc=False):
    """A frame that is one price_change object, for decode_market_frame's fast path.

    The tag is an ordinary required field here, checked wherever it stands. The union must
    find the tag before it can pick a Struct, and the venue writes it last, after the
    entries: that look-ahead is ~1 µs of a price_change frame's decoding.
    """

    event_type: Literal["price_change"]


class _LastTrade(msgspec.Struct, tag_field="event_type", tag="last_trade_price"):
    market: str
    asset_id: str
    price: str
    size: str
    side: str
    timestamp: Stamp
    fee_rate_bps: Stamp | None = None
    transaction_hash: str | None = None


class _TickSizeChange(msgspec.Struct, tag_field="event_type", tag="tick_size_change"):
    market: str
    asset_id: str
    old_tick_size: str
    new_tick_size: str
    timestamp: Stamp


class _BestBidAsk(msgspec.Struct, tag_field="event_type", tag="best_bid_ask"):
    market: str
    asset_id: str
    timestamp: Stamp
    best_bid: str | None = None
    best_ask: str | None = None


class _NewMarket(msgspec.Struct, tag_field="event_type", tag="new_market"):
    timestamp: Stamp
    market: str | None = None
    condition_id: str | None = None
    id: Stamp | None = None
    question: str | None = None
    slug: str | None = None
    assets_ids: list[str] | str | None = None
    clob_token_ids: list[str] | str | None = None
    outcomes: list[str] | str | None = None
    # A JSON number or a string: kept as raw JSON text so it never passes through a float.
    order_price_min_tick_size: msgspec.Raw = msgspec.Raw()


class _MarketResolved(msgspec.Struct, tag_field="event_type", tag="market_resolved"):
    market: str
    winning_asset_id: str
    timestamp: Stamp
    id: Stamp | None = None
    assets_ids: list[str] | str | None = None
    winning_outcome: str | None = None


# --------------------------------------------------------------------------- market mapping


def _levels(levels: list[_Level]) -> tuple[tuple[int, int], ...]:
    return tuple([(parse_price(level.price), parse_size(level.size)) for level in levels])


def _map_book(w: _Book, recv_ns: int, cid: str) -> BookSnapshot:
    return BookSnapshot(
        cid=cid,
        recv_ns=recv_ns,
        market=w.market,
        token=w.asset_id,
        bids=_levels(w.bids),
        asks=_levels(w.asks),
        venue_ts_ms=parse_count(w.timestamp, "timestamp"),
        tick=None if not w.tick_size else tick_value(w.tick_size),
        last_trade_price=optional_price(w.last_trade_price),
        hash=w.hash or "",
    )


def _legacy_entries(w: _PriceChangeFields) -> list[_ChangeEntry]:
    """The two legacy shapes (no ``price_changes``) rewritten into the current shape's entries."""
    token = required(w.asset_id, "asset_id")
    if w.changes is not None:
        return [_ChangeEntry(token, c.price, c.size, c.side, w.hash) for c in w.changes]
    if w.price is not None:
        size, side = required(w.size, "size"), required(w.side, "side")
        return [_ChangeEntry(token, w.price, size, side, w.hash)]
    raise WireError("price_change with neither price_changes, changes nor a price")




def _level_change(e: _ChangeEntry) -> LevelChange:
    """One entry the slow way: every field through its parser in field order, so the first bad
    field raises its own WireError; the parsers fill the caches the fast path reads."""
    return LevelChange(
        token=e.asset_id,
        side=side_of(e.side),
        price=parse_price(e.price),
        size=parse_size(e.size),
        best_bid=best_bid_of(e.best_bid),
        best_ask=best_ask_of(e.best_ask),
        hash=e.hash or "",
    )


def _map_price_change(w: _PriceChangeFields, recv_ns: int, cid: str) -> PriceChange:
    # The hottest loop of the feed, so no call per field: every field is a plain dict lookup in
    # its parser's cache (the size as its whole part plus its fraction, see parse_size). A miss,
    # or a bad value, which is never cached, takes the whole entry the slow way.
    entries = w.price_changes
    if entries is None:
        entries = _legacy_entries(w)
    sides, prices, wholes, fractions = SIDES, PRICES, WHOLES, FRACTIONS
    bids, asks = BEST_BIDS, BEST_ASKS
    changes = []
    append = changes.append
    for e in entries:
        try:
            side = sides[e.side]
            price = prices[e.price]
            whole, _, frac = e.size.partition(".")
            size = wholes[whole] + fractions[frac]
            best_bid = bids[e.best_bid]
            best_ask = asks[e.best_ask]
        except KeyError:
            append(_level_change(e))
            continue
        append(
            LevelChange(
                token=e.asset_id,
                side=side,
                price=price,
                size=size,
                best_bid=best_bid,
                best_ask=best_ask,
                hash=e.hash or "",
            )
        )
    venue_ts_ms = parse_count(w.timestamp, "timestamp")
    return PriceChange(cid=cid, recv_ns=recv_ns, market=w.market, venue_ts_ms=venue_ts_ms, changes=tuple(changes))


def _map_last_trade(w: _LastTrade, recv_ns: int, cid: str) -> LastTrade:
    return LastTrade(
        cid=cid,
        recv_ns=recv_ns,
        market=w.market,
        token=w.asset_id,
        price=parse_price(w.price),
        size=parse_price(w.size),
        side=side_of(w.side),
        venue_ts_ms=parse_count(w.timestamp, "timestamp"),
        fee_rate_bps=optional_count(w.fee_rate_bps, "fee_rate_bps"),
        transaction_hash=w.transaction_hash or "",
    )


def _map_tick_size_change(w: _TickSizeChange, recv_ns: int, cid: str) -> TickSizeChange:
    return TickSizeChange(
        cid=cid,
        recv_ns=recv_ns,
        market=w.market,
        token=w.asset_id,
        old_tick=tick_value(w.old_tick_size),
        new_tick=tick_value(w.new_tick_size),
        venue_ts_ms=parse_count(w.timestamp, "timestamp"),
    )


def _map_best_bid_ask(w: _BestBidAsk, recv_ns: int, cid: str) -> BestBidAsk:
    return BestBidAsk(
        cid=cid,
        recv_ns=recv_ns,
        market=w.market,
        token=w.asset_id,
        best_bid=best_bid_of(w.best_bid),
        best_ask=best_ask_of(w.best_ask),
        venue_ts_ms=parse_count(w.timestamp, "timestamp"),
    )


_STRING = msgspec.json.Decoder(str)


def _raw_tick(raw: msgspec.Raw) -> int | None:
    """The tick from raw JSON text: a string goes through parse_price, a number through
    parse_micro on its literal text (exact, even for ``1e-2``); absent, null or "" -> None."""
    text = bytes(raw)
    if not text or text == b"null":
        return None
    if text.startswith(b'"'):
        value = _STRING.decode(text)
        return None if value == "" else tick_value(value)
    try:
        tick = parse_micro(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise WireError(f"order_price_min_tick_size: not a number: {text[:40]!r}") from None
    return valid_tick(tick, text)


def _map_new_market(w: _NewMarket, recv_ns: int, cid: str) -> NewMarket:
    tokens = w.assets_ids if w.assets_ids else w.clob_token_ids
    return NewMarket(
        cid=cid,
        recv_ns=recv_ns,
        market=required(w.market or w.condition_id, "market"),
        market_id="" if w.id is None else str(w.id),
        question=w.question or "",
        slug=w.slug or "",
        tokens=string_list(required(tokens, "assets_ids"), "assets_ids"),
        outcomes=string_list(w.outcomes, "outcomes"),
        tick=_raw_tick(w.order_price_min_tick_size),
        venue_ts_ms=parse_count(w.timestamp, "timestamp"),
    )


def _map_market_resolved(w: _MarketResolved, recv_ns: int, cid: str) -> MarketResolved:
    return MarketResolved(
        cid=cid,
        recv_ns=recv_ns,
        market=w.market,
        market_id="" if w.id is None else str(w.id),
        tokens=string_list(w.assets_ids, "assets_ids"),
        winning_token=w.winning_asset_id,
        winning_outcome=w.winning_outcome or "",
        venue_ts_ms=parse_count(w.timestamp, "timestamp"),
    )


_MARKET = FrameDecoder(
    "market",
    {
        _Book: _map_book,
        _PriceChange: _map_price_change,
        _LastTrade: _map_last_trade,
        _TickSizeChange: _map_tick_size_change,
        _BestBidAsk: _map_best_bid_ask,
        _NewMarket: _map_new_market,
        _MarketResolved: _map_market_resolved,
    },
)

_PRICE_CHANGE_FRAME = msgspec.json.Decoder(_PriceChangeFrame)
_FAST_WITHIN = 256  # how far into a frame to look for the "price_changes" key; the venue writes
# it second, after the market id (~80 characters in)


def decode_market_frame(
    text: str | bytes, *, recv_ns: int, cid: str
) -> list[MarketMessage | MalformedFrame]:
    """Every message in one market-channel frame, in frame order; never raises on bad input."""
    # The commonest frame, one price_change object, is first decoded without the union's
    # look-ahead for the tag. When that decodes and maps, the union would have picked
    # _PriceChange and read the same fields; anything else (another event, an array, text,
    # bad input) is decoded again the general way, which also does all the error reporting.
    # The key test only spares other frames the attempt (skipping a book's levels to reach
    # its tag costs more than the look-ahead saves).
    if isinstance(text, str):
        fast = text.find('"price_changes"', 0, _FAST_WITHIN) >= 0
    else:
        fast = isinstance(text, bytes) and text.find(b'"price_changes"', 0, _FAST_WITHIN) >= 0
    if fast:
        try:
            return [_map_price_change(_PRICE_CHANGE_FRAME.decode(text), recv_ns, cid)]
        except (*BAD_JSON, WireError):
            pass
    return _MARKET.decode(text, recv_ns, cid)

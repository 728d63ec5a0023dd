"""Facts about markets: what a market is, and the market channel's messages (books, level
changes, trades, tick changes, listings, resolutions), plus a frame that could not be decoded."""

from __future__ import annotations

import msgspec

from mmbot.model.money import ONE
from mmbot.model.values import HotMessage, Side, message



@message
class MarketInfo:
    """Static facts about one binary market, from a recording header or market discovery."""

    market: str  # condition id
    tokens: tuple[str, str]  # (YES/Up, NO/Down), in the venue's outcome order
    outcomes: tuple[str, str] = ("Yes", "No")
    tick: int = 10_000
    min_size: int = 5 * ONE
    end_ns: int | None = None  # when trading ends (None: no scheduled end)
    fee_rate: int = 0  # taker fee rate in micro-units (0.072 -> 72_000)
    fee_exponent: int = 1
    neg_risk: bool = False
    slug: str = ""
    question: str = ""


# --------------------------------------------------------------------------- market channel facts


@message
class BookSnapshot:
    cid: str
    recv_ns: int
    market: str
    token: str
    bids: tuple[tuple[int, int], ...]  # (price, size), any order
    asks: tuple[tuple[int, int], ...]
    venue_ts_ms: int
    tick: int | None = None
    last_trade_price: int | None = None
    hash: str = ""


class LevelChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One entry of a price_change: the new total size at a price (0 removes the level).

    A frozen msgspec Struct, not attrs: a part of a message, not a message, built ~10 times per
    frame on the hot path, where it costs a sixth of a frozen attrs instance (DESIGN §13).
    """

    token: str
    side: Side  # BUY -> bids, SELL -> asks
    price: int
    size: int
    best_bid: int | None = None  # the venue's top after the change, None when not given
    best_ask: int | None = None
    hash: str = ""


class PriceChange(HotMessage):
    """Level changes of one market, the commonest message by far (a HotMessage: built on every one)."""

    cid: str
    recv_ns: int
    market: str
    venue_ts_ms: int
    changes: tuple[LevelChange, ...]


@message
class LastTrade:
    cid: str
    recv_ns: int
    market: str
    token: str
    price: int
    size: int
    side: Side  # the taker's side
    venue_ts_ms: int
    fee_rate_bps: int | None = None
    transaction_hash: str = ""


@message
class TickSizeChange:
    cid: str
    recv_ns: int
    market: str
    token: str
    old_tick: int
    new_tick: int
    venue_ts_ms: int


@message
class BestBidAsk:
    cid: str
    recv_ns: int
    market: str
    token: str
    best_bid: int | None
    best_ask: int | None
    venue_ts_ms: int


@message
class NewMarket:
    cid: str
    recv_ns: int
    market: str
    market_id: str
    question: str
    slug: str
    tokens: tuple[str, ...]
    outcomes: tuple[str, ...]
    tick: int | None
    venue_ts_ms: int


@message
class MarketResolved:
    cid: str
    recv_ns: int
    market: str
    market_id: str
    tokens: tuple[str, ...]
    winning_token: str
    winning_outcome: str
    venue_ts_ms: int



MarketMessage = (
    BookSnapshot
    | PriceChange
    | LastTrade
    | TickSizeChange
    | BestBidAsk
    | NewMarket
    | MarketResolved
)


@message
class MalformedFrame:
    """A frame (or one element of an array frame) that could not be decoded."""

    cid: str
    recv_ns: int
    channel: str
    error: str
    excerpt: str  # the first 200 characters of the offending text



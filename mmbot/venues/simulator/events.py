"""What the simulator's engine tells the outside world: plain frozen events and results.

Every state change of the engine produces events, in the order they happened. The frame
renderer turns them into market-channel frames; the simulator server also turns the order and
trade events into user-channel messages, which is why trades keep both order ids and owners.
All prices and sizes are integer micro-units.
"""

from __future__ import annotations

import enum

import attrs

from mmbot.model import MarketInfo, Side, TimeInForce

# The venue's error strings (protocol doc §4), returned in SubmitResult.error.
INVALID_ORDER_MIN_TICK_SIZE = "INVALID_ORDER_MIN_TICK_SIZE"
INVALID_ORDER_MIN_SIZE = "INVALID_ORDER_MIN_SIZE"
INVALID_ORDER_DUPLICATED = "INVALID_ORDER_DUPLICATED"
INVALID_ORDER_EXPIRATION = "INVALID_ORDER_EXPIRATION"
INVALID_POST_ONLY_ORDER_TYPE = "INVALID_POST_ONLY_ORDER_TYPE"
INVALID_POST_ONLY_ORDER = "INVALID_POST_ONLY_ORDER"
FOK_ORDER_NOT_FILLED_ERROR = "FOK_ORDER_NOT_FILLED_ERROR"
MARKET_NOT_READY = "MARKET_NOT_READY"
# A FAK that finds nothing to match is killed whole; the venue answers with this sentence.
FAK_ORDER_NOT_FILLED = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)
# Cancel refusals, as in the venue's ``not_canceled`` map.
ALREADY_DONE = "already canceled or matched"
UNKNOWN_ORDER = "order not found"

event = attrs.frozen(kw_only=True, slots=True)


class MarketState(enum.Enum):
    OPEN = "open"  # accepting orders
    CLOSED = "closed"  # trading over, waiting for resolution
    RESOLVED = "resolved"


class MatchKind(enum.Enum):
    DIRECT = "direct"  # against the same token's opposite side
    MINT = "mint"  # BUY against a resting BUY of the complement: a complete set is split
    MERGE = "merge"  # SELL against a resting SELL of the complement: a complete set is merged


class EndReason(enum.Enum):
    MATCHED = "MATCHED"  # filled completely
    CANCELED = "CANCELED"  # by its owner
    EXPIRED = "EXPIRED"  # GTD expiry
    KILLED = "KILLED"  # the unfilled rest of a FAK order
    MARKET_CLOSED = "CANCELED_MARKET_CLOSED"
    MARKET_RESOLVED = "CANCELED_MARKET_RESOLVED"


@event
class OrderView:
    """An order as the venue would report it (``/data/order``, user-channel ``order``)."""

    order_id: str
    owner: str
    market: str
    token: str
    side: Side
    price: int
    original_size: int
    size_matched: int
    tif: TimeInForce
    post_only: bool
    created_ns: int
    expires_ns: int | None
    maker: str = ""  # the wallet it trades for ("": the owner's own address)
    trade_ids: tuple[str, ...] = ()  # its fills so far (``associate_trades``)


@event
class OrderRequest:
    """An order after validation, as handed to the admission hook (balance checks later)."""

    owner: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    tif: TimeInForce
    post_only: bool
    expires_ns: int | None
    budget: int | None = None  # a market BUY: the pUSD it spends (``price`` its worst price)


# --------------------------------------------------------------------------- events


@event
class MarketListed:
    info: MarketInfo
    ts_ns: int


@event
class LevelChanged:
    """A price level's new total size (0 removes it) and the token's top after the change."""

    market: str
    token: str
    side: Side  # BUY: bids, SELL: asks
    price: int
    size: int
    best_bid: int | None
    best_ask: int | None
    ts_ns: int


@event
class Trade:
    """One maker order filled (partly) by one taker order.

    For a DIRECT match both sides trade the same token at ``maker_price``. For MINT/MERGE the
    maker trades the complement at its own resting price and the taker gets ``1 - maker_price``
    on its token; ``taker_price`` is always what the taker paid or received per share.
    """

    trade_id: str
    market: str
    kind: MatchKind
    size: int
    taker_order_id: str
    taker_owner: str
    taker_token: str
    taker_side: Side
    taker_price: int
    taker_fee: int  # pUSD micro-units, V2 formula
    taker_size_matched: int  # cumulative, after this fill
    maker_order_id: str
    maker_owner: str
    maker_token: str
    maker_side: Side
    maker_price: int
    maker_size_matched: int  # cumulative, after this fill
    ts_ns: int
    taker_wallet: str = ""  # the taker order's maker wallet ("": its owner's own address)
    maker_wallet: str = ""  # the maker order's


@event
class OrderRested:
    """An order now rests on the book (user channel: PLACEMENT)."""

    order: OrderView
    ts_ns: int


@event
class OrderEnded:
    """An accepted order can no longer trade (user channel: UPDATE to MATCHED, CANCELLATION)."""

    order: OrderView
    reason: EndReason
    ts_ns: int


@event
class TickChanged:
    market: str
    tokens: tuple[str, str]
    old_tick: int
    new_tick: int
    ts_ns: int


@event
class Resolved:
    market: str
    tokens: tuple[str, str]
    winning_token: str
    winning_outcome: str
    ts_ns: int


Event = MarketListed | LevelChanged | Trade | OrderRested | OrderEnded | TickChanged | Resolved


# --------------------------------------------------------------------------- call results


@event
class SubmitResult:
    """The venue's post response: ``status`` is live, matched or rejected (then ``error``)."""

    order_id: str
    status: str
    error: str = ""
    size_matched: int = 0
    trades: tuple[Trade, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "rejected"


@event
class CancelResult:
    canceled: tuple[str, ...] = ()
    not_canceled: tuple[tuple[str, str], ...] = ()  # (order id, reason)

"""Domain values and bus messages.

Every amount is an integer in the venue's base unit, 10**-6 (DESIGN §4): price 0.57 is
570_000, 12.5 shares is 12_500_000, and money is pUSD micro-units. Every message that
travels on the bus is a frozen, slotted, keyword-only attrs class carrying ``cid``, its
correlation id, so the event log can join a fill back to the book update that caused it.

This module imports nothing of ours (tests/test_layers.py checks).
"""

from __future__ import annotations

import enum
from decimal import Decimal, InvalidOperation

import attrs
import msgspec

ONE = 1_000_000  # 1.0 in micro-units: one pUSD, one share, price 1.0

message = attrs.frozen(kw_only=True, slots=True)


class Side(enum.Enum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class TimeInForce(enum.Enum):
    GTC = "GTC"  # rests until cancelled
    GTD = "GTD"  # rests until an expiry
    FOK = "FOK"  # fill completely at once or not at all
    FAK = "FAK"  # fill what is there at once, cancel the rest (IOC)


class Liquidity(enum.Enum):
    MAKER = "MAKER"
    TAKER = "TAKER"


def parse_micro(text: str | int) -> int:
    """A venue decimal string ("0.513", "3149725.72") as integer micro-units, exactly.

    Raises ValueError for anything that is not a finite decimal with at most six places.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text * ONE
    if not isinstance(text, str):
        raise ValueError(f"expected a decimal string, got {type(text).__name__}")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {text!r}")
    scaled = value.scaleb(6)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"more than six decimal places: {text!r}")
    return int(scaled)


def format_micro(value: int) -> str:
    """Integer micro-units as the shortest exact decimal string: 570000 -> '0.57'."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), ONE)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:06d}".rstrip("0")


SHARE_STEP = 10_000  # orders are sized in whole hundredths of a share (the venue's amount rounding)


def size_off_step(size: int) -> str | None:
    """Why an order of ``size`` cannot be sent as asked (the signed amounts would round it), or None."""
    if size % SHARE_STEP:
        return f"size {format_micro(size)} is finer than 0.01 share"
    return None


def notional(price: int, size: int) -> int:
    """Cost of ``size`` shares at ``price``, rounded up (what a buyer must hold)."""
    return -((-price * size) // ONE)


def notional_down(price: int, size: int) -> int:
    """Proceeds of ``size`` shares at ``price``, rounded down (what a seller may count on)."""
    return (price * size) // ONE


def taker_fee(size: int, price: int, rate: int, exponent: int = 1) -> int:
    """Polymarket V2 taker fee in pUSD micro-units (protocol doc §8).

    fee = C x rate x (p x (1 - p))^exponent for C shares at price p, rounded half-up to five
    decimal places (10 micro-units); a fee below 0.00001 pUSD is zero. Makers pay nothing.
    """
    if size <= 0 or rate <= 0:
        return 0
    numerator = size * rate * (price * (ONE - price)) ** exponent
    denominator = ONE ** (1 + 2 * exponent)  # back to micro-units of pUSD
    step = denominator * 10  # one unit of the fifth decimal place
    if numerator < step:
        return 0
    return ((numerator + step // 2) // step) * 10


# --------------------------------------------------------------------------- markets


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


@message
class PriceChange:
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


# --------------------------------------------------------------------------- user channel facts


@message
class MakerFill:
    """Our (or someone's) resting order's part in a trade, from ``maker_orders[]``."""

    order_id: str
    owner: str
    maker_address: str
    matched_amount: int
    price: int
    token: str
    side: Side | None  # absent in older payloads: derive it (protocol §3, side inversion)
    outcome: str = ""


@message
class UserOrder:
    cid: str
    recv_ns: int
    order_id: str
    event: str  # PLACEMENT, UPDATE, CANCELLATION
    status: str  # LIVE, MATCHED, CANCELED, ... possibly with "_<reason>"
    market: str
    token: str
    side: Side
    price: int
    original_size: int
    size_matched: int
    order_type: str
    owner: str
    venue_ts_ms: int
    associate_trades: tuple[str, ...] = ()
    outcome: str = ""


@message
class UserTrade:
    cid: str
    recv_ns: int
    trade_id: str
    status: str  # MATCHED, MINED, CONFIRMED, RETRYING, FAILED
    market: str
    token: str
    side: Side
    price: int
    size: int
    trader_side: Liquidity
    taker_order_id: str
    owner: str
    maker_address: str
    maker_orders: tuple[MakerFill, ...]
    match_time_s: int
    venue_ts_ms: int
    outcome: str = ""
    fee_rate_bps: int | None = None
    transaction_hash: str = ""


MarketMessage = (
    BookSnapshot
    | PriceChange
    | LastTrade
    | TickSizeChange
    | BestBidAsk
    | NewMarket
    | MarketResolved
)
UserMessage = UserOrder | UserTrade


@message
class MalformedFrame:
    """A frame (or one element of an array frame) that could not be decoded."""

    cid: str
    recv_ns: int
    channel: str
    error: str
    excerpt: str  # the first 200 characters of the offending text


# --------------------------------------------------------------------------- decisions


class BookState(enum.Enum):
    EMPTY = "empty"  # no snapshot yet
    SYNCED = "synced"
    CROSSED = "crossed"  # best bid >= best ask: a lost update, resync
    STALE = "stale"  # reconnect, tick change or venue mismatch: wait for a fresh book


@message
class BookUpdate:
    """Latest-value slot content: token ``token`` changed because of frame ``cid``."""

    cid: str
    recv_ns: int
    market: str
    token: str
    state: BookState
    best_bid: int | None
    best_ask: int | None


@message
class PlaceOrder:
    """A strategy's wish to place one order. ``group`` ties legs that belong together."""

    cid: str
    cause: str  # cid of the fact that prompted it
    strategy: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    tif: TimeInForce
    post_only: bool = False
    group: str = ""
    pair_cost: int | None = None  # what a complete set costs if this order fills, fees included
    reason: str = ""
    cause_ns: int | None = None  # when the fact that prompted it was received


@message
class CancelOrder:
    cid: str
    cause: str
    strategy: str
    order_id: str
    reason: str
    cause_ns: int | None = None


@message
class MergeSets:
    """Merge ``size`` complete sets of ``market`` back into pUSD."""

    cid: str
    cause: str
    strategy: str
    market: str
    size: int
    cause_ns: int | None = None


Intent = PlaceOrder | CancelOrder | MergeSets


@message
class KillSwitch:
    cid: str
    reason: str
    engaged: bool = True


@message
class MarketClosing:
    """The market is within its no-new-orders window or has resolved: stop and cancel."""

    cid: str
    market: str
    winning_token: str | None = None  # set once resolved


# --------------------------------------------------------------------------- venue requests and responses


@message
class SubmitRequest:
    cid: str
    order_id: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    tif: TimeInForce
    post_only: bool = False


@message
class CancelRequest:
    cid: str
    order_id: str


@message
class MergeRequest:
    cid: str
    market: str
    tokens: tuple[str, str]
    size: int


VenueRequest = SubmitRequest | CancelRequest | MergeRequest


@message
class OrderAccepted:
    """The venue took the order; it rests (possibly after immediate partial fills)."""

    cid: str
    order_id: str
    venue_order_id: str = ""


@message
class OrderRejected:
    cid: str
    order_id: str
    reason: str  # venue error string or a local reason code


@message
class OrderOutcomeUnknown:
    """Sent but no answer: keep the reservation, reconciliation decides (DESIGN §3)."""

    cid: str
    order_id: str
    detail: str


@message
class OrderDone:
    """The order can no longer fill: cancelled, expired, killed remainder of FOK/FAK."""

    cid: str
    order_id: str
    reason: str


@message
class CancelRejected:
    cid: str
    order_id: str
    reason: str


@message
class Fill:
    cid: str
    fill_id: str
    order_id: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    fee: int  # pUSD micro-units paid (takers only)
    liquidity: Liquidity
    ts_ns: int


@message
class MergeDone:
    cid: str
    market: str
    size: int


@message
class Correction:
    """Reconciliation's verdict that our optimistic view differs from the venue's."""

    cid: str
    order_id: str
    fill_id: str
    market: str
    token: str
    side: Side
    price: int
    size_delta: int  # shares to add (negative: reverse)
    fee_delta: int
    reason: str


VenueResponse = (
    OrderAccepted
    | OrderRejected
    | OrderOutcomeUnknown
    | OrderDone
    | CancelRejected
    | Fill
    | MergeDone
    | Correction
)


class Ids:
    """Deterministic ids from counters: the same inputs give the same ids on every run (DESIGN §8)."""

    __slots__ = ("_counters",)

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}{n}"

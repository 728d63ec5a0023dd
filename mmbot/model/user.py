"""Facts about our account at the venue: the user channel's orders and trades, and our order's
part in one venue trade (``VenueLeg``) with the statuses a trade moves through."""

from __future__ import annotations

from mmbot.model.values import Liquidity, Side, message

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


UserMessage = UserOrder | UserTrade


# A venue trade moves MATCHED → MINED → CONFIRMED, or through RETRYING to FAILED (protocol §3).
MATCHED, MINED, CONFIRMED, RETRYING, FAILED = "MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED"
TRADE_STATUS_RANK = {MATCHED: 1, MINED: 2, RETRYING: 2, CONFIRMED: 3, FAILED: 3}
FINAL_STATUSES = frozenset({CONFIRMED, FAILED})


@message
class VenueLeg:
    """Our order's part in one venue trade, as the user channel (or ``/data/trades``) reports it."""

    trade_id: str
    order_id: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    fee: int
    status: str
    liquidity: Liquidity = Liquidity.TAKER

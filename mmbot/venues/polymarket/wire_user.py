"""Polymarket user-channel frames (our orders and trades) -> domain messages.

Also decodes the same objects without their ``event_type`` envelope: a ``/data/trades`` item
and an order object (``/data/orders``, or an order update stored bare). Those have no tag to
route them, so the caller says what they are by calling the matching entry point.
Quirks handled here (protocol doc §3): ``""`` in ``size_matched``/``outcome``/``created_at``
on kill messages, ``associate_trades`` null, ``match_time`` also spelled ``matchtime``,
``fee_rate_bps`` ``""``, and every time field (``match_time``, ``timestamp``, ``last_update``,
``created_at``) in seconds, in ms or as ISO-8601 text (wire_base.as_millis).

A trade's status is kept as sent, in upper case and without a ``TRADE_STATUS_`` prefix
(``confirmed`` and ``TRADE_STATUS_CONFIRMED`` are ``CONFIRMED``); one we do not know is kept too,
never a malformed frame: a trade report is never dropped, and reconciliation decides what it means.
"""

from __future__ import annotations

import msgspec

from mmbot.model import Liquidity, MakerFill, MalformedFrame, UserMessage, UserOrder, UserTrade
from mmbot.venues.polymarket.wire_base import (
    BAD_JSON,
    FrameDecoder,
    Stamp,
    WireError,
    as_millis,
    as_seconds,
    optional_count,
    parse_price,
    side_of,
)

# --------------------------------------------------------------------------- user wire shapes


class _Order(msgspec.Struct, tag_field="event_type", tag="order"):
    id: str
    status: str
    market: str
    asset_id: str
    side: str
    price: str
    original_size: str
    type: str | None = None  # PLACEMENT / UPDATE / CANCELLATION; absent on REST order objects
    timestamp: Stamp | None = None  # ms; absent on REST order objects, which have created_at
    created_at: Stamp | None = None  # seconds, or ms, or ISO-8601
    size_matched: str | None = None
    order_type: str | None = None
    owner: str | None = None
    associate_trades: list[str] | None = None
    outcome: str | None = None


class _MakerOrder(msgspec.Struct):
    order_id: str
    matched_amount: str
    price: str
    asset_id: str
    owner: str | None = None
    maker_address: str | None = None
    side: str | None = None  # absent in older payloads
    outcome: str | None = None


class _Trade(msgspec.Struct, tag_field="event_type", tag="trade"):
    id: str
    status: str
    market: str
    asset_id: str
    side: str
    price: str
    size: str
    trader_side: str
    taker_order_id: str
    match_time: Stamp | None = None  # seconds; ISO-8601 in some REST answers
    matchtime: Stamp | None = None  # the docs' spelling
    timestamp: Stamp | None = None  # ms or seconds; absent on /data/trades items
    last_update: Stamp | None = None  # seconds or ISO-8601
    maker_orders: list[_MakerOrder] = []
    owner: str | None = None
    maker_address: str | None = None
    outcome: str | None = None
    fee_rate_bps: Stamp | None = None
    transaction_hash: str | None = None


# --------------------------------------------------------------------------- user mapping

_LIQUIDITY = {"MAKER": Liquidity.MAKER, "TAKER": Liquidity.TAKER}


def _liquidity(text: str) -> Liquidity:
    liquidity = _LIQUIDITY.get(text)
    if liquidity is None:
        raise WireError(f"unknown trader_side {text[:40]!r}")
    return liquidity


def trade_status(text: str) -> str:
    """A trade status as reconciliation compares it: upper case, without ``TRADE_STATUS_``."""
    return text.upper().removeprefix("TRADE_STATUS_")


def _first_sent(*fields: tuple[str, Stamp | None]) -> tuple[Stamp, str] | None:
    """The first (value, field name) actually sent: neither absent nor ``""``."""
    for name, value in fields:
        if value is not None and value != "":
            return value, name
    return None


def _map_order(w: _Order, recv_ns: int, cid: str) -> UserOrder:
    stamp = _first_sent(("timestamp", w.timestamp), ("created_at", w.created_at))
    if stamp is None:
        raise WireError("order without timestamp or created_at")
    return UserOrder(
        cid=cid,
        recv_ns=recv_ns,
        order_id=w.id,
        event=w.type or "",
        status=w.status,
        market=w.market,
        token=w.asset_id,
        side=side_of(w.side),
        price=parse_price(w.price),
        original_size=parse_price(w.original_size),
        size_matched=parse_price(w.size_matched) if w.size_matched else 0,
        order_type=w.order_type or "",
        owner=w.owner or "",
        venue_ts_ms=as_millis(*stamp),
        associate_trades=tuple(w.associate_trades or ()),
        outcome=w.outcome or "",
    )


def _map_maker_order(m: _MakerOrder) -> MakerFill:
    return MakerFill(
        order_id=m.order_id,
        owner=m.owner or "",
        maker_address=m.maker_address or "",
        matched_amount=parse_price(m.matched_amount),
        price=parse_price(m.price),
        token=m.asset_id,
        side=side_of(m.side) if m.side else None,
        outcome=m.outcome or "",
    )


def _map_trade(w: _Trade, recv_ns: int, cid: str) -> UserTrade:
    match_time = _first_sent(("match_time", w.match_time), ("matchtime", w.matchtime))
    if match_time is None:
        raise WireError("trade without match_time")
    stamp = _first_sent(("timestamp", w.timestamp), ("last_update", w.last_update)) or match_time
    return UserTrade(
        cid=cid,
        recv_ns=recv_ns,
        trade_id=w.id,
        status=trade_status(w.status),
        market=w.market,
        token=w.asset_id,
        side=side_of(w.side),
        price=parse_price(w.price),
        size=parse_price(w.size),
        trader_side=_liquidity(w.trader_side),
        taker_order_id=w.taker_order_id,
        owner=w.owner or "",
        maker_address=w.maker_address or "",
        maker_orders=tuple([_map_maker_order(m) for m in w.maker_orders]),
        match_time_s=as_seconds(*match_time),
        venue_ts_ms=as_millis(*stamp),
        outcome=w.outcome or "",
        fee_rate_bps=optional_count(w.fee_rate_bps, "fee_rate_bps"),
        transaction_hash=w.transaction_hash or "",
    )


# --------------------------------------------------------------------------- entry points

_USER = FrameDecoder("user", {_Order: _map_order, _Trade: _map_trade})
_TRADE_RECORD = msgspec.json.Decoder(_Trade)  # alone, the tag is optional (checked if present)
_ORDER_RECORD = msgspec.json.Decoder(_Order)


def decode_user_frame(
    text: str | bytes, *, recv_ns: int, cid: str
) -> list[UserMessage | MalformedFrame]:
    """Every message in one user-channel frame, in frame order; never raises on bad input."""
    return _USER.decode(text, recv_ns, cid)


def decode_trade_record(obj_text: str | bytes, *, recv_ns: int, cid: str) -> UserTrade:
    """One trade object without the event_type envelope (a ``/data/trades`` item).

    Raises WireError when it cannot be decoded: the caller asked for this one object.
    """
    try:
        wire = _TRADE_RECORD.decode(obj_text)
    except BAD_JSON as exc:
        raise WireError(f"trade record: {exc}") from None
    return _map_trade(wire, recv_ns, cid)


def decode_order_record(obj_text: str | bytes, *, recv_ns: int, cid: str) -> UserOrder:
    """One order object without the event_type envelope; raises WireError on bad input."""
    try:
        wire = _ORDER_RECORD.decode(obj_text)
    except BAD_JSON as exc:
        raise WireError(f"order record: {exc}") from None
    return _map_order(wire, recv_ns, cid)

"""The user channel's ``order`` and ``trade`` messages and the ``/data/trades`` items, rendered as
the venue sends them (protocol doc §3, the captured samples in fixtures/polymarket/ws-user/).

``trade``: the top level is always the taker's order — its token, side, price, outcome, its
owner's API key (``owner``) and its wallet (``maker_address``: the order's ``maker`` field, so
for a TAKER message the recipient's own wallet, as in the captures) — and ``maker_orders[]`` holds
the maker's fill (with its own order's wallet). ``trade_owner`` is the API key of the account the
message is for. The transaction hash is the one the market channel's ``last_trade_price`` gives the trade, on every
status (the captured MATCHED message carries one). A ``/data/trades`` item is the message
without what only the channel sends (``event_type``, ``type``, ``timestamp``, ``trade_owner``).

Owners that are not accounts (the simulated world's traders) get a stand-in API key and wallet,
derived from their name, so every message has the venue's shapes.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from mmbot.model import format_micro
from mmbot.venues.polymarket.auth import checksum_address
from mmbot.venues.simulator import events as ev

SECOND = 1_000_000_000
# the keys of a /data/trades item, in the order of the captured one (fixtures ws-user/trades.json)
TRADE_ITEM_KEYS = (
    "id", "taker_order_id", "market", "asset_id", "side", "size", "fee_rate_bps", "price", "status", "match_time",
    "last_update", "outcome", "bucket_index", "owner", "maker_address", "transaction_hash", "maker_orders",
    "trader_side",
)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def transaction_hash(trade_id: str) -> str:
    """The trade's settlement transaction, as the market channel's ``last_trade_price`` names it."""
    return "0x" + hashlib.sha256(trade_id.encode()).hexdigest()


@functools.lru_cache(maxsize=4096)
def stand_in(owner: str) -> tuple[str, str]:
    """(API key, wallet) for an owner that is not an account: UUID-shaped and checksummed, as the venue's."""
    digest = hashlib.sha256(f"mmbot-sim-owner/{owner}".encode()).digest()
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}", checksum_address(digest[-20:])


def order_message(
    order: ev.OrderView, kind: str, status: str, ts_ns: int, *, address: str, outcome: str,
    size_matched: int, associate_trades: list[str] | None,
) -> str:
    """An ``order`` message (PLACEMENT, UPDATE, CANCELLATION) of one of the recipient's orders."""
    return dumps({
        "event_type": "order", "type": kind, "id": order.order_id, "owner": order.owner,
        "order_owner": order.owner, "maker_address": address, "market": order.market, "asset_id": order.token,
        "side": order.side.value, "outcome": outcome, "price": format_micro(order.price),
        "original_size": format_micro(order.original_size), "size_matched": format_micro(size_matched),
        "associate_trades": associate_trades, "order_type": order.tif.value, "status": status,
        "expiration": expiration(order), "created_at": str(order.created_ns // SECOND),
        "timestamp": str(ts_ns // 1_000_000),
    })


def expiration(order: ev.OrderView) -> str:
    """The signed order's ``expiration``: ``"0"`` but for GTD, whose life ends 60 s before it."""
    return "0" if order.expires_ns is None else str(order.expires_ns // SECOND + 60)


def trade_message(
    trade: ev.Trade, *, recipient: str, role: str, status: str, ts_ns: int,
    who: Callable[[str], tuple[str, str]], outcome: Callable[[str], str],
) -> str:
    """A ``trade`` message for ``recipient`` (an API key), the ``role`` it played (TAKER or MAKER),
    in ``status`` as of ``ts_ns``. ``who(owner)`` is an owner's (API key, own address): the wallet of
    an order that names none."""
    taker_key, taker_own = who(trade.taker_owner)
    maker_key, maker_own = who(trade.maker_owner)
    taker_wallet, maker_wallet = trade.taker_wallet or taker_own, trade.maker_wallet or maker_own
    return dumps({
        "event_type": "trade", "type": "TRADE", "id": trade.trade_id, "taker_order_id": trade.taker_order_id,
        "market": trade.market, "asset_id": trade.taker_token, "side": trade.taker_side.value,
        "size": format_micro(trade.size), "fee_rate_bps": "0", "price": format_micro(trade.taker_price),
        "status": status, "match_time": str(trade.ts_ns // SECOND), "last_update": str(ts_ns // SECOND),
        "outcome": outcome(trade.taker_token), "bucket_index": 0, "owner": taker_key, "trade_owner": recipient,
        "maker_address": taker_wallet, "transaction_hash": transaction_hash(trade.trade_id),
        "maker_orders": [{
            "order_id": trade.maker_order_id, "owner": maker_key, "maker_address": maker_wallet,
            "matched_amount": format_micro(trade.size), "price": format_micro(trade.maker_price),
            "fee_rate_bps": "0", "asset_id": trade.maker_token, "outcome": outcome(trade.maker_token),
            "side": trade.maker_side.value,
        }],
        "trader_side": role, "timestamp": str(ts_ns // 1_000_000),
    })


def trade_item(text: str) -> dict[str, Any]:
    """A ``trade`` message as a ``/data/trades`` item."""
    message = json.loads(text)
    return {key: message[key] for key in TRADE_ITEM_KEYS}

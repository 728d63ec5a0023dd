"""The order side of the simulated venue's REST answers, rendered as the venue sends them: a
``/data/orders`` item (every key of the sample fixtures/polymarket/rest/http_open_orders_page.json),
the ``POST /order`` answer, and the venue's pages (``next_cursor``: a base64 offset, ``MA==`` the
first page, ``LTE=`` after the last).

An open order is ``LIVE`` whether or not it has been partly matched (the sample's second order);
its ``expiration`` is the signed order's, in seconds (``"0"`` but for GTD), and ``created_at``
whole seconds. A post answer names what was matched on arrival: ``makingAmount`` is what the
order gave (pUSD for a BUY, shares for a SELL), ``takingAmount`` what it got, with the fills'
trade ids and their settlement transactions.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Sequence

from mmbot.model import MarketInfo, Side, format_micro, notional, notional_down
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.refusals import VenueRefusal

SECOND = 1_000_000_000
GTD_MARGIN_S = 60  # a GTD order's life ends this long before its stated expiration
FIRST_CURSOR, LAST_CURSOR = "MA==", "LTE="
PAGE_SIZE = 500  # items a page of /data/orders or /data/trades holds


def open_order(order: ev.OrderView, info: MarketInfo, wallet: str) -> dict[str, Any]:
    """A ``/data/orders`` item; ``wallet``: the owner's own address, for an order that names no maker."""
    return {
        "associate_trades": list(order.trade_ids), "id": order.order_id, "status": "LIVE", "market": order.market,
        "original_size": format_micro(order.original_size), "outcome": outcome(info, order.token),
        "maker_address": order.maker or wallet, "owner": order.owner, "price": format_micro(order.price),
        "side": order.side.value, "size_matched": format_micro(order.size_matched), "asset_id": order.token,
        "expiration": "0" if order.expires_ns is None else str(order.expires_ns // SECOND + GTD_MARGIN_S),
        "order_type": order.tif.value, "created_at": order.created_ns // SECOND,
    }


def outcome(info: MarketInfo, token: str) -> str:
    return info.outcomes[info.tokens.index(token)] if token in info.tokens else ""


def post_answer(result: ev.SubmitResult, side: Side, hashes: Sequence[str]) -> dict[str, Any]:
    """The answer to an accepted order: what it matched on arrival, if anything."""
    answer: dict[str, Any] = {"success": True, "errorMsg": "", "orderID": result.order_id, "status": result.status,
                              "makingAmount": "", "takingAmount": "", "transactionsHashes": [], "tradeIDs": []}
    if result.trades:
        shares = sum(t.size for t in result.trades)
        if side is Side.BUY:
            making, taking = sum(notional(t.taker_price, t.size) for t in result.trades), shares
        else:
            making, taking = shares, sum(notional_down(t.taker_price, t.size) for t in result.trades)
        answer |= {"makingAmount": format_micro(making), "takingAmount": format_micro(taking),
                   "transactionsHashes": list(dict.fromkeys(hashes)),
                   "tradeIDs": [t.trade_id for t in result.trades]}
    return answer


def refused_leg(error: str) -> dict[str, Any]:
    """A batch leg the venue refused: inside the batch's 200, as the venue answers it."""
    return {"success": False, "errorMsg": error, "orderID": "", "status": "", "makingAmount": "", "takingAmount": "",
            "transactionsHashes": [], "tradeIDs": []}


def page(items: Sequence[Any], cursor: str | None, size: int | None = None) -> dict[str, Any]:
    """One page of ``items`` from ``cursor`` (the first page when absent or ``MA==``), ``size``
    (``PAGE_SIZE``) items long."""
    size = size or PAGE_SIZE
    start = _offset(cursor or FIRST_CURSOR)
    chunk = list(items[start:start + size])
    end = start + len(chunk)
    following = base64.b64encode(str(end).encode()).decode() if end < len(items) else LAST_CURSOR
    return {"data": chunk, "next_cursor": following}


def _offset(cursor: str) -> int:
    if cursor == LAST_CURSOR:
        return 1 << 62  # past the end: an empty last page
    try:
        offset = int(base64.b64decode(cursor, validate=True).decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise VenueRefusal(400, "invalid next_cursor") from None
    if offset < 0:
        raise VenueRefusal(400, "invalid next_cursor")
    return offset

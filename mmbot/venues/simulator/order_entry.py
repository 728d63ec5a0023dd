"""An order as the venue reads a ``POST /order`` body, sans-IO: the signed V2 fields and the
unsigned ones around them (``orderType``, ``postOnly``, ``expiration``), and what its amounts
mean for each order type — with the venue's error strings.

Limit orders (GTC, GTD) name a price and a number of shares: a BUY gives ``makerAmount`` pUSD for
``takerAmount`` shares, a SELL the reverse, and the price (collateral ÷ shares) must be exact on the
market's grid. Market orders (FOK, FAK) name an amount and a worst price: a BUY spends
``makerAmount`` pUSD at prices up to ``makerAmount ÷ takerAmount`` (rounded down to the grid, since
the official builder rounds the share count down); a SELL sells ``makerAmount`` shares at prices
down to ``takerAmount ÷ makerAmount`` (rounded up to the grid). Amounts carry at most: shares 2
decimals and collateral the tick's price decimals + 2 on limit orders; 2 and 4 decimals on market
orders (the venue's precision errors). A marketable BUY must be worth at least $1.

GTD: ``expiration`` (unix seconds, outside the signed struct) must be more than
``GTD_MIN_AHEAD_S`` ahead of the venue's clock, and the order ends ``GTD_MARGIN_S`` before it (the
venue's security threshold). Any other order type must carry ``expiration`` 0.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from mmbot.model import ONE, Side, TimeInForce, format_micro
from mmbot.venues.polymarket.auth import OrderV2, SigningError
from mmbot.venues.simulator.events import INVALID_ORDER_EXPIRATION
from mmbot.venues.simulator.refusals import INVALID_ORDER, MIN_TICK, VenueRefusal

SECOND = 1_000_000_000
# The CLOB's own rule, as Polymarket confirmed it (py-sdk #44, 2026-05): more than a minute ahead,
# so that the order lives at all. Since 2026-07 their SDKs and docs ask for 3 minutes (checked on
# the client's side; whether the CLOB followed is unknown).
GTD_MIN_AHEAD_S = 60
GTD_MARGIN_S = 60  # a GTD order ends one minute before its stated expiration
MIN_MARKETABLE_BUY = ONE  # $1
MARKET_AMOUNT_PLACES = (2, 4)  # (maker, taker) decimals a FOK/FAK order may carry
SHARE_PLACES = 2
MARKETABLE = (TimeInForce.FOK, TimeInForce.FAK)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX = re.compile(r"0x[0-9a-fA-F]*")


@attrs.frozen
class Entry:
    """A ``POST /order`` body, read: the signed order and what comes with it."""

    order: OrderV2
    signature: str
    tif: TimeInForce
    post_only: bool
    expiration_s: int  # 0: none

    @property
    def market(self) -> bool:
        return self.tif in MARKETABLE


@attrs.frozen
class Terms:
    """What the engine is asked: a limit ``price`` (a market order's worst price) and ``size``
    shares, or for a market BUY the pUSD ``budget`` it spends (``size`` then only what the signed
    amounts name)."""

    price: int
    size: int
    budget: int | None = None


def parse(body: dict[str, Any]) -> Entry:
    """The body's order, or ``INVALID_ORDER_ERROR`` for a field missing or of the wrong form."""
    try:
        wire = body["order"]
        maker, signer, signature = str(wire["maker"]), str(wire["signer"]), str(wire.get("signature", ""))
        if not (_ADDRESS.fullmatch(maker) and _ADDRESS.fullmatch(signer) and _HEX.fullmatch(signature)):
            raise ValueError("not an address or not hex")
        order = OrderV2(
            salt=_whole(wire["salt"]), maker=maker, signer=signer, token_id=_whole(wire["tokenId"]),
            maker_amount=_whole(wire["makerAmount"]), taker_amount=_whole(wire["takerAmount"]),
            side=Side(wire["side"]), signature_type=_whole(wire["signatureType"]),
            timestamp_ms=_whole(wire["timestamp"]), metadata=str(wire["metadata"]), builder=str(wire["builder"]),
        )
        order.struct_hash()  # every field in its type's range
        tif = TimeInForce(body.get("orderType", "GTC"))
        post_only = body.get("postOnly", False)
        if not isinstance(post_only, bool):
            raise ValueError("postOnly")
        expiration = wire.get("expiration", "0")
        expiration_s = 0 if expiration is None else _whole(expiration)
    except (KeyError, TypeError, ValueError, SigningError):
        raise VenueRefusal(400, INVALID_ORDER) from None
    return Entry(order=order, signature=signature, tif=tif, post_only=post_only, expiration_s=expiration_s)


def expires_ns(entry: Entry, now_ns: int) -> int | None:
    """When a GTD order ends on the venue's clock (None for other types); refused unless the
    expiration is far enough ahead, or a non-GTD order carries one."""
    if entry.tif is not TimeInForce.GTD:
        if entry.expiration_s:
            raise VenueRefusal(400, INVALID_ORDER_EXPIRATION)
        return None
    if entry.expiration_s * SECOND <= now_ns + GTD_MIN_AHEAD_S * SECOND:
        raise VenueRefusal(400, INVALID_ORDER_EXPIRATION)
    return (entry.expiration_s - GTD_MARGIN_S) * SECOND


def terms(entry: Entry, tick: int) -> Terms:
    """The engine's terms of ``entry`` on a market of ``tick``; the venue's refusal if its amounts
    are too precise or name no price on the grid."""
    order = entry.order
    maker, taker = order.maker_amount, order.taker_amount
    if maker <= 0 or taker <= 0:
        raise VenueRefusal(400, MIN_TICK)
    buying = order.side is Side.BUY
    if entry.market:
        maker_places, taker_places = MARKET_AMOUNT_PLACES
        if _places(maker) > maker_places or _places(taker) > taker_places:
            kind = "market buy" if buying else "market sell"
            raise VenueRefusal(400, _precision(kind, maker_places, taker_places))
        if buying:
            if maker < MIN_MARKETABLE_BUY:
                raise VenueRefusal(400, f"invalid amount for a marketable BUY order (${format_micro(maker)}),"
                                        " min size: $1")
            worst = maker * ONE // taker // tick * tick  # rounded down to the grid
            return Terms(price=worst, size=taker, budget=maker)
        worst = -(-taker * ONE // (maker * tick)) * tick  # rounded up to the grid
        return Terms(price=worst, size=maker)
    collateral_places = _places(tick) + 2
    shares, collateral = (taker, maker) if buying else (maker, taker)
    if _places(shares) > SHARE_PLACES or _places(collateral) > collateral_places:
        places = (collateral_places, SHARE_PLACES) if buying else (SHARE_PLACES, collateral_places)
        raise VenueRefusal(400, _precision("buy" if buying else "sell", *places))
    if collateral * ONE % shares:
        raise VenueRefusal(400, MIN_TICK)  # not a price on any grid
    return Terms(price=collateral * ONE // shares, size=shares)


def _precision(kind: str, maker_places: int, taker_places: int) -> str:
    return (f"invalid amounts, the {kind} orders maker amount supports a max accuracy of {maker_places}"
            f" decimals, taker amount a max of {taker_places} decimals")


def _places(micro: int) -> int:
    """Decimals of a micro-unit amount once trailing zeros go: 1_250_000 -> 2."""
    places = 6
    while places and micro % 10 == 0:
        micro //= 10
        places -= 1
    return places


def _whole(value: Any) -> int:
    """A whole number sent as a JSON number or a string of digits (never a bool or a fraction)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"not a whole number: {value!r}")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("not ASCII digits")
    return int(value)

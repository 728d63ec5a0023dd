"""The CLOB's own views of its markets, rendered from the engine, sans-IO.

``market`` is a ``GET /markets`` item (and ``GET /markets/{condition_id}``), key for key as the
captured page (``rest/markets.json``); ``simplified`` the ``/simplified-markets`` item;
``compact`` the ``GET /clob-markets/{condition_id}`` answer the official client primes its
caches from; ``by_token`` the ``/markets-by-token/{token_id}`` answer. The paged lists use the
CLOB's cursors: the offset of the next page in base64 (``MA==`` first), ``LTE=`` at the end.

What the venue leaves zero or false the compact form leaves out (a capture shows no ``nr``,
``ao``, ``rfqe``, ``itode`` or ``oas`` on a market where they are false or zero); numbers are JSON
numbers there and in ``market`` (sizes, ticks, token prices), strings nowhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime, timezone
from typing import Any, Callable, Sequence, TypeVar

from mmbot.model import ONE, MarketInfo, format_micro
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.engine import Engine

SECOND = 1_000_000_000
PAGE_LIMIT = 100  # markets a page, as the captured page shows
FIRST_CURSOR = "MA=="
END_CURSOR = "LTE="
# What the venue reports as maker and taker base fee (bps) of a market that charges a fee,
# whatever its rate: a V1-era authorization value; the real rate is in ``fd``.
FEE_MARKET_BASE_FEE = 1000
NO_REWARDS = {"rates": None, "min_size": 0, "max_spread": 0}
T = TypeVar("T")


class BadCursor(ValueError):
    """A ``next_cursor`` that is not one the venue hands out."""


def number(micro: int) -> int | float:
    """A micro-unit amount as the JSON number the venue sends (5, 0.01)."""
    if micro % ONE == 0:
        return micro // ONE
    return float(format_micro(micro))  # float-ok: the venue sends a JSON number


def base_fee(info: MarketInfo) -> int:
    return FEE_MARKET_BASE_FEE if info.fee_rate else 0


def question_id(info: MarketInfo) -> str:
    return "0x" + hashlib.sha256(info.market.encode()).hexdigest()


def description(info: MarketInfo) -> str:
    """The text ``new_market`` carries for the market."""
    return (f'Simulated market. Resolves to "{info.outcomes[0]}" or "{info.outcomes[1]}" '
            "as the simulator's seeded world decides.")


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns // SECOND, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tokens(engine: Engine, info: MarketInfo) -> list[dict[str, Any]]:
    """Each outcome's token, its price (the winner's 1 once resolved; the book's midpoint while
    open, 0 with a side empty) and whether it won."""
    winner = engine.winner(info.market)
    tokens = []
    for token, outcome in zip(info.tokens, info.outcomes):
        if winner is not None:
            price = ONE if token == winner else 0
        else:
            bid, ask = engine.best(token)
            price = (bid + ask) // 2 if bid is not None and ask is not None else 0
        tokens.append({"token_id": token, "outcome": outcome, "price": number(price), "winner": token == winner})
    return tokens


def _open(engine: Engine, info: MarketInfo) -> bool:
    return engine.market_state(info.market) is ev.MarketState.OPEN


def market(engine: Engine, info: MarketInfo) -> dict[str, Any]:
    """A ``GET /markets`` item, in the captured page's key order."""
    accepting = _open(engine, info)
    qid = question_id(info)
    return {
        "enable_order_book": True, "active": True, "closed": not accepting, "archived": False,
        "accepting_orders": accepting, "accepting_order_timestamp": None,
        "minimum_order_size": number(info.min_size), "minimum_tick_size": number(engine.tick(info.market)),
        "condition_id": info.market, "question_id": qid, "question": info.question,
        "description": description(info), "market_slug": info.slug, "end_date_iso": _iso(info.end_ns),
        "game_start_time": None, "seconds_delay": 0, "fpmm": "", "maker_base_fee": base_fee(info),
        "taker_base_fee": base_fee(info), "notifications_enabled": True, "neg_risk": info.neg_risk,
        "neg_risk_market_id": qid if info.neg_risk else "", "neg_risk_request_id": "", "icon": "", "image": "",
        "rewards": dict(NO_REWARDS), "is_50_50_outcome": False, "tokens": _tokens(engine, info), "tags": [],
    }


def simplified(engine: Engine, info: MarketInfo) -> dict[str, Any]:
    """A ``/simplified-markets`` item."""
    accepting = _open(engine, info)
    return {"condition_id": info.market, "rewards": dict(NO_REWARDS), "tokens": _tokens(engine, info),
            "active": True, "closed": not accepting, "archived": False, "accepting_orders": accepting}


def compact(engine: Engine, info: MarketInfo) -> dict[str, Any]:
    """``GET /clob-markets/{condition_id}``: tokens ``t[{t, o}]``, condition ``c``, minimum size
    ``mos`` and tick ``mts``, base fees ``mbf``/``tbf`` and the fee curve ``fd{r, e, to}`` of a
    market that charges one, ``nr`` when neg-risk, ``ao`` while accepting orders."""
    answer: dict[str, Any] = {
        "t": [{"t": token, "o": outcome} for token, outcome in zip(info.tokens, info.outcomes)],
        "c": info.market, "mos": number(info.min_size), "mts": number(engine.tick(info.market)),
    }
    if info.fee_rate:
        answer["mbf"] = answer["tbf"] = base_fee(info)
        answer["fd"] = {"r": number(info.fee_rate), "e": info.fee_exponent, "to": True}
    if info.neg_risk:
        answer["nr"] = True
    if _open(engine, info):
        answer["ao"] = True
    return answer


def by_token(info: MarketInfo) -> dict[str, str]:
    """``/markets-by-token/{token_id}``: the market and both its tokens, in outcome order."""
    return {"condition_id": info.market, "primary_token_id": info.tokens[0], "secondary_token_id": info.tokens[1]}


def encode_cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def decode_cursor(cursor: str) -> int | None:
    """The offset a cursor stands for; None for the end (``LTE=``). Raises ``BadCursor``."""
    try:
        offset = int(base64.b64decode(cursor.encode("ascii"), validate=True).decode("ascii"))
    except (UnicodeError, ValueError, binascii.Error):
        raise BadCursor(cursor) from None
    if offset == -1:
        return None
    if offset < 0:
        raise BadCursor(cursor)
    return offset


def page(items: Sequence[T], cursor: str, render: Callable[[T], dict[str, Any]], *,
         limit: int = PAGE_LIMIT) -> dict[str, Any]:
    """One page of ``items`` from ``cursor`` (the first without one), each rendered by ``render``
    (only those on the page: a long run lists thousands): ``{data, next_cursor, limit, count}``,
    the captured page's key order, ``count`` being the items on this page. Raises ``BadCursor``."""
    offset = decode_cursor(cursor or FIRST_CURSOR)
    data = [] if offset is None else [render(item) for item in items[offset:offset + limit]]
    more = offset is not None and offset + limit < len(items)
    return {"data": data, "next_cursor": encode_cursor(offset + limit) if more else END_CURSOR, "limit": limit,
            "count": len(data)}

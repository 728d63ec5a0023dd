"""Market discovery: a Gamma ``/markets`` listing turned into ``MarketInfo`` values (protocol §7).

Gamma sends ``clobTokenIds`` and ``outcomes`` as JSON-encoded strings (re-serialised copies carry
real arrays: both are accepted), the tick and minimum size as JSON numbers (read through their
decimal text, never a binary float), and end dates in more than one format.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

from mmbot.model import MarketInfo, parse_micro


class DiscoveryError(Exception):
    """A listing entry that cannot describe a tradeable market."""


def _list(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise DiscoveryError(f"{field}: not a JSON list: {value[:60]!r}") from None
    if not isinstance(value, list):
        raise DiscoveryError(f"{field}: expected a list, got {type(value).__name__}")
    return [str(v) for v in value]


def _micro(value: Any, field: str) -> int:
    try:
        return parse_micro(str(value))
    except ValueError:
        raise DiscoveryError(f"{field}: not a decimal: {value!r}") from None


def _end_ns(text: str | None) -> int | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None  # an end date in a format we do not know: no scheduled end is the safe reading
    return int(moment.timestamp()) * 1_000_000_000


def tradeable(entry: dict[str, Any]) -> bool:
    """``enableOrderBook && acceptingOrders && !closed`` (protocol §7)."""
    return bool(entry.get("enableOrderBook")) and bool(entry.get("acceptingOrders")) and not entry.get("closed")


def market_info(entry: dict[str, Any]) -> MarketInfo:
    tokens = _list(entry.get("clobTokenIds"), "clobTokenIds")
    outcomes = _list(entry.get("outcomes", '["Yes", "No"]'), "outcomes")
    if len(tokens) != 2 or not all(tokens) or len(outcomes) != 2:
        raise DiscoveryError(f"market {entry.get('conditionId')!r}: expected two tokens and two outcomes")
    fees = entry.get("feeSchedule") or {}
    return MarketInfo(
        market=str(entry["conditionId"]),
        tokens=(tokens[0], tokens[1]),
        outcomes=(outcomes[0], outcomes[1]),
        tick=_micro(entry.get("orderPriceMinTickSize", "0.01"), "orderPriceMinTickSize"),
        min_size=_micro(entry.get("orderMinSize", 5), "orderMinSize"),
        end_ns=_end_ns(entry.get("endDate")),
        fee_rate=_micro(fees.get("rate", 0), "feeSchedule.rate") if entry.get("feesEnabled") else 0,
        fee_exponent=int(fees.get("exponent", 1)),
        neg_risk=bool(entry.get("negRisk")),
        slug=str(entry.get("slug", "")),
        question=str(entry.get("question", "")),
    )


async def list_markets(client: httpx.AsyncClient) -> tuple[list[MarketInfo], list[str]]:
    """Every tradeable market of ``GET /markets`` on the client's base URL, and the problems
    with the entries that were skipped (one line each)."""
    response = await client.get("/markets")
    response.raise_for_status()
    markets, problems = [], []
    for entry in response.json():
        if not isinstance(entry, dict) or not tradeable(entry):
            continue
        try:
            markets.append(market_info(entry))
        except (DiscoveryError, KeyError) as exc:
            problems.append(str(exc))
    return markets, problems

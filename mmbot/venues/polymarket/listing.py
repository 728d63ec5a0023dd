"""The market listing as an operator and the selection rule read it: Gamma's ``/markets`` entries
with what ``MarketInfo`` leaves out (liquidity, volume, Gamma's own best bid and ask, the event's
series, tags, the interval window's start), fetched page by page; and both books' tops from the
CLOB (``POST /books``).

Gamma sends liquidity and volume as decimal strings or JSON numbers with more than six places
("30335.869374999984"): read through their decimal text and cut to micro-units, for display and
for the ``min_liquidity`` filter only. Tags come with ``include_tag=true`` (the market's own
``tags``) or on its embedded events; the series slug is the event's ``seriesSlug`` or its
``series[].slug``.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Iterable

import attrs
import httpx

from mmbot.model import MarketInfo
from mmbot.venues.polymarket.discovery import DiscoveryError, market_info, parse_end_ns, tradeable

PAGE = 100  # Gamma caps ``limit`` at 100
MAX_OFFSET = 10_000  # past this Gamma answers 422 (``/markets/keyset`` would go on)
BOOKS_PER_CALL = 500  # the CLOB's ``POST /books`` limit


@attrs.frozen(kw_only=True)
class Listed:
    """One tradeable market as the listing tells it. Amounts in micro-units; None where Gamma
    does not say."""

    info: MarketInfo
    market_id: str = ""  # Gamma's numeric id
    liquidity: int | None = None  # pUSD
    volume: int | None = None  # pUSD
    best_bid: int | None = None  # Gamma's view of the first outcome's book
    best_ask: int | None = None
    series: tuple[str, ...] = ()  # the events' series slugs
    tags: tuple[str, ...] = ()  # tag slugs
    start_ns: int | None = None  # an interval market's window start (``eventStartTime``)

    @property
    def spread(self) -> int | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid


def amount(value: Any) -> int | None:
    """A Gamma amount (string or number, any number of places) in micro-units, cut toward zero;
    None for a missing or unreadable one."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number) > 10**15:
        return None
    return int((number * 1_000_000).to_integral_value(rounding=ROUND_DOWN))


def _slugs(items: Any) -> list[str]:
    """Slugs from a list of Gamma objects ({slug, label, ...}) or plain strings."""
    found = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            slug = item.get("slug") or item.get("label")
            if slug:
                found.append(str(slug))
        elif isinstance(item, str) and item:
            found.append(item)
    return found


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def listed_entry(entry: dict[str, Any]) -> Listed:
    """A Gamma ``/markets`` entry as a ``Listed`` (raises ``DiscoveryError``/``KeyError`` as
    ``market_info`` does for one that cannot be traded)."""
    info = market_info(entry)
    events = [e for e in entry.get("events") or () if isinstance(e, dict)]
    series = [str(e["seriesSlug"]) for e in events if e.get("seriesSlug")]
    for event in events:
        series += _slugs(event.get("series"))
    tags = _slugs(entry.get("tags"))
    for event in events:
        tags += _slugs(event.get("tags"))
    liquidity = amount(entry.get("liquidityNum", entry.get("liquidity")))
    volume = amount(entry.get("volumeNum", entry.get("volume")))
    return Listed(
        info=info, market_id=str(entry.get("id", "")), liquidity=liquidity, volume=volume,
        best_bid=amount(entry.get("bestBid")), best_ask=amount(entry.get("bestAsk")),
        series=_unique(series), tags=_unique(tags),
        start_ns=parse_end_ns(entry.get("eventStartTime") or next((e.get("startTime") for e in events), None)),
    )


async def fetch_listing(client: httpx.AsyncClient) -> tuple[list[Listed], list[str]]:
    """Every tradeable market of the listing at the client's base URL (Gamma, or the simulator's
    ``/gamma``), page by page, and one line per entry skipped as unreadable. Raises
    ``httpx.HTTPError`` (or ``ValueError`` for a body that is not JSON) as the listing fails."""
    found: dict[str, Listed] = {}
    problems: list[str] = []
    offset = 0
    while offset <= MAX_OFFSET:
        response = await client.get("/markets", params={"active": "true", "closed": "false", "limit": str(PAGE),
                                                         "offset": str(offset), "include_tag": "true"})
        response.raise_for_status()
        page = response.json()
        if not isinstance(page, list):
            raise ValueError(f"{response.url}: expected a list of markets, got {type(page).__name__}")
        fresh = 0
        for entry in page:
            if not isinstance(entry, dict) or not tradeable(entry):
                continue
            try:
                listed = listed_entry(entry)
            except (DiscoveryError, KeyError, TypeError) as exc:
                problems.append(str(exc))
                continue
            if listed.info.market not in found:
                found[listed.info.market] = listed
                fresh += 1
        if len(page) < PAGE or not fresh:  # the last page (or a listing that ignores offset)
            break
        offset += PAGE
    return list(found.values()), problems


def book_top(book: dict[str, Any]) -> tuple[int | None, int | None]:
    """A CLOB ``/book`` body's best bid and best ask (levels in any order; an empty side is None)."""
    def prices(side: str) -> list[int]:
        found = []
        for level in book.get(side) or ():
            price = amount(level.get("price")) if isinstance(level, dict) else None
            size = amount(level.get("size")) if isinstance(level, dict) else None
            if price is not None and size:
                found.append(price)
        return found

    bids, asks = prices("bids"), prices("asks")
    return (max(bids) if bids else None), (min(asks) if asks else None)


async def book_tops(client: httpx.AsyncClient, tokens: list[str]) -> dict[str, tuple[int | None, int | None]]:
    """Each token's (best bid, best ask) from the CLOB at the client's base URL (``POST /books``;
    a token the CLOB does not know is left out)."""
    tops: dict[str, tuple[int | None, int | None]] = {}
    for at in range(0, len(tokens), BOOKS_PER_CALL):
        batch = tokens[at : at + BOOKS_PER_CALL]
        response = await client.post("/books", json=[{"token_id": token} for token in batch])
        response.raise_for_status()
        books = response.json()
        for book in books if isinstance(books, list) else ():
            if isinstance(book, dict) and book.get("asset_id") in batch:
                tops[str(book["asset_id"])] = book_top(book)
    return tops

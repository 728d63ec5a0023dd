"""The Gamma-like listing, under ``/gamma`` (real Gamma is a host of its own; the CLOB's
``/markets`` is another list, ``clob_markets``): ``/gamma/markets`` and ``/gamma/events``, one
event per market. Resolved markets stay listed, closed, until the venue forgets them
(``retention``).

Entries carry what Gamma's do (``../shared/fixtures/polymarket/gamma/gamma_market.json``): besides
``LiveVenue.gamma_market``'s fields, the book's liquidity (``liquidity`` a decimal string,
``liquidityNum`` a number), Gamma's ``bestBid``/``bestAsk``/``spread``/``lastTradePrice`` of the
first outcome (numbers), the embedded ``events`` — for an Up/Down window its series
(``seriesSlug``, ``series[]``, e.g. ``btc-up-or-down-5m``) and ``startTime`` — and, for an Up/Down
window, ``eventStartTime``. ``include_tag=true`` adds the market's ``tags`` ({id, label, slug}).

Queries as Gamma's: ``condition_ids`` (repeated), ``slug`` (repeated), ``closed`` (``/markets``
alone lists every market here, closed ones too, as the tests rely on), ``active``, and
``limit``/``offset`` paging (no limit unless asked).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.model import MarketInfo, format_micro
from mmbot.venues.simulator.venue import LiveVenue

PREFIX = "/gamma"
MAX_LIMIT = 100  # Gamma caps ``limit`` here
UPDOWN = re.compile(r"^(?P<asset>[a-z]+)-updown-(?P<label>\w+)-(?P<start>\d+)$")
ASSET_NAMES = {"btc": "Bitcoin", "eth": "Ethereum", "sol": "Solana", "xrp": "XRP", "doge": "Dogecoin"}
# The simulator's plain markets (``generate.PLAIN_MARKETS``) by slug stem: their Gamma tag.
PLAIN_TAGS = {
    "incumbent-governor-re-elected": "politics", "central-bank-cut-next-meeting": "finance",
    "home-side-win-cup-final": "sports", "flagship-phone-before-october": "tech",
    "named-storm-landfall-this-week": "weather", "sequel-gross-500m-worldwide": "culture",
}
TAG_IDS = {"crypto": "21", "up-or-down": "102127", "politics": "2", "finance": "120", "sports": "1", "tech": "1401",
           "weather": "84", "culture": "596", "recurring": "101757"}


def _number(micro: int | None) -> float | None:  # float-ok: Gamma sends these as JSON numbers
    return None if micro is None else int(micro) / 1e6  # float-ok


def _iso(t_s: int) -> str:
    return datetime.fromtimestamp(t_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tag(slug: str) -> dict[str, str]:
    return {"id": TAG_IDS.get(slug, "0"), "label": slug.replace("-", " ").title(), "slug": slug}


class GammaListing:
    def __init__(self, venue: LiveVenue) -> None:
        self._venue = venue

    def routes(self) -> list[Route]:
        return [Route(f"{PREFIX}/markets", self.markets), Route(f"{PREFIX}/events", self.events)]

    # ------------------------------------------------------------------ one entry

    def _liquidity(self, info: MarketInfo) -> int:
        """pUSD resting on both tokens' books (price × size, every level)."""
        engine = self._venue.engine
        total = 0
        for token in info.tokens:
            bids, asks = engine.book_snapshot(token)
            total += sum(price * size // 1_000_000 for price, size in (*bids, *asks))
        return total

    def _series(self, info: MarketInfo) -> tuple[str, str, int] | None:
        """(series slug, asset name, window start in seconds) of an Up/Down window, else None."""
        found = UPDOWN.match(info.slug)
        if found is None:
            return None
        asset, label = found["asset"], found["label"]
        return f"{asset}-up-or-down-{label}", ASSET_NAMES.get(asset, asset.upper()), int(found["start"])

    def _tags(self, info: MarketInfo) -> list[dict[str, str]]:
        series = self._series(info)
        if series is not None:
            return [_tag("crypto"), _tag("up-or-down"), _tag("recurring"), _tag(series[1].lower())]
        stem = re.sub(r"-\d+$", "", info.slug)
        return [_tag(PLAIN_TAGS[stem])] if stem in PLAIN_TAGS else []

    def _event(self, entry: dict[str, Any], info: MarketInfo) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": str(int(entry["id"]) + 100_000), "ticker": info.slug, "slug": info.slug, "title": info.question,
            "active": True, "closed": entry["closed"], "archived": False, "endDate": entry["endDate"],
            "enableOrderBook": True, "negRisk": info.neg_risk, "liquidity": entry["liquidityNum"],
        }
        series = self._series(info)
        if series is not None:
            slug, name, start_s = series
            label = slug.rsplit("-", 1)[1]
            asset = slug.split("-")[0]
            event.update(startTime=_iso(start_s), seriesSlug=slug, series=[{
                "id": str(10_000 + (list(ASSET_NAMES).index(asset) if asset in ASSET_NAMES else 999)),
                "ticker": slug, "slug": slug, "title": f"{name} Up or Down {label}", "seriesType": "single",
                "recurrence": label, "active": True, "closed": False, "archived": False,
            }])
        return event

    def _entry(self, info: MarketInfo, *, include_tag: bool) -> dict[str, Any]:
        venue = self._venue
        entry = venue.gamma_market(info)
        liquidity = self._liquidity(info)
        entry["liquidity"] = format_micro(liquidity)
        entry["liquidityNum"] = _number(liquidity)
        entry["liquidityClob"] = _number(liquidity)
        if not entry["closed"]:
            bid, ask = venue.best(info.tokens[0])
            entry["bestBid"], entry["bestAsk"] = _number(bid or 0), _number(ask if ask is not None else 1_000_000)
            entry["spread"] = _number((1_000_000 if ask is None else ask) - (bid or 0))
            last = venue.prints.last(info.tokens[0])
            if last is not None:
                entry["lastTradePrice"] = _number(last[0])
        series = self._series(info)
        if series is not None:
            entry["eventStartTime"] = _iso(series[2])
        entry["events"] = [self._event(entry, info)]
        if include_tag:
            entry["tags"] = self._tags(info)
        return entry

    def _listed(self, request: Request) -> list[dict[str, Any]]:
        include_tag = request.query_params.get("include_tag") == "true"
        return [self._entry(info, include_tag=include_tag) for info in self._venue.markets()]

    # ------------------------------------------------------------------ the endpoints

    async def markets(self, request: Request) -> Response:
        params = request.query_params
        listed = self._listed(request)
        if wanted := params.getlist("condition_ids"):
            listed = [m for m in listed if m["conditionId"] in wanted]
        if slugs := params.getlist("slug"):
            listed = [m for m in listed if m["slug"] in slugs]
        closed = params.get("closed")
        if closed is not None:
            listed = [m for m in listed if m["closed"] == (closed == "true")]
        if params.get("active") == "false":
            listed = []  # every market here is active until forgotten
        try:
            offset = max(int(params.get("offset", "0")), 0)
            limit = min(int(params["limit"]), MAX_LIMIT) if "limit" in params else None
        except ValueError:
            return JSONResponse({"error": "limit and offset must be whole numbers"}, status_code=422)
        listed = listed[offset:] if limit is None else listed[offset : offset + limit]
        return JSONResponse(listed)

    async def events(self, request: Request) -> Response:
        return JSONResponse([
            {**m["events"][0], "markets": [m]} for m in self._listed(request)
        ])

"""The CLOB's market lookups (no auth): the paged lists ``/markets``, ``/simplified-markets``,
``/sampling-markets`` and ``/sampling-simplified-markets`` (``?next_cursor=``), one market by
condition id (``/markets/{condition_id}``, and the compact ``/clob-markets/{condition_id}``) and
a token's market (``/markets-by-token/{token_id}``): what the official client reads to build
market orders. Every market the venue still knows is listed, in listing order, until it is
forgotten (``retention``); the sampling lists hold those accepting orders."""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.model import MarketInfo
from mmbot.venues.simulator import clob_views as views
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.venue import LiveVenue

CONDITION_ID = re.compile(r"0x[0-9a-fA-F]{64}")
TOKEN_ID = re.compile(r"[0-9]{1,100}")
MARKET_NOT_FOUND = "market not found"


class ClobMarkets:
    def __init__(self, venue: LiveVenue) -> None:
        self._venue = venue

    def routes(self) -> list[Route]:
        return [
            Route("/markets", self._listing(views.market, sampling=False)),
            Route("/simplified-markets", self._listing(views.simplified, sampling=False)),
            Route("/sampling-markets", self._listing(views.market, sampling=True)),
            Route("/sampling-simplified-markets", self._listing(views.simplified, sampling=True)),
            Route("/markets/{condition_id}", self.market), Route("/clob-markets/{condition_id}", self.clob_market),
            Route("/markets-by-token/{token_id}", self.by_token),
        ]

    def _listing(self, view: Callable[[Engine, MarketInfo], dict[str, Any]], *,
                 sampling: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            engine = self._venue.engine
            listed = [m for m in self._venue.markets()
                      if not sampling or engine.market_state(m.market) is ev.MarketState.OPEN]
            try:
                return JSONResponse(views.page(listed, request.query_params.get("next_cursor", ""),
                                               lambda info: view(engine, info)))
            except views.BadCursor:
                return error(400, "invalid next_cursor")

        return endpoint

    def _market(self, condition_id: str) -> MarketInfo | Response:
        if not CONDITION_ID.fullmatch(condition_id):
            return error(400, "Invalid condition id")
        try:
            return self._venue.engine.market_of_id(condition_id.lower())
        except KeyError:
            return error(404, MARKET_NOT_FOUND)

    async def market(self, request: Request) -> Response:
        found = self._market(request.path_params["condition_id"])
        return found if isinstance(found, Response) else JSONResponse(views.market(self._venue.engine, found))

    async def clob_market(self, request: Request) -> Response:
        found = self._market(request.path_params["condition_id"])
        return found if isinstance(found, Response) else JSONResponse(views.compact(self._venue.engine, found))

    async def by_token(self, request: Request) -> Response:
        token = request.path_params["token_id"]
        if not TOKEN_ID.fullmatch(token):
            return error(400, "Invalid token id")
        if not self._venue.engine.has_token(token):
            return error(404, MARKET_NOT_FOUND)
        return JSONResponse(views.by_token(self._venue.engine.market_of(token)))

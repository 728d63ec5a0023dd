"""Public market data: ``/ok``, ``/time``, ``/book``, ``POST /books``, ``/price``, ``/midpoint``,
``/tick-size`` and ``/neg-risk``, answered from the venue's books as the CLOB answers them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.model import Side, format_micro
from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.venue import LiveVenue

NO_BOOK = "No orderbook exists for the requested token id"


class MarketData:
    def __init__(self, venue: LiveVenue) -> None:
        self._venue = venue

    def routes(self) -> list[Route]:
        return [
            Route("/ok", self.ok), Route("/time", self.time), Route("/book", self.book),
            Route("/books", self.books, methods=["POST"]), Route("/price", self.price),
            Route("/midpoint", self.midpoint), Route("/tick-size", self.tick_size), Route("/neg-risk", self.neg_risk),
        ]

    def _known(self, request: Request) -> str | None:
        token = request.query_params.get("token_id", "")
        return token if self._venue.engine.has_token(token) else None

    async def ok(self, request: Request) -> Response:
        return JSONResponse("OK")

    async def time(self, request: Request) -> Response:
        return Response(str(self._venue.now_ns // 1_000_000_000), media_type="text/plain")

    async def book(self, request: Request) -> Response:
        found = self._venue.book(request.query_params.get("token_id", ""))
        return JSONResponse(found) if found is not None else error(404, NO_BOOK)

    async def books(self, request: Request) -> Response:
        try:
            wanted = [str(item["token_id"]) for item in await request.json()]
        except (ValueError, KeyError, TypeError):
            return error(400, "Invalid payload")
        return JSONResponse([b for t in wanted if (b := self._venue.book(t)) is not None])  # unknown: omitted

    async def price(self, request: Request) -> Response:
        token, side = self._known(request), request.query_params.get("side", "").upper()
        if token is None:
            return error(404, NO_BOOK)
        if side not in (Side.BUY.value, Side.SELL.value):
            return error(400, "Invalid side")
        bid, ask = self._venue.best(token)
        best = bid if side == Side.BUY.value else ask
        return JSONResponse({"price": "0" if best is None else format_micro(best)})

    async def midpoint(self, request: Request) -> Response:
        token = self._known(request)
        if token is None:
            return error(404, NO_BOOK)
        bid, ask = self._venue.best(token)
        return JSONResponse({"mid": format_micro((bid + ask) // 2) if bid is not None and ask is not None else "0"})

    async def tick_size(self, request: Request) -> Response:
        token = self._known(request)
        if token is None:
            return error(404, NO_BOOK)
        return JSONResponse({"minimum_tick_size": self._venue.tick(token) / 1e6})  # float-ok: the venue sends a number

    async def neg_risk(self, request: Request) -> Response:
        token = self._known(request)
        if token is None:
            return error(404, NO_BOOK)
        return JSONResponse({"neg_risk": self._venue.engine.market_of(token).neg_risk})

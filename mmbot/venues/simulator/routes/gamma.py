"""The Gamma-like listing, under ``/gamma`` (real Gamma is a host of its own; the CLOB's
``/markets`` is another list, ``clob_markets``): ``/gamma/markets`` (filtered by
``condition_ids`` and ``closed``) and ``/gamma/events``, one event per market. Resolved markets
stay listed, closed, until the venue forgets them (``retention``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.venues.simulator.venue import LiveVenue

PREFIX = "/gamma"


class GammaListing:
    def __init__(self, venue: LiveVenue) -> None:
        self._venue = venue

    def routes(self) -> list[Route]:
        return [Route(f"{PREFIX}/markets", self.markets), Route(f"{PREFIX}/events", self.events)]

    def _listed(self) -> list[dict[str, Any]]:
        return [self._venue.gamma_market(info) for info in self._venue.markets()]

    async def markets(self, request: Request) -> Response:
        listed = self._listed()
        if wanted := request.query_params.getlist("condition_ids"):
            listed = [m for m in listed if m["conditionId"] in wanted]
        closed = request.query_params.get("closed")
        if closed is not None:
            listed = [m for m in listed if m["closed"] == (closed == "true")]
        return JSONResponse(listed)

    async def events(self, request: Request) -> Response:
        return JSONResponse([
            {"id": m["id"], "slug": m["slug"], "title": m["question"], "active": m["active"],
             "closed": m["closed"], "markets": [m]}
            for m in self._listed()
        ])

"""API keys and the order version: ``GET /version``, ``POST /auth/api-key`` and
``GET /auth/derive-api-key`` (L1: a ClobAuth signature gets the address its credentials)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.trading import SimTrading, VenueRefusal

ORDER_VERSION = 2


class AuthRoutes:
    def __init__(self, trading: SimTrading, *, seed: int) -> None:
        """``seed``: the simulator's, from which each address's credentials are derived."""
        self._trading = trading
        self._seed = seed

    def routes(self) -> list[Route]:
        return [Route("/version", self.version), Route("/auth/api-key", self.api_key, methods=["POST"]),
                Route("/auth/derive-api-key", self.api_key)]

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": ORDER_VERSION})

    async def api_key(self, request: Request) -> Response:
        try:
            creds = self._trading.l1_account({k.lower(): v for k, v in request.headers.items()}, seed=self._seed)
        except VenueRefusal as refusal:
            return error(refusal.status, refusal.error)
        return JSONResponse({"apiKey": creds.api_key, "secret": creds.secret.reveal(),
                             "passphrase": creds.passphrase.reveal()})

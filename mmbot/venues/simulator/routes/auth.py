"""API keys and the order version: ``GET /version``; ``POST /auth/api-key`` and ``GET
/auth/derive-api-key`` (L1: a fresh ClobAuth signature gets the address its credentials for the
nonce it signed, and the account exists from then); ``GET /auth/api-keys`` (L2: the address's
keys) and ``DELETE /auth/api-key`` (L2: the key signing the request stops working)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.clock import TrioClock
from mmbot.venues.simulator import access
from mmbot.venues.simulator.access import Account, ApiKeys
from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.trading import SimTrading, VenueRefusal

ORDER_VERSION = 2


class AuthRoutes:
    def __init__(self, trading: SimTrading, *, keys: ApiKeys, clock: TrioClock) -> None:
        """``keys``: which key each address holds; ``clock``: the server's, which signed
        timestamps must be near."""
        self._trading = trading
        self._keys = keys
        self._clock = clock

    def routes(self) -> list[Route]:
        return [Route("/version", self.version), Route("/auth/api-key", self.api_key, methods=["POST"]),
                Route("/auth/derive-api-key", self.api_key), Route("/auth/api-keys", self.api_keys),
                Route("/auth/api-key", self.delete_api_key, methods=["DELETE"])]

    def _now_s(self) -> int:
        return self._clock.now_ns() // 1_000_000_000

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": ORDER_VERSION})

    async def api_key(self, request: Request) -> Response:
        try:
            address, nonce = access.l1_address(_headers(request), self._now_s())
        except VenueRefusal as refusal:
            return error(refusal.status, refusal.error)
        creds = self._keys.derive(address, nonce)
        self._trading.add_account(address, creds)
        return JSONResponse({"apiKey": creds.api_key, "secret": creds.secret.reveal(),
                             "passphrase": creds.passphrase.reveal()})

    async def _account(self, request: Request) -> Account:
        return self._trading.authenticate(_headers(request), request.method, request.url.path, await request.body(),
                                          now_s=self._now_s())

    async def api_keys(self, request: Request) -> Response:
        try:
            account = await self._account(request)
        except VenueRefusal as refusal:
            return error(refusal.status, refusal.error)
        keys = self._keys.keys_of(account.address)
        return JSONResponse({"apiKeys": keys if account.creds.api_key in keys else [*keys, account.creds.api_key]})

    async def delete_api_key(self, request: Request) -> Response:
        try:
            account = await self._account(request)
        except VenueRefusal as refusal:
            return error(refusal.status, refusal.error)
        account.revoked = True
        self._keys.delete(account.address, account.creds.api_key)
        return JSONResponse("OK")


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}

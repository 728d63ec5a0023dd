"""The relayer's HTTP face, mounted under ``/relayer`` (``SimUrls.relayer``): Polymarket's relayer
endpoints over ``relayer_state.SimRelayer`` (polymarket-onchain.md §4).

- ``POST /submit`` (relayer API key): a ``WALLET-CREATE`` or ``WALLET`` transaction →
  ``{"transactionID", "state"}``; a refusal is ``{"error": text}`` with its status. With the
  ``relayer_lost_reply`` fault the submit is carried out and answered 502.
- ``GET /v1/account/transactions/{id}`` → ``{state, transaction_hash, transaction_id, error_msg}``
  (404 for an id it does not hold); ``GET /transaction?id=`` → a JSON array of camelCase
  transactions (empty for an unknown id); ``GET /transactions`` (relayer API key) → the key
  holder's.
- ``GET /v1/account/transactions/params?address=<owner>&type=WALLET`` → ``{"address": <its
  deposit wallet>, "nonce"}``; ``GET /nonce?address=<owner>&type=WALLET`` → ``{"nonce"}``;
  ``GET /deployed?address=<wallet>&type=WALLET`` → ``{"deployed": bool}``. These reads need no key.
- ``POST /admin/relayer-key`` ``{"address": owner}`` → ``{"key", "address"}``: the owner's relayer
  API key, for the operator (loopback and the admin token, as ``/admin/*``).

A body that is not JSON, or not of the expected shape, is a 400 with the reason, never a 500.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from mmbot.ports import Clock
from mmbot.venues.simulator.refusals import VenueRefusal
from mmbot.venues.simulator.relayer_state import SimRelayer
from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.routes.admin import admin_only
from mmbot.venues.simulator.trading import json_body

_TYPES = ("WALLET", "")  # what ``type=`` the reads answer for (deposit wallets only)


class RelayerRoutes:
    def __init__(self, *, relayer: SimRelayer, clock: Clock, admin_token: str) -> None:
        """``clock``: the server's (transactions are timed on it)."""
        self._relayer = relayer
        self._clock = clock
        self._token = admin_token.encode()

    def routes(self) -> list[Mount]:
        return [Mount("/relayer", routes=[
            Route("/submit", self._refusing(self.submit), methods=["POST"]),
            Route("/v1/account/transactions/params", self._refusing(self.params)),
            Route("/v1/account/transactions/{transaction_id}", self._refusing(self.status)),
            Route("/transaction", self._refusing(self.transaction)),
            Route("/transactions", self._refusing(self.transactions)),
            Route("/nonce", self._refusing(self.nonce)),
            Route("/deployed", self._refusing(self.deployed)),
            Route("/admin/relayer-key", admin_only(self.relayer_key, self._token), methods=["POST"]),
        ])]

    def _refusing(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except VenueRefusal as refusal:
                return error(refusal.status, refusal.error)

        return endpoint

    def _owner(self, request: Request) -> str:
        return self._relayer.keys.owner_of({k.lower(): v for k, v in request.headers.items()})

    async def submit(self, request: Request) -> Response:
        owner = self._owner(request)
        answer = self._relayer.submit(owner, json_body(await request.body()), self._clock.now_ns())
        if self._relayer.faults.take("lost_reply"):  # done, but the answer is lost
            return error(502, "Bad Gateway")
        return JSONResponse(answer)

    async def status(self, request: Request) -> Response:
        tx = self._relayer.transaction(request.path_params["transaction_id"])
        if tx is None:
            return error(404, "transaction not found")
        return JSONResponse(tx.snake())

    async def transaction(self, request: Request) -> Response:
        tx = self._relayer.transaction(request.query_params.get("id", ""))
        return JSONResponse([] if tx is None else [tx.camel()])

    async def transactions(self, request: Request) -> Response:
        return JSONResponse([tx.camel() for tx in self._relayer.transactions_of(self._owner(request))])

    async def params(self, request: Request) -> Response:
        return JSONResponse(self._relayer.wallet_params(_wallet_query(request)))

    async def nonce(self, request: Request) -> Response:
        return JSONResponse({"nonce": self._relayer.wallet_params(_wallet_query(request))["nonce"]})

    async def deployed(self, request: Request) -> Response:
        return JSONResponse({"deployed": self._relayer.deployed(_wallet_query(request))})

    async def relayer_key(self, request: Request) -> Response:
        try:
            body: Any = json_body(await request.body())
            address = body["address"] if isinstance(body, dict) else None
            if not isinstance(address, str):
                raise VenueRefusal(400, 'expected {"address": "0x…"}')
            key, owner = self._relayer.relayer_key_for(address)
        except VenueRefusal as refusal:
            return error(400, f"relayer-key: {refusal.error}")
        except ValueError:  # not an address
            return error(400, 'relayer-key: expected {"address": "0x…"}')
        return JSONResponse({"key": key, "address": owner})


def _wallet_query(request: Request) -> str:
    query = request.query_params
    if query.get("type", "") not in _TYPES:
        raise VenueRefusal(400, "type: the simulator's relayer knows deposit wallets only (type=WALLET)")
    address = query.get("address", "")
    if not address:
        raise VenueRefusal(400, "expected ?address=")
    return address

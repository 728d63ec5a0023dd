"""The operator's endpoints (not the venue's): ``POST /admin/fault`` injects a fault, ``GET
/admin/stats`` shows the server's counters and what it holds, ``GET /admin/account?address=``
(or ``?api_key=``) shows an account as the venue's books have it, and ``/admin/settings`` reads
(GET) or changes (POST) the settings that may change while running (``retain_s``), and ``POST
/admin/fund`` {"address", "amount": pUSD, "pol"?: POL} deposits pUSD (and POL for gas) to an
address on the simulated chain — a trading account's balance if the address is its owner's or
one of the owner's wallets (``chain_state``).

Each answers only a client on loopback (else 403) that sends the server's admin token as
``Authorization: Bearer <token>`` (else 401), before anything of the request is read.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.venues.polymarket.auth import parse_address
from mmbot.venues.simulator.chain_state import SimChain
from mmbot.venues.simulator.faults import Fault
from mmbot.venues.simulator.retention import Horizon
from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.trading import SimTrading, VenueRefusal

MAX_RETAIN_S = 10 * 365 * 86_400
_AMOUNT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,18})?")


class AdminRoutes:
    def __init__(self, *, inject: Callable[[Fault], dict[str, Any]], statistics: Callable[[], dict[str, Any]],
                 trading: SimTrading, horizon: Horizon, token: str, chain: SimChain | None = None) -> None:
        """``token``: what ``Authorization: Bearer`` must carry; ``chain``: what ``/admin/fund`` funds."""
        self._chain = chain
        self._inject = inject
        self._statistics = statistics
        self._trading = trading
        self._horizon = horizon
        self._token = token.encode()

    def routes(self) -> list[Route]:
        guarded = self._guarded
        return [Route("/admin/fault", guarded(self.fault), methods=["POST"]),
                Route("/admin/stats", guarded(self.stats)),
                Route("/admin/account", guarded(self.account)),
                Route("/admin/settings", guarded(self.settings), methods=["GET", "POST"]),
                Route("/admin/fund", guarded(self.fund), methods=["POST"])]

    def _guarded(self, endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        return admin_only(endpoint, self._token)

    async def fault(self, request: Request) -> Response:
        try:
            body = await request.json()
            kind, value = body["kind"], body.get("value", "")
            if not isinstance(kind, str) or not (isinstance(value, str) or type(value) is int):
                raise ValueError("expected {\"kind\": text, \"value\": text or a whole number}")
            fault = Fault(kind=kind, value=str(value))
            injected = self._inject(fault)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return error(400, f"fault: {exc}"[:300])
        return JSONResponse(injected)

    async def fund(self, request: Request) -> Response:
        if self._chain is None:
            return error(404, "fund: this server has no chain")
        try:
            body = await request.json()
            address = parse_address(body["address"])
            amount = _decimal(body["amount"], 6)
            pol = _decimal(body.get("pol", "0"), 18)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return error(400, f"fund: expected {{\"address\": 0x-address, \"amount\": pUSD, \"pol\"?: POL}}: {exc}"[:300])
        self._chain.mint_pusd(address, amount)
        self._chain.fund_pol(address, pol)
        return JSONResponse({"address": address, "pusd": str(self._chain.pusd(address)),
                             "pol_wei": str(self._chain.pol(address))})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self._statistics())

    async def account(self, request: Request) -> Response:
        query = request.query_params
        api_key, address = query.get("api_key", ""), query.get("address", "")
        if not api_key and not address:
            return error(400, "expected ?address= or ?api_key=")
        try:
            account = self._trading.account(api_key=api_key, address=address)
        except VenueRefusal as refusal:
            return error(refusal.status, refusal.error)
        return JSONResponse(self._trading.truth(account))

    async def settings(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await request.json()
                retain_s = body["retain_s"]
            except (ValueError, KeyError, TypeError) as exc:
                return error(400, f"settings: expected {{\"retain_s\": seconds}}: {type(exc).__name__}")
            if type(retain_s) is not int or not 0 <= retain_s <= MAX_RETAIN_S:
                return error(400, f"settings: retain_s: expected whole seconds from 0 to {MAX_RETAIN_S}")
            self._horizon.retain_s = retain_s
        return JSONResponse({"retain_s": self._horizon.retain_s})


def _decimal(text: object, places: int) -> int:
    """A non-negative decimal string (``"12.5"``) in units of 10**-places; ``ValueError`` otherwise."""
    if not isinstance(text, str) or not _AMOUNT.fullmatch(text):
        raise ValueError(f"an amount is a decimal string, got {str(text)[:40]!r}")
    whole, _, fraction = text.partition(".")
    if len(fraction) > places:
        raise ValueError(f"at most {places} decimal places")
    return int(whole) * 10**places + int(fraction.ljust(places, "0") or 0)


def admin_only(endpoint: Callable[[Request], Awaitable[Response]], token: bytes) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` answering only a loopback client (else 403) that sends ``token`` as
    ``Authorization: Bearer`` (else 401), checked before anything of the request is read."""
    async def checked(request: Request) -> Response:
        if not loopback(request.client.host if request.client else ""):
            return error(403, "admin: only from loopback")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1"), token):
            return JSONResponse({"error": "admin: expected Authorization: Bearer <the token mmbot sim printed>"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await endpoint(request)

    return checked


def loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback

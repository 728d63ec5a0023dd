"""The operator's endpoints (not the venue's): ``POST /admin/fault`` injects a fault, ``GET
/admin/stats`` shows the server's counters and what it holds, ``GET /admin/account?address=``
(or ``?api_key=``) shows an account as the venue's books have it, and ``/admin/settings`` reads
(GET) or changes (POST) the settings that may change while running (``retain_s``)."""

from __future__ import annotations

from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.venues.simulator.faults import Fault
from mmbot.venues.simulator.retention import Horizon
from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.trading import SimTrading, VenueRefusal

MAX_RETAIN_S = 10 * 365 * 86_400


class AdminRoutes:
    def __init__(self, *, inject: Callable[[Fault], dict[str, Any]], statistics: Callable[[], dict[str, Any]],
                 trading: SimTrading, horizon: Horizon) -> None:
        self._inject = inject
        self._statistics = statistics
        self._trading = trading
        self._horizon = horizon

    def routes(self) -> list[Route]:
        return [Route("/admin/fault", self.fault, methods=["POST"]), Route("/admin/stats", self.stats),
                Route("/admin/account", self.account), Route("/admin/settings", self.settings, methods=["GET", "POST"])]

    async def fault(self, request: Request) -> Response:
        try:
            body = await request.json()
            fault = Fault(kind=str(body["kind"]), value=str(body.get("value", "")))
            injected = self._inject(fault)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return error(400, f"fault: {exc}"[:300])
        return JSONResponse(injected)

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

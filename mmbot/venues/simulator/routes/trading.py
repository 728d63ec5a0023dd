"""Signed trading (L2-authenticated): orders, cancels, heartbeats, open orders, trades and balances.

Every request passes the fault gate first (``faults.TradingFaults``: 429 for a throttled order
post, 425 for anything but a read during an engine restart), then the L2 check over the exact
body, then its handler; an order post whose answer is to be lost is carried out and answered
502. A body of the wrong shape is a 400, never a crash.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.clock import TrioClock
from mmbot.venues.simulator.faults import TradingFaults
from mmbot.venues.simulator.heartbeats import StaleHeartbeat
from mmbot.venues.simulator.order_views import page
from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.trading import MAX_BATCH, MAX_CANCELS, Account, SimTrading, VenueRefusal, json_body
from mmbot.venues.simulator.venue import LiveVenue

Handler = Callable[[Account, Any, Request], Any]  # an answer to send as JSON, or a Response
ORDER_POSTS = ("/order", "/orders")


class TradingRoutes:
    def __init__(self, *, trading: SimTrading, faults: TradingFaults, venue: LiveVenue, clock: TrioClock) -> None:
        """``clock``: the server's (heartbeats and restarts are timed on it); orders live on the
        ``venue``'s world time."""
        self._trading = trading
        self._faults = faults
        self._venue = venue
        self._clock = clock

    def routes(self) -> list[Route]:
        signed = self._signed
        return [
            Route("/order", signed(self.post_order), methods=["POST"]),
            Route("/orders", signed(self.post_orders), methods=["POST"]),
            Route("/order", signed(self.cancel_order), methods=["DELETE"]),
            Route("/orders", signed(self.cancel_orders), methods=["DELETE"]),
            Route("/cancel-all", signed(self.cancel_all), methods=["DELETE"]),
            Route("/cancel-market-orders", signed(self.cancel_market), methods=["DELETE"]),
            Route("/heartbeats", signed(self.heartbeat), methods=["POST"]),
            Route("/v1/heartbeats", signed(self.heartbeat_v1), methods=["POST"]),
            Route("/data/orders", signed(self.open_orders)),
            Route("/data/order/{order_id}", signed(self.order)),
            Route("/data/trades", signed(self.trades)),
            Route("/balance-allowance", signed(self.balance_allowance)),
            Route("/balance-allowance/update", signed(self.update_balance_allowance)),
        ]

    def _signed(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            order_post = request.method == "POST" and request.url.path in ORDER_POSTS
            if order_post and self._faults.take_throttle():
                return JSONResponse({"error": "Too Many Requests"}, status_code=429, headers={"Retry-After": "1"})
            if self._clock.now_ns() < self._faults.restart_until_ns and request.method != "GET":
                return error(425, "Too Early")
            try:
                headers = {k.lower(): v for k, v in request.headers.items()}
                account = self._trading.authenticate(headers, request.method, request.url.path, raw,
                                                     now_s=self._clock.now_ns() // 1_000_000_000)
                answer = handler(account, json_body(raw) if raw else None, request)
            except VenueRefusal as refusal:
                return JSONResponse({"error": refusal.error, **refusal.body}, status_code=refusal.status)
            if order_post and self._faults.take_lose():  # done, but the answer is lost
                return error(502, "Bad Gateway")
            return answer if isinstance(answer, Response) else JSONResponse(answer)

        return endpoint

    # ------------------------------------------------------------------ orders and cancels

    def post_order(self, account: Account, body: Any, request: Request) -> Any:
        return self._trading.post(account, _shaped(body, dict), self._venue.now_ns)

    def post_orders(self, account: Account, body: Any, request: Request) -> Any:
        bodies = _shaped(body, list)
        if not bodies:
            raise VenueRefusal(400, "Invalid payload")
        if len(bodies) > MAX_BATCH:
            raise VenueRefusal(400, f"Too many orders in payload, max allowed: {MAX_BATCH}")
        return self._trading.post_batch(account, bodies, self._venue.now_ns)

    def cancel_order(self, account: Account, body: Any, request: Request) -> Any:
        return self._trading.cancel(account, [_text(_shaped(body, dict), "orderID", required=True)], self._venue.now_ns)

    def cancel_orders(self, account: Account, body: Any, request: Request) -> Any:
        ids = _shaped(body, list)
        if len(ids) > MAX_CANCELS or not all(isinstance(i, str) for i in ids):
            raise VenueRefusal(400, f"expected at most {MAX_CANCELS} order ids")
        return self._trading.cancel(account, ids, self._venue.now_ns)

    def cancel_all(self, account: Account, body: Any, request: Request) -> Any:
        return self._trading.cancel_all(account, self._venue.now_ns)

    def cancel_market(self, account: Account, body: Any, request: Request) -> Any:
        wanted = _shaped(body, dict)
        market, asset_id = _text(wanted, "market"), _text(wanted, "asset_id")
        if not market and not asset_id:
            raise VenueRefusal(400, "expected a market or an asset_id")
        return self._trading.cancel_all(account, self._venue.now_ns, market=market, asset_id=asset_id)

    # ------------------------------------------------------------------ heartbeats

    def heartbeat(self, account: Account, body: Any, request: Request) -> Any:
        """The older path: with a body it chains as ``/v1/heartbeats`` does; without one it is the
        legacy heartbeat, which restarts the chain."""
        beats, key, now = self._trading.heartbeats, account.creds.api_key, self._clock.now_ns()
        if body is None:
            beats.legacy(key, now)
            return {"status": "ok"}
        try:
            return {"status": "ok", "heartbeat_id": beats.beat(key, _text(_shaped(body, dict), "heartbeat_id"), now)}
        except StaleHeartbeat as stale:
            return JSONResponse({"error": "invalid heartbeat id", "heartbeat_id": stale.current}, status_code=400)

    def heartbeat_v1(self, account: Account, body: Any, request: Request) -> Any:
        """Every official client sends ``{"heartbeat_id": ...}``; without a body it is a 400 (the
        body-less heartbeat is ``/heartbeats``)."""
        beats, key, now = self._trading.heartbeats, account.creds.api_key, self._clock.now_ns()
        echoed = _text(_shaped(body, dict), "heartbeat_id")
        try:
            return {"heartbeat_id": beats.beat(key, echoed, now)}
        except StaleHeartbeat as stale:
            return JSONResponse({"error_msg": "Invalid Heartbeat ID", "heartbeat_id": stale.current}, status_code=400)

    # ------------------------------------------------------------------ reads

    def open_orders(self, account: Account, body: Any, request: Request) -> Any:
        """``GET /data/orders``: a page of the account's resting orders (``order_views.page``)."""
        query = request.query_params
        orders = self._trading.open_orders(account, market=query.get("market", ""),
                                           asset_id=query.get("asset_id", ""), order_id=query.get("id", ""))
        return page(orders, query.get("next_cursor"))

    def order(self, account: Account, body: Any, request: Request) -> Any:
        """``GET /data/order/{id}``: the order while it rests; ``null`` once it has ended, as the
        venue forgets finished orders there (and for an id it never had)."""
        return JSONResponse(self._trading.order(account, request.path_params["order_id"]))

    def trades(self, account: Account, body: Any, request: Request) -> Any:
        query = request.query_params
        found = self._trading.trades(account, _whole(query.get("after")), before_s=_whole(query.get("before")),
                                     market=query.get("market", ""), asset_id=query.get("asset_id", ""),
                                     trade_id=query.get("id", ""), maker_address=query.get("maker_address", ""))
        return page(found, query.get("next_cursor"))

    def balance_allowance(self, account: Account, body: Any, request: Request) -> Any:
        query = request.query_params
        return self._trading.balance_allowance(account, query.get("asset_type", ""), query.get("token_id", ""))

    def update_balance_allowance(self, account: Account, body: Any, request: Request) -> Any:
        """``GET /balance-allowance/update``: the venue re-reads the chain and answers an empty body;
        the simulator's balances are always current."""
        query = request.query_params
        self._trading.balance_allowance(account, query.get("asset_type", ""), query.get("token_id", ""))
        return Response(status_code=200)


def _shaped(body: Any, kind: type) -> Any:
    if not isinstance(body, kind):
        raise VenueRefusal(400, "Invalid payload")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name, None if required else "")
    if not isinstance(value, str):
        raise VenueRefusal(400, f"Invalid payload: {name}")
    return value


def _whole(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise VenueRefusal(400, f"not an integer: {text[:20]!r}") from None

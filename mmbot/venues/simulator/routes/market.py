"""Public market data (no auth), answered from the venue's books and trade prints as the CLOB
answers them: ``/ok``, ``/time``; one token's ``/book``, ``/price``, ``/midpoint``, ``/spread``,
``/last-trade-price``, ``/tick-size``, ``/neg-risk`` and ``/fee-rate`` (``?token_id=``); the
batches ``POST /books``, ``/midpoints``, ``/prices``, ``/spreads`` and ``/last-trades-prices``
(``[{"token_id": …, "side": …}]``, at most 500; unknown tokens silently omitted); and
``/prices-history``. The CLOB's market lookups (``clob_markets``) come with these routes.

A token id that is missing is a 400 ``Invalid token id``; one the venue does not know a 404
``No orderbook exists for the requested token id``.
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.model import ONE, Side, format_micro
from mmbot.venues.simulator.clob_views import base_fee
from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.routes.clob_markets import ClobMarkets
from mmbot.venues.simulator.routes.prices_history import prices_history
from mmbot.venues.simulator.venue import LiveVenue

NO_BOOK = "No orderbook exists for the requested token id"
INVALID_TOKEN = "Invalid token id"
MAX_BATCH = 500  # token ids a batch may name
# /last-trade-price of a token that never traded
NO_TRADE = {"price": "0.5", "side": ""}


class MarketData:
    def __init__(self, venue: LiveVenue) -> None:
        self._venue = venue

    def routes(self) -> list[Route]:
        return [
            Route("/ok", self.ok), Route("/time", self.time), Route("/book", self.book),
            Route("/books", self._batch(self._books), methods=["POST"]), Route("/price", self.price),
            Route("/prices", self._batch(self._prices), methods=["POST"]),
            Route("/midpoint", self._one(self._mid)),
            Route("/midpoints", self._batch(self._midpoints), methods=["GET", "POST"]),
            Route("/spread", self._one(self._spread)),
            Route("/spreads", self._batch(self._spreads), methods=["POST"]),
            Route("/last-trade-price", self._one(self._last_trade)),
            Route("/last-trades-prices", self._batch(self._last_trades), methods=["GET", "POST"]),
            Route("/prices-history", self.prices_history),
            Route("/tick-size", self.tick_size), Route("/neg-risk", self.neg_risk),
            Route("/fee-rate", self.fee_rate), Route("/fee-rate/{token_id}", self.fee_rate),
            *ClobMarkets(self._venue).routes(),
        ]

    # ------------------------------------------------------------------ reading the books

    def _known(self, token: str) -> bool:
        return self._venue.engine.has_token(token)

    def _token(self, request: Request) -> str | Response:
        """The request's known token, or the refusal to send."""
        token = request.query_params.get("token_id", "")
        if not token:
            return error(400, INVALID_TOKEN)
        return token if self._known(token) else error(404, NO_BOOK)

    def _best(self, token: str, side: str) -> str:
        """``/price``'s answer: BUY reads the best bid, SELL the best ask; "0" for an empty side."""
        bid, ask = self._venue.best(token)
        best = bid if side == Side.BUY.value else ask
        return "0" if best is None else format_micro(best)

    def _mid(self, token: str) -> dict[str, str]:
        bid, ask = self._venue.best(token)
        return {"mid": format_micro((bid + ask) // 2) if bid is not None and ask is not None else "0"}

    def _spread(self, token: str) -> dict[str, str]:
        """Best ask minus best bid, an empty side counting as 0 (bids) or 1 (asks), as the market
        channel's ``best_bid``/``best_ask`` show one."""
        bid, ask = self._venue.best(token)
        return {"spread": format_micro((ONE if ask is None else ask) - (bid or 0))}

    def _last_trade(self, token: str) -> dict[str, str]:
        last = self._venue.prints.last(token)
        return dict(NO_TRADE) if last is None else {"price": format_micro(last[0]), "side": last[1].value}

    # ------------------------------------------------------------------ one token

    def _one(self, answer: Callable[[str], dict[str, str]]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            token = self._token(request)
            return token if isinstance(token, Response) else JSONResponse(answer(token))

        return endpoint

    async def ok(self, request: Request) -> Response:
        return JSONResponse("OK")

    async def time(self, request: Request) -> Response:
        return Response(str(self._venue.now_ns // 1_000_000_000), media_type="text/plain")

    async def book(self, request: Request) -> Response:
        token = self._token(request)
        return token if isinstance(token, Response) else JSONResponse(self._venue.book(token))

    async def price(self, request: Request) -> Response:
        token, side = self._token(request), request.query_params.get("side", "").upper()
        if isinstance(token, Response):
            return token
        if side not in (Side.BUY.value, Side.SELL.value):
            return error(400, "Invalid side")
        return JSONResponse({"price": self._best(token, side)})

    async def tick_size(self, request: Request) -> Response:
        token = self._token(request)
        if isinstance(token, Response):
            return token
        return JSONResponse({"minimum_tick_size": self._venue.tick(token) / 1e6})  # float-ok: the venue sends a number

    async def neg_risk(self, request: Request) -> Response:
        token = self._token(request)
        if isinstance(token, Response):
            return token
        return JSONResponse({"neg_risk": self._venue.engine.market_of(token).neg_risk})

    async def fee_rate(self, request: Request) -> Response:
        """``base_fee``: what the venue answers, 1000 for a market that charges a fee whatever its
        rate, 0 for one that does not (the rate and exponent are in ``/clob-markets``' ``fd``)."""
        token = request.path_params.get("token_id") or request.query_params.get("token_id", "")
        if not token:
            return error(400, INVALID_TOKEN)
        if not self._known(token):
            return error(404, "fee rate not found for market")
        return JSONResponse({"base_fee": base_fee(self._venue.engine.market_of(token))})

    async def prices_history(self, request: Request) -> Response:
        return prices_history(self._venue, request.query_params)

    # ------------------------------------------------------------------ batches

    def _batch(self, answer: Callable[[list[tuple[str, str]]], Any]) -> Callable[[Request], Any]:
        """A batch endpoint: the body ``[{"token_id": …, "side": …}]`` (or, on GET,
        ``?token_ids=a,b``) read into the known (token, side) pairs, in order."""
        async def endpoint(request: Request) -> Response:
            if request.method == "GET":
                wanted = [(t, "") for t in request.query_params.get("token_ids", "").split(",") if t]
            else:
                try:
                    wanted = _book_params(await request.json())
                except (ValueError, KeyError, TypeError):
                    return error(400, "Invalid payload")
            if len(wanted) > MAX_BATCH:
                return error(400, "Payload exceeds the limit")
            return JSONResponse(answer([(t, side) for t, side in wanted if self._known(t)]))

        return endpoint

    def _books(self, wanted: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return [book for t, _ in wanted if (book := self._venue.book(t)) is not None]

    def _prices(self, wanted: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
        """``{token: {side: price}}``: the side asked for, or both when none was."""
        answer: dict[str, dict[str, str]] = {}
        for token, side in wanted:
            for one in (side,) if side else (Side.BUY.value, Side.SELL.value):
                answer.setdefault(token, {})[one] = self._best(token, one)
        return answer

    def _midpoints(self, wanted: list[tuple[str, str]]) -> dict[str, str]:
        return {token: self._mid(token)["mid"] for token, _ in wanted}

    def _spreads(self, wanted: list[tuple[str, str]]) -> dict[str, str]:
        return {token: self._spread(token)["spread"] for token, _ in wanted}

    def _last_trades(self, wanted: list[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"token_id": token, **self._last_trade(token)} for token in dict.fromkeys(t for t, _ in wanted)]


def _book_params(body: Any) -> list[tuple[str, str]]:
    """``[{"token_id": "…", "side": "BUY"|"SELL"}]`` (side optional) as (token, side) pairs;
    anything else is a ``ValueError``."""
    if not isinstance(body, list):
        raise ValueError("expected a list")
    wanted = []
    for item in body:
        token, side = item["token_id"], item.get("side", "")
        if not isinstance(token, str) or not isinstance(side, str) or side.upper() not in ("", "BUY", "SELL"):
            raise ValueError("expected token ids and sides")
        wanted.append((token, side.upper()))
    return wanted

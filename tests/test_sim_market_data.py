"""Every public (no-auth) CLOB endpoint Polymarket's official client (py-clob-client-v2) calls,
against the simulator: books, prices, midpoints, spreads, last trades, price history, tick size,
neg-risk and fee rate, the CLOB's paged market lists and its market lookups by condition and by
token (what the client needs to build a market order), each answer checked against the venue's
state and, where one was captured, key for key and type for type against the sample.

The client is synchronous: its HTTP client is pointed at the simulator's Starlette app in
process (each request one ``trio.run``), so nothing moves between requests but what a test moves.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import BookParams, MarketOrderArgsV2, PricesHistoryParams
from py_clob_client_v2.exceptions import PolyApiException
from py_clob_client_v2.http_helpers import helpers
from py_clob_client_v2.order_utils.model.side import Side as TheirSide

from mmbot.cli_places import GAMMA_FOR, gamma_url
from mmbot.clock import TrioClock
from mmbot.model import ONE, Side, format_micro
from mmbot.venues.simulator import clob_views
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.price_history import TradePrints
from mmbot.venues.simulator.server import SimServer, SimSettings, SimUrls
from mmbot.venues.simulator.venue import LiveVenue
from tests.shapes import shape_errors

START_NS = 1_786_604_100 * 1_000_000_000
SECOND = 1_000_000_000
HOST = "http://sim"
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat's public test key
REST_SAMPLES = Path(__file__).resolve().parent / "fixtures" / "polymarket" / "rest"
NO_BOOK = {"error": "No orderbook exists for the requested token id"}
UNKNOWN_TOKEN = "1" * 77
UNKNOWN_MARKET = "0x" + "00" * 32


def sample(name: str) -> Any:
    return json.loads((REST_SAMPLES / name).read_text())


class InProcess(httpx.BaseTransport):
    """A synchronous transport answering from an ASGI app, one ``trio.run`` per request; it keeps
    the paths asked for."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.paths.append(request.url.path)

        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self._app), base_url=HOST) as http:
                return await http.request(request.method, request.url, headers=request.headers, content=body)

        answer = trio.run(send)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


class World:
    """A seeded venue five simulated minutes in (every Trade event after its warm-up kept), served
    in process."""

    def __init__(self, *, seed: int = 4, minutes: int = 5, warmup_s: int = 10) -> None:
        self.venue = LiveVenue(seed=seed, markets=4, start_ns=START_NS, warmup_s=warmup_s, interval_s=60)
        self.trades: list[ev.Trade] = []
        take = self.venue.engine.take_events

        def tee() -> list[ev.Event]:
            events = take()
            self.trades += [e for e in events if isinstance(e, ev.Trade)]
            return events

        self.venue.engine.take_events = tee  # type: ignore[method-assign]
        self.begin_ns = self.venue.now_ns
        for step in range(1, minutes * 600 + 1):
            self.venue.step(self.begin_ns + step * 100_000_000)
        self.server = SimServer(self.venue, settings=SimSettings(), clock=TrioClock(anchor_ns=START_NS))
        self.app = self.server.http_app()

    def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=InProcess(self.app), base_url=HOST) as http:
            return http.request(method, path, **kwargs)

    def open_tokens(self) -> list[str]:
        engine = self.venue.engine
        return [t for m in self.venue.markets() if engine.market_state(m.market) is ev.MarketState.OPEN
                for t in m.tokens if None not in engine.best(t)]


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture
def transport(world: World, monkeypatch: pytest.MonkeyPatch) -> InProcess:
    """The official client's HTTP client, answered by ``world``'s app."""
    inner = InProcess(world.app)
    monkeypatch.setattr(helpers, "_http_client", httpx.Client(transport=inner))
    return inner


@pytest.fixture
def client(transport: InProcess) -> ClobClient:
    return ClobClient(HOST, chain_id=137)


def refused(call: Any) -> tuple[int, Any]:
    with pytest.raises(PolyApiException) as caught:
        call()
    return caught.value.status_code, caught.value.error_msg


# --------------------------------------------------------------------------- books and prices


def test_books_prices_midpoints_and_spreads_are_the_venues_books(world: World, client: ClobClient) -> None:
    tokens = world.open_tokens()
    assert len(tokens) >= 4
    book_extra = frozenset({"min_order_size", "tick_size", "neg_risk", "last_trade_price"})  # protocol doc §4
    for token in tokens:
        bid, ask = world.venue.best(token)
        book = client.get_order_book(token)
        assert shape_errors(book, sample("book.json"), extra=book_extra) == []
        assert client.get_order_book_hash(dict(book)) == book["hash"]  # the client's recipe reproduces it
        assert book["bids"][-1]["price"] == format_micro(bid) and book["asks"][-1]["price"] == format_micro(ask)
        assert client.get_price(token, "BUY") == {"price": format_micro(bid)}  # BUY: the best bid
        assert client.get_price(token, "SELL") == {"price": format_micro(ask)}
        assert client.get_midpoint(token) == {"mid": format_micro((bid + ask) // 2)}
        assert client.get_spread(token) == {"spread": format_micro(ask - bid)}
        info = world.venue.engine.market_of(token)
        assert client.get_tick_size(token) == format_micro(world.venue.tick(token))
        assert client.get_neg_risk(token) is info.neg_risk is False
        assert client.get_fee_rate_bps(token) == 1000  # every simulated market charges a taker fee
        assert client.get_fee_exponent(token) == info.fee_exponent

    first, second = tokens[0], tokens[1]
    asked = [BookParams(first, "BUY"), BookParams(second, "SELL"), BookParams(UNKNOWN_TOKEN, "BUY")]
    assert client.get_prices(asked) == {first: {"BUY": format_micro(world.venue.best(first)[0])},
                                        second: {"SELL": format_micro(world.venue.best(second)[1])}}
    assert client.get_midpoints([BookParams(first), BookParams(UNKNOWN_TOKEN)]) == {
        first: client.get_midpoint(first)["mid"]}
    assert client.get_spreads([BookParams(first), BookParams(second)]) == {
        t: client.get_spread(t)["spread"] for t in (first, second)}
    assert [b["asset_id"] for b in client.get_order_books([BookParams(second), BookParams(UNKNOWN_TOKEN)])] == [second]


def test_unknown_tokens_and_bad_batches_get_the_venues_refusals(world: World, client: ClobClient) -> None:
    for call in (client.get_midpoint, client.get_spread, client.get_last_trade_price, client.get_order_book):
        assert refused(lambda call=call: call(UNKNOWN_TOKEN)) == (404, NO_BOOK)
    assert refused(lambda: client.get_fee_rate_bps(UNKNOWN_TOKEN)) == (404, {"error": "fee rate not found for market"})
    for path in ("/spread", "/last-trade-price", "/midpoint", "/book", "/fee-rate"):
        answer = world.raw("GET", path)
        assert (answer.status_code, answer.json()) == (400, {"error": "Invalid token id"}), path
    for path in ("/prices", "/midpoints", "/spreads", "/last-trades-prices", "/books"):
        for body in (5, {"token_id": "1"}, [7], [{"token_id": 7}], [{"token_id": "1", "side": "UP"}]):
            answer = world.raw("POST", path, json=body)
            assert (answer.status_code, answer.json()) == (400, {"error": "Invalid payload"}), (path, body)
        too_many = world.raw("POST", path, json=[{"token_id": "1"}] * 501)
        assert (too_many.status_code, too_many.json()) == (400, {"error": "Payload exceeds the limit"})


# --------------------------------------------------------------------------- trades


def test_last_trade_prices_and_the_price_history_follow_the_trades(world: World, client: ClobClient) -> None:
    last: dict[str, tuple[int, Side]] = {}
    minutes: dict[str, dict[int, int]] = {}
    for trade in world.trades:  # the oracle: what each trade printed, on which token
        prints = [(trade.taker_token, trade.taker_price, trade.taker_side)]
        if trade.maker_token != trade.taker_token:
            prints.append((trade.maker_token, trade.maker_price, trade.maker_side))
        for token, price, side in prints:
            last[token] = (price, side)
            minutes.setdefault(token, {})[trade.ts_ns // SECOND // 60 * 60] = price
    assert len(last) >= 4
    for token, (price, side) in last.items():
        assert client.get_last_trade_price(token) == {"price": format_micro(price), "side": side.value}
    asked = [BookParams(t) for t in last] + [BookParams(UNKNOWN_TOKEN)]
    assert client.get_last_trades_prices(asked) == [
        {"token_id": t, "price": format_micro(p), "side": s.value} for t, (p, s) in last.items()]

    start_s = -(-world.begin_ns // SECOND // 60) * 60  # the first whole minute the oracle saw
    now_s = world.venue.now_ns // SECOND
    for token, by_minute in minutes.items():
        expected = [{"t": t, "p": Decimal(format_micro(p))} for t, p in sorted(by_minute.items()) if t >= start_s]
        history = client.get_prices_history(PricesHistoryParams(market=token, start_ts=start_s, end_ts=now_s))
        assert [{"t": h["t"], "p": Decimal(str(h["p"]))} for h in history["history"]] == expected
        assert all(isinstance(h["t"], int) and isinstance(h["p"], float) for h in history["history"])
        every = client.get_prices_history(PricesHistoryParams(market=token, interval="1h", fidelity=2))["history"]
        times = [h["t"] for h in every]
        assert times == sorted(set(times)) and all(t % 120 == 0 for t in times)
        assert Decimal(str(every[-1]["p"])) == Decimal(format_micro(last[token][0]))
    quiet = client.get_prices_history(PricesHistoryParams(market=UNKNOWN_TOKEN, interval="max"))
    assert quiet == {"history": []}


@pytest.mark.parametrize("query", [
    {"interval": "1h"}, {"market": "1", "interval": "1h", "startTs": "5"}, {"market": "1"},
    {"market": "1", "interval": "2y"}, {"market": "1", "interval": "1h", "fidelity": "0"},
    {"market": "1", "startTs": "soon"}, {"market": "1", "startTs": "1.5"}, {"market": "1", "startTs": "1e999999"},
])
def test_a_malformed_price_history_query_is_a_400(world: World, query: dict[str, str]) -> None:
    answer = world.raw("GET", "/prices-history", params=query)
    assert answer.status_code == 400 and set(answer.json()) == {"error"}


def test_a_token_that_never_traded_has_the_venues_default_last_trade() -> None:
    quiet = World(minutes=0, warmup_s=0)
    token = quiet.venue.markets()[0].tokens[0]
    assert quiet.raw("GET", "/last-trade-price", params={"token_id": token}).json() == {"price": "0.5", "side": ""}


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 999), st.sampled_from(Side)), max_size=60))
def test_trade_prints_keep_the_last_price_of_each_minute_and_no_more_than_their_bound(
        prints: list[tuple[int, int, Side]]) -> None:
    kept = TradePrints(max_points=5)
    oracle: dict[int, int] = {}
    now_s = 0
    for gap_s, price, side in prints:
        now_s += gap_s
        trade = ev.Trade(trade_id="t", market="m", kind=ev.MatchKind.DIRECT, size=ONE, taker_order_id="a",
                         taker_owner="x", taker_token="1", taker_side=side, taker_price=price * 1000, taker_fee=0,
                         taker_size_matched=ONE, maker_order_id="b", maker_owner="y", maker_token="1",
                         maker_side=side, maker_price=price * 1000,
                         maker_size_matched=ONE, ts_ns=now_s * SECOND)
        kept.on_events([trade])
        oracle[now_s // 60 * 60] = price * 1000
    expected = sorted(oracle.items())[-5:]
    assert kept.history("1", start_s=0, end_s=now_s, fidelity_min=1) == expected
    assert kept.last("1") == ((prints[-1][1] * 1000, prints[-1][2]) if prints else None)
    kept.forget(["1"])
    assert kept.last("1") is None and kept.history("1", start_s=0, end_s=now_s, fidelity_min=1) == []


# --------------------------------------------------------------------------- market lookups


def test_the_clob_market_list_is_the_venues_paged_list(world: World, client: ClobClient) -> None:
    engine = world.venue.engine
    page = client.get_markets()
    captured = sample("markets.json")
    assert list(page) == list(captured) and page["next_cursor"] == "LTE=" and page["limit"] == 100
    assert page["count"] == len(page["data"]) == len(world.venue.markets())
    resolved = 0
    for item, info in zip(page["data"], world.venue.markets()):
        assert shape_errors(item, captured["data"][0]) == []
        assert list(item) == list(captured["data"][0])  # the captured page's key order
        assert shape_errors(item, sample("market.json")) == []
        state = engine.market_state(info.market)
        assert (item["condition_id"], item["market_slug"], item["question"]) == (info.market, info.slug, info.question)
        assert item["closed"] is (state is not ev.MarketState.OPEN) and item["accepting_orders"] is not item["closed"]
        assert Decimal(str(item["minimum_tick_size"])) == Decimal(format_micro(engine.tick(info.market)))
        assert item["minimum_order_size"] == 5 and item["taker_base_fee"] == item["maker_base_fee"] == 1000
        assert [(t["token_id"], t["outcome"]) for t in item["tokens"]] == list(zip(info.tokens, info.outcomes))
        winner = engine.winner(info.market)
        assert [t["winner"] for t in item["tokens"]] == [t == winner for t in info.tokens]
        if winner is not None:
            resolved += 1
            assert [t["price"] for t in item["tokens"]] == [int(t == winner) for t in info.tokens]
            assert shape_errors(item, sample("clob_market_closed_binary_accepting_false.json")) == []
        assert client.get_market(info.market) == item
    assert resolved >= 1  # resolved windows stay listed until the venue forgets them

    assert client.get_markets(next_cursor="LTE=") == {"data": [], "next_cursor": "LTE=", "limit": 100, "count": 0}
    simplified = client.get_simplified_markets()["data"]
    assert [set(m) for m in simplified] == [
        {"condition_id", "rewards", "tokens", "active", "closed", "archived", "accepting_orders"}] * len(page["data"])
    assert [(m["condition_id"], m["tokens"], m["closed"]) for m in simplified] == [
        (m["condition_id"], m["tokens"], m["closed"]) for m in page["data"]]
    open_ones = [m["condition_id"] for m in page["data"] if m["accepting_orders"]]
    assert [m["condition_id"] for m in client.get_sampling_markets()["data"]] == open_ones
    assert [m["condition_id"] for m in client.get_sampling_simplified_markets()["data"]] == open_ones
    for cursor in ("zz", "-", "LTI=", "bm9wZQ=="):  # not base64; "-2"; "nope"
        assert refused(lambda cursor=cursor: client.get_markets(next_cursor=cursor)) == (
            400, {"error": "invalid next_cursor"})


def test_pages_follow_base64_offsets_to_the_end() -> None:
    items = list(range(7))
    assert clob_views.encode_cursor(0) == "MA==" and clob_views.encode_cursor(100) == "MTAw"  # as captured
    seen, cursor, pages = [], "", 0
    while cursor != "LTE=":
        answer = clob_views.page(items, cursor, lambda n: {"n": n}, limit=3)
        assert answer["count"] == len(answer["data"]) <= 3 and answer["limit"] == 3
        seen += [d["n"] for d in answer["data"]]
        cursor, pages = answer["next_cursor"], pages + 1
    assert seen == items and pages == 3
    assert clob_views.page(items, clob_views.encode_cursor(9), lambda n: n, limit=3)["data"] == []
    with pytest.raises(clob_views.BadCursor):
        clob_views.page(items, "not a cursor", lambda n: n)


def test_lookups_by_condition_and_by_token_give_what_the_client_reads(world: World, client: ClobClient) -> None:
    engine = world.venue.engine
    for info in world.venue.markets():
        compact = client.get_clob_market_info(info.market)
        expected = {"t": [{"t": t, "o": o} for t, o in zip(info.tokens, info.outcomes)], "c": info.market, "mos": 5,
                    "mts": float(format_micro(engine.tick(info.market))),  # float-ok: the venue's number
                    "mbf": 1000, "tbf": 1000, "fd": {"r": float(format_micro(info.fee_rate)), "e": 1, "to": True}}
        if engine.market_state(info.market) is ev.MarketState.OPEN:
            expected["ao"] = True
        assert compact == expected  # no "nr": the venue leaves out what is false
        for token in info.tokens:
            assert world.raw("GET", f"/markets-by-token/{token}").json() == {
                "condition_id": info.market, "primary_token_id": info.tokens[0], "secondary_token_id": info.tokens[1]}
    assert refused(lambda: client.get_market(UNKNOWN_MARKET)) == (404, {"error": "market not found"})
    assert refused(lambda: client.get_market("nope")) == (400, {"error": "Invalid condition id"})
    assert refused(lambda: client.get_clob_market_info(UNKNOWN_MARKET)) == (404, {"error": "market not found"})
    assert world.raw("GET", f"/markets-by-token/{UNKNOWN_TOKEN}").status_code == 404
    assert world.raw("GET", "/markets-by-token/12ab").status_code == 400


def test_the_official_client_builds_market_orders_from_the_venues_lookups(
        world: World, transport: InProcess) -> None:
    client = ClobClient(HOST, chain_id=137, key=KEY)  # L1: builds and signs, posts nothing
    token = world.open_tokens()[0]
    info = world.venue.engine.market_of(token)
    _, asks = world.venue.engine.book_snapshot(token)
    spent, price = 0, None
    for level_price, size in asks:  # the level at which 10 pUSD is spent, best first
        spent += level_price * size // ONE
        if spent >= 10 * ONE:
            price = level_price
            break
    assert price is not None
    order = client.create_market_order(MarketOrderArgsV2(token_id=token, amount=10, side="BUY"))
    assert f"/markets-by-token/{token}" in transport.paths and f"/clob-markets/{info.market}" in transport.paths
    assert (order.tokenId, order.side, order.makerAmount) == (token, TheirSide.BUY, "10000000")
    assert abs(Decimal(order.takerAmount) / ONE - Decimal(10) * ONE / price) < Decimal("0.01")
    sell = client.create_market_order(MarketOrderArgsV2(token_id=token, amount=5, side="SELL"))
    assert (sell.side, sell.makerAmount) == (TheirSide.SELL, "5000000")


# --------------------------------------------------------------------------- the Gamma-like listing


def test_the_gamma_listing_lives_under_gamma_and_mmbot_finds_it_there(world: World) -> None:
    listed = world.raw("GET", "/gamma/markets").json()
    assert [m["conditionId"] for m in listed] == [m.market for m in world.venue.markets()]
    assert [e["markets"][0]["conditionId"] for e in world.raw("GET", "/gamma/events").json()] == [
        m["conditionId"] for m in listed]
    assert set(world.raw("GET", "/markets").json()) == {"data", "next_cursor", "limit", "count"}  # the CLOB's
    assert world.raw("GET", "/events").status_code == 404  # the CLOB has none
    urls = SimUrls(ws="ws://127.0.0.1:8081/ws/market", rest="http://127.0.0.1:8080")
    assert urls.gamma == "http://127.0.0.1:8080/gamma" and "Gamma listing   http://127.0.0.1:8080/gamma" in urls.lines()
    assert gamma_url(None, "http://127.0.0.1:8080/") == "http://127.0.0.1:8080/gamma"
    assert gamma_url(None, "https://clob.polymarket.com/") == GAMMA_FOR["https://clob.polymarket.com"]
    assert gamma_url("http://elsewhere", "http://127.0.0.1:8080") == "http://elsewhere"

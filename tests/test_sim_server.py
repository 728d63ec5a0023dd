"""The simulator's server beyond plain trading: heartbeats on both paths, the admin account (the
venue's truth for comparing a ledger), faults at any time, hostile requests, and what a long run
forgets. HTTP goes through the Starlette app in process (``httpx.ASGITransport``) unless sockets
are the point."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from typing import Any

import httpx
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbot.clock import TrioClock
from mmbot.config import Secret, VenueConfig
from mmbot.model import (
    ONE, MarketInfo, Side, SubmitRequest, TimeInForce, format_micro, notional_down, parse_micro,
)
from mmbot.venues.polymarket.auth import OrderSigner, OrderV2, SigningKey, order_amounts
from mmbot.venues.polymarket.gateway import LiveGateway
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.simulator.server import FAULT_KINDS, Fault, SimServer, SimSettings
from mmbot.venues.simulator.trading import DEFAULT_FUNDING, credentials_for
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000
KEY_A = SigningKey(Secret(value="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))
KEY_B = SigningKey(Secret(value="0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"))


class Rows:
    def record(self, kind, cid, payload=None, **_):  # noqa: ANN001, ANN201
        pass


class Sim:
    """A simulator whose world moves only when a test says so, with accounts A and B, served
    through its app in process."""

    def __init__(self, **settings: Any) -> None:
        self.venue = LiveVenue(seed=4, markets=4, start_ns=START_NS, warmup_s=10, interval_s=60)
        self.server = SimServer(self.venue, settings=SimSettings(**settings), clock=TrioClock(anchor_ns=START_NS))
        for key in (KEY_A, KEY_B):
            self.server.add_account(key.address, credentials_for(key.address))
        self.app = self.server.http_app()

    def client(self) -> httpx.AsyncClient:
        """In process, from loopback, with the admin token."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://sim",
                                 headers=self.server.admin_headers())

    def deliver(self, after_s: int = 0) -> None:
        """The engine's events to the user feed, and whatever is due ``after_s`` from now, without
        moving the world (no background trader acts)."""
        self.venue.user_feed.on_events(self.venue.engine.take_events())
        self.venue.user_feed.take(self.venue.now_ns + after_s * 1_000_000_000)


def order_body(venue: LiveVenue, key: SigningKey, token: str, side: Side, price: int, size: int,
               tif: TimeInForce = TimeInForce.GTC) -> dict[str, Any]:
    """A signed ``POST /order`` body (GTC ones post-only)."""
    info = venue.engine.market_of(token)
    maker_amount, taker_amount = order_amounts(side, format_micro(price), format_micro(size), format_micro(info.tick))
    order = OrderV2(salt=random.Random(price * size).getrandbits(48), maker=key.address, signer=key.address,
                    token_id=int(token), maker_amount=maker_amount, taker_amount=taker_amount, side=side, timestamp_ms=0)
    _, signature = OrderSigner(key).sign(order, neg_risk=info.neg_risk)
    return {"order": order.wire(signature), "owner": credentials_for(key.address).api_key, "orderType": tif.value,
            "postOnly": tif is TimeInForce.GTC}


async def signed(http: httpx.AsyncClient, key: SigningKey, method: str, path: str, body: Any = None, *,
                 raw: bytes | None = None, params: dict[str, str] | None = None) -> httpx.Response:
    """A request with L2 headers over exactly the bytes sent (``raw``, or ``body`` as JSON), signed
    now on the servers' clock (every server here is anchored at ``START_NS``)."""
    content = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    creds = credentials_for(key.address)
    now = str(TrioClock(anchor_ns=START_NS).now_ns() // 1_000_000_000)
    signature = base64.urlsafe_b64encode(hmac.new(base64.urlsafe_b64decode(creds.secret.reveal()),
                                                  f"{now}{method}{path}".encode() + content, hashlib.sha256).digest())
    headers = {"POLY_ADDRESS": key.address, "POLY_SIGNATURE": signature.decode(), "POLY_TIMESTAMP": now,
               "POLY_API_KEY": creds.api_key, "POLY_PASSPHRASE": creds.passphrase.reveal()}
    return await http.request(method, path, content=content or None, headers=headers, params=params)


def roomy(venue: LiveVenue) -> tuple[MarketInfo, str, int, int]:
    """An open market, a token of it and its best bid and ask, at least two ticks apart."""
    for info in venue.markets():
        for token in info.tokens:
            bid, ask = venue.best(token)
            if bid is not None and ask is not None and ask - bid >= 2 * info.tick:
                return info, token, bid, ask
    raise AssertionError("no book with room inside the spread")


# --------------------------------------------------------------------------- heartbeats


async def test_heartbeats_chain_on_v1_and_on_the_older_path_and_the_legacy_one_restarts_the_chain(autojump_clock):
    sim = Sim()
    async with sim.client() as http:
        first = await signed(http, KEY_A, "POST", "/v1/heartbeats", {"heartbeat_id": ""})
        assert first.status_code == 200 and set(first.json()) == {"heartbeat_id"}
        h1 = first.json()["heartbeat_id"]
        stale = await signed(http, KEY_A, "POST", "/v1/heartbeats", {"heartbeat_id": ""})
        assert (stale.status_code, stale.json()) == (400, {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": h1})
        older = await signed(http, KEY_A, "POST", "/heartbeats", {"heartbeat_id": h1})  # one chain, both paths
        assert older.status_code == 200 and older.json()["status"] == "ok"
        h2 = older.json()["heartbeat_id"]
        wrong = await signed(http, KEY_A, "POST", "/heartbeats", {"heartbeat_id": "bogus"})
        assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid heartbeat id", "heartbeat_id": h2})
        other = await signed(http, KEY_B, "POST", "/v1/heartbeats", {"heartbeat_id": ""})
        assert other.status_code == 200  # each API key has its own chain
        legacy = await signed(http, KEY_A, "POST", "/heartbeats")
        assert (legacy.status_code, legacy.json()) == (200, {"status": "ok"})
        assert (await signed(http, KEY_A, "POST", "/v1/heartbeats", {"heartbeat_id": h2})).json()["heartbeat_id"] == ""
        again = await signed(http, KEY_A, "POST", "/v1/heartbeats", {"heartbeat_id": ""})
        assert again.status_code == 200 and again.json()["heartbeat_id"] not in ("", h1, h2)


async def test_a_v1_heartbeat_keeps_orders_alive_and_its_lapse_cancels_them(autojump_clock):
    sim = Sim()
    info = sim.venue.markets()[0]
    token = info.tokens[0]
    bid, _ = sim.venue.best(token)
    async with sim.client() as http:
        posted = await signed(http, KEY_A, "POST", "/order", order_body(sim.venue, KEY_A, token, Side.BUY, bid - 3 * info.tick,
                                                                          10 * ONE))
        order_id = posted.json()["orderID"]
        beat = ""
        for _ in range(6):  # 30 s of heartbeats every 5 s
            beat = (await signed(http, KEY_A, "POST", "/v1/heartbeats", {"heartbeat_id": beat})).json()["heartbeat_id"]
            await trio.sleep(5)
            assert sim.server.trading.expire_heartbeats(sim.server._clock.now_ns(), sim.venue.now_ns) == 0
        await trio.sleep(16)
    assert sim.server.trading.expire_heartbeats(sim.server._clock.now_ns(), sim.venue.now_ns) == 1
    assert sim.venue.engine.order(order_id) is None


# --------------------------------------------------------------------------- the account's truth


async def test_the_admin_account_is_the_venues_books_and_counts_what_the_account_asked_for(autojump_clock):
    sim = Sim()
    a, b = (credentials_for(k.address).api_key for k in (KEY_A, KEY_B))
    info, token, _, ask = roomy(sim.venue)
    sim.server.trading.give(a, shares={token: 20 * ONE})
    price = ask - info.tick  # alone at the best ask
    async with sim.client() as http:
        sell = await signed(http, KEY_A, "POST", "/order", order_body(sim.venue, KEY_A, token, Side.SELL, price, 10 * ONE))
        assert sell.json()["status"] == "live"
        bids = await signed(http, KEY_A, "POST", "/orders", [order_body(sim.venue, KEY_A, token, Side.BUY, info.tick, 5 * ONE),
                                                             order_body(sim.venue, KEY_A, token, Side.BUY, info.tick, ONE)])
        assert [leg["success"] for leg in bids.json()] == [True, False]  # one share: under the minimum size
        resting = bids.json()[0]["orderID"]
        cancel = await signed(http, KEY_A, "DELETE", "/orders", [resting, "0xnothing"])
        assert cancel.json()["canceled"] == [resting]
        sim.server.inject(Fault(kind="fail", value=b))  # B's next trade fails on chain (on B's side only)
        take = await signed(http, KEY_B, "POST", "/order",
                            order_body(sim.venue, KEY_B, token, Side.BUY, price, 6 * ONE, TimeInForce.FAK))
        assert take.json()["status"] == "matched"
        sim.deliver(after_s=6)
        trades = (await signed(http, KEY_A, "GET", "/data/trades")).json()["data"]
        open_orders = (await signed(http, KEY_A, "GET", "/data/orders")).json()["data"]
        truth = (await http.get("/admin/account", params={"address": KEY_A.address.lower()})).json()
        assert (await http.get("/admin/account", params={"api_key": a})).json() == truth
        assert (await http.get("/admin/account", params={"address": "0x" + "ab" * 20})).status_code == 404
        assert (await http.get("/admin/account")).status_code == 400
        b_truth = (await http.get("/admin/account", params={"address": KEY_B.address})).json()
    sold = sum(parse_micro(m["matched_amount"]) for t in trades for m in t["maker_orders"] if m["owner"] == a)
    assert sold == 6 * ONE and [t["status"] for t in trades] == ["CONFIRMED"] and len(open_orders) == 1
    assert truth == {
        "address": KEY_A.address, "api_key": a, "cash": DEFAULT_FUNDING + notional_down(price, sold),
        "positions": {token: 20 * ONE - sold}, "open_orders": 1, "trades": 1, "trades_failed": 0,
        "orders_received": 3, "orders_accepted": 2, "cancels_received": 2, "cancel_all_received": 0,
        "orders_canceled": 1, "wallets": sim.server.trading.wallets.of(KEY_A.address).shown(),
    }
    assert (b_truth["cash"], b_truth["positions"], b_truth["trades"], b_truth["trades_failed"]) == (
        DEFAULT_FUNDING, {}, 0, 1)


async def test_open_orders_filter_and_cancel_by_market(autojump_clock):
    sim = Sim()
    first, second = sim.venue.markets()[:2]
    async with sim.client() as http:
        for info in (first, second):
            for token in info.tokens:
                await signed(http, KEY_A, "POST", "/order", order_body(sim.venue, KEY_A, token, Side.BUY, info.tick, 5 * ONE))
        mine = (await signed(http, KEY_A, "GET", "/data/orders", params={"market": first.market})).json()["data"]
        assert sorted(o["asset_id"] for o in mine) == sorted(first.tokens)
        one = (await signed(http, KEY_A, "GET", "/data/orders", params={"asset_id": second.tokens[1]})).json()
        assert [o["asset_id"] for o in one["data"]] == [second.tokens[1]]
        gone = await signed(http, KEY_A, "DELETE", "/cancel-market-orders", {"market": first.market, "asset_id": ""})
        assert sorted(gone.json()["canceled"]) == sorted(o["id"] for o in mine)
        left = (await signed(http, KEY_A, "GET", "/data/orders")).json()["data"]
        assert sorted(o["asset_id"] for o in left) == sorted(second.tokens)
        nothing = await signed(http, KEY_A, "DELETE", "/cancel-market-orders", {})
        assert nothing.status_code == 400  # neither a market nor a token: not a cancel-all by accident


# --------------------------------------------------------------------------- hostile requests

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
_VALUES = st.sampled_from(["", "0", "3", "-1", "1e9", "99999999999999", "0.5", "x", " 5", "٣", "1" * 400]) | _JSON
_SIGNED = [("POST", "/order"), ("POST", "/orders"), ("DELETE", "/order"), ("DELETE", "/orders"),
           ("DELETE", "/cancel-all"), ("DELETE", "/cancel-market-orders"), ("POST", "/heartbeats"),
           ("POST", "/v1/heartbeats"), ("GET", "/data/orders"), ("GET", "/data/trades"), ("GET", "/balance-allowance")]
_SIM: list[Sim] = []


def _shared_sim() -> Sim:
    if not _SIM:
        _SIM.append(Sim())
    return _SIM[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(FAULT_KINDS) | _JSON, value=_VALUES, market=st.sampled_from(["known", "0xnope", ""]),
       tick=st.sampled_from(["0.001", "0.01", "0.3", "0", "-0.01", "1e-3", "1e999999", "abc", ""]),
       settings_body=_JSON | st.fixed_dictionaries({"retain_s": _JSON}))
def test_hostile_admin_requests_get_a_4xx_and_the_world_goes_on(kind, value, market, tick, settings_body):
    sim = _shared_sim()
    known = sim.venue.markets()[0].market
    values = [value, f"{known if market == 'known' else market}:{tick}", credentials_for(KEY_A.address).api_key]

    async def check() -> None:
        async with sim.client() as http:
            for v in values:
                answer = await http.post("/admin/fault", json={"kind": kind, "value": v})
                assert answer.status_code in (200, 400), answer.text
            for content in (b"", b"{", b"[1,2]", b'"drop"', b"\xff\xfe", json.dumps(settings_body).encode()):
                assert (await http.post("/admin/fault", content=content)).status_code in (200, 400)
                assert (await http.post("/admin/settings", content=content)).status_code in (200, 400)
            assert (await http.get("/admin/stats")).status_code == 200
        sim.server._trading_faults.restart_until_ns = 0  # let the next example's trading through
        sim.server.publish(sim.venue.step(sim.venue.now_ns + 500_000_000))  # the world still moves
        sim.server.publish_user()

    trio.run(check)
    assert sim.server.horizon.retain_s >= 0 and sim.server._trading_faults.throttle >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(_SIGNED), body=_JSON, raw=st.none() | st.binary(max_size=40),
       params=st.dictionaries(st.sampled_from(["after", "before", "market", "asset_id", "id", "asset_type", "token_id"]),
                              st.text(max_size=12), max_size=3))
def test_hostile_signed_requests_get_a_4xx_never_a_crash(route, body, raw, params):
    sim = _shared_sim()
    method, path = route

    async def check() -> None:
        async with sim.client() as http:
            answer = await signed(http, KEY_A, method, path, body, raw=raw, params=params)
            assert answer.status_code < 500, (route, body, raw, answer.text)
            unsigned = await http.request(method, path, content=raw or b"{}")
            assert unsigned.status_code in (401, 425, 429), unsigned.text

    faults = sim.server._trading_faults  # a lost answer is a 502 on purpose: not this test's business
    faults.restart_until_ns = faults.lose = 0
    trio.run(check)


# --------------------------------------------------------------------------- faults at any time


async def test_every_fault_at_any_time_while_clients_trade_and_listen(nursery, autojump_clock):
    """Every kind, three rounds, at random moments, through the admin endpoint over real sockets,
    while a gateway trades and both channels listen: the simulator answers throughout, its world
    moves on, and the account still adds up."""
    import trio_websocket

    venue = LiveVenue(seed=5, markets=4, start_ns=START_NS, warmup_s=10, interval_s=60)
    clock = TrioClock(anchor_ns=START_NS)
    server = SimServer(venue, settings=SimSettings(speed=5), clock=clock)
    creds = credentials_for(KEY_A.address)
    server.add_account(KEY_A.address, creds)
    urls = await nursery.start(server.run)
    info = venue.markets()[0]
    answers: list = []
    rest = ClobRest(client=httpx.AsyncClient(base_url=urls.rest), creds=creds, address=KEY_A.address, clock=clock)
    gw = LiveGateway(rest=rest, signer=OrderSigner(KEY_A), owner=creds.api_key, markets=lambda t: info,
                     respond=answers.append, sink=Rows(), clock=clock, rng=random.Random(1), config=VenueConfig())
    await nursery.start(gw.run)

    async def listen(url: str, hello: dict[str, Any]) -> None:
        while True:  # reconnect whenever a fault drops us
            try:
                async with trio_websocket.open_websocket_url(url) as ws:
                    await ws.send_message(json.dumps(hello))
                    while True:
                        await ws.get_message()
            except (trio_websocket.ConnectionClosed, trio_websocket.HandshakeError, OSError):
                await trio.sleep(1)

    nursery.start_soon(listen, urls.ws, {"assets_ids": list(info.tokens), "type": "market"})
    nursery.start_soon(listen, server.user_url, {"auth": {"apiKey": creds.api_key, "secret": creds.secret.reveal(),
                                                          "passphrase": creds.passphrase.reveal()}, "type": "user"})
    rng = random.Random(7)
    values = {"stall": "3", "delay": "50", "tick": f"{info.market}:0.001", "fail": creds.api_key,
              "shuffle": creds.api_key, "throttle": "2", "restart": "2", "lose": "1"}
    sent = 0
    async with httpx.AsyncClient(base_url=urls.rest, headers=server.admin_headers()) as admin:
        for round_ in range(3):
            for kind in FAULT_KINDS:
                await trio.sleep(rng.uniform(0, 3))
                answer = await admin.post("/admin/fault", json={"kind": kind, "value": values.get(kind, "")})
                assert answer.status_code == 200, (kind, answer.text)
                bid, _ = venue.best(info.tokens[sent % 2])
                if bid is not None:
                    gw.send(SubmitRequest(cid=f"i{sent}", order_id=f"o{sent}", market=info.market,
                                          token=info.tokens[sent % 2], side=Side.BUY, price=bid,
                                          size=5 * ONE, tif=TimeInForce.GTC, post_only=False))
                    sent += 1
        await admin.post("/admin/fault", json={"kind": "delay", "value": "0"})
        before = venue.now_ns
        await trio.sleep(10)
        stats = (await admin.get("/admin/stats")).json()
        truth = (await admin.get("/admin/account", params={"address": KEY_A.address})).json()
    assert stats["faults"] == 3 * len(FAULT_KINDS) + 1 and venue.now_ns > before
    assert len(answers) >= sent  # every order was answered (accepted, refused or unknown)
    assert truth["cash"] == DEFAULT_FUNDING + venue.user_feed.cash_moved.get(creds.api_key, 0)
    assert truth["orders_received"] >= 1


# --------------------------------------------------------------------------- a long run


async def test_a_long_run_forgets_resolved_markets_but_never_the_shares_held_in_them(nursery, autojump_clock):
    """One-minute windows at 60x for ten minutes (ten simulated hours), forgetting after 20 s: the
    venue's markets, books, trade records and subscriptions stay bounded; the account keeps its
    shares of a market long forgotten, and its trade count."""
    import trio_websocket

    venue = LiveVenue(seed=6, markets=4, start_ns=START_NS, warmup_s=10, interval_s=60)
    server = SimServer(venue, settings=SimSettings(speed=60, step_ms=1_000, retain_s=20),
                       clock=TrioClock(anchor_ns=START_NS))
    creds = credentials_for(KEY_A.address)
    server.add_account(KEY_A.address, creds)
    urls = await nursery.start(server.run)
    window = min((m for m in venue.markets() if m.end_ns), key=lambda m: m.end_ns)
    token = window.tokens[0]
    async with httpx.AsyncClient(base_url=urls.rest, headers=server.admin_headers()) as http, \
            trio_websocket.open_websocket_url(urls.ws) as ws:
        await ws.send_message(json.dumps({"assets_ids": list(window.tokens), "type": "market"}))
        _, ask = venue.best(token)
        took = await signed(http, KEY_A, "POST", "/order", order_body(venue, KEY_A, token, Side.BUY, ask, 5 * ONE,
                                                                      TimeInForce.FAK))
        assert took.json()["status"] == "matched"
        await trio.sleep(3)
        held = dict(venue.user_feed.positions[creds.api_key])
        first = (await signed(http, KEY_A, "GET", "/data/trades")).json()["data"]
        assert held.get(token, 0) > 0 and [t["market"] for t in first] == [window.market]
        sizes = []
        for _ in range(10):
            with trio.move_on_after(60):
                while True:  # a client that reads what it is sent
                    await ws.get_message()
            sizes.append((await http.get("/admin/stats")).json()["sizes"])
        truth = (await http.get("/admin/account", params={"address": KEY_A.address})).json()
        assert (await http.get("/book", params={"token_id": token})).status_code == 404
        listed = {m["conditionId"] for m in (await http.get("/gamma/markets")).json()}
        trades_now = (await signed(http, KEY_A, "GET", "/data/trades")).json()["data"]
    assert window.market not in listed and trades_now == []  # forgotten with its market
    assert truth["positions"] == held and truth["trades"] == 1  # kept for good
    assert server.statistics()["forgotten"]["markets"] > 100
    assert max(s["markets"] for s in sizes[3:]) <= min(s["markets"] for s in sizes[3:]) + 4  # flat, not growing
    assert all(s["flows"] <= 6 and s["trade_records"] == 0 and s["subscribed_assets"] == 0 for s in sizes[3:])


def test_the_up_down_series_goes_on_past_the_planned_horizon():
    venue = LiveVenue(seed=3, markets=4, start_ns=START_NS, warmup_s=10, interval_s=60, horizon_s=600)
    listed: dict[str, MarketInfo] = {}
    resolved = 0
    while venue.now_ns < START_NS + 3_000 * 1_000_000_000:  # five horizons
        for frame in venue.step(venue.now_ns + 20 * 1_000_000_000):
            resolved += '"market_resolved"' in frame.text
        listed |= {m.market: m for m in venue.markets() if m.outcomes == ("Up", "Down")}
        venue.forget(venue.now_ns - 120 * 1_000_000_000)
    windows = sorted(listed.values(), key=lambda m: m.end_ns or 0)
    assert len(windows) >= 49 and resolved >= 48  # a window a minute, all the way
    assert all(b.end_ns - a.end_ns == 60 * 1_000_000_000 for a, b in zip(windows, windows[1:]))
    assert len({m.slug for m in windows}) == len(windows)

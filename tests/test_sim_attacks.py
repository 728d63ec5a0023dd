"""The simulator attacked from loopback (issue 11, "Found by attacking it"): every malformed request
is a 4xx with the venue's message and the simulator serves on; signed requests must be fresh on
the server's clock; knowing an address gives no one its credentials; the admin endpoints want
loopback and the token; a bad fault is refused, a scheduled one that fails is counted; bodies are
capped; ``mmbot sim`` fails in one line. HTTP goes through the app in process unless sockets are
the point (the body cap, the server left running)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest
import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mmbot.cli import main as mmbot_main
from mmbot.clock import TrioClock
from mmbot.config import Secret
from mmbot.model import Side, format_micro
from mmbot.venues.polymarket.auth import ApiCredentials, OrderSigner, OrderV2, SigningKey, l1_headers, order_amounts
from mmbot.venues.simulator.access import TIMESTAMP_WINDOW_S, ApiKeys
from mmbot.venues.simulator.limits import MAX_BODY_BYTES
from mmbot.venues.simulator.server import Fault, SimServer, SimSettings
from mmbot.venues.simulator.trading import credentials_for
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000
KEY_A = SigningKey(Secret(value="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))
KEY_C = SigningKey(Secret(value="0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"))
UNAUTHORIZED = {"error": "Unauthorized/Invalid api key"}


class Sim:
    """A simulator whose world moves only when a test says so, with account A (credentials it was
    given), served through its app in process on the server's clock."""

    def __init__(self, **settings: Any) -> None:
        self.venue = LiveVenue(seed=4, markets=4, start_ns=START_NS, warmup_s=10, interval_s=60)
        self.clock = TrioClock(anchor_ns=START_NS)
        self.server = SimServer(self.venue, settings=SimSettings(**settings), clock=self.clock)
        self.creds = credentials_for(KEY_A.address)
        self.server.add_account(KEY_A.address, self.creds)
        self.app = self.server.http_app()

    def client(self, *, host: str = "127.0.0.1", admin: bool = True) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, client=(host, 50_000)),
                                 base_url="http://sim", headers=self.server.admin_headers() if admin else None)

    def now_s(self) -> int:
        return self.clock.now_ns() // 1_000_000_000

    def order(self, **changes: Any) -> dict[str, Any]:
        """A signed post-only BUY of A at the lowest price, as ``POST /order`` carries it; ``changes``
        replace fields of the wire order after signing."""
        info = self.venue.markets()[0]
        making, taking = order_amounts(Side.BUY, format_micro(info.tick), "5", format_micro(info.tick))
        order = OrderV2(salt=random.Random(1).getrandbits(48), maker=KEY_A.address, signer=KEY_A.address,
                        token_id=int(info.tokens[0]), maker_amount=making, taker_amount=taking, side=Side.BUY,
                        timestamp_ms=0)
        _, signature = OrderSigner(KEY_A).sign(order, neg_risk=info.neg_risk)
        return {"order": order.wire(signature) | changes, "owner": self.creds.api_key, "orderType": "GTC",
                "postOnly": True}


async def signed(sim: Sim, http: httpx.AsyncClient, method: str, path: str, body: Any = None, *,
                 raw: bytes | None = None, creds: ApiCredentials | None = None, stamp: str | None = None,
                 replace: dict[str, Any] | None = None, address: str = KEY_A.address) -> httpx.Response:
    """A request with L2 headers over exactly the bytes sent, signed at ``stamp`` (now by default);
    ``replace``: headers to send instead of the right ones (str or raw bytes)."""
    creds = creds or sim.creds
    content = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    stamp = str(sim.now_s()) if stamp is None else stamp
    signature = base64.urlsafe_b64encode(hmac.new(base64.urlsafe_b64decode(creds.secret.reveal()),
                                                  f"{stamp}{method}{path}".encode() + content, hashlib.sha256).digest())
    headers: dict[str, Any] = {"POLY_ADDRESS": address, "POLY_SIGNATURE": signature.decode(),
                               "POLY_TIMESTAMP": stamp, "POLY_API_KEY": creds.api_key,
                               "POLY_PASSPHRASE": creds.passphrase.reveal()}
    headers = {k: v for k, v in (headers | (replace or {})).items() if v is not None}
    return await http.request(method, path, content=content or None, headers=headers)


async def assert_serving(sim: Sim, http: httpx.AsyncClient) -> None:
    assert (await http.get("/ok")).status_code == 200
    assert (await signed(sim, http, "GET", "/data/orders")).status_code == 200


# --------------------------------------------------------------------------- malformed requests

MALFORMED = [  # (what, method, path, body or raw bytes, headers instead of the right ones, status)
    ("non-ASCII POLY_SIGNATURE", "GET", "/data/orders", None, {"POLY_SIGNATURE": "sïgné".encode("latin-1")}, 401),
    ("UTF-8 POLY_SIGNATURE", "GET", "/data/orders", None, {"POLY_SIGNATURE": "подпись".encode()}, 401),
    ("non-ASCII POLY_PASSPHRASE", "GET", "/data/orders", None, {"POLY_PASSPHRASE": "pässe".encode("latin-1")}, 401),
    ("non-ASCII POLY_API_KEY", "GET", "/data/orders", None, {"POLY_API_KEY": "clé".encode("latin-1")}, 401),
    ("non-ASCII POLY_TIMESTAMP", "GET", "/data/orders", None, {"POLY_TIMESTAMP": "١٢٣".encode()}, 401),
    ("DELETE /order without a body", "DELETE", "/order", b"", {}, 400),
    ("DELETE /order with a list id", "DELETE", "/order", {"orderID": [1]}, {}, 400),
    ("DELETE /order with a dict id", "DELETE", "/order", {"orderID": {"id": 1}}, {}, 400),
    ("DELETE /order with a list", "DELETE", "/order", ["0xabc"], {}, 400),
    ("DELETE /orders with 7", "DELETE", "/orders", 7, {}, 400),
    ("DELETE /orders with [[1]]", "DELETE", "/orders", [[1]], {}, 400),
    ("POST /orders with 5", "POST", "/orders", 5, {}, 400),
    ("POST /order with a list", "POST", "/order", [1], {}, 400),
    ("POST /heartbeats with a list", "POST", "/heartbeats", [1], {}, 400),
    ("POST /v1/heartbeats with a list", "POST", "/v1/heartbeats", [1], {}, 400),
    ("POST /v1/heartbeats without a body", "POST", "/v1/heartbeats", b"", {}, 400),
    ("a body that is not JSON", "POST", "/order", b"\xff{", {}, 400),
    ("a non-hex order signature", "POST", "/order", "signature=0xzz", {}, 400),
    ("a maker that is no address", "POST", "/order", "maker=nope", {}, 400),
    ("a signer that is no address", "POST", "/order", "signer=0x12", {}, 400),
    ("a token id that is no number", "POST", "/order", "tokenId=abc", {}, 400),
]


@pytest.mark.parametrize(("what", "method", "path", "body", "replace", "status"), MALFORMED,
                         ids=[c[0] for c in MALFORMED])
async def test_a_malformed_signed_request_is_a_4xx_and_the_simulator_serves_on(
        what: str, method: str, path: str, body: Any, replace: dict[str, Any], status: int) -> None:
    sim = Sim()
    if isinstance(body, str):  # a signed order with one field spoiled
        name, _, value = body.partition("=")
        body = sim.order(**{name: value})
    async with sim.client() as http:
        answer = await signed(sim, http, method, path, None if isinstance(body, bytes) else body,
                              raw=body if isinstance(body, bytes) else None, replace=replace)
        assert answer.status_code == status, answer.text
        if status == 401:
            assert answer.json() == UNAUTHORIZED
        await assert_serving(sim, http)


@pytest.mark.parametrize("headers", [
    {"POLY_SIGNATURE": "0xzz"},  # not hex
    {"POLY_SIGNATURE": "0x" + "00" * 65},  # no signature of anyone
    {"POLY_SIGNATURE": "sïg".encode("latin-1")},
    {"POLY_NONCE": "x"}, {"POLY_NONCE": "-1"}, {"POLY_NONCE": "9" * 100},
    {"POLY_ADDRESS": "nope"}, {"POLY_ADDRESS": None},
    {"POLY_TIMESTAMP": None}, {"POLY_TIMESTAMP": "978307200"},  # missing; 2001
])
async def test_a_malformed_l1_request_is_the_venues_401(headers: dict[str, Any]) -> None:
    sim = Sim()
    fresh = l1_headers(KEY_C, sim.now_s())
    sent = {k: v for k, v in (fresh | headers).items() if v is not None}
    async with sim.client() as http:
        for method, path in (("GET", "/auth/derive-api-key"), ("POST", "/auth/api-key")):
            answer = await http.request(method, path, headers=sent)
            assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)
        assert (await http.get("/auth/derive-api-key", headers=fresh)).status_code == 200


# --------------------------------------------------------------------------- the timestamp window


@pytest.mark.parametrize(("offset", "stamp", "status"), [
    (0, None, 200), (-TIMESTAMP_WINDOW_S, None, 200), (TIMESTAMP_WINDOW_S, None, 200),
    (-TIMESTAMP_WINDOW_S - 1, None, 401), (TIMESTAMP_WINDOW_S + 1, None, 401), (86_400, None, 401),
    (0, "978307200", 401), (0, "", 401), (0, "12.5", 401), (0, "-5", 401), (0, "1e9", 401), (0, "9" * 40, 401),
])
async def test_an_l2_request_must_be_signed_within_the_window_of_the_servers_clock(
        offset: int, stamp: str | None, status: int) -> None:
    sim = Sim()
    async with sim.client() as http:
        answer = await signed(sim, http, "GET", "/data/orders", stamp=stamp if stamp is not None
                              else str(sim.now_s() + offset))
        assert answer.status_code == status, answer.text
        missing = await signed(sim, http, "GET", "/data/orders", replace={"POLY_TIMESTAMP": None})
        assert (missing.status_code, missing.json()) == (401, UNAUTHORIZED)


async def test_a_captured_request_cannot_be_replayed_once_the_window_has_passed(autojump_clock) -> None:
    sim = Sim()
    stamp = str(sim.now_s())
    async with sim.client() as http:
        assert (await signed(sim, http, "DELETE", "/cancel-all", stamp=stamp)).status_code == 200
        await trio.sleep(TIMESTAMP_WINDOW_S + 1)
        assert (await signed(sim, http, "DELETE", "/cancel-all", stamp=stamp)).status_code == 401
        stale_l1 = l1_headers(KEY_C, int(stamp))
        assert (await http.get("/auth/derive-api-key", headers=stale_l1)).status_code == 401


async def test_the_window_is_the_servers_clock_not_the_venues() -> None:
    """The world's clock may run at --speed N: an hour ahead here, and the server's clock is what counts."""
    sim = Sim()
    sim.venue.step(sim.venue.now_ns + 3_600 * 1_000_000_000)
    async with sim.client() as http:
        assert (await signed(sim, http, "GET", "/data/orders")).status_code == 200
        venue_stamp = str(sim.venue.now_ns // 1_000_000_000)
        assert (await signed(sim, http, "GET", "/data/orders", stamp=venue_stamp)).status_code == 401


# --------------------------------------------------------------------------- credentials


async def derive(sim: Sim, http: httpx.AsyncClient, key: SigningKey, nonce: int = 0,
                 method: str = "GET") -> ApiCredentials:
    path = "/auth/derive-api-key" if method == "GET" else "/auth/api-key"
    answer = (await http.request(method, path, headers=l1_headers(key, sim.now_s(), nonce))).json()
    return ApiCredentials(api_key=answer["apiKey"], secret=Secret(value=answer["secret"]),
                          passphrase=Secret(value=answer["passphrase"]))


async def test_derived_credentials_come_from_a_secret_of_the_server_run() -> None:
    first, second = Sim(), Sim()
    async with first.client() as one, second.client() as two:
        mine = await derive(first, one, KEY_C)
        assert await derive(first, one, KEY_C, method="POST") == mine  # the same all run long
        assert await derive(second, two, KEY_C) != mine  # another run, another secret
    assert mine.api_key not in {credentials_for(KEY_C.address, seed).api_key for seed in range(8)}
    seeded = [Sim() for _ in range(2)]
    for sim in seeded:  # determinism only when a test asks for it
        sim.server = SimServer(sim.venue, settings=SimSettings(), clock=sim.clock, secrets_from=random.Random(5))
        sim.app = sim.server.http_app()
    async with seeded[0].client() as one, seeded[1].client() as two:
        assert await derive(seeded[0], one, KEY_C) == await derive(seeded[1], two, KEY_C)


async def test_knowing_an_address_is_not_enough_to_act_for_it() -> None:
    sim = Sim()
    async with sim.client() as http:
        theirs = await derive(sim, http, KEY_C)
        posted = await signed(sim, http, "POST", "/order", sim.order() | {"owner": theirs.api_key}, creds=theirs,
                              address=KEY_C.address)
        assert posted.status_code == 400  # C posts A's signed order: refused, but C's key works
        # C's key with A's address, and A's key with C's address: a key works for its own address only
        assert (await signed(sim, http, "GET", "/data/orders", creds=theirs)).status_code == 401
        assert (await signed(sim, http, "GET", "/data/orders", address=KEY_C.address)).status_code == 401
        assert (await signed(sim, http, "GET", "/data/orders", creds=theirs, address=KEY_C.address)).status_code == 200
        guesses = [credentials_for(KEY_C.address, seed) for seed in range(8)]
        for guess in guesses:
            assert (await signed(sim, http, "DELETE", "/cancel-all", creds=guess)).status_code == 401
            with pytest.raises(Exception, match="Unauthorized"):
                sim.server.trading.check_credentials(guess.api_key, guess.secret.reveal(), guess.passphrase.reveal())
        assert sim.server.trading.check_credentials(theirs.api_key, theirs.secret.reveal(),
                                                    theirs.passphrase.reveal()) == theirs.api_key
    # an account registered with given credentials derives those (tests pre-register this way)
    async with sim.client() as http:
        assert await derive(sim, http, KEY_A) == sim.creds


async def test_api_keys_are_listed_and_a_deleted_key_stops_working() -> None:
    sim = Sim()
    async with sim.client() as http:
        first, seventh = await derive(sim, http, KEY_C), await derive(sim, http, KEY_C, nonce=7)
        assert first != seventh
        listed = await signed(sim, http, "GET", "/auth/api-keys", creds=first, address=KEY_C.address)
        assert listed.json() == {"apiKeys": [first.api_key, seventh.api_key]}
        gone = await signed(sim, http, "DELETE", "/auth/api-key", creds=seventh, address=KEY_C.address)
        assert (gone.status_code, gone.json()) == (200, "OK")
        assert (await signed(sim, http, "GET", "/auth/api-keys", creds=seventh, address=KEY_C.address)).json() == UNAUTHORIZED
        with pytest.raises(Exception, match="Unauthorized"):
            sim.server.trading.check_credentials(seventh.api_key, seventh.secret.reveal(), seventh.passphrase.reveal())
        assert (await signed(sim, http, "GET", "/auth/api-keys", creds=first, address=KEY_C.address)).json() == {"apiKeys": [first.api_key]}
        renewed = await derive(sim, http, KEY_C, nonce=7)
        assert renewed.api_key not in (first.api_key, seventh.api_key)


ADDRESSES = ["0x" + f"{i:040x}" for i in (1, 2)]


class KeyRegistry(RuleBasedStateMachine):
    """``ApiKeys`` under any interleaving of derives, registrations and deletions: a key stays the
    same until it is deleted, a deleted key never comes back, no two slots share a key, and each
    address lists exactly its live keys."""

    def __init__(self) -> None:
        super().__init__()
        self.keys = ApiKeys(random.Random(1))
        self.live: dict[tuple[str, int], str] = {}
        self.dead: set[str] = set()

    @rule(who=st.sampled_from(ADDRESSES), nonce=st.integers(0, 2))
    def derive(self, who: str, nonce: int) -> None:
        key = self.keys.derive(who.upper() if nonce else who, nonce).api_key
        assert self.live.setdefault((who, nonce), key) == key and key not in self.dead

    @rule(who=st.sampled_from(ADDRESSES), seed=st.integers(0, 3))
    def register(self, who: str, seed: int) -> None:
        given = credentials_for(who, 100 + seed + 10 * ADDRESSES.index(who))
        self.keys.register(who, given)
        if (who, 0) not in self.live and given.api_key not in self.dead:
            self.live[(who, 0)] = given.api_key

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        if self.live:
            (who, nonce), key = data.draw(st.sampled_from(sorted(self.live.items())))
            self.keys.delete(who, key)
            del self.live[(who, nonce)]
            self.dead.add(key)

    @invariant()
    def listed(self) -> None:
        assert len(set(self.live.values())) == len(self.live)
        for who in ADDRESSES:
            assert self.keys.keys_of(who) == [k for (a, _), k in sorted(self.live.items()) if a == who]

TestKeyRegistry = KeyRegistry.TestCase
TestKeyRegistry.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


async def test_the_user_channel_refuses_non_ascii_credentials() -> None:
    sim = Sim()
    for secret, passphrase in (("sëcret", sim.creds.passphrase.reveal()), (sim.creds.secret.reveal(), "\ud800"),
                               ("", "")):
        with pytest.raises(Exception, match="Unauthorized"):
            sim.server.trading.check_credentials(sim.creds.api_key, secret, passphrase)


# --------------------------------------------------------------------------- admin


async def test_admin_wants_loopback_and_the_token() -> None:
    sim = Sim()
    token = sim.server.admin_token
    async with sim.client(admin=False) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token},
                        {"Authorization": f"Basic {token}"},
                        {"Authorization": ("Bearer " + "é" * 8).encode("latin-1")},
                        {"Authorization": b"Bearer \xff\xfe"}):
            for method, path in (("GET", "/admin/stats"), ("POST", "/admin/fault"), ("GET", "/admin/settings")):
                answer = await http.request(method, path, headers=headers, json={"kind": "drop"})
                assert answer.status_code == 401, (headers, answer.text)
        assert (await http.get("/admin/stats", headers=sim.server.admin_headers())).status_code == 200
    for host in ("::1", "::ffff:127.0.0.1", "127.0.0.2"):
        async with sim.client(host=host) as http:
            assert (await http.get("/admin/stats")).status_code == 200, host
    for host in ("203.0.113.7", "10.0.0.2", "::ffff:10.0.0.2", "testclient"):
        async with sim.client(host=host) as http:
            assert (await http.get("/admin/stats")).status_code == 403, host
            assert (await http.post("/admin/fault", json={"kind": "drop"})).status_code == 403
    assert sim.server.counts["faults"] == 0


BAD_FAULTS = [
    {"kind": "delay", "value": "-5"}, {"kind": "delay", "value": -5}, {"kind": "delay", "value": "60001"},
    {"kind": "delay", "value": "1.5"}, {"kind": "delay", "value": True}, {"kind": "delay", "value": ["5"]},
    {"kind": "stall", "value": "86401"}, {"kind": "restart", "value": "99999999999"},
    {"kind": "throttle", "value": "x"}, {"kind": "lose", "value": " 1"}, {"kind": "lose", "value": "٣"},
    {"kind": "drop", "value": "3"}, {"kind": "malformed", "value": "x"}, {"kind": "drop", "value": None},
    {"kind": "tick", "value": "0xnope:0.01"}, {"kind": "tick", "value": "known:0.02"},
    {"kind": "tick", "value": "known:0.5"}, {"kind": "tick", "value": "known"},
    {"kind": "fail", "value": "nobody"}, {"kind": "shuffle", "value": ""}, {"kind": 7}, {"value": "1"},
    {"kind": "explode"}, [], "drop",
]


@pytest.mark.parametrize("body", BAD_FAULTS, ids=[json.dumps(b) for b in BAD_FAULTS])
async def test_a_bad_fault_is_a_400_and_changes_nothing(body: Any) -> None:
    sim = Sim()
    if isinstance(body, dict) and str(body.get("value", "")).startswith("known"):
        body = body | {"value": body["value"].replace("known", sim.venue.markets()[0].market)}
    async with sim.client() as http:
        answer = await http.post("/admin/fault", json=body)
        assert answer.status_code == 400 and answer.json()["error"].startswith("fault: "), answer.text
        await assert_serving(sim, http)
    faults = sim.server._trading_faults
    assert (sim.server.counts["faults"], sim.server.channels.delay_s) == (0, 0)
    assert (faults.throttle, faults.lose, faults.restart_until_ns) == (0, 0, 0)


async def test_a_bad_fault_leaves_the_running_simulator_serving(nursery, autojump_clock) -> None:
    sim = Sim()
    urls = await nursery.start(sim.server.run)
    async with httpx.AsyncClient(base_url=urls.rest, headers=sim.server.admin_headers()) as http:
        for body in BAD_FAULTS[:8]:
            assert (await http.post("/admin/fault", json=body)).status_code == 400
        before = sim.venue.now_ns
        await trio.sleep(2)
        assert sim.venue.now_ns > before and (await http.get("/ok")).status_code == 200
        assert (await http.post("/admin/fault", json={"kind": "delay", "value": "5"})).status_code == 200


async def test_scheduled_faults_that_fail_are_counted_never_fatal(nursery, autojump_clock) -> None:
    sim = Sim(faults=(Fault(kind="tick", value="0xnope:0.01", at_s=1), Fault(kind="fail", value="nobody", at_s=1),
                      Fault(kind="malformed", at_s=2), Fault(kind="drop", at_s=3)))
    inject = sim.server._faults.inject

    def breaking(fault: Fault) -> dict[str, Any]:
        if fault.kind == "malformed":
            raise RuntimeError("the channel went away under it")
        return inject(fault)

    sim.server._faults.inject = breaking  # type: ignore[method-assign]
    await nursery.start(sim.server.run)
    await trio.sleep(4)
    assert (sim.server.counts["faults_refused"], sim.server.counts["faults"]) == (3, 1)
    before = sim.venue.now_ns
    await trio.sleep(1)
    assert sim.venue.now_ns > before


@pytest.mark.parametrize("fault", ["delay@1:-5", "delay@-1", "stall@1:86401", "drop@1:3", "tick@1:0xabc:0.02",
                                   "throttle@1:x", "restart@9999999999"])
def test_a_bad_scheduled_fault_on_the_command_line_is_one_line(fault: str, capsys: pytest.CaptureFixture) -> None:
    assert mmbot_main(["sim", "--fault", fault]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--fault expects KIND@SECONDS[:VALUE]" in err, err


# --------------------------------------------------------------------------- request size


async def test_the_largest_legitimate_bodies_pass_and_a_larger_one_is_a_413() -> None:
    sim = Sim()
    ids = ["0x" + f"{i:064x}" for i in range(3_000)]
    assert len(json.dumps(ids)) < MAX_BODY_BYTES
    async with sim.client() as http:
        answer = await signed(sim, http, "DELETE", "/orders", ids)
        assert answer.status_code == 200 and len(answer.json()["not_canceled"]) == 3_000
        batch = await signed(sim, http, "POST", "/orders", [sim.order()] * 15)
        assert batch.status_code == 200 and len(batch.json()) == 15
        for method, path in (("DELETE", "/orders"), ("POST", "/admin/fault"), ("POST", "/books")):
            big = await http.request(method, path, content=b" " * (MAX_BODY_BYTES + 1))
            assert (big.status_code, big.json()) == (413, {"error": "request body too large"})
        await assert_serving(sim, http)


async def _raw_exchange(port: int, head: bytes, chunks: list[bytes]) -> bytes:
    """Send ``head`` and ``chunks`` over a bare socket (stopping if the server closes) and read the answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head)
        try:
            for chunk in chunks:
                await stream.send_all(chunk)
        except trio.BrokenResourceError:
            pass  # answered and closed before the body ended: the point
        answer = b""
        with trio.fail_after(3_600):  # virtual seconds: the autojump clock races while sockets wait
            while not answer.endswith(b"}") and (data := await stream.receive_some()):
                answer += data
    return answer


async def test_a_50_mb_body_is_refused_before_it_is_read(nursery, autojump_clock) -> None:
    sim = Sim()
    urls = await nursery.start(sim.server.run)
    port = int(urls.rest.rsplit(":", 1)[1])
    declared = (b"POST /order HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
                b"Content-Length: 52428800\r\n\r\n")
    answer = await _raw_exchange(port, declared, [b"[" * 65_536])  # 50 MB announced, 64 kB sent
    assert answer.startswith(b"HTTP/1.1 413") and b"request body too large" in answer, answer[:200]
    chunked = b"POST /orders HTTP/1.1\r\nHost: sim\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b"10000\r\n" + b"[" * 65_536 + b"\r\n"
    answer = await _raw_exchange(port, chunked, [piece] * 8)  # 512 kB with no length given
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    async with httpx.AsyncClient(base_url=urls.rest) as http:
        assert (await http.get("/ok")).status_code == 200


# --------------------------------------------------------------------------- mmbot sim


@pytest.mark.parametrize(("argv", "told"), [
    (["--port", "70000"], "--port 70000: expected a port from 0 to 65535"),
    (["--ws-port", "-1"], "--ws-port -1: expected a port from 0 to 65535"),
    (["--port", "9100", "--ws-port", "9100"], "--port and --ws-port are both 9100"),
    (["--interval", "0"], "--interval: expected seconds from 10"),
    (["--interval", "9"], "--interval: expected seconds from 10"),
    (["--speed", "1000000"], "--speed: expected at most"),
])
def test_sim_refuses_a_bad_option_in_one_line(argv: list[str], told: str, capsys: pytest.CaptureFixture) -> None:
    assert mmbot_main(["sim", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and told in err and "Traceback" not in err, err


def test_sim_refuses_an_admin_token_of_the_wrong_shape(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    for token in ("short", "x" * 201, "has spaces in it, sixteen+", "ünïcödé-tokens-are-out"):
        monkeypatch.setenv("MMBOT_SIM_ADMIN_TOKEN", token)
        assert mmbot_main(["sim", "--port", "0", "--ws-port", "0"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "MMBOT_SIM_ADMIN_TOKEN: expected 16 to 200 characters" in err, err


def _start_sim(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-m", "mmbot.cli", "sim", "--ws-port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: dict[str, str] = {}
    for line in proc.stdout or ():
        if m := re.match(r"\s+(REST|admin token)\s+(\S+)", line):
            lines[m.group(1)] = m.group(2) if m.group(1) == "REST" else line.split(None, 2)[2].strip()
        if "Ctrl-C" in line:
            break
    return proc, lines


def test_sim_prints_its_admin_token_and_a_taken_port_is_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MMBOT_SIM_ADMIN_TOKEN"}
    first, lines = _start_sim(env, "--port", "0")
    try:
        rest, token = lines["REST"], lines["admin token"].split()[0]
        with httpx.Client(base_url=rest, trust_env=False, timeout=10) as http:
            assert http.get("/admin/stats").status_code == 401
            assert http.get("/admin/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        port = rest.rsplit(":", 1)[1]
        taken = subprocess.run([sys.executable, "-m", "mmbot.cli", "sim", "--port", port, "--ws-port", "0"],
                               capture_output=True, text=True, timeout=60, env=env)
        assert taken.returncode == 2 and taken.stderr.count("\n") == 1, taken.stderr
        assert taken.stderr.startswith(f"mmbot sim: --port: port {port} is in use on 127.0.0.1")
    finally:
        first.terminate()
        first.wait(timeout=10)
    chosen = "a-token-of-the-operators-own-choosing"
    second, lines = _start_sim(env | {"MMBOT_SIM_ADMIN_TOKEN": chosen}, "--port", "0")
    try:
        assert lines["admin token"].startswith("from MMBOT_SIM_ADMIN_TOKEN") and chosen not in str(lines)
        with httpx.Client(base_url=lines["REST"], trust_env=False, timeout=10) as http:
            assert http.get("/admin/stats", headers={"Authorization": f"Bearer {chosen}"}).status_code == 200
    finally:
        second.terminate()
        second.wait(timeout=10)


def test_a_port_taken_by_another_program_is_one_line() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        taken = subprocess.run([sys.executable, "-m", "mmbot.cli", "sim", "--port", "0", "--ws-port", port],
                               capture_output=True, text=True, timeout=60)
    assert taken.returncode == 2 and taken.stderr.count("\n") == 1, taken.stderr
    assert taken.stderr.startswith(f"mmbot sim: --ws-port: port {port} is in use"), taken.stderr

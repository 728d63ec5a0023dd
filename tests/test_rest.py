"""The CLOB REST client against httpx.MockTransport: signing, batching, paging and every outcome
mapped into the venue error tree (no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import pytest
import trio

from mmbot.clock import TrioClock
from mmbot.config import Secret
from mmbot.ports import Fatal, OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.auth import ApiCredentials
from mmbot.venues.polymarket.rest import ClobRest, RateLimiter

SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
CREDS = ApiCredentials(api_key="key-1", secret=Secret(value=SECRET), passphrase=Secret(value="pass"))
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
T0 = 1_786_604_100 * 1_000_000_000


def rest(handler, limits=None) -> tuple[ClobRest, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record), base_url="http://venue")
    clock = TrioClock(anchor_ns=T0)
    return ClobRest(client=client, creds=CREDS, address=ADDRESS, clock=clock,
                    limiter=RateLimiter(clock, limits) if limits else None), seen


async def test_a_posted_order_is_signed_over_the_exact_bytes_sent(autojump_clock) -> None:
    client, seen = rest(lambda r: httpx.Response(200, json={"success": True, "orderID": "0xabc", "status": "live"}))
    [answer] = await client.post_orders([{"order": {"salt": 1}, "owner": "key-1", "orderType": "GTC"}])
    assert answer["orderID"] == "0xabc"
    request = seen[0]
    assert request.method == "POST" and request.url.path == "/order"
    timestamp = request.headers["POLY_TIMESTAMP"]
    expected = base64.urlsafe_b64encode(hmac.new(base64.urlsafe_b64decode(SECRET),
                                                 f"{timestamp}POST/order".encode() + request.content,
                                                 hashlib.sha256).digest()).decode()
    assert request.headers["POLY_SIGNATURE"] == expected
    assert request.headers["POLY_API_KEY"] == "key-1" and request.headers["POLY_ADDRESS"] == ADDRESS


async def test_batches_cancels_and_pages(autojump_clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/orders" and request.method == "POST":
            return httpx.Response(200, json=[{"success": True, "orderID": f"0x{i}"} for i in range(3)])
        if request.url.path == "/orders":
            return httpx.Response(200, json={"canceled": json.loads(request.content), "not_canceled": {}})
        if request.url.path == "/data/orders":
            cursor = request.url.params["next_cursor"]
            return httpx.Response(200, json={"data": [{"id": cursor}], "next_cursor": "LTE=" if cursor == "MQ==" else "MQ=="})
        return httpx.Response(404, json={"error": "not found"})

    client, seen = rest(handler)
    assert [a["orderID"] for a in await client.post_orders([{"order": {}}] * 3)] == ["0x0", "0x1", "0x2"]
    assert (await client.cancel(["0xa", "0xb"]))["canceled"] == ["0xa", "0xb"]
    assert [o["id"] for o in await client.open_orders()] == ["MA==", "MQ=="]
    with pytest.raises(ValueError, match="1 to 15"):
        await client.post_orders([{"order": {}}] * 16)


@pytest.mark.parametrize("status, body, headers, error, method", [
    (400, {"error": "INVALID_ORDER_MIN_TICK_SIZE"}, {}, Rejected, "post"),
    (401, {"error": "Unauthorized/Invalid api key"}, {}, Fatal, "post"),
    (429, {"error": "Too Many Requests"}, {"Retry-After": "7"}, Retryable, "post"),
    (425, {"error": "Too Early"}, {}, Retryable, "post"),
    (500, {"error": "Internal server error"}, {}, OutcomeUnknown, "post"),
    (500, {"error": "Internal server error"}, {}, Retryable, "read"),
])
async def test_every_answer_maps_into_the_error_tree(status, body, headers, error, method, autojump_clock) -> None:
    client, _ = rest(lambda r: httpx.Response(status, json=body, headers=headers))
    with pytest.raises(error) as raised:
        if method == "post":
            await client.post_orders([{"order": {}}])
        else:
            await client.open_orders()
    if status == 400:
        assert raised.value.reason == "INVALID_ORDER_MIN_TICK_SIZE"
    if status == 429:
        assert raised.value.retry_after_s == 7


async def test_a_request_that_left_without_an_answer_is_an_unknown_outcome(autojump_clock) -> None:
    def lost(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(OutcomeUnknown):
        await rest(lost)[0].post_orders([{"order": {}}])  # never resubmit: reconciliation decides
    with pytest.raises(Retryable):
        await rest(lost)[0].open_orders()  # a read can simply be retried
    with pytest.raises(Retryable, match="not sent"):
        await rest(refused)[0].post_orders([{"order": {}}])


async def test_start_up_refuses_a_venue_on_another_order_version(autojump_clock) -> None:
    await rest(lambda r: httpx.Response(200, json={"version": 2}))[0].check_version()
    with pytest.raises(Fatal, match="order version is 3"):
        await rest(lambda r: httpx.Response(200, json={"version": 3}))[0].check_version()


async def test_heartbeat_adopts_the_current_id_after_an_expired_one(autojump_clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["heartbeat_id"]
        if sent == "old":
            return httpx.Response(400, json={"error": "invalid heartbeat id", "heartbeat_id": "current"})
        return httpx.Response(200, json={"status": "ok", "heartbeat_id": "next"})

    client, _ = rest(handler)
    assert await client.heartbeat("") == "next"
    assert await client.heartbeat("old") == "current"


async def test_the_rate_limiter_waits_instead_of_earning_a_429(autojump_clock) -> None:
    client, seen = rest(lambda r: httpx.Response(200, json={"canceled": [], "not_canceled": {}}),
                        limits={"DELETE /order": 3, "default": 100})
    started = trio.current_time()
    for _ in range(7):
        await client.cancel(["0xa"])
    assert len(seen) == 7
    assert 20 <= trio.current_time() - started < 21  # 3 per 10 s window: the 7th waited two windows


async def test_balance_and_allowance_in_both_shapes(autojump_clock, fixtures_dir) -> None:
    captured = json.loads((fixtures_dir / "rest" / "http_balance_allowance_collateral.json").read_text())
    client, seen = rest(lambda r: httpx.Response(200, json=captured))
    assert await client.collateral() == (1_000_000_000, 999_999_999_000_000)  # the captured shape
    assert seen[0].url.params["asset_type"] == "COLLATERAL" and "POLY_API_KEY" in seen[0].headers
    documented = {"balance": "5000000", "allowances": {"0xE111": "7000000", "0xe222": "3000000"}}
    client, _ = rest(lambda r: httpx.Response(200, json=documented))
    assert await client.collateral() == (5_000_000, 3_000_000)  # the least of the spenders' allowances
    client, seen = rest(lambda r: httpx.Response(200, json={"balance": "1250000"}))
    assert await client.token_balance("123") == 1_250_000
    assert seen[0].url.params["asset_type"] == "CONDITIONAL" and seen[0].url.params["token_id"] == "123"
    client, _ = rest(lambda r: httpx.Response(200, json={"nothing": "here"}))
    with pytest.raises(Retryable, match="unreadable"):
        await client.collateral()

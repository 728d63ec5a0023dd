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
from mmbot.model import MalformedFrame, Side, UserTrade
from mmbot.ports import Fatal, OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.auth import ApiCredentials
from mmbot.venues.polymarket.rest import ClobRest, EngineRestarting, RateLimited, RateLimiter, parse_retry_after
from mmbot.venues.polymarket.rest_answers import CancelAnswer, Collateral, OpenOrder, PostAnswer

SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
CREDS = ApiCredentials(api_key="key-1", secret=Secret(value=SECRET), passphrase=Secret(value="pass"))
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
T0 = 1_786_604_100 * 1_000_000_000


def open_order(order_id: str) -> dict:
    return {"id": order_id, "market": "0xm", "asset_id": "7", "side": "BUY", "price": "0.45", "original_size": "10",
            "size_matched": "2.5", "status": "LIVE"}


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
    assert answer == PostAnswer(success=True, order_id="0xabc", status="live", error="") and answer.accepted
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
            return httpx.Response(200, json={"data": [open_order(cursor)],
                                             "next_cursor": "LTE=" if cursor == "MQ==" else "MQ=="})
        return httpx.Response(404, json={"error": "not found"})

    client, seen = rest(handler)
    assert [a.order_id for a in await client.post_orders([{"order": {}}] * 3)] == ["0x0", "0x1", "0x2"]
    assert await client.cancel(["0xa", "0xb"]) == CancelAnswer(canceled=["0xa", "0xb"], not_canceled={})
    assert [o.id for o in await client.open_orders()] == ["MA==", "MQ=="]
    with pytest.raises(ValueError, match="1 to 15"):
        await client.post_orders([{"order": {}}] * 16)


@pytest.mark.parametrize("status, body, headers, error, method", [
    (400, {"error": "INVALID_ORDER_MIN_TICK_SIZE"}, {}, Rejected, "post"),
    (401, {"error": "Unauthorized/Invalid api key"}, {}, Fatal, "post"),
    (429, {"error": "Too Many Requests"}, {"Retry-After": "7"}, RateLimited, "post"),
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
        assert request.method == "POST" and request.url.path == "/v1/heartbeats"
        sent = json.loads(request.content)["heartbeat_id"]
        if sent == "old":  # the venue's shape (onchain doc §6)
            return httpx.Response(400, json={"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "current"})
        return httpx.Response(200, json={"heartbeat_id": f"after-{sent}"})

    client, seen = rest(handler)
    assert await client.heartbeat("") == "after-"
    assert await client.heartbeat("old") == "after-current"  # adopted, and the heartbeat sent again with it
    assert [json.loads(r.content)["heartbeat_id"] for r in seen] == ["", "old", "current"]
    client, _ = rest(lambda r: httpx.Response(400, json={"error_msg": "Invalid Heartbeat ID"}))
    with pytest.raises(Rejected, match="Invalid Heartbeat ID"):
        await client.heartbeat("old")


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
    assert await client.collateral() == Collateral(balance=1_000_000_000, allowance=999_999_999_000_000)  # captured
    assert seen[0].url.params["asset_type"] == "COLLATERAL" and "POLY_API_KEY" in seen[0].headers
    documented = {"balance": "5000000", "allowances": {"0xE111": "7000000", "0xe222": "3000000"}}
    client, _ = rest(lambda r: httpx.Response(200, json=documented))
    assert await client.collateral() == Collateral(5_000_000, 3_000_000)  # the least of the spenders' allowances
    assert await client.collateral_balance() == 5_000_000
    client, _ = rest(lambda r: httpx.Response(200, json={"balance": "7"}))
    assert await client.collateral() == Collateral(7, None)  # no allowance said
    client, seen = rest(lambda r: httpx.Response(200, json={"balance": "1250000"}))
    assert await client.token_balance("123") == 1_250_000
    assert seen[0].url.params["asset_type"] == "CONDITIONAL" and seen[0].url.params["token_id"] == "123"
    client, _ = rest(lambda r: httpx.Response(200, json={"nothing": "here"}))
    with pytest.raises(Retryable, match="unreadable"):
        await client.collateral()


@pytest.mark.parametrize("header, expected", [
    ("7", 7.0), ("0.25", 0.25), (" 2 ", 2.0), ("Thu, 13 Aug 2026 06:55:10 GMT", 10.0),  # T0 + 10 s as an HTTP date
    ("Wed, 12 Aug 2026 00:00:00 GMT", 0.0),  # a date already past: at once
    ("", None), (None, None), ("soon", None), ("nan", None), ("inf", None), ("-3", 0.0), ("99999", 300.0),
])
def test_retry_after_is_read_in_every_form_the_venue_may_send(header, expected) -> None:
    assert parse_retry_after(header, T0) == expected


async def test_429_and_425_carry_the_advised_delay(autojump_clock) -> None:
    client, _ = rest(lambda r: httpx.Response(429, json={"error": "Too Many Requests"}, headers={"Retry-After": "0.5"}))
    with pytest.raises(RateLimited) as raised:
        await client.cancel(["0xa"])
    assert raised.value.retry_after_s == 0.5
    client, _ = rest(lambda r: httpx.Response(429, json={"error": "Too Many Requests"}))
    with pytest.raises(RateLimited) as raised:
        await client.cancel(["0xa"])
    assert raised.value.retry_after_s is None  # no advice: the caller's backoff decides
    client, _ = rest(lambda r: httpx.Response(425, json={"error": "Too Early"}))
    with pytest.raises(EngineRestarting) as raised:
        await client.post_orders([{"order": {}}])
    assert raised.value.retry_after_s == 2


async def test_captured_answers_decode_into_typed_values(autojump_clock, fixtures_dir) -> None:
    rest_dir = fixtures_dir / "rest"

    def captured(name: str):  # noqa: ANN202
        return lambda r: httpx.Response(200, content=(rest_dir / name).read_bytes())

    assert await rest(captured("http_order_response_failed.json"))[0].post_orders([{"order": {}}]) == [
        PostAnswer(success=False, order_id="", status="", error="Insufficient balance")]  # nulls read as ""
    [ok] = await rest(captured("http_order_response_ok.json"))[0].post_orders([{"order": {}}])
    assert ok.success and ok.order_id.startswith("0x1234") and not ok.accepted  # no status: not a placed order
    venue_id = "0xb816482a1234567890abcdef1234567890abcdef1234567890abcdef12345678"
    assert await rest(captured("http_cancel_response_ok.json"))[0].cancel([venue_id]) == CancelAnswer([venue_id], {})
    assert await rest(captured("http_cancel_response_failed.json"))[0].cancel_all() == CancelAnswer(
        [], {venue_id: "already canceled or matched"})
    orders = await rest(captured("http_open_orders_page.json"))[0].open_orders()
    assert orders[1] == OpenOrder(
        id="0xbbbb000000000000000000000000000000000000000000000000000000000002",
        market="0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917",
        asset_id="52114319501245915516055106046884209969926127482827954674443846427813813222426",
        side=Side.SELL, price=400_000, original_size=150_000_000, size_matched=50_000_000, status="LIVE")
    [trade] = await rest(captured("http_trades_page.json"))[0].trades()
    assert isinstance(trade, UserTrade) and trade.trade_id == "trade-0x001" and trade.match_time_s == 1_704_067_200


async def test_an_undecodable_trade_is_kept_as_a_malformed_record_and_the_page_still_reads(autojump_clock,
                                                                                          fixtures_dir) -> None:
    good = json.loads((fixtures_dir / "rest" / "http_trades_page.json").read_text())["data"][0]
    bad = {**good, "id": "trade-bad", "price": "a lot"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["next_cursor"] == "MA==":
            return httpx.Response(200, json={"data": [bad, good], "next_cursor": "MQ=="})
        return httpx.Response(200, json={"data": [7], "next_cursor": "LTE="})

    client, seen = rest(handler)
    records = await client.trades(after_s=1_700_000_000)
    assert seen[0].url.params["after"] == "1700000000"
    assert [type(r) for r in records] == [MalformedFrame, UserTrade, MalformedFrame]
    assert records[0].channel == "trades" and "a lot" in records[0].error and "trade-bad" in records[0].excerpt
    assert records[2].excerpt == "7"


@pytest.mark.parametrize("call, body, error", [
    ("post", [{"success": True, "orderID": "0x1"}], OutcomeUnknown),  # one answer for two orders
    ("post", {"orderID": 7}, OutcomeUnknown),
    ("cancel", {"not_canceled": {}}, OutcomeUnknown),  # no canceled list: did it cancel?
    ("cancel", "<html>", OutcomeUnknown),
    ("orders", {"data": [{"id": "0x1"}], "next_cursor": "LTE="}, Retryable),
    ("orders", {"data": [{**open_order("0x1"), "price": "cheap"}], "next_cursor": "LTE="}, Retryable),
    ("balance", {"balance": "-1"}, Retryable),
    ("version", {"version": "two"}, Retryable),
])
async def test_an_unreadable_answer_is_an_unknown_outcome_for_a_write_and_retryable_for_a_read(
        call, body, error, autojump_clock) -> None:
    client, _ = rest(lambda r: httpx.Response(200, json=body))
    calls = {"post": lambda: client.post_orders([{"order": {}}] * (2 if isinstance(body, list) else 1)),
             "cancel": lambda: client.cancel(["0xa"]), "orders": client.open_orders,
             "balance": client.collateral, "version": client.version}
    with pytest.raises(error, match="unreadable answer") as raised:
        await calls[call]()
    assert type(raised.value) is error and "\n" not in str(raised.value)


async def test_cancel_by_market_and_cancel_all(autojump_clock) -> None:
    client, seen = rest(lambda r: httpx.Response(200, json={"canceled": ["0x1"], "not_canceled": {"0x2": None}}))
    assert await client.cancel_market("0xm") == CancelAnswer(["0x1"], {"0x2": ""})
    assert await client.cancel_all() == CancelAnswer(["0x1"], {"0x2": ""})
    assert [(r.method, r.url.path) for r in seen] == [("DELETE", "/cancel-market-orders"), ("DELETE", "/cancel-all")]
    assert json.loads(seen[0].content) == {"market": "0xm", "asset_id": ""}


async def test_a_cursor_that_comes_round_again_ends_the_read(autojump_clock) -> None:
    client, seen = rest(lambda r: httpx.Response(200, json={"data": [], "next_cursor": "MA=="}))
    with pytest.raises(Retryable, match="came round again"):
        await client.open_orders()
    assert len(seen) == 1

"""The live gateway against httpx.MockTransport: signed batches, every outcome into the inbox."""

from __future__ import annotations

import json
import random

import httpx
import trio
import trio.testing

from mmbot.clock import TrioClock
from mmbot.config import Secret, VenueConfig
from mmbot.model import (
    ONE, CancelRejected, CancelRequest, MarketInfo, OrderAccepted, OrderDone, OrderOutcomeUnknown, OrderRejected,
    Side, SubmitRequest, TimeInForce,
)
from mmbot.venues.polymarket.auth import ApiCredentials, OrderSigner, SigningKey
from mmbot.venues.polymarket.gateway import LiveGateway
from mmbot.venues.polymarket.rest import ClobRest

KEY = SigningKey(Secret(value="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))
CREDS = ApiCredentials(api_key="key-1", secret=Secret(value="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                       passphrase=Secret(value="pass"))
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
MARKET = MarketInfo(market="0xm", tokens=(YES, "2"), tick=10_000)


class Rows:
    def __init__(self) -> None:
        self.rows: list = []

    def record(self, kind, cid, payload=None, **_):  # noqa: ANN001, ANN201
        self.rows.append((kind, cid, payload))


def gateway(handler, beats: list | None = None):  # noqa: ANN001, ANN201
    seen: list[httpx.Request] = []
    beats = [] if beats is None else beats

    def record(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/heartbeats":  # the gateway's keepalive: answered, not counted
            beats.append(json.loads(request.content)["heartbeat_id"])
            return httpx.Response(200, json={"status": "ok", "heartbeat_id": f"h{len(beats)}"})
        seen.append(request)
        return handler(request)

    clock = TrioClock(anchor_ns=1_786_604_100 * 1_000_000_000)
    rest = ClobRest(client=httpx.AsyncClient(transport=httpx.MockTransport(record), base_url="http://venue"),
                    creds=CREDS, address=KEY.address, clock=clock)
    answers: list = []
    sink = Rows()
    gw = LiveGateway(rest=rest, signer=OrderSigner(KEY), owner="key-1", markets={YES: MARKET}.get,
                     respond=answers.append, sink=sink, clock=clock, rng=random.Random(1), config=VenueConfig())
    return gw, answers, seen, sink


def submit(n: int, price: int = 450_000, tif: TimeInForce = TimeInForce.GTC) -> SubmitRequest:
    return SubmitRequest(cid=f"i{n}", order_id=f"o{n}", market="0xm", token=YES, side=Side.BUY, price=price,
                         size=10 * ONE, tif=tif, post_only=True)


async def run(gw, requests, nursery) -> None:  # noqa: ANN001
    await nursery.start(gw.run)
    for request in requests:
        gw.send(request)
    await trio.testing.wait_all_tasks_blocked()


async def test_a_batch_is_signed_posted_once_and_answered_per_order(nursery, autojump_clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        bodies = json.loads(request.content)
        return httpx.Response(200, json=[
            {"success": True, "orderID": gw.venue_ids["o1"], "status": "live"},
            {"success": False, "orderID": "", "errorMsg": "INVALID_ORDER_NOT_ENOUGH_BALANCE"},
            {"success": True, "orderID": "", "errorMsg": "INVALID_POST_ONLY_ORDER"},  # a refused batch leg
        ][: len(bodies)])

    gw, answers, seen, _ = gateway(handler)
    await run(gw, [submit(1), submit(2), submit(3)], nursery)
    assert len(seen) == 1 and seen[0].url.path == "/orders"
    body = json.loads(seen[0].content)[0]
    assert body["order"]["makerAmount"] == "4500000" and body["order"]["takerAmount"] == "10000000"
    assert body["order"]["signer"] == KEY.address and body["postOnly"] is True and body["owner"] == "key-1"
    assert answers == [
        OrderAccepted(cid="i1", order_id="o1", venue_order_id=gw.venue_ids["o1"]),
        OrderRejected(cid="i2", order_id="o2", reason="INVALID_ORDER_NOT_ENOUGH_BALANCE"),
        OrderRejected(cid="i3", order_id="o3", reason="INVALID_POST_ONLY_ORDER"),
    ]


async def test_a_lost_answer_is_an_unknown_outcome_and_is_never_resent(nursery, autojump_clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("gone", request=request)

    gw, answers, seen, _ = gateway(handler)
    await run(gw, [submit(1)], nursery)
    assert len(seen) == 1
    assert answers == [OrderOutcomeUnknown(cid="i1", order_id="o1", detail=answers[0].detail)]
    assert gw.venue_ids["o1"].startswith("0x")  # known before sending: the user channel can still match it


async def test_rate_limited_batches_are_retried_after_the_advised_delay(nursery, autojump_clock) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(trio.current_time())
        if len(calls) < 3:
            return httpx.Response(429, json={"error": "Too Many Requests"}, headers={"Retry-After": "3"})
        return httpx.Response(200, json={"success": True, "orderID": gw.venue_ids["o1"], "status": "matched"})

    gw, answers, seen, _ = gateway(handler)
    await run(gw, [submit(1)], nursery)
    await trio.sleep(10)
    assert len(calls) == 3 and calls[2] - calls[0] >= 6
    assert answers == [OrderAccepted(cid="i1", order_id="o1", venue_order_id=gw.venue_ids["o1"])]


async def test_off_grid_prices_are_refused_before_anything_is_sent(nursery, autojump_clock) -> None:
    gw, answers, seen, _ = gateway(lambda r: httpx.Response(500))
    await run(gw, [submit(1, price=455_000)], nursery)
    assert seen == [] and answers[0].reason.startswith(
        "local: INVALID_ORDER_MIN_TICK_SIZE: price 0.455 is not on the 0.01 grid")


async def test_cancels_become_done_or_refused(nursery, autojump_clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json=[{"success": True, "orderID": gw.venue_ids[f"o{i}"], "status": "live"}
                                             for i in (1, 2)])
        return httpx.Response(200, json={"canceled": [gw.venue_ids["o1"]],
                                         "not_canceled": {gw.venue_ids["o2"]: "already canceled or matched"}})

    gw, answers, seen, _ = gateway(handler)
    await run(gw, [submit(1), submit(2)], nursery)
    answers.clear()
    for i in (1, 2, 9):
        gw.send(CancelRequest(cid=f"c{i}", order_id=f"o{i}"))
    await trio.testing.wait_all_tasks_blocked()
    assert sorted(answers, key=lambda a: a.cid) == [
        OrderDone(cid="c1", order_id="o1", reason="canceled"),
        CancelRejected(cid="c2", order_id="o2", reason="already canceled or matched"),
        CancelRejected(cid="c9", order_id="o9", reason="never sent"),
    ]
    assert json.loads(seen[-1].content) == [gw.venue_ids["o1"], gw.venue_ids["o2"]]


async def test_heartbeats_echo_the_latest_id_every_five_seconds(nursery, autojump_clock) -> None:
    beats: list[str] = []
    gw, _, _, _ = gateway(lambda r: httpx.Response(500), beats)
    await nursery.start(gw.run)
    await trio.sleep(12)
    assert beats == ["", "h1", "h2"]  # at 0, 5 and 10 s, each echoing the id the last one returned


async def test_a_dry_run_signs_and_records_every_order_and_sends_nothing(nursery, autojump_clock) -> None:
    beats: list = []
    gw, answers, seen, sink = gateway(lambda request: httpx.Response(500), beats)
    dry = LiveGateway(rest=gw._rest, signer=OrderSigner(KEY), owner="key-1", markets={YES: MARKET}.get,
                      respond=answers.append, sink=sink, clock=gw._clock, rng=random.Random(1), config=VenueConfig(),
                      dry_run=True)
    await run(dry, [submit(1), submit(2, price=460_000)], nursery)
    dry.send(CancelRequest(cid="c1", order_id="o1"))
    await trio.sleep(30)  # long enough for heartbeats, were any sent
    assert seen == [] and beats == []
    assert answers == [
        OrderAccepted(cid="i1", order_id="o1", venue_order_id=dry.venue_ids["o1"]),
        OrderAccepted(cid="i2", order_id="o2", venue_order_id=dry.venue_ids["o2"]),
        OrderDone(cid="c1", order_id="o1", reason="canceled"),
    ]
    rows = [payload for kind, _, payload in sink.rows if kind == "dry_run_order"]
    assert [r["venue_order_id"] for r in rows] == [dry.venue_ids["o1"], dry.venue_ids["o2"]]
    assert rows[1]["order"]["makerAmount"] == "4600000" and rows[1]["order"]["takerAmount"] == "10000000"
    assert all("signature" not in r["order"] for r in rows)

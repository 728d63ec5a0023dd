"""The live gateway's lanes against an in-process fake venue (httpx.MockTransport) on the autojump
clock: cancels never wait behind submits and are never lost, submits are retried only while
provably not sent, deadlines, escalation, crash-restarts and heartbeats."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict, deque
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbot.clock import TrioClock
from mmbot.config import Secret, VenueConfig
from mmbot.model import (
    ONE, CancelRejected, CancelRequest, MarketInfo, OrderAccepted, OrderDone, OrderOutcomeUnknown, OrderRejected,
    Side, SubmitRequest, TimeInForce,
)
from mmbot.supervisor import RestartPolicy, supervise
from mmbot.venues.polymarket.auth import ApiCredentials, OrderSigner, OrderV2, SigningKey
from mmbot.venues.polymarket.gateway import LiveGateway
from mmbot.venues.polymarket.rest import ClobRest

KEY = SigningKey(Secret(value="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))
CREDS = ApiCredentials(api_key="key-1", secret=Secret(value="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                       passphrase=Secret(value="pass"))
T0 = 1_786_604_100 * 1_000_000_000
MARKET_A = MarketInfo(market="0xa", tokens=("101", "102"), tick=10_000)
MARKET_B = MarketInfo(market="0xb", tokens=("201", "202"), tick=10_000)
BY_TOKEN = {t: m for m in (MARKET_A, MARKET_B) for t in m.tokens}
SIGNER = OrderSigner(KEY)


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict]] = []

    def record(self, kind, cid, payload=None, **_):  # noqa: ANN001, ANN201
        self.rows.append((kind, cid, payload))

    def of(self, kind: str) -> list[dict]:
        return [payload for k, _, payload in self.rows if k == kind]


class FakeVenue:
    """A CLOB in miniature: posts rest, cancels end them, heartbeats chain. ``plan[endpoint]`` holds
    what the next requests to an endpoint meet instead of a plain answer:

    * ``"429:<Retry-After>"`` / ``"425"`` / ``"500"`` / ``"400"``: that status, nothing done;
    * ``"lost"``: done, and the answer lost on the way back (a read timeout); ``"lost:<s>"`` after
      ``s`` seconds;
    * ``"slow:<s>"``: done after ``s`` seconds, then answered;
    * ``"crash"``: a bug raised inside the caller (not an httpx error), nothing done.

    ``always[endpoint]`` is a plan used whenever ``plan`` has none left."""

    def __init__(self) -> None:
        self.plan: dict[str, deque[str]] = defaultdict(deque)
        self.always: dict[str, str] = {}
        self.seen: list[tuple[float, str, tuple[str, ...]]] = []  # (time, endpoint, venue ids)
        self.posted: Counter[str] = Counter()  # venue id -> times it reached the book
        self.resting: dict[str, str] = {}  # venue id -> market
        self.beat = ""
        self.beats_seen: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        endpoint = f"{request.method} {request.url.path}"
        body = json.loads(request.content) if request.content else None
        self.seen.append((trio.current_time(), endpoint, self._ids(endpoint, body)))
        step = self.plan[endpoint].popleft() if self.plan[endpoint] else self.always.get(endpoint, "")
        kind, _, arg = step.partition(":")
        if kind == "429":
            return httpx.Response(429, json={"error": "Too Many Requests"}, headers={"Retry-After": arg})
        if kind in ("425", "500", "400"):
            return httpx.Response(int(kind), json={"error": f"planned {kind}"})
        if kind == "crash":
            raise RuntimeError("a bug inside the lane")
        if kind in ("slow", "lost") and arg:
            await trio.sleep(float(arg))
        answer = self._answer(endpoint, body)
        if kind == "lost":
            raise httpx.ReadTimeout("answer lost", request=request)
        return answer

    @staticmethod
    def _ids(endpoint: str, body: Any) -> tuple[str, ...]:
        if endpoint == "POST /order":
            return (venue_id(body),)
        if endpoint == "POST /orders":
            return tuple(venue_id(b) for b in body)
        if endpoint == "DELETE /order":
            return (body["orderID"],)
        if endpoint == "DELETE /orders":
            return tuple(body)
        return ()

    def _answer(self, endpoint: str, body: Any) -> httpx.Response:
        if endpoint in ("POST /order", "POST /orders"):
            answers = []
            for one in [body] if endpoint == "POST /order" else body:
                vid = venue_id(one)
                self.posted[vid] += 1
                self.resting[vid] = BY_TOKEN[one["order"]["tokenId"]].market
                answers.append({"success": True, "orderID": vid, "status": "live", "errorMsg": ""})
            return httpx.Response(200, json=answers[0] if endpoint == "POST /order" else answers)
        if endpoint in ("DELETE /order", "DELETE /orders"):
            return self._cancel([body["orderID"]] if endpoint == "DELETE /order" else body)
        if endpoint == "DELETE /cancel-market-orders":
            return self._cancel([v for v, m in self.resting.items() if m == body["market"]], quiet=True)
        if endpoint == "DELETE /cancel-all":
            return self._cancel(list(self.resting), quiet=True)
        if endpoint == "POST /v1/heartbeats":
            sent = body["heartbeat_id"]
            self.beats_seen.append(sent)
            if sent != self.beat:
                return httpx.Response(400, json={"error_msg": "Invalid Heartbeat ID", "heartbeat_id": self.beat})
            self.beat = f"hb{len(self.beats_seen)}"
            return httpx.Response(200, json={"heartbeat_id": self.beat})
        return httpx.Response(404, json={"error": "not found"})

    def _cancel(self, ids: list[str], quiet: bool = False) -> httpx.Response:
        canceled = [v for v in ids if self.resting.pop(v, None) is not None]
        refused = {} if quiet else {v: "order not found" for v in ids if v not in canceled}
        return httpx.Response(200, json={"canceled": canceled, "not_canceled": refused})

    def times(self, endpoint: str) -> list[float]:
        return [t for t, e, _ in self.seen if e == endpoint]

    def endpoints(self) -> list[str]:
        return [e for _, e, _ in self.seen if e != "POST /v1/heartbeats"]


def venue_id(body: dict) -> str:
    wire = body["order"]
    order = OrderV2(salt=int(wire["salt"]), maker=wire["maker"], signer=wire["signer"], token_id=int(wire["tokenId"]),
                    maker_amount=int(wire["makerAmount"]), taker_amount=int(wire["takerAmount"]),
                    side=Side(wire["side"]), signature_type=int(wire["signatureType"]),
                    timestamp_ms=int(wire["timestamp"]))
    return SIGNER.order_id(order)


class Rig:
    def __init__(self, config: VenueConfig | None = None, *, dry_run: bool = False) -> None:
        self.venue = FakeVenue()
        self.clock = TrioClock(anchor_ns=T0)
        self.rest = ClobRest(client=httpx.AsyncClient(transport=httpx.MockTransport(self.venue),
                                                      base_url="http://venue"),
                             creds=CREDS, address=KEY.address, clock=self.clock)
        self.answers: list = []
        self.sink = Rows()
        self.gw = LiveGateway(rest=self.rest, signer=SIGNER, owner="key-1", markets=BY_TOKEN.get,
                              respond=self.answers.append, sink=self.sink, clock=self.clock, rng=random.Random(7),
                              config=config or VenueConfig(), dry_run=dry_run)

    def of(self, order_id: str) -> list:
        return [a for a in self.answers if a.order_id == order_id]

    async def place(self, *order_ids: str, market: MarketInfo = MARKET_A) -> None:
        """Orders accepted and resting, answers cleared."""
        for order_id in order_ids:
            self.gw.send(submit(order_id, market))
        await until(lambda: all(any(isinstance(a, OrderAccepted) for a in self.of(o)) for o in order_ids))
        self.answers.clear()


def submit(order_id: str, market: MarketInfo = MARKET_A, post_only: bool = True,
           tif: TimeInForce = TimeInForce.GTC) -> SubmitRequest:
    return SubmitRequest(cid=f"s-{order_id}", order_id=order_id, market=market.market, token=market.tokens[0],
                         side=Side.BUY, price=450_000, size=10 * ONE, tif=tif, post_only=post_only)


def cancel(order_id: str) -> CancelRequest:
    return CancelRequest(cid=f"c-{order_id}", order_id=order_id)


async def until(condition, limit_s: float = 3_600) -> None:  # noqa: ANN001
    with trio.fail_after(limit_s):
        while not condition():
            await trio.sleep(0.01)


# --------------------------------------------------------------------------- cancels


@pytest.mark.parametrize("deadline_s", [600, 10])  # ridden out, or escalated: confirmed either way
async def test_a_429_storm_on_cancels_ends_with_every_cancel_confirmed(deadline_s, nursery, autojump_clock) -> None:
    rig = Rig(VenueConfig(cancel_deadline_s=deadline_s))
    await nursery.start(rig.gw.run)
    await rig.place("o1", "o2", "o3", "o4")
    rig.venue.plan["DELETE /orders"].extend(["429:0.5"] * 20)
    for order_id in ("o1", "o2", "o3"):
        rig.gw.send(cancel(order_id))
    await trio.sleep(3)  # mid-storm
    rig.gw.send(cancel("o4"))
    await until(lambda: len(rig.answers) == 4)
    await trio.sleep(60)
    assert sorted(rig.answers, key=lambda a: a.order_id) == [
        OrderDone(cid=f"c-o{i}", order_id=f"o{i}", reason="canceled") for i in (1, 2, 3, 4)]
    assert rig.venue.resting == {}
    stats = rig.gw.statistics()
    assert stats["cancels_confirmed"] == 4 and stats["cancels_pending"] == 0
    if deadline_s == 600:
        assert stats["rate_limited"] == 20 and stats["cancel_retries"] >= 20
        assert rig.sink.of("cancel_escalated") == []
    else:
        assert [row["to"] for row in rig.sink.of("cancel_escalated")] == ["market"]
        assert rig.sink.of("cancel_escalated")[0]["reason"] == "DELETE /orders: rate limited"


async def test_a_cancel_sent_while_a_submit_is_retrying_goes_first(nursery, autojump_clock) -> None:
    rig = Rig()
    await nursery.start(rig.gw.run)
    await rig.place("live")
    rig.venue.plan["POST /order"].extend(["429:3"] * 4)
    rig.gw.send(submit("new"))
    await until(lambda: len(rig.venue.times("POST /order")) == 2)  # 1 placed "live", 1 refused "new"
    sent_at = trio.current_time()
    rig.gw.send(cancel("live"))
    await until(lambda: len(rig.of("new")) == 1 and len(rig.of("live")) == 1)
    assert rig.of("live") == [OrderDone(cid="c-live", order_id="live", reason="canceled")]
    assert rig.of("new") == [OrderAccepted(cid="s-new", order_id="new", venue_order_id=rig.gw.venue_ids["new"])]
    assert rig.venue.endpoints()[1:] == ["POST /order", "DELETE /order", "POST /order", "POST /order", "POST /order",
                                         "POST /order"]
    assert rig.venue.times("DELETE /order")[0] - sent_at < 0.1  # at once, not after the submit's retries


async def test_a_cancel_that_never_confirms_escalates_to_the_market_then_to_all_and_is_answered(
        nursery, autojump_clock) -> None:
    rig = Rig(VenueConfig(cancel_deadline_s=10))
    await nursery.start(rig.gw.run)
    await rig.place("a1", "a2")
    await rig.place("b1", "b2", market=MARKET_B)
    rig.venue.always["DELETE /orders"] = "500"  # sent, never confirmed
    rig.venue.always["DELETE /cancel-market-orders"] = "429:1"
    rig.venue.plan["DELETE /cancel-all"].extend(["lost", "500"] + ["429:2"] * 30)  # the first did cancel all
    started = trio.current_time()
    rig.gw.send(cancel("a1"))
    rig.gw.send(cancel("b1"))
    await until(lambda: len(rig.answers) == 4)
    escalations = rig.sink.of("cancel_escalated")
    assert [(row["to"], row["order_ids"]) for row in escalations] == [("market", ["a1", "b1"]), ("all", ["a1", "b1"])]
    assert escalations[0]["reason"].startswith("DELETE /orders: 500")
    assert escalations[1]["reason"] == "DELETE /cancel-market-orders: rate limited"
    first_market = rig.venue.times("DELETE /cancel-market-orders")[0]
    first_all = rig.venue.times("DELETE /cancel-all")[0]
    assert 5 <= first_market - started <= 10 and 5 <= first_all - first_market <= 10
    assert len(rig.venue.times("DELETE /cancel-all")) == 33  # retried until the venue answered
    # the lost cancel-all had ended everything: nothing was left for the answered one to cancel
    assert rig.answers == [OrderDone(cid="c-a1", order_id="a1", reason="not resting at the venue"),
                           OrderDone(cid="c-b1", order_id="b1", reason="not resting at the venue"),
                           OrderDone(cid="c-a1", order_id="a2", reason="not resting at the venue"),
                           OrderDone(cid="c-a1", order_id="b2", reason="not resting at the venue")]
    stats = rig.gw.statistics()
    assert stats["cancels_escalated_market"] == 1 and stats["cancels_escalated_all"] == 1
    assert stats["cancels_pending"] == 0


async def test_cancel_by_market_ends_the_market_s_other_orders_too(nursery, autojump_clock) -> None:
    rig = Rig(VenueConfig(cancel_deadline_s=10))
    await nursery.start(rig.gw.run)
    await rig.place("a1", "a2")
    await rig.place("b1", market=MARKET_B)
    rig.venue.always["DELETE /order"] = "lost"  # the cancel happens; its answer never comes back
    rig.venue.plan["POST /order"].append("lost")
    rig.gw.send(submit("a3"))  # unknown outcome: may rest, and does
    await until(lambda: len(rig.answers) == 1)
    rig.gw.send(cancel("a1"))
    await until(lambda: len(rig.answers) == 4)
    assert rig.answers[1:] == [OrderDone(cid="c-a1", order_id="a1", reason="not resting at the venue"),
                               OrderDone(cid="c-a1", order_id="a2", reason="canceled"),
                               OrderDone(cid="c-a1", order_id="a3", reason="canceled")]
    assert list(rig.venue.resting.values()) == ["0xb"]  # the other market untouched
    assert rig.gw.unknown_due(rig.clock.now_ns(), 0) == []  # the unknown one settled by the cancel


async def test_cancels_refused_by_the_venue_and_of_orders_never_seen(nursery, autojump_clock) -> None:
    rig = Rig()
    await nursery.start(rig.gw.run)
    await rig.place("o1")
    rig.venue.resting.clear()  # filled meanwhile
    rig.gw.send(cancel("o1"))
    rig.gw.send(cancel("o9"))
    await until(lambda: len(rig.answers) == 2)
    assert rig.answers == [CancelRejected(cid="c-o9", order_id="o9", reason="never sent"),
                           CancelRejected(cid="c-o1", order_id="o1", reason="order not found")]


# --------------------------------------------------------------------------- submits


async def test_an_unknown_outcome_is_never_resubmitted(nursery, autojump_clock) -> None:
    rig = Rig()
    await nursery.start(rig.gw.run)
    rig.venue.plan["POST /orders"].append("lost")
    rig.venue.plan["POST /order"].append("500")
    for order_id in ("o1", "o2", "o3"):
        rig.gw.send(submit(order_id))
    await until(lambda: len(rig.answers) == 3)
    rig.gw.send(submit("o4"))
    await trio.sleep(120)
    assert [type(a) for a in rig.answers] == [OrderOutcomeUnknown] * 4
    assert rig.venue.endpoints() == ["POST /orders", "POST /order"]
    assert set(rig.venue.posted.values()) == {1}  # the lost batch reached the book once; the 500 did not
    assert rig.gw.statistics()["submits_unknown"] == 4 and rig.gw.statistics()["submit_retries"] == 0
    assert sorted(rig.gw.unknown_due(rig.clock.now_ns(), 0)) == ["o1", "o2", "o3", "o4"]


async def test_an_answer_after_the_submit_deadline_is_still_applied(nursery, autojump_clock) -> None:
    rig = Rig(VenueConfig(submit_deadline_s=20))
    await nursery.start(rig.gw.run)
    rig.venue.plan["POST /order"].extend(["429:6", "429:6", "slow:30"])  # retried, then slow: in flight at 20 s
    started = trio.current_time()
    rig.gw.send(submit("o1"))
    await until(lambda: len(rig.answers) == 1)
    assert rig.answers == [OrderOutcomeUnknown(cid="s-o1", order_id="o1", detail="no answer within 20 s")]
    assert trio.current_time() - started == pytest.approx(20)
    assert rig.gw.unknown_due(rig.clock.now_ns(), 0) == ["o1"]
    rig.gw.send(cancel("o1"))  # may rest: goes to the venue at once
    await until(lambda: len(rig.answers) == 3)
    assert rig.answers[1:] == [
        CancelRejected(cid="c-o1", order_id="o1", reason="order not found"),  # not on the book yet
        OrderAccepted(cid="s-o1", order_id="o1", venue_order_id=rig.gw.venue_ids["o1"]),  # the late answer
    ]
    assert rig.gw.unknown_due(rig.clock.now_ns(), 0) == []
    assert rig.gw.statistics()["answers_after_deadline"] == 1


async def test_a_late_refusal_after_the_deadline_is_applied_too(nursery, autojump_clock) -> None:
    rig = Rig(VenueConfig(submit_deadline_s=20))
    await nursery.start(rig.gw.run)
    rig.venue.plan["POST /order"].append("slow:25")
    original = rig.venue._answer

    def refuse(endpoint, body):  # noqa: ANN001, ANN202
        return httpx.Response(400, json={"error": "INVALID_ORDER_NOT_ENOUGH_BALANCE"}) if endpoint == "POST /order" \
            else original(endpoint, body)

    rig.venue._answer = refuse
    rig.gw.send(submit("o1"))
    await until(lambda: len(rig.answers) == 2)
    assert [type(a) for a in rig.answers] == [OrderOutcomeUnknown, OrderRejected]
    assert rig.answers[1].reason == "INVALID_ORDER_NOT_ENOUGH_BALANCE"


async def test_an_order_placed_after_it_was_answered_as_ended_is_cancelled_again(nursery, autojump_clock) -> None:
    rig = Rig(VenueConfig(submit_deadline_s=20, cancel_deadline_s=10))
    await nursery.start(rig.gw.run)
    await rig.place("other")
    rig.venue.plan["POST /order"].append("slow:40")  # reaches the book at 40 s
    rig.venue.always["DELETE /order"] = "500"
    rig.gw.send(submit("late"))
    await until(lambda: len(rig.answers) == 1)  # unknown at 20 s
    rig.gw.send(cancel("other"))  # escalates to its market at ~30 s, which sweeps "late" too: not there yet
    await until(lambda: len(rig.of("late")) == 2)
    assert rig.of("late")[1] == OrderDone(cid="c-other", order_id="late", reason="not resting at the venue")
    await until(lambda: len(rig.of("late")) == 3)  # the post lands; its answer starts a cancel of its own
    assert rig.of("late")[2] == OrderDone(cid="s-late:late", order_id="late", reason="canceled")
    assert rig.venue.resting == {}
    assert [row["order_id"] for row in rig.sink.of("error") if "placed after" in row["error"]] == ["late"]


async def test_a_submit_never_sent_by_the_deadline_is_rejected_as_not_sent(nursery, autojump_clock) -> None:
    rig = Rig(VenueConfig(submit_deadline_s=20))
    await nursery.start(rig.gw.run)
    rig.venue.always["POST /order"] = "429:5"
    started = trio.current_time()
    rig.gw.send(submit("o1"))
    await until(lambda: len(rig.answers) == 1)
    assert rig.answers == [OrderRejected(cid="s-o1", order_id="o1", reason="not sent: POST /order: rate limited")]
    assert 15 <= trio.current_time() - started <= 20  # given up once the next try would come too late
    assert rig.venue.posted == {} and len(rig.venue.times("POST /order")) == 4


async def test_retry_after_is_respected_by_both_lanes(nursery, autojump_clock) -> None:
    rig = Rig()
    await nursery.start(rig.gw.run)
    await rig.place("o1")
    rig.venue.plan["POST /order"].append("429:7.5")
    rig.venue.plan["DELETE /order"].append("429:4.25")
    rig.gw.send(submit("o2"))
    rig.gw.send(cancel("o1"))
    await until(lambda: len(rig.answers) == 2)
    posts, deletes = rig.venue.times("POST /order")[1:], rig.venue.times("DELETE /order")
    assert posts[1] - posts[0] >= 7.5 and deletes[1] - deletes[0] >= 4.25  # the backoff alone would be ~0.25 s
    assert posts[1] - posts[0] < 8 and deletes[1] - deletes[0] < 5


async def test_the_post_only_window_after_an_engine_restart(nursery, autojump_clock) -> None:
    rig = Rig()
    await nursery.start(rig.gw.run)
    rig.venue.plan["POST /orders"].append("425")
    rig.gw.send(submit("maker"))
    rig.gw.send(submit("taker", post_only=False, tif=TimeInForce.FAK))
    await until(lambda: len(rig.answers) == 2)
    assert rig.answers == [
        OrderRejected(cid="s-taker", order_id="taker", reason="local: post-only window after an engine restart"),
        OrderAccepted(cid="s-maker", order_id="maker", venue_order_id=rig.gw.venue_ids["maker"])]
    assert rig.venue.endpoints() == ["POST /orders", "POST /order"]


# --------------------------------------------------------------------------- cancels of submits on their way


async def test_cancel_of_a_queued_submit_takes_it_back(nursery, autojump_clock) -> None:
    rig = Rig()
    await nursery.start(rig.gw.run)
    rig.venue.plan["POST /order"].append("slow:5")
    rig.gw.send(submit("first"))
    await until(lambda: len(rig.venue.endpoints()) >= 1)
    rig.gw.send(submit("queued"))  # behind the slow one
    rig.gw.send(cancel("queued"))
    assert rig.answers == [OrderRejected(cid="s-queued", order_id="queued", reason="local: cancelled before it was sent")]
    await until(lambda: len(rig.answers) == 2)
    await trio.sleep(30)
    assert len(rig.venue.endpoints()) == 1 and "queued" not in rig.gw.venue_ids


async def test_cancel_between_retries_takes_the_submit_back(nursery, autojump_clock) -> None:
    rig = Rig()
    await nursery.start(rig.gw.run)
    rig.venue.plan["POST /orders"].append("429:5")
    rig.gw.send(submit("o1"))
    rig.gw.send(submit("o2"))
    await until(lambda: len(rig.venue.endpoints()) == 1)
    rig.gw.send(cancel("o1"))
    await until(lambda: len(rig.answers) == 2)
    assert rig.answers == [
        OrderRejected(cid="s-o1", order_id="o1", reason="local: cancelled before it was sent"),
        OrderAccepted(cid="s-o2", order_id="o2", venue_order_id=rig.gw.venue_ids["o2"])]
    assert rig.venue.endpoints() == ["POST /orders", "POST /order"] and list(rig.venue.posted) == [
        rig.gw.venue_ids["o2"]]


@pytest.mark.parametrize("post", ["slow:5", "lost:5"])
async def test_cancel_of_a_submit_in_flight_waits_for_its_answer(post, nursery, autojump_clock) -> None:
    rig = Rig()
    await nursery.start(rig.gw.run)
    rig.venue.plan["POST /order"].append(post)  # answered after 5 s, or its answer lost after 5 s
    started = trio.current_time()
    rig.gw.send(submit("o1"))
    await until(lambda: len(rig.venue.endpoints()) == 1)
    rig.gw.send(cancel("o1"))
    await until(lambda: any(isinstance(a, OrderDone) for a in rig.answers))
    first = OrderAccepted if post == "slow:5" else OrderOutcomeUnknown
    assert [type(a) for a in rig.answers] == [first, OrderDone]
    assert rig.venue.endpoints() == ["POST /order", "DELETE /order"]
    assert rig.venue.times("DELETE /order")[0] - started >= 5  # held until the post was answered (or lost)
    assert rig.venue.resting == {}


# --------------------------------------------------------------------------- crashes


async def test_a_lane_crash_mid_request_and_its_restart_lose_nothing(nursery, autojump_clock) -> None:
    rig = Rig()
    for name, lane in (("submits", rig.gw.run_submits), ("cancels", rig.gw.run_cancels)):
        await nursery.start(lambda task_status, n=name, s=lane: supervise(
            n, s, policy=RestartPolicy(rng=random.Random(3)), sink=rig.sink, now=trio.current_time,
            task_status=task_status))
    await rig.place("o1")
    rig.venue.plan["POST /orders"].append("crash")
    rig.venue.plan["DELETE /order"].append("crash")
    rig.gw.send(submit("o2"))
    rig.gw.send(submit("o3"))
    rig.gw.send(cancel("o1"))
    await until(lambda: len(rig.answers) == 3)
    rig.gw.send(submit("o4"))  # the restarted lane works
    await until(lambda: len(rig.answers) == 4)
    assert sorted((type(a).__name__, a.order_id) for a in rig.answers) == [
        ("OrderAccepted", "o4"), ("OrderDone", "o1"), ("OrderOutcomeUnknown", "o2"), ("OrderOutcomeUnknown", "o3")]
    assert sorted(row["service"] for row in rig.sink.of("restart")) == ["cancels", "submits"]
    assert len(rig.venue.times("DELETE /order")) == 2  # sent again by the restarted lane
    assert len(rig.venue.times("POST /orders")) == 1  # never resent: they may have been sent


async def test_a_restarted_submit_lane_sends_again_what_was_only_waiting_for_a_retry(nursery, autojump_clock) -> None:
    rig = Rig()
    lane = trio.CancelScope()

    async def first_lane(task_status=trio.TASK_STATUS_IGNORED) -> None:  # noqa: ANN001
        with lane:
            await rig.gw.run_submits(task_status=task_status)

    await nursery.start(first_lane)
    rig.venue.plan["POST /order"].append("429:10")
    rig.gw.send(submit("o1"))
    await until(lambda: len(rig.venue.endpoints()) == 1)
    lane.cancel()  # the lane dies between two tries
    await trio.testing.wait_all_tasks_blocked()
    await nursery.start(rig.gw.run_submits)
    await until(lambda: len(rig.answers) == 1)
    assert rig.answers == [OrderAccepted(cid="s-o1", order_id="o1", venue_order_id=rig.gw.venue_ids["o1"])]


# --------------------------------------------------------------------------- heartbeats, statistics, memory


async def test_heartbeats_chain_ids_on_v1_and_count_failures(nursery, autojump_clock) -> None:
    rig = Rig()
    rig.venue.plan["POST /v1/heartbeats"].extend(["", "", "500", "429:3", ""])
    await nursery.start(rig.gw.run_heartbeats)
    await trio.sleep(12)
    assert rig.gw.statistics()["heartbeats_failing_in_a_row"] == 2
    await trio.sleep(20)
    beats = [t for t, e, _ in rig.venue.seen if e == "POST /v1/heartbeats"]
    assert rig.venue.beats_seen[:3] == ["", "hb1", "hb2"]  # each echoes the id the last one returned
    assert beats[1] - beats[0] == pytest.approx(5) and beats[2] - beats[1] == pytest.approx(5)
    assert beats[3] - beats[2] < 1 and 3 <= beats[4] - beats[3] <= 5  # after a failure: sooner, or as advised
    stats = rig.gw.statistics()
    assert stats["heartbeats_failed"] == 2 and stats["heartbeats_failing_in_a_row"] == 0 and stats["rate_limited"] == 1
    assert stats["heartbeats_ok"] == len(beats) - 2
    rig.venue.beat = "reset-by-the-venue"  # our id expired: the current one is adopted and sent at once
    await trio.sleep(6)
    adopted = rig.venue.beats_seen.index("reset-by-the-venue")
    assert rig.venue.beats_seen[adopted - 1].startswith("hb")  # the stale one, refused
    assert rig.venue.beat != "reset-by-the-venue"  # the adopted one was taken
    assert rig.gw.statistics()["heartbeats_failed"] == 2
    assert [row["failing_in_a_row"] for row in rig.sink.of("error")] == [1, 2]


async def test_statistics_and_forget(nursery, autojump_clock) -> None:
    rig = Rig()
    await nursery.start(rig.gw.run)
    await rig.place("o1", "o2")
    rig.venue.always["DELETE /order"] = "429:1"
    rig.gw.send(cancel("o2"))  # pending for a while: kept by forget
    await trio.sleep(1)
    stats = rig.gw.statistics()
    for key in ("submits_sent", "submit_retries", "submits_unknown", "answers_after_deadline", "cancels_sent",
                "cancel_retries", "cancels_confirmed", "cancels_escalated_market", "cancels_escalated_all",
                "cancels_pending", "heartbeats_ok", "heartbeats_failed", "heartbeats_failing_in_a_row",
                "rate_limited", "id_map_size"):
        assert isinstance(stats[key], int), key
    assert stats["id_map_size"] == 2 and stats["cancels_pending"] == 1 and stats["submits_sent"] == 2
    assert rig.gw.forget(["o1", "o2", "never"]) == 1
    assert set(rig.gw.venue_ids) == {"o2"} and len(rig.gw.local_ids) == 1
    rig.gw.send(cancel("o1"))  # forgotten: as if never seen
    await until(lambda: len(rig.answers) == 1)
    assert rig.answers == [CancelRejected(cid="c-o1", order_id="o1", reason="never sent")]


async def test_a_dry_run_sends_nothing(nursery, autojump_clock) -> None:
    rig = Rig(dry_run=True)
    await nursery.start(rig.gw.run)
    await rig.place("o1")
    rig.gw.send(cancel("o1"))
    await until(lambda: len(rig.answers) == 1)
    await trio.sleep(30)
    assert rig.venue.seen == [] and rig.answers == [OrderDone(cid="c-o1", order_id="o1", reason="canceled")]
    assert [row["order_id"] for row in rig.sink.of("dry_run_order")] == ["o1"]


# --------------------------------------------------------------------------- any interleaving

STEPS = st.sampled_from(["", "", "", "429:0.5", "429:3", "425", "500", "lost", "slow:4", "slow:25", "400"])
ACTIONS = st.lists(st.tuples(st.sampled_from(["submit", "cancel", "wait"]), st.integers(0, 5),
                             st.sampled_from([0.0, 0.1, 2.0, 7.0])), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS, steps=st.dictionaries(
    st.sampled_from(["POST /order", "POST /orders", "DELETE /order", "DELETE /orders", "DELETE /cancel-market-orders",
                     "DELETE /cancel-all"]), st.lists(STEPS, max_size=12)))
def test_any_interleaving_answers_every_request_and_never_loses_a_cancel(actions, steps) -> None:
    """Submits and cancels at random moments against a venue misbehaving at random: in the end
    every submit was answered (one first answer; a late one only after an unknown), every cancel
    was answered or took its submit back, nothing reached the book twice, and no order we asked
    to cancel still rests."""

    async def scenario() -> Rig:
        rig = Rig(VenueConfig(submit_deadline_s=20, cancel_deadline_s=10))
        for endpoint, plan in steps.items():
            rig.venue.plan[endpoint].extend(plan)
        async with trio.open_nursery() as nursery:
            await nursery.start(rig.gw.run)
            for n, (action, which, pause) in enumerate(actions):
                if action == "submit":
                    rig.gw.send(submit(f"o{n}", MARKET_A if which % 2 else MARKET_B))
                elif action == "cancel":
                    submitted = [f"o{i}" for i, (a, _, _) in enumerate(actions[:n]) if a == "submit"]
                    rig.gw.send(CancelRequest(cid=f"c{n}", order_id=submitted[which % len(submitted)]
                                              if submitted else "nobody"))
                await trio.sleep(pause)
            await trio.sleep(600)
            nursery.cancel_scope.cancel()
        return rig

    rig = trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    submits = [f"o{n}" for n, (a, _, _) in enumerate(actions) if a == "submit"]
    taken_back = {a.order_id for a in rig.answers if isinstance(a, OrderRejected)
                  and a.reason == "local: cancelled before it was sent"}
    for order_id in submits:  # one first answer; a second only after an unknown outcome
        kinds = [type(a) for a in rig.answers if a.cid == f"s-{order_id}"]
        assert kinds[:1] in ([OrderAccepted], [OrderRejected], [OrderOutcomeUnknown]), (order_id, rig.answers)
        assert len(kinds) == 1 or (kinds[0] is OrderOutcomeUnknown and len(kinds) == 2), (order_id, kinds)
    assert set(rig.venue.posted.values()) <= {1}  # nothing reached the book twice
    for n, (action, which, _) in enumerate(actions):
        if action == "cancel":  # answered once, or it took its submit back before the submit was sent
            answered = [a for a in rig.answers if a.cid == f"c{n}"]
            target = [a.order_id for a in answered] or [None]
            assert len(answered) == 1 or (not answered and taken_back), (n, rig.answers)
            assert target[0] is None or isinstance(answered[0], (OrderDone, CancelRejected))
    belief = {}
    for answer in rig.answers:  # what the executor was told last about each order
        belief[answer.order_id] = "ended" if isinstance(answer, (OrderDone, OrderRejected)) else "open"
    for venue_id in rig.venue.resting:  # no order rests at the venue while we believe it ended
        assert belief[rig.gw.local_ids[venue_id]] == "open", (venue_id, rig.answers)
    stats = rig.gw.statistics()
    assert stats["cancels_pending"] == 0 and stats["submits_queued"] == 0

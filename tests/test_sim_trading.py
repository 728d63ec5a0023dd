"""The live gateway and REST client against the simulator's trading endpoints, over loopback:
signed orders verified (the signer recovered), matched in the engine under the digest as order ID,
cancelled; bad signatures, keys and grids refused with the venue's strings."""

from __future__ import annotations

import random

import httpx
import pytest
import trio
import trio.testing

from mmbot.clock import TrioClock
from mmbot.config import Secret, VenueConfig
from mmbot.model import (
    ONE, CancelRequest, Liquidity, OrderAccepted, OrderDone, OrderRejected, Side, SubmitRequest, TimeInForce,
)
from mmbot.ports import Fatal, Rejected
from mmbot.venues.polymarket.auth import ApiCredentials, OrderSigner, SigningKey
from mmbot.venues.polymarket.gateway import LiveGateway
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.simulator.server import SimServer, SimSettings
from mmbot.venues.simulator.trading import credentials_for
from mmbot.venues.simulator.venue import LiveVenue

KEY = SigningKey(Secret(value="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))


class Rows:
    def __init__(self) -> None:
        self.rows: list = []

    def record(self, kind, cid, payload=None, **_):  # noqa: ANN001, ANN201
        self.rows.append((kind, cid, payload))


async def setup(nursery, gateway_nursery=None):  # noqa: ANN001, ANN201
    """A simulator with KEY's account, and a live gateway for it (in ``gateway_nursery`` if given,
    so a test can stop the gateway alone)."""
    venue = LiveVenue(seed=4, markets=4, start_ns=1_786_604_100 * 1_000_000_000, warmup_s=10)
    server = SimServer(venue, settings=SimSettings(), clock=TrioClock(anchor_ns=1_786_604_100 * 1_000_000_000))
    creds = credentials_for(KEY.address)
    server.add_account(KEY.address, creds)
    urls = await nursery.start(server.run)
    clock = TrioClock(anchor_ns=1_786_604_100 * 1_000_000_000)
    rest = ClobRest(client=httpx.AsyncClient(base_url=urls.rest), creds=creds, address=KEY.address, clock=clock)
    answers: list = []
    info = venue.markets()[1]
    gw = LiveGateway(rest=rest, signer=OrderSigner(KEY), owner=creds.api_key, markets=lambda t: info if t in info.tokens else None,
                     respond=answers.append, sink=Rows(), clock=clock, rng=random.Random(2),
                     config=VenueConfig())
    await (gateway_nursery or nursery).start(gw.run)
    return server, rest, gw, answers, info


async def settle(answers: list, n: int) -> None:
    with trio.fail_after(30):
        while len(answers) < n:
            await trio.sleep(0.01)


async def test_a_signed_order_rests_in_the_engine_under_its_digest_and_cancels(nursery, autojump_clock) -> None:
    server, rest, gw, answers, info = await setup(nursery)
    await rest.check_version()
    token = info.tokens[0]
    bid, _ = server.venue.best(token)
    price = bid - 2 * info.tick  # below the best bid: rests
    gw.send(SubmitRequest(cid="i1", order_id="o1", market=info.market, token=token, side=Side.BUY, price=price,
                          size=10 * ONE, tif=TimeInForce.GTC, post_only=True))
    await settle(answers, 1)
    assert answers == [OrderAccepted(cid="i1", order_id="o1", venue_order_id=gw.venue_ids["o1"])]
    resting = server.venue.engine.order(gw.venue_ids["o1"])
    assert resting is not None and resting.price == price and resting.original_size == 10 * ONE
    assert [o.id for o in await rest.open_orders()] == [gw.venue_ids["o1"]]
    gw.send(CancelRequest(cid="c1", order_id="o1"))
    await settle(answers, 2)
    assert answers[1] == OrderDone(cid="c1", order_id="o1", reason="canceled")
    assert server.venue.engine.order(gw.venue_ids["o1"]) is None


async def test_the_venue_refuses_what_it_should(nursery, autojump_clock) -> None:
    server, rest, gw, answers, info = await setup(nursery)
    token = info.tokens[0]
    gw.send(SubmitRequest(cid="i1", order_id="o1", market=info.market, token=token, side=Side.BUY, price=10_000,
                          size=ONE, tif=TimeInForce.GTC, post_only=True))  # one share: under the minimum size
    await settle(answers, 1)
    assert answers == [OrderRejected(cid="i1", order_id="o1", reason="INVALID_ORDER_MIN_SIZE")]
    body = gw.body(SubmitRequest(cid="i2", order_id="o2", market=info.market, token=token, side=Side.BUY,
                                 price=10_000, size=10 * ONE, tif=TimeInForce.GTC))
    body["order"]["takerAmount"] = str(int(body["order"]["takerAmount"]) + 1)  # tampered after signing
    with pytest.raises(Rejected, match="invalid signature"):
        await rest.post_orders([body])
    stranger = ClobRest(client=httpx.AsyncClient(base_url=str(rest._client.base_url)),
                        creds=ApiCredentials(api_key="nobody", secret=Secret(value="AAAA"), passphrase=Secret(value="x")),
                        address=KEY.address, clock=TrioClock(anchor_ns=0))
    with pytest.raises(Fatal, match="Unauthorized"):
        await stranger.open_orders()


async def test_user_channel_trades_settle_or_fail_and_reconciliation_follows(nursery, autojump_clock) -> None:
    """A rests a SELL; B's FAK BUY takes it. A's user channel reports the trade MATCHED → MINED →
    CONFIRMED; with the `fail` fault the next one goes MATCHED → RETRYING → FAILED, and
    reconciliation reverses the fill A had booked."""
    from mmbot.decisions.reconcile import Reconciler
    from mmbot.model import Correction, Fill, Ids, Liquidity, UserTrade
    from mmbot.venues.polymarket.user_fills import our_legs
    from mmbot.venues.polymarket.wire_user import decode_user_frame
    from mmbot.venues.polymarket.ws import user_connection
    from mmbot.venues.simulator.server import Fault
    from mmbot.config import FeedConfig

    server, rest_a, gw_a, answers_a, info = await setup(nursery)
    key_b = SigningKey(Secret(value="0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"))
    creds_b = credentials_for(key_b.address)
    server.add_account(key_b.address, creds_b)
    clock = TrioClock(anchor_ns=1_786_604_100 * 1_000_000_000)
    rest_b = ClobRest(client=httpx.AsyncClient(base_url=str(rest_a._client.base_url)), creds=creds_b,
                      address=key_b.address, clock=clock)
    answers_b: list = []
    gw_b = LiveGateway(rest=rest_b, signer=OrderSigner(key_b), owner=creds_b.api_key,
                       markets=lambda t: info if t in info.tokens else None, respond=answers_b.append, sink=Rows(),
                       clock=clock, rng=random.Random(3), config=VenueConfig())
    await nursery.start(gw_b.run)
    creds_a = credentials_for(KEY.address)
    trades: list[UserTrade] = []
    user = user_connection(
        url=server.user_url, creds=creds_a, markets=[], sink=Rows(), clock=clock, config=FeedConfig(),
        on_frame=lambda text, t: trades.extend(m for m in decode_user_frame(text, recv_ns=t, cid="u")
                                               if isinstance(m, UserTrade)),
        on_gap=lambda keys, why: None, rng=random.Random(4),
    )
    nursery.start_soon(user.run)
    await trio.sleep(1)
    token = info.tokens[0]
    bid, ask = server.venue.best(token)

    async def cross(n: int) -> None:
        price = ask - info.tick  # A's SELL improves the best ask; B's FAK BUY takes it
        gw_a.send(SubmitRequest(cid=f"a{n}", order_id=f"a{n}", market=info.market, token=token, side=Side.SELL,
                                price=price, size=10 * ONE, tif=TimeInForce.GTC, post_only=True))
        await settle(answers_a, n)
        gw_b.send(SubmitRequest(cid=f"b{n}", order_id=f"b{n}", market=info.market, token=token, side=Side.BUY,
                                price=price, size=10 * ONE, tif=TimeInForce.FAK))
        await settle(answers_b, n)

    server.trading.give(creds_a.api_key, shares={token: 20 * ONE})  # A has shares to sell
    await cross(1)
    await trio.sleep(8)
    ours = {gw_a.venue_ids["a1"]: "a1"}
    statuses = [leg.status for t in trades for leg in our_legs(t, api_key=creds_a.api_key, addresses=frozenset(),
                                                               our_ids=ours, taker_fee=lambda *a: 0)]
    assert statuses == ["MATCHED", "MINED", "CONFIRMED"]

    server.inject(Fault(kind="fail", value=creds_a.api_key))
    trades.clear()
    corrections: list[Correction] = []
    rec = Reconciler(emit=corrections.append, ids=Ids(), timeout_ns=5_000_000_000)
    await cross(2)
    ours[gw_a.venue_ids["a2"]] = "a2"
    rec.on_our_fill(Fill(cid="a2", fill_id="a2.1", order_id="a2", market=info.market, token=token, side=Side.SELL,
                         price=ask - info.tick, size=10 * ONE, fee=0, liquidity=Liquidity.MAKER, ts_ns=0), 0)
    await trio.sleep(8)
    for t in trades:
        for leg in our_legs(t, api_key=creds_a.api_key, addresses=frozenset(), our_ids=ours, taker_fee=lambda *a: 0):
            rec.on_leg(leg, 1)
    assert [t.status for t in trades] == ["MATCHED", "RETRYING", "FAILED"]
    assert [(c.order_id, c.size_delta, c.reason.split()[-1]) for c in corrections] == [("a2", -10 * ONE, "failed")]


async def test_trading_faults_throttle_restart_and_a_lost_answer(nursery, autojump_clock) -> None:
    from mmbot.model import OrderOutcomeUnknown
    from mmbot.venues.simulator.server import Fault

    server, rest, gw, answers, info = await setup(nursery)
    token = info.tokens[0]
    bid, _ = server.venue.best(token)

    def order(n: int) -> SubmitRequest:
        return SubmitRequest(cid=f"i{n}", order_id=f"o{n}", market=info.market, token=token, side=Side.BUY,
                             price=bid - 3 * info.tick, size=10 * ONE, tif=TimeInForce.GTC, post_only=True)

    server.inject(Fault(kind="throttle", value="2"))  # two 429s, then through
    started = trio.current_time()
    gw.send(order(1))
    await settle(answers, 1)
    assert isinstance(answers[0], OrderAccepted) and trio.current_time() - started >= 2  # waited Retry-After twice

    server.inject(Fault(kind="restart", value="5"))  # 425 for five seconds: retried until it is over
    gw.send(order(2))
    await settle(answers, 2)
    assert isinstance(answers[1], OrderAccepted)

    server.inject(Fault(kind="lose", value="1"))  # accepted by the venue, the answer lost
    gw.send(order(3))
    await settle(answers, 3)
    assert answers[2] == OrderOutcomeUnknown(cid="i3", order_id="o3", detail=answers[2].detail)
    # never resent, and the venue has it under the id we computed before sending: reconcilable
    assert server.venue.engine.order(gw.venue_ids["o3"]) is not None
    assert [o.id for o in await rest.open_orders()].count(gw.venue_ids["o3"]) == 1


def test_shuffled_user_messages_come_twice_and_reversed() -> None:
    from mmbot.venues.simulator.user_frames import UserFeed

    feed = UserFeed()
    feed.add_account("k", "0xabc")
    feed._outbox = [("k", "m1"), ("other", "x"), ("k", "m2")]
    feed.shuffle_next.add("k")
    assert feed.take(0) == [("other", "x"), ("k", "m2"), ("k", "m1"), ("k", "m1"), ("k", "m2")]
    feed._outbox = [("k", "m3")]
    assert feed.take(0) == [("k", "m3")]  # once only


async def test_credentials_are_created_by_an_l1_signature_and_then_work(nursery, autojump_clock) -> None:
    venue = LiveVenue(seed=4, markets=4, start_ns=1_786_604_100 * 1_000_000_000, warmup_s=10)
    server = SimServer(venue, settings=SimSettings(), clock=TrioClock(anchor_ns=1_786_604_100 * 1_000_000_000))
    urls = await nursery.start(server.run)
    clock = TrioClock(anchor_ns=1_786_604_100 * 1_000_000_000)
    async with httpx.AsyncClient(base_url=urls.rest) as client:
        creds = await ClobRest.create_or_derive_api_key(client, KEY, clock)
        assert creds == await ClobRest.create_or_derive_api_key(client, KEY, clock)  # the same all run long
        assert creds.api_key != credentials_for(KEY.address).api_key  # from the server's secret, not the address
        rest = ClobRest(client=client, creds=creds, address=KEY.address, clock=clock)
        assert await rest.open_orders() == []  # L2 with the derived credentials
        forged = await client.post("/auth/api-key", headers={
            "POLY_ADDRESS": "0x" + "12" * 20, "POLY_SIGNATURE": "0x" + "00" * 65, "POLY_TIMESTAMP": "1", "POLY_NONCE": "0"})
        assert forged.status_code in (400, 401)


async def test_orders_outlive_a_gateway_only_while_its_heartbeats_last(nursery, autojump_clock) -> None:
    """Cancel-on-disconnect: while the gateway runs its heartbeats keep the order resting; once it
    stops, the simulator cancels the account's orders ~15 s after the last heartbeat."""
    async with trio.open_nursery() as gateway_nursery:
        server, rest, gw, answers, info = await setup(nursery, gateway_nursery)
        venue, token = server.venue, info.tokens[0]
        bid, _ = venue.best(token)
        gw.send(SubmitRequest(cid="i1", order_id="o1", market=info.market, token=token, side=Side.BUY,
                              price=bid - 3 * info.tick, size=10 * ONE, tif=TimeInForce.GTC, post_only=True))
        await settle(answers, 1)
        await trio.sleep(40)
        assert venue.engine.order(gw.venue_ids["o1"]) is not None  # kept alive
        gateway_nursery.cancel_scope.cancel()  # the process "dies"
    await trio.sleep(25)
    assert venue.engine.order(gw.venue_ids["o1"]) is None
    assert server.counts["heartbeat_cancels"] == 1


async def test_after_an_engine_restart_only_post_only_orders_go_out_for_two_minutes(nursery, autojump_clock) -> None:
    from mmbot.venues.simulator.server import Fault

    server, rest, gw, answers, info = await setup(nursery)
    token = info.tokens[0]
    bid, ask = server.venue.best(token)
    server.inject(Fault(kind="restart", value="4"))
    gw.send(SubmitRequest(cid="i1", order_id="o1", market=info.market, token=token, side=Side.BUY,
                          price=bid - 3 * info.tick, size=10 * ONE, tif=TimeInForce.GTC, post_only=True))
    await settle(answers, 1)
    assert isinstance(answers[0], OrderAccepted)  # waited out the 425s
    gw.send(SubmitRequest(cid="i2", order_id="o2", market=info.market, token=token, side=Side.BUY, price=ask,
                          size=10 * ONE, tif=TimeInForce.FAK))
    await settle(answers, 2)
    assert answers[1] == OrderRejected(cid="i2", order_id="o2", reason="local: post-only window after an engine restart")
    await trio.sleep(121)
    gw.send(SubmitRequest(cid="i3", order_id="o3", market=info.market, token=token, side=Side.BUY, price=ask,
                          size=10 * ONE, tif=TimeInForce.FAK))
    await settle(answers, 3)
    assert isinstance(answers[2], (OrderAccepted, OrderRejected)) and answers[2].order_id == "o3"
    assert "post-only window" not in getattr(answers[2], "reason", "")


async def test_the_account_holds_its_balance_and_orders_beyond_it_are_refused(nursery, autojump_clock) -> None:
    server, rest, gw, answers, info = await setup(nursery)
    token = info.tokens[0]
    assert await rest.collateral_balance() == 10_000 * ONE and await rest.token_balance(token) == 0
    mid = await rest.midpoint(token)
    assert mid is not None and 0 < mid < ONE

    def buy(n: int, shares: int, side: Side = Side.BUY) -> None:
        gw.send(SubmitRequest(cid=f"i{n}", order_id=f"o{n}", market=info.market, token=token, side=side,
                              price=10_000 if side is Side.BUY else ONE - 10_000, size=shares * ONE,
                              tif=TimeInForce.GTC, post_only=True))

    buy(1, 600_000)  # 6,000 pUSD at 0.01: rests
    await settle(answers, 1)
    buy(2, 500_000)  # 5,000 more: the first holds 6,000 of the 10,000
    buy(3, 10, Side.SELL)  # no shares to sell
    await settle(answers, 3)
    assert [type(a).__name__ for a in answers] == ["OrderAccepted", "OrderRejected", "OrderRejected"]
    assert {a.reason for a in answers[1:]} == {"not enough balance / allowance"}
    server.trading.give(credentials_for(KEY.address).api_key, shares={token: 10 * ONE})
    assert await rest.token_balance(token) == 10 * ONE
    buy(4, 10, Side.SELL)
    await settle(answers, 4)
    assert isinstance(answers[3], OrderAccepted)


async def test_the_trades_endpoint_gives_each_trade_in_its_latest_status(nursery, autojump_clock) -> None:
    server, rest, gw, answers, info = await setup(nursery)
    token = info.tokens[0]
    server.trading.give(credentials_for(KEY.address).api_key, shares={token: 10 * ONE})
    _, ask = server.venue.best(token)
    gw.send(SubmitRequest(cid="i1", order_id="o1", market=info.market, token=token, side=Side.SELL,
                          price=ask - info.tick, size=10 * ONE, tif=TimeInForce.GTC, post_only=True))
    await settle(answers, 1)
    key_b = SigningKey(Secret(value="0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"))
    creds_b = credentials_for(key_b.address)
    server.add_account(key_b.address, creds_b)
    rest_b = ClobRest(client=httpx.AsyncClient(base_url=str(rest._client.base_url)), creds=creds_b,
                      address=key_b.address, clock=TrioClock(anchor_ns=1_786_604_100 * 1_000_000_000))
    taker = LiveGateway(rest=rest_b, signer=OrderSigner(key_b), owner=creds_b.api_key,
                        markets=lambda t: info if t in info.tokens else None, respond=answers.append, sink=Rows(),
                        clock=TrioClock(anchor_ns=0), rng=random.Random(3), config=VenueConfig())
    await nursery.start(taker.run)
    taker.send(SubmitRequest(cid="b1", order_id="b1", market=info.market, token=token, side=Side.BUY,
                             price=ask - info.tick, size=6 * ONE, tif=TimeInForce.FAK))
    await settle(answers, 2)
    await trio.sleep(0.5)  # the venue's next step hands the engine's events to the user feed
    [trade] = await rest.trades()
    assert trade.status == "MATCHED" and trade.trader_side is Liquidity.MAKER  # we were the maker; the top level is the taker
    assert trade.maker_orders[0].order_id == gw.venue_ids["o1"] and trade.maker_orders[0].matched_amount == 6 * ONE
    await trio.sleep(6)
    server.publish_user()  # settlement statuses are due: the trades endpoint follows them
    later = await rest.trades()  # the venue's own flow may have taken more of the order meanwhile
    assert {t.trade_id: t.status for t in later}[trade.trade_id] == "CONFIRMED"
    assert all(t.match_time_s > trade.match_time_s for t in await rest.trades(after_s=trade.match_time_s + 1))
    sold = sum(m.matched_amount for t in later for m in t.maker_orders)
    assert await rest.token_balance(token) == 10 * ONE - sold


async def test_an_unanswered_post_is_settled_by_the_user_channel_or_by_asking_the_venue(nursery, autojump_clock) -> None:
    """A post whose answer was lost: the PLACEMENT on the user channel says it rests; without one
    (the channel is not listening), the open orders say whether it is on the book."""
    from mmbot.config import FeedConfig
    from mmbot.model import OrderOutcomeUnknown
    from mmbot.venues.polymarket.user_fills import UserFills
    from mmbot.venues.polymarket.ws import user_connection
    from mmbot.venues.simulator.server import Fault

    server, rest, gw, answers, info = await setup(nursery)
    token = info.tokens[0]
    bid, _ = server.venue.best(token)
    creds = credentials_for(KEY.address)
    fills = UserFills(api_key=creds.api_key, addresses=frozenset({KEY.address}), our_ids=gw.local_ids,
                      markets=lambda t: info, respond=answers.append, reconcile=lambda leg, t: None, sink=Rows(),
                      placed=gw.confirm_placed)
    listening = trio.CancelScope()

    async def listen() -> None:
        with listening:
            await user_connection(url=server.user_url, creds=creds, markets=[], sink=Rows(),
                                  clock=TrioClock(anchor_ns=0), config=FeedConfig(), on_frame=fills.on_frame,
                                  on_gap=lambda keys, why: None, rng=random.Random(5)).run()

    nursery.start_soon(listen)
    await trio.sleep(1)

    def order(n: int) -> SubmitRequest:
        return SubmitRequest(cid=f"i{n}", order_id=f"o{n}", market=info.market, token=token, side=Side.BUY,
                             price=bid - 3 * info.tick, size=10 * ONE, tif=TimeInForce.GTC, post_only=True)

    server.inject(Fault(kind="lose", value="1"))
    gw.send(order(1))
    await settle(answers, 2)
    assert [type(a) for a in answers] == [OrderOutcomeUnknown, OrderAccepted]
    assert answers[1].order_id == "o1" and answers[1].venue_order_id == gw.venue_ids["o1"]
    assert gw.unknown_since == {}

    listening.cancel()  # from now on only the venue's open orders can tell
    server.inject(Fault(kind="lose", value="1"))
    gw.send(order(2))
    await settle(answers, 3)
    assert gw.unknown_due(gw._clock.now_ns(), 0) == ["o2"]
    resting = {o.id for o in await rest.open_orders()}
    gw.settle_unknown("o2", gw.venue_ids["o2"] in resting, "asked1")
    gw.settle_unknown("o1", False, "asked1")  # settled already: nothing more
    assert answers[3:] == [OrderAccepted(cid="asked1", order_id="o2", venue_order_id=gw.venue_ids["o2"])]
    server.venue.engine.cancel(gw.venue_ids["o2"], server.venue.now_ns)
    gw.unknown_since["o2"] = 0  # as if unanswered again, and meanwhile gone from the book
    gw.settle_unknown("o2", gw.venue_ids["o2"] in {o.id for o in await rest.open_orders()}, "asked2")
    assert answers[4:] == [OrderDone(cid="asked2", order_id="o2", reason="not on the venue's book")]

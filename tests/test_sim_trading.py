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
from mmbot.config import Secret
from mmbot.model import ONE, CancelRequest, OrderAccepted, OrderDone, OrderRejected, Side, SubmitRequest, TimeInForce
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


async def setup(nursery):  # noqa: ANN001, ANN201
    venue = LiveVenue(seed=4, markets=4, start_ns=1_786_604_100 * 1_000_000_000, warmup_s=10)
    server = SimServer(venue, settings=SimSettings())
    creds = credentials_for(KEY.address)
    server.trading.add_account(KEY.address, creds)
    urls = await nursery.start(server.run)
    clock = TrioClock(anchor_ns=1_786_604_100 * 1_000_000_000)
    rest = ClobRest(client=httpx.AsyncClient(base_url=urls.rest), creds=creds, address=KEY.address, clock=clock)
    answers: list = []
    info = venue.markets()[1]
    gw = LiveGateway(rest=rest, signer=OrderSigner(KEY), owner=creds.api_key, markets=lambda t: info if t in info.tokens else None,
                     respond=answers.append, sink=Rows(), clock=clock, rng=random.Random(2))
    await nursery.start(gw.run)
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
    assert [o["id"] for o in await rest.open_orders()] == [gw.venue_ids["o1"]]
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

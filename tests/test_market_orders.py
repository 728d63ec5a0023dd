"""mmbot's taker (FOK/FAK) orders under the venue's market-order rules (protocol doc §4, §6.2, §10
item 6): a market BUY is signed for the pUSD it spends, in whole cents, and the venue spends all of
it at prices up to its limit, so price improvement fills it past its size.

- ``market_order_amounts`` against the official builder (``get_market_order_amounts``) on generated
  orders, and against the simulator's acceptance rules (``order_entry.terms``);
- the order book and the executor take a market BUY's fill past its size while its fills cost no
  more than its budget, and nothing else changes for any other order;
- end to end over loopback against the simulator: a FOK BUY that walks two levels fills past its
  size and the ledger equals the venue's account exactly, with no error row; a FOK BUY whose size
  x price has more than two decimals is accepted.
"""

from __future__ import annotations

import functools
import json
import random
from decimal import Decimal

import attrs
import httpx
import pytest
import sqlite_utils
import trio
from hypothesis import assume, given, settings, strategies as st

from mmbot.app_live import run_trading
from mmbot.clock import TrioClock
from mmbot.config import (
    Config, MakerConfig, MergeConfig, Secret, StrategiesConfig, TakerConfig, VenueConfig,
)
from mmbot.decisions.orders import TRANSITIONS, IllegalTransition, OrderEvent, Orders, OrderStatus, Overfill, is_legal
from mmbot.memory.query import project
from mmbot.model import (
    ONE, Liquidity, OrderAccepted, PlaceOrder, Side, SubmitRequest, TimeInForce, VenueResponse,
)
from mmbot.model.money import SHARE_STEP, market_buy_budget, notional
from mmbot.venues.polymarket.auth import (
    ROUNDING, OrderSigner, OrderV2, SigningError, SigningKey, market_order_amounts, order_amounts,
)
from mmbot.venues.polymarket.discovery import list_markets
from mmbot.venues.polymarket.gateway import LiveGateway
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.simulator import order_entry
from mmbot.venues.simulator.refusals import VenueRefusal
from mmbot.venues.simulator.server import SimServer, SimSettings
from mmbot.venues.simulator.trading import credentials_for
from mmbot.venues.simulator.venue import LiveVenue
from tests.test_executor import ListSink, build, fill_of, place
from tests.test_sim_mode import KEY, START_NS

BUY, SELL = Side.BUY, Side.SELL
FOK, FAK, GTC = TimeInForce.FOK, TimeInForce.FAK, TimeInForce.GTC
TAKER = Liquidity.TAKER
KEY_B = SigningKey(Secret(value="0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"))
TICKS = sorted(ROUNDING)


# --------------------------------------------------------------------------- signed amounts


def test_a_market_buy_is_signed_for_whole_cents_and_a_sell_for_at_most_four_decimals() -> None:
    # 10.01 @ 0.53 costs 5.3053: a limit order carries that, a market BUY only 5.30 (the venue
    # refused the former: "invalid amounts, the market buy orders maker amount supports a max
    # accuracy of 2 decimals")
    assert order_amounts(BUY, "0.53", "10.01", "0.01") == (5_305_300, 10_010_000)
    assert market_order_amounts(BUY, "0.53", "10.01", "0.01") == (5_300_000, 10_000_000)
    assert market_order_amounts(BUY, "0.55", "10", "0.01") == (5_500_000, 10_000_000)
    assert market_order_amounts(BUY, "0.53", "1.9", "0.01") == (1_000_000, 1_886_700)  # 1.00 / 0.53, down
    # at tick 0.001 a SELL's proceeds carry five decimals as a limit order, four as a market one
    assert order_amounts(SELL, "0.123", "10.01", "0.001") == (10_010_000, 1_231_230)
    assert market_order_amounts(SELL, "0.123", "10.01", "0.001") == (10_010_000, 1_231_200)
    # and the official builder's BUY taker at a fine tick (9.98 / 0.985 = 10.13197...) is cut to four
    assert market_order_amounts(BUY, "0.985", "10.14", "0.001") == (9_980_000, 10_131_900)


def test_market_amounts_that_would_name_another_price_or_nothing_are_refused() -> None:
    with pytest.raises(SigningError, match="rounds to nothing"):
        market_order_amounts(BUY, "0.01", "0.5", "0.01")  # half a cent
    with pytest.raises(SigningError, match="worst price"):
        market_order_amounts(SELL, "0.123", "0.01", "0.001")  # 0.00123 cut to 0.0012: a price of 0.12
    with pytest.raises(SigningError, match="grid"):
        market_order_amounts(BUY, "1", "10", "0.01")
    with pytest.raises(SigningError, match="tick size"):
        market_order_amounts(BUY, "0.5", "10", "0.02")


def _official(side: Side, price: Decimal, amount: Decimal, tick: Decimal) -> tuple[int, int]:
    builder = pytest.importorskip("py_clob_client_v2.order_builder.builder")
    from py_clob_client_v2.clob_types import RoundConfig

    config = builder.ROUNDING_CONFIG[str(tick)]
    # its float rounding floors some exact values a step down (0.1725 * 10**4 = 1724.999..., 0.29 *
    # 100 = 28.999...): those cases say nothing about the rule, only about floats
    assume(builder.round_down(float(price), config.price) == float(price))
    assume(builder.round_down(float(amount), config.size) == float(amount))
    # the venue's flat cap on a market order's taker amount (py-clob-client-v2 issue #99: the
    # builder's tick-wide rounding overshoots it on fine ticks, and the venue refuses those)
    capped = RoundConfig(price=config.price, size=config.size, amount=min(config.amount, 4))
    _, maker, taker = builder.OrderBuilder.get_market_order_amounts(
        object.__new__(builder.OrderBuilder), side.value, float(amount), float(price), capped)
    return maker, taker


grid_orders = st.sampled_from(TICKS).flatmap(lambda tick: st.tuples(
    st.just(tick),
    st.integers(1, int(1 / tick) - 1).map(lambda k: k * tick),
    st.integers(1, 200_000).map(lambda n: Decimal(n) / 100),  # shares, whole hundredths
))


@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")  # eth-account's parser, in the oracle
@settings(max_examples=400, deadline=None)
@given(order=grid_orders, side=st.sampled_from(Side))
def test_market_amounts_equal_the_official_builders_with_the_venues_cap(order, side: Side) -> None:
    tick, price, size = order
    try:
        ours = market_order_amounts(side, str(price), str(size), str(tick))
    except SigningError:
        return  # rounds to nothing, or would sign another price: never sent
    # the builder takes a BUY's dollars and a SELL's shares
    amount = Decimal(ours[0]) / ONE
    assert ours == _official(side, price, amount, tick)
    if side is BUY:
        assert ours[0] == market_buy_budget(int(price * ONE), int(size * ONE))


@settings(max_examples=400, deadline=None)
@given(order=grid_orders, side=st.sampled_from(Side))
def test_the_simulator_reads_market_amounts_back_as_the_order_we_meant(order, side: Side) -> None:
    tick, price, size = order
    tick_m, price_m, size_m = int(tick * ONE), int(price * ONE), int(size * ONE)
    try:
        maker, taker = market_order_amounts(side, str(price), str(size), str(tick))
    except SigningError:
        return
    signed = OrderV2(salt=1, maker=KEY.address, signer=KEY.address, token_id=1, maker_amount=maker,
                     taker_amount=taker, side=side, timestamp_ms=1)
    entry = order_entry.Entry(order=signed, signature="0x", tif=FOK, post_only=False, expiration_s=0)
    try:
        terms = order_entry.terms(entry, tick_m)
    except VenueRefusal as refusal:  # only the $1 minimum of a marketable BUY
        assert side is BUY and maker < ONE and "min size: $1" in refusal.error, refusal.error
        return
    assert terms.price == price_m
    if side is BUY:
        assert terms.budget == maker == market_buy_budget(price_m, size_m) <= notional(price_m, size_m)
    else:
        assert (terms.size, terms.budget) == (size_m, None)


# --------------------------------------------------------------------------- the order book


def _market_buy(orders: Orders, order_id: str = "o1", *, price: int = 550_000, size: int = 10 * ONE,
                tif: TimeInForce = FOK, side: Side = BUY):
    return orders.new(order_id=order_id, cid=f"c-{order_id}", strategy="taker", market="M", token="Y", side=side,
                      price=price, size=size, tif=tif, post_only=False, created_ns=1)


def test_a_market_buy_is_bound_by_its_budget_and_a_limit_buy_by_its_size() -> None:
    orders = Orders()
    fok = _market_buy(orders)
    assert fok.budget == 5_500_000
    assert orders.record_fill("o1", 10 * ONE, price=500_000, now_ns=1) is OrderStatus.FILLED  # its size
    # the rest of its matching: 0.50 left buys 0.9 share at 0.55
    assert orders.record_fill("o1", 900_000, price=550_000, now_ns=2) is OrderStatus.FILLED
    assert (fok.filled, fok.spent, fok.remaining) == (10_900_000, 5_495_000, 0)
    with pytest.raises(Overfill):
        orders.record_fill("o1", 10_000, price=550_000, now_ns=3)  # 0.0055 more than the 0.005 left
    orders.check()
    # the same fills on a GTC BUY, or on a FOK SELL: the second is past the size, refused
    for order_id, tif, side in (("g", GTC, BUY), ("s", FOK, SELL)):
        order = _market_buy(orders, order_id, tif=tif, side=side)
        assert order.budget is None
        orders.record_fill(order_id, 10 * ONE, price=500_000, now_ns=1)
        with pytest.raises(Overfill):
            orders.record_fill(order_id, 900_000, price=550_000, now_ns=2)
        assert order.filled == 10 * ONE


def test_a_market_buy_whose_budget_is_spent_is_filled_short_of_its_size() -> None:
    orders = Orders()
    order = _market_buy(orders, price=530_000, size=10_010_000)  # 5.3053 signed as 5.30: 10 shares
    assert orders.record_fill("o1", 10 * ONE, price=530_000, now_ns=1) is OrderStatus.FILLED
    assert order.remaining == 10_000 and orders.open_count() == 0
    orders.check()
    # a FAK BUY with money left is still open, and a cancellation of the rest ends it
    fak = _market_buy(orders, "o2", tif=FAK)
    assert orders.record_fill("o2", 5 * ONE, price=550_000, now_ns=1) is OrderStatus.PARTIALLY_FILLED
    assert fak.is_open
    orders.check()


market_fills = st.lists(st.tuples(st.integers(1, 60).map(lambda n: n * 10_000 * 25),  # 0.25-share steps
                                  st.integers(40, 55).map(lambda k: k * 10_000)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(fills=market_fills, tif=st.sampled_from([FOK, FAK]), size=st.integers(5, 15).map(lambda n: n * ONE))
def test_any_fills_of_a_market_buy_keep_within_its_budget_and_fill_it_when_spent(fills, tif, size) -> None:
    orders = Orders()
    order = _market_buy(orders, price=550_000, size=size, tif=tif)
    budget = market_buy_budget(550_000, size)
    filled = spent = 0
    for qty, price in fills:
        cost = notional(price, qty)
        fits = filled + qty <= size or spent + cost <= budget
        takes = fits and (order.is_open or order.status is OrderStatus.FILLED)
        before = (order.status, order.filled, order.spent)
        try:
            orders.record_fill("o1", qty, price=price, now_ns=1)
        except Overfill:
            assert not fits and (order.status, order.filled, order.spent) == before
            continue
        assert takes
        filled, spent = filled + qty, spent + cost
        assert (order.filled, order.spent) == (filled, spent)
        assert filled <= size or spent <= budget  # past its size only within its budget
        spent_out = budget - spent < notional(550_000, SHARE_STEP)
        assert (order.status is OrderStatus.FILLED) == (filled >= size or spent_out)
        orders.check()


market_steps = st.lists(st.one_of(
    st.sampled_from(OrderEvent).map(lambda e: ("event", e, 0)),
    st.tuples(st.just("fill"), st.integers(1, 24).map(lambda n: n * 500_000),
              st.integers(45, 55).map(lambda k: k * 10_000)),
), max_size=25)


@settings(max_examples=300, deadline=None)
@given(steps=market_steps)
def test_a_market_buy_follows_the_table_with_fills_bound_by_its_budget(steps) -> None:
    """Any events and fills: a fill goes through the table as for any order (FILLED at the size or
    once the budget is spent) or, on a FILLED market BUY, is taken as the rest of its matching;
    anything else is refused and changes nothing."""
    orders = Orders()
    order = _market_buy(orders, size=10 * ONE)
    budget = 5_500_000
    for kind, value, price in steps:
        before = attrs.asdict(order)
        status = order.status
        if kind == "event":
            legal = is_legal(status, value)
            call = functools.partial(orders.transition, "o1", value, now_ns=1)
        else:
            spent = order.spent + notional(price, value)
            fits = order.filled + value <= order.size or spent <= budget
            done = order.filled + value >= order.size or budget - spent < notional(order.price, SHARE_STEP)
            event = OrderEvent.FILLED if done else OrderEvent.PARTIAL_FILL
            legal = fits and (is_legal(status, event) or status is OrderStatus.FILLED)
            call = functools.partial(orders.record_fill, "o1", value, price=price, now_ns=1)
        if not legal:
            with pytest.raises(IllegalTransition):
                call()
            assert attrs.asdict(order) == before
            continue
        call()
        if kind == "fill":
            assert (order.filled, order.spent) == (before["filled"] + value, spent)
            assert order.filled <= order.size or order.spent <= budget
            assert order.status is (OrderStatus.FILLED if status is OrderStatus.FILLED else TRANSITIONS[status, event])
        assert order.is_open is (order in orders.open_orders())
        orders.check()


# --------------------------------------------------------------------------- the executor


def test_the_executor_books_a_fok_buys_fill_past_its_size_and_notes_it() -> None:
    """Defect: a FOK BUY of 10 @ 0.55 that took 10 @ 0.50 and 0.9 @ 0.55 had its second fill
    refused ("fill of 900000 exceeds the 0 remaining"), an error row, the ledger apart from the
    venue until reconciliation adopted it."""
    rig = build()  # the fee-free market: y2
    request = place(rig, "y2", BUY, 550_000, 10 * ONE, cid="i1", tif=FOK)
    assert request is not None
    reserved = rig.ledger.reservation(request.order_id)
    rig.executor.handle(OrderAccepted(cid="i1", order_id=request.order_id))
    taker = fill_of(request, fill_id="f1", price=500_000, size=10 * ONE, liquidity=TAKER)
    rig.executor.handle(taker)
    rig.executor.handle(fill_of(request, fill_id="f2", price=550_000, size=900_000, liquidity=TAKER))
    assert not rig.sink.of("error") and not rig.sink.of("late_fill")
    rows = rig.sink.of("fill")
    assert [(r.payload["size"], r.payload.get("beyond_size")) for r in rows] == [(10 * ONE, None), (900_000, 900_000)]
    assert rig.ledger.position("y2") == 10_900_000
    assert rig.ledger.cash == 1_000 * ONE - 5_495_000 and reserved == 5_500_000
    assert rig.ledger.reserved_cash == 0
    assert rig.executor.orders.get(request.order_id).status is OrderStatus.FILLED
    assert rig.published[-1].fill_id == "f2"
    rig.ledger.check()
    # a fill beyond its budget is still a venue fact we did not expect
    rig.executor.handle(fill_of(request, fill_id="f3", price=550_000, size=100_000, liquidity=TAKER))
    assert [r.payload["subject"] for r in rig.sink.of("error")] == [request.order_id]
    assert rig.ledger.position("y2") == 10_900_000


def test_a_gtc_buys_fill_past_its_size_is_still_an_error() -> None:
    rig = build()
    request = place(rig, "y2", BUY, 550_000, 10 * ONE, cid="i1", tif=GTC)
    assert request is not None
    rig.executor.handle(fill_of(request, fill_id="f1", price=500_000, size=10 * ONE, liquidity=TAKER))
    rig.executor.handle(fill_of(request, fill_id="f2", price=550_000, size=900_000, liquidity=TAKER))
    assert [r.payload["error"] for r in rig.sink.of("error")] == ["fill of 900000 exceeds the 0 remaining"]
    assert rig.ledger.position("y2") == 10 * ONE


# --------------------------------------------------------------------------- end to end

SEED = 4  # the simulator's world; its market 1: YES bid 0.40, ask 0.43 (and NO bid 0.57)
MARKET_INDEX = 1
WAIT_S = 600  # virtual seconds; time races ahead under autojump while loopback I/O is in flight
QUIET = Config(seed=3, strategies=StrategiesConfig(
    taker=TakerConfig(enabled=False), maker=MakerConfig(enabled=False), merge=MergeConfig(enabled=False)))


async def until(predicate, what: str) -> None:  # noqa: ANN001
    with trio.move_on_after(WAIT_S) as waited:
        while not predicate():
            await trio.sleep(0.01)
    if waited.cancelled_caught:
        raise AssertionError(f"gave up waiting for {what}")


async def rest_sells(nursery: trio.Nursery, server: SimServer, rest_url: str, market, levels) -> None:  # noqa: ANN001
    """A second account rests GTC SELLs of YES, ``levels`` being (price, shares), through its own live gateway."""
    creds = credentials_for(KEY_B.address)
    server.add_account(KEY_B.address, creds)
    yes = market.tokens[0]
    server.trading.give(creds.api_key, shares={yes: sum(size for _, size in levels)})
    answers: list[VenueResponse] = []
    clock = TrioClock(anchor_ns=START_NS)
    rest = ClobRest(client=httpx.AsyncClient(base_url=rest_url, timeout=WAIT_S), creds=creds,
                    address=KEY_B.address, clock=clock)
    gateway = LiveGateway(rest=rest, signer=OrderSigner(KEY_B), owner=creds.api_key,
                          markets=lambda token: market if token in market.tokens else None, respond=answers.append,
                          sink=ListSink(), clock=clock,
                          rng=random.Random(1), config=VenueConfig())
    await nursery.start(gateway.run_submits)
    for n, (price, size) in enumerate(levels):
        gateway.send(SubmitRequest(cid=f"b{n}", order_id=f"b{n}", market=market.market, token=yes, side=SELL,
                                   price=price, size=size, tif=GTC))
    await until(lambda: len(answers) == len(levels), "the second account's sells")
    assert all(isinstance(a, OrderAccepted) for a in answers), answers


async def test_fok_buys_over_loopback_fill_past_their_size_and_the_ledger_equals_the_venue(
    nursery, autojump_clock, tmp_path
) -> None:
    venue = LiveVenue(seed=SEED, markets=4, start_ns=START_NS, warmup_s=10)
    server = SimServer(venue, settings=SimSettings(seed=0, speed=0),  # the world stands still
                       clock=TrioClock(anchor_ns=START_NS))
    urls = await nursery.start(server.run)
    creds = credentials_for(KEY.address)
    server.add_account(KEY.address, creds, cash=100 * ONE)
    async with httpx.AsyncClient(base_url=urls.gamma) as http:
        markets, _ = await list_markets(http)
    market = next(m for m in markets if m.market == venue.markets()[MARKET_INDEX].market)
    yes = market.tokens[0]
    assert venue.best(yes) == (400_000, 430_000)
    # under the world's ask: 10 @ 0.41, then 50 @ 0.42
    await rest_sells(nursery, server, urls.rest, market, [(410_000, 10 * ONE), (420_000, 50 * ONE)])
    assert venue.best(yes) == (400_000, 410_000)

    db = tmp_path / "fok.db"
    stop = trio.Event()
    async with trio.open_nursery() as run:
        engine = await run.start(functools.partial(
            run_trading, config=QUIET, markets=markets, ws_url=urls.ws, user_ws_url=server.user_url,
            rest_url=urls.rest, key=KEY, creds=creds, db_path=db, mode="sim", stop=stop,
            clock=TrioClock(anchor_ns=START_NS)))
        executor = engine.executor
        await until(lambda: executor.gate_open and executor.books.get(yes) is not None
                    and executor.books.get(yes).best_ask == 410_000, "trading open on a fresh book")

        async def buy(cid: str, price: int, size: int) -> str:
            order_id = f"o{executor.counts['orders'] + 1}"  # the executor's next order id: nobody else trades
            engine.inbox.send(PlaceOrder(cid=cid, cause="test", strategy="test", market=market.market, token=yes,
                                         side=BUY, price=price, size=size, tif=FOK))
            await until(lambda: executor.orders.get(order_id) is not None, f"order {cid}")
            order = executor.orders.get(order_id)
            assert order is not None and order.cid == cid
            await until(lambda: not order.is_open, f"order {cid} to end")
            return order_id

        # 10 @ 0.42 spends 4.20: 10 @ 0.41 (4.10), then 0.10 buys 0.23 @ 0.42 (0.0966)
        walked = await buy("walk", 420_000, 10 * ONE)
        # 10.01 @ 0.42 costs 4.2042, signed as 4.20: 10 @ 0.42, filled with its budget spent
        cents = await buy("cents", 420_000, 10_010_000)
        await trio.sleep(30)  # the trades settle (MINED, CONFIRMED) and reconciliation matches them
        async with httpx.AsyncClient(base_url=urls.rest) as http:
            truth = (await http.get("/admin/account", params={"api_key": creds.api_key},
                                    headers=server.admin_headers())).json()
        ledger = executor.ledger
        walked_order, cents_order = executor.orders.get(walked), executor.orders.get(cents)
        assert (walked_order.status, walked_order.filled) == (OrderStatus.FILLED, 10_230_000)
        assert (cents_order.status, cents_order.filled) == (OrderStatus.FILLED, 10 * ONE)
        assert ledger.position(yes) == 20_230_000
        assert {t: n for t, n in truth["positions"].items() if n} == ledger.snapshot()["positions"]
        assert truth["cash"] == ledger.cash and truth["open_orders"] == 0
        ledger.check()
        stop.set()

    events = sqlite_utils.Database(db)["events"]
    payloads = [json.loads(r["payload"]) for r in events.rows_where("kind = 'fill'", order_by="seq")]
    marks = [(p["order_id"], p["price"], p["size"], p.get("beyond_size"), p.get("short_of_size")) for p in payloads]
    assert marks == [
        (walked, 410_000, 10 * ONE, None, None), (walked, 420_000, 230_000, 230_000, None),
        (cents, 420_000, 10 * ONE, None, 10_000),
    ]
    placed = project(sqlite_utils.Database(db))  # what ``mmbot status`` reads: nothing left open
    assert placed.open_orders == {} and placed.positions == {yes: 20_230_000} and placed.cash == truth["cash"]
    errors = [json.loads(r["payload"]) for r in events.rows_where("kind in ('error', 'late_fill', 'correction')")]
    assert errors == []
    assert all(p["fee"] for p in payloads)  # the market charges taker fees, paid on top of the budget
    assert truth["cash"] == 100 * ONE - 4_196_600 - 4_200_000 - sum(p["fee"] for p in payloads)

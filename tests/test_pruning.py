"""Bounded memory: forgetting ended orders and their fill ids never changes a decision.

Two executors, wired alike, are driven with the same random sequence of intents, acks, fills
(partial, full, late and repeated), cancels, dones, rejects, kill switches and market closings,
while the (virtual) time passes. One of them prunes at random points with a horizon of at least
``horizon``, and the venue (this test) never speaks of an order more than ``horizon`` after it
ended: that is the promise `[retention] ended_after_s` makes. Both must send the same requests,
record the same rows and keep the same ledger; the pruning one must remember only the open
orders, those ended within the horizon, and their fill ids.

The targeted tests below show what happens when the venue does speak of a forgotten order.
"""

from __future__ import annotations

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mmbot.decisions.orders import Order, OrderStatus
from mmbot.model import (
    ONE,
    CancelOrder,
    Fill,
    KillSwitch,
    Liquidity,
    MarketClosing,
    MarketInfo,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    PlaceOrder,
    Side,
    SubmitRequest,
    TimeInForce,
)
from tests.test_executor import (
    ANSWERS,
    MARKET_OF,
    MARKETS,
    TICK,
    TOKENS,
    Rig,
    build,
    fill_of,
    mostly,
    on_grid,
    prices,
    sizes,
)

BUY, SELL = Side.BUY, Side.SELL
SECOND = 1_000_000_000


class PruningMachine(RuleBasedStateMachine):
    @initialize(horizon_s=st.integers(1, 10))
    def start(self, horizon_s: int) -> None:
        self.horizon = horizon_s * SECOND
        self.kept = build()  # never prunes: the reference
        self.pruning = build()
        self.rigs = (self.kept, self.pruning)
        self.submitted: dict[str, SubmitRequest] = {}
        self.fills: list[Fill] = []  # every fill sent, to send some again
        self.pruned: list[str] = []
        self.serial = 0

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def send(self, msg: object) -> None:
        for rig in self.rigs:
            rig.executor.handle(msg)

    @property
    def now(self) -> int:
        return self.kept.clock.now

    def speakable(self) -> list[str]:
        """Orders the venue may still speak of: open, or ended less than ``horizon`` ago."""
        orders = self.kept.executor.orders
        return [
            oid for oid in sorted(self.submitted)
            if (order := orders.get(oid)).is_open or self.now - order.ended_ns < self.horizon
        ]

    def pick(self, data: st.DataObject) -> SubmitRequest:
        every = self.speakable()
        open_ids = [oid for oid in every if self.kept.executor.orders.get(oid).is_open] or every
        return self.submitted[data.draw(mostly(st.sampled_from(open_ids), st.sampled_from(every)), label="order")]

    # ------------------------------------------------------------------ time and pruning

    @rule(seconds=st.integers(0, 30))
    def time_passes(self, seconds: int) -> None:
        for rig in self.rigs:
            rig.clock.now += seconds * SECOND

    @rule(extra_s=mostly(st.just(0), st.integers(1, 60)))
    def prune(self, extra_s: int) -> None:
        horizon = self.horizon + extra_s * SECOND
        kept_orders = self.kept.executor.orders
        ended_long_ago = {
            oid for oid in self.submitted
            if oid not in self.pruned and not (o := kept_orders.get(oid)).is_open and o.ended_ns <= self.now - horizon
        }
        pruned = self.pruning.executor.prune(self.now, horizon)
        assert set(pruned) == ended_long_ago
        self.pruned += pruned

    # ------------------------------------------------------------------ intents

    @rule(
        token=st.sampled_from(TOKENS), side=st.integers(0, 3).map(lambda n: SELL if n == 3 else BUY),
        price=prices, size=sizes, tif=st.sampled_from(TimeInForce), post_only=st.booleans(),
    )
    def place_order(self, token: str, side: Side, price: int, size: int, tif: TimeInForce, post_only: bool) -> None:
        self.place(token, side, price, size, tif, post_only)

    @rule(token=st.sampled_from(TOKENS), price=on_grid, shares=st.integers(5, 20), post_only=st.booleans())
    def place_a_buy(self, token: str, price: int, shares: int, post_only: bool) -> None:
        """One risk lets through, so that there are many orders to end and to forget."""
        self.place(token, BUY, price, shares * ONE, TimeInForce.GTC, post_only)

    def place(self, token: str, side: Side, price: int, size: int, tif: TimeInForce, post_only: bool) -> None:
        cid = self.next_id("i")
        before = len(self.kept.gateway.sent)
        self.send(PlaceOrder(
            cid=cid, cause=f"cause-{cid}", strategy="test", market=MARKET_OF[token].market, token=token,
            side=side, price=price, size=size, tif=tif, post_only=post_only,
        ))
        for request in self.kept.gateway.sent[before:]:
            self.submitted[request.order_id] = request

    @precondition(lambda self: self.speakable())
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        cid = self.next_id("x")
        self.send(CancelOrder(cid=cid, cause=cid, strategy="test", order_id=self.pick(data).order_id, reason="t"))

    @rule(engaged=st.integers(0, 3).map(lambda n: n == 3))
    def kill_switch(self, engaged: bool) -> None:
        self.send(KillSwitch(cid=self.next_id("k"), reason="test", engaged=engaged))

    @rule(info=st.sampled_from(MARKETS))
    def market_closing(self, info: MarketInfo) -> None:
        self.send(MarketClosing(cid=self.next_id("c"), market=info.market))

    # ------------------------------------------------------------------ venue answers

    @precondition(lambda self: self.speakable())
    @rule(data=st.data())
    def acknowledge(self, data: st.DataObject) -> None:
        self.send(ANSWERS["accepted"](self.pick(data)))

    @precondition(lambda self: self.speakable())
    @rule(data=st.data(), answer=st.sampled_from(sorted(ANSWERS)))
    def venue_answer(self, data: st.DataObject, answer: str) -> None:
        """Any answer but a fill: late, repeated or out of order, but within the horizon."""
        self.send(ANSWERS[answer](self.pick(data)))

    @precondition(lambda self: self.speakable())
    @rule(data=st.data())
    def fill(self, data: st.DataObject) -> None:
        request = self.pick(data)
        order = self.kept.executor.orders.get(request.order_id)
        if order.is_open:
            size = data.draw(st.one_of(st.just(order.remaining), st.integers(1, order.remaining)), label="size")
        else:  # late, or more than the order had left
            size = data.draw(st.integers(1, order.size), label="size")
        if request.side is BUY:
            price = data.draw(st.integers(1, request.price // TICK), label="ticks") * TICK
        else:
            price = ONE - data.draw(st.integers(1, (ONE - request.price) // TICK), label="ticks") * TICK
        liquidity = Liquidity.MAKER if request.post_only else data.draw(st.sampled_from(Liquidity), label="liquidity")
        fill = fill_of(request, fill_id=self.next_id("f"), price=price, size=size, liquidity=liquidity)
        self.fills.append(fill)
        self.send(fill)

    @precondition(lambda self: self.kept.executor.orders.open_count())
    @rule(data=st.data(), how=st.sampled_from(["done", "rejected", "filled"]))
    def order_ends(self, data: st.DataObject, how: str) -> None:
        """An open order ends (and may then be forgotten)."""
        order = data.draw(st.sampled_from(self.kept.executor.orders.open_orders()), label="order")
        request = self.submitted[order.order_id]
        if how != "filled":
            self.send(ANSWERS[how](request))
            return
        fill = fill_of(request, fill_id=self.next_id("f"), price=request.price, size=order.remaining,
                       liquidity=Liquidity.MAKER)
        self.fills.append(fill)
        self.send(fill)

    @precondition(lambda self: any(f.order_id in self.speakable() for f in self.fills))
    @rule(data=st.data())
    def fill_again(self, data: st.DataObject) -> None:
        """The venue repeats a fill (the REST answer, then the user channel)."""
        speakable = set(self.speakable())
        self.send(data.draw(st.sampled_from([f for f in self.fills if f.order_id in speakable]), label="fill"))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def the_same_decisions(self) -> None:
        assert self.pruning.gateway.sent == self.kept.gateway.sent
        assert self.pruning.sink.rows == self.kept.sink.rows  # the executor records no row of its own pruning
        assert self.pruning.ledger.snapshot() == self.kept.ledger.snapshot()
        assert self.pruning.published == self.kept.published
        for rig in self.rigs:
            rig.ledger.check()
            rig.executor.orders.check()

    @invariant()
    def only_open_and_recently_ended_orders_are_remembered(self) -> None:
        kept, pruning = self.kept.executor, self.pruning.executor
        assert [view(o) for o in pruning.orders.open_orders()] == [view(o) for o in kept.orders.open_orders()]
        remembered = [oid for oid in sorted(self.submitted) if pruning.orders.get(oid) is not None]
        assert remembered == sorted(set(self.submitted) - set(self.pruned))
        for order_id in remembered:
            assert view(pruning.orders.get(order_id)) == view(kept.orders.get(order_id))
        statistics = pruning.orders.statistics()
        assert (statistics.orders_remembered, statistics.orders_pruned) == (len(remembered), len(self.pruned))
        booked = {row.payload["fill_id"]: row.payload["order_id"] for row in self.kept.sink.of("fill")}
        assert kept.fill_ids_remembered() == len(booked)
        assert pruning.fill_ids_remembered() == sum(1 for oid in booked.values() if oid not in self.pruned)


def view(order: Order) -> tuple[object, ...]:
    return (order.order_id, order.status, order.filled, order.ended_ns)


PruningMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestPruningMachine = PruningMachine.TestCase


# --------------------------------------------------------------------------- a forgotten order


def forgotten_filled_order(rig: Rig) -> tuple[SubmitRequest, Fill]:
    """A buy filled in full, then forgotten an hour later: its fill and its order are gone."""
    rig.executor.handle(PlaceOrder(
        cid="i1", cause="f0", strategy="test", market="m1", token="y1", side=BUY, price=400_000, size=10 * ONE,
        tif=TimeInForce.GTC, post_only=True,
    ))
    [request] = rig.gateway.sent
    rig.executor.handle(OrderAccepted(cid="i1", order_id=request.order_id))
    fill = fill_of(request, fill_id="t-1", price=400_000, size=10 * ONE, liquidity=Liquidity.MAKER)
    rig.executor.handle(fill)
    assert rig.executor.orders.get(request.order_id).status is OrderStatus.FILLED
    rig.clock.now += 3_600 * SECOND
    assert rig.executor.prune(rig.clock.now, 3_600 * SECOND) == [request.order_id]
    assert rig.executor.orders.get(request.order_id) is None and rig.executor.fill_ids_remembered() == 0
    return request, fill


def test_a_fill_repeated_after_its_order_was_forgotten_is_an_error_not_a_second_booking() -> None:
    refused: list[Fill] = []
    rig = build(publish_refused=refused.append)
    request, fill = forgotten_filled_order(rig)
    ledger_before, rows_before = rig.ledger.snapshot(), len(rig.sink.rows)
    rig.executor.handle(fill)
    assert rig.ledger.snapshot() == ledger_before
    assert rig.published == [fill] and refused == []  # reconciliation saw it once, booked, and matched it
    assert [(r.kind, r.payload["error"], r.payload["subject"]) for r in rig.sink.rows[rows_before:]] == [
        ("error", "fill for an unknown order", request.order_id)
    ]


def test_answers_about_a_forgotten_order_are_errors_and_change_nothing() -> None:
    rig = build()
    request, _ = forgotten_filled_order(rig)
    ledger_before, sent_before, rows_before = rig.ledger.snapshot(), len(rig.gateway.sent), len(rig.sink.rows)
    oid = request.order_id
    for msg in (
        OrderAccepted(cid="a", order_id=oid), OrderRejected(cid="r", order_id=oid, reason="X"),
        OrderDone(cid="d", order_id=oid, reason="canceled"),
        CancelOrder(cid="x", cause="x", strategy="test", order_id=oid, reason="t"),
        ANSWERS["cancel_rejected"](request), ANSWERS["outcome_unknown"](request),
    ):
        rig.executor.handle(msg)
    assert rig.ledger.snapshot() == ledger_before and len(rig.gateway.sent) == sent_before  # no cancel sent
    assert rig.executor.orders.get(oid) is None  # nothing brought it back
    assert [(r.kind, r.payload.get("error")) for r in rig.sink.rows[rows_before:]] == [
        ("error", "ack for an unknown order"), ("error", "reject for an unknown order"),
        ("error", "done for an unknown order"), ("cancel_rejected", None), ("outcome_unknown", None),
    ]


def test_pruning_keeps_open_orders_and_the_fill_ids_of_recent_ones() -> None:
    rig = build()
    rig.executor.handle(PlaceOrder(
        cid="i1", cause="f0", strategy="test", market="m1", token="y1", side=BUY, price=400_000, size=10 * ONE,
        tif=TimeInForce.GTC, post_only=True,
    ))
    [request] = rig.gateway.sent
    part = fill_of(request, fill_id="t-1", price=400_000, size=4 * ONE, liquidity=Liquidity.MAKER)
    rig.executor.handle(part)
    rig.clock.now += 10 * 3_600 * SECOND
    assert rig.executor.prune(rig.clock.now, 0) == []  # open, partly filled: however long ago
    ledger_before = rig.ledger.snapshot()
    rig.executor.handle(part)  # its fill id is still known: not booked twice
    assert rig.ledger.snapshot() == ledger_before
    assert rig.sink.rows[-1].payload["error"] == "fill t-1 was booked already"

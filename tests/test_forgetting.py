"""Bounded memory: markets over for a retention horizon, with nothing of ours left in them, are
forgotten everywhere at once, and that never changes a decision about the markets still alive.

The state machine drives two paper engines, wired by ``app.build_engine`` and stepped by plain
calls on a frame clock (as ``bench/replay.py``'s no-trio driver does), with the same random market
channel: listings, snapshots, trades, resolutions, time passing. One engine forgets with a short
horizon, at random points and on its own minute timer; the other never forgets. The venue never
speaks of a market after we forgot it (that is the promise the horizon makes): both must send the
same requests, record the same rows and keep the same ledger. Then the targeted tests: each
component's ``forget``, what a late message about a forgotten market does, and the memory shape
of a replay in which a hundred short Up/Down markets list and resolve.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mmbot import app
from mmbot.app_engine import PRUNE_EVERY_S
from mmbot.clock import Scheduler
from mmbot.config import Config, PaperConfig, RetentionConfig
from mmbot.decisions.book import Books
from mmbot.decisions.markets import Markets
from mmbot.decisions.strategy import CompleteSetTaker
from mmbot.facts.boundary import Boundaries
from mmbot.facts.bus import LatestSlots
from mmbot.memory.query import select_rows
from mmbot.model import (
    ONE,
    BookSnapshot,
    Correction,
    Fill,
    Ids,
    LastTrade,
    LevelChange,
    Liquidity,
    MarketClosing,
    MarketInfo,
    MarketResolved,
    NewMarket,
    OrderAccepted,
    OrderDone,
    PlaceOrder,
    PriceChange,
    Side,
    SubmitRequest,
    TimeInForce,
)
from mmbot.venues.paper import PaperGateway
from mmbot.venues.simulator.generate import generate_recording
from tests.test_executor import FakeClock, ListSink, build, fill_of, mostly

SECOND = 1_000_000_000
T0 = 1_786_000_000 * SECOND
TICK = 10_000
BUY, SELL = Side.BUY, Side.SELL
NEVER_S = 10**9  # a retention horizon no test outlives


# --------------------------------------------------------------------------- an engine on plain calls


class FrameClock:
    def __init__(self, t_ns: int) -> None:
        self.t = t_ns

    def now_ns(self) -> int:
        return self.t


class RecordingPaper(PaperGateway):
    """The paper venue, keeping every request it was sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[Any] = []

    def send(self, request: Any) -> None:
        self.sent.append(request)
        super().send(request)


class StampedSink(ListSink):
    """The rows, and the clock's time at each."""

    def __init__(self, clock: FrameClock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[int] = []

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, *, market: str = "",
               token: str = "") -> None:
        super().record(kind, cid, payload, market=market, token=token)
        self.at.append(self.clock.t)


@attrs.define
class Driven:
    engine: app.Engine
    clock: FrameClock
    sink: StampedSink
    gateway: RecordingPaper

    def settle(self) -> None:
        """Fire what is due now and step the decisions until nothing is left to do."""
        while True:
            fired = self.engine.scheduler.fire_due(self.clock.t)
            if not fired and not self.engine.loop.step():
                return

    def advance(self, t_ns: int) -> None:
        """Move the clock to ``t_ns`` one due timer at a time, as ``Scheduler.fire_until`` does."""
        while (deadline := self.engine.scheduler.next_deadline()) is not None and deadline <= t_ns:
            self.clock.t = max(self.clock.t, deadline)
            self.settle()
        self.clock.t = max(self.clock.t, t_ns)
        self.settle()

    def inject(self, msg: Any) -> None:
        """A market-channel message arrives now, and is decided on."""
        self.engine.frames.inject(msg, self.clock.t)
        self.settle()


def driven(markets: list[MarketInfo], *, horizon_s: int, t0: int = T0, latency_ms: int = 50) -> Driven:
    config = Config(retention=RetentionConfig(ended_after_s=horizon_s), paper=PaperConfig(ack_latency_ms=latency_ms))
    clock, gateways = FrameClock(t0), []
    sink = StampedSink(clock)

    def factory(*, books, markets, scheduler, clock, respond, rng, sink) -> RecordingPaper:
        gateways.append(RecordingPaper(
            books=books, markets=markets.for_token, scheduler=scheduler, clock=clock, respond=respond, rng=rng,
            ack_latency_ns=config.paper.ack_latency_ms * 1_000_000,
            jitter_ns=config.paper.latency_jitter_ms * 1_000_000,
        ))
        return gateways[0]

    engine = app.build_engine(config=config, clock=clock, log=sink, markets=Markets(markets),  # type: ignore[arg-type]
                              gateway_factory=factory, seed=7)
    return Driven(engine, clock, sink, gateways[0])


def snapshot(info: MarketInfo, token: str, now: int, *, fair: int, half: int = 2, depth: int = 2,
             size: int = 40 * ONE, cid: str = "s") -> BookSnapshot:
    """A book around ``fair`` ticks, ``half`` ticks either side, ``depth`` levels deep."""
    bids = tuple(((fair - half - k) * TICK, size) for k in range(depth) if fair - half - k >= 1)
    asks = tuple(((fair + half + k) * TICK, size) for k in range(depth) if fair + half + k <= 99)
    return BookSnapshot(cid=cid, recv_ns=now, market=info.market, token=token, bids=bids, asks=asks,
                        venue_ts_ms=now // 1_000_000, tick=TICK)


def resolution(info: MarketInfo, now: int, *, winner: int = 0, cid: str = "r") -> MarketResolved:
    return MarketResolved(cid=cid, recv_ns=now, market=info.market, market_id="", tokens=info.tokens,
                          winning_token=info.tokens[winner], winning_outcome=info.outcomes[winner],
                          venue_ts_ms=now // 1_000_000)


def listing(info: MarketInfo, now: int, *, cid: str = "n") -> NewMarket:
    return NewMarket(cid=cid, recv_ns=now, market=info.market, market_id="", question="", slug="",
                     tokens=info.tokens, outcomes=info.outcomes, tick=TICK, venue_ts_ms=now // 1_000_000)


def trade(info: MarketInfo, token: str, now: int, *, price: int, size: int, side: Side, cid: str = "t") -> LastTrade:
    return LastTrade(cid=cid, recv_ns=now, market=info.market, token=token, price=price, size=size, side=side,
                     venue_ts_ms=now // 1_000_000)


# --------------------------------------------------------------------------- the state machine

POOL = tuple(
    MarketInfo(market=f"m{i}", tokens=(f"y{i}", f"n{i}"), tick=TICK, fee_rate=72_000 if i % 2 else 0,
               end_ns=T0 + 400 * SECOND if i == 0 else None)
    for i in range(6)
)
INITIAL = list(POOL[:2])  # known from the start, as a recording's header tells them; m0 ends on its own


class ForgettingMachine(RuleBasedStateMachine):
    @initialize(horizon_s=st.integers(1, 150), latency_ms=mostly(st.just(50), st.integers(1_000, 20_000)))
    def start(self, horizon_s: int, latency_ms: int) -> None:
        """``latency_ms``: the paper venue's answers, now and then slow enough that orders are
        still open (a cancel unanswered) when their market's horizon has passed."""
        self.horizon = horizon_s * SECOND
        self.kept = driven(INITIAL, horizon_s=NEVER_S, latency_ms=latency_ms)  # never forgets: the reference
        self.forgetting = driven(INITIAL, horizon_s=horizon_s, latency_ms=latency_ms)
        self.rigs = (self.kept, self.forgetting)
        self.listed = {info.market: info for info in INITIAL}
        self.resolved_at: dict[str, int] = {}
        self.serial = 0

    def cid(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    @property
    def now(self) -> int:
        return self.kept.clock.t

    def send(self, msg: Any) -> None:
        for rig in self.rigs:
            rig.inject(msg)

    def speakable(self) -> list[MarketInfo]:
        """Markets the channel may still speak of: listed, not resolved, not past their end."""
        return [info for market, info in sorted(self.listed.items())
                if market not in self.resolved_at and (info.end_ns is None or self.now < info.end_ns)]

    def resolvable(self) -> list[MarketInfo]:
        """Not resolved yet, and not forgotten (after its end) either: the venue's last word on a
        market comes within the horizon. Nor with a merge in flight: a paper merge answered after
        the resolution paid its shares out raises in ``Ledger.merge`` (a defect of its own, with
        or without forgetting)."""
        view = self.forgetting.engine.executor.view
        return [info for market, info in sorted(self.listed.items())
                if market not in self.resolved_at and self.forgetting.engine.markets.get(market) is not None
                and not view.busy(market, "merge")]

    # ------------------------------------------------------------------ the market channel

    @precondition(lambda self: len(self.listed) < len(POOL))
    @rule()
    def list_market(self) -> None:
        info = next(info for info in POOL if info.market not in self.listed)
        self.listed[info.market] = info
        self.send(listing(info, self.now, cid=self.cid("n")))

    @precondition(lambda self: self.speakable())
    @rule(data=st.data(), fairs=st.tuples(st.integers(3, 97), st.integers(3, 97)), half=st.integers(1, 4),
          depth=st.integers(1, 3), shares=st.integers(5, 60), both=mostly(st.just(True), st.just(False)))
    def book(self, data: st.DataObject, fairs: tuple[int, int], half: int, depth: int, shares: int,
             both: bool) -> None:
        """Fresh books for a market's tokens (mostly both, so that strategies act), their fair
        prices drawn apart: sometimes a set is cheap to take, sometimes dear."""
        info = data.draw(st.sampled_from(self.speakable()), label="market")
        tokens = info.tokens if both else (data.draw(st.sampled_from(info.tokens), label="token"),)
        for token, fair in zip(tokens, fairs):
            self.send(snapshot(info, token, self.now, fair=fair, half=half, depth=depth, size=shares * ONE,
                               cid=self.cid("s")))

    @precondition(lambda self: self.speakable())
    @rule(data=st.data(), ticks=st.integers(1, 99), shares=st.integers(1, 80), side=st.sampled_from(Side))
    def print_trade(self, data: st.DataObject, ticks: int, shares: int, side: Side) -> None:
        info = data.draw(st.sampled_from(self.speakable()), label="market")
        token = data.draw(st.sampled_from(info.tokens), label="token")
        self.send(trade(info, token, self.now, price=ticks * TICK, size=shares * ONE, side=side, cid=self.cid("t")))

    @precondition(lambda self: self.resolvable())
    @rule(data=st.data(), winner=st.integers(0, 1))
    def resolve(self, data: st.DataObject, winner: int) -> None:
        info = data.draw(st.sampled_from(self.resolvable()), label="market")
        self.resolved_at[info.market] = self.now
        self.send(resolution(info, self.now, winner=winner, cid=self.cid("r")))

    # ------------------------------------------------------------------ time and forgetting

    @rule(seconds=st.one_of(st.integers(0, 5), st.integers(5, 200)))
    def time_passes(self, seconds: int) -> None:
        self.advance(seconds * SECOND)

    def advance(self, ns: int) -> None:
        then = self.now + ns
        for rig in self.rigs:
            rig.advance(then)

    @rule()
    def prune(self) -> None:
        """A forgetting round at any instant, besides the engine's own every minute."""
        if self.forgetting.engine.prune(self.cid("p")):
            event("something was pruned")

    @rule()
    def long_quiet(self) -> None:
        """Time enough for every resolved market to be forgotten: paid out, its orders ended long ago."""
        self.advance(self.horizon + 150 * SECOND)
        engine = self.forgetting.engine
        traded = {request.market for request in self.forgetting.gateway.sent if hasattr(request, "market")}
        for market in self.resolved_at:
            assert engine.markets.get(market) is None, market
            event("a market we traded in was forgotten" if market in traded else "a market was forgotten")
        assert not engine.markets.resolved and not engine.executor.view.remembered()["settled_marks"]
        assert engine.remembered()["venue_resolved_markets"] == 0

    # ------------------------------------------------------------------ invariants

    @invariant()
    def the_same_decisions(self) -> None:
        kept, forgetting = self.kept, self.forgetting
        assert forgetting.gateway.sent == kept.gateway.sent
        assert forgetting.engine.executor.ledger.snapshot() == kept.engine.executor.ledger.snapshot()
        assert [row for row in forgetting.sink.rows if row.kind != "pruned"] == kept.sink.rows
        if forgetting.engine.executor.counts["fills"]:
            event("fills were booked")
        for rig in self.rigs:
            rig.engine.executor.ledger.check()
            rig.engine.executor.orders.check()

    @invariant()
    def forgotten_only_a_horizon_after_the_last_order_ended(self) -> None:
        """When each market went (its ``pruned`` row), the never-forgetting twin's orders in it had
        all ended a horizon before."""
        kept_orders = self.kept.engine.executor.orders
        sink = self.forgetting.sink
        for row, at in zip(sink.rows, sink.at):
            for market in row.payload.get("markets", ()) if row.kind == "pruned" else ():
                for request in self.kept.gateway.sent:
                    if isinstance(request, SubmitRequest) and request.market == market:
                        order = kept_orders.get(request.order_id)
                        assert not order.is_open and order.ended_ns + self.horizon <= at, (market, order)

    @invariant()
    def forgotten_only_when_over_for_a_horizon(self) -> None:
        engine = self.forgetting.engine
        for market, info in self.listed.items():
            if engine.markets.get(market) is not None:
                continue
            over = self.resolved_at.get(market, info.end_ns)
            assert over is not None and self.now - over >= self.horizon, market
            assert all(engine.books.get(token) is None for token in info.tokens)
            assert not engine.executor.orders.open_orders(market=market)
            assert not any(engine.executor.ledger.position(token) for token in info.tokens)


ForgettingMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestForgettingMachine = ForgettingMachine.TestCase


# --------------------------------------------------------------------------- components


M1 = POOL[1]
Y1, N1 = M1.tokens


def test_markets_forget_a_market_its_tokens_and_its_resolution_and_no_late_resolution() -> None:
    markets = Markets([POOL[0], M1])
    markets.apply(resolution(M1, T0))
    assert markets.resolved == {"m1": Y1}
    assert markets.forget("m1") == M1
    assert markets.get("m1") is None and markets.for_token(Y1) is None and markets.resolved == {}
    assert [info.market for info in markets] == ["m0"]
    markets.apply(resolution(M1, T0))  # late, from Gamma: not half a market back
    assert markets.resolved == {} and markets.get("m1") is None
    assert markets.forget("m1") is None


def test_books_forget_their_tokens_and_a_late_snapshot_is_a_fresh_book_dropped_once_quiet() -> None:
    books = Books(ListSink())
    for token in M1.tokens:
        books.apply(snapshot(M1, token, T0, fair=50))
    books.take_touched()
    assert books.forget([Y1, N1, "never-seen"]) == 2
    assert books.get(Y1) is None and len(books) == 0
    assert books.take_touched() == {Y1, N1}  # so the view revalues what their books marked
    changes = (LevelChange(token=Y1, side=BUY, price=480_000, size=ONE),)
    books.apply(PriceChange(cid="late", recv_ns=T0, market="m1", venue_ts_ms=0, changes=changes))
    assert len(books) == 0 and books.statistics().changes_without_book == 1
    books.apply(snapshot(M1, Y1, T0 + 10 * SECOND, fair=50))  # late: a fresh book, nobody trades it
    books.apply(snapshot(POOL[0], "y0", T0, fair=50))  # a known market's book, however quiet
    known = lambda market: market == "m0"  # noqa: E731
    assert books.forget_orphans(known, quiet_before_ns=T0 + 9 * SECOND) == []  # updated since
    assert books.forget_orphans(known, quiet_before_ns=T0 + 10 * SECOND) == [Y1]
    assert books.get(Y1) is None and books.get("y0") is not None


def test_the_view_forgets_redemption_marks_and_keeps_equity() -> None:
    rig = build(pays_on_resolution=False)
    rig.executor.handle(MarketClosing(cid="c", market="m2", winning_token="y2"))
    view = rig.executor.view
    assert view.mark("y2") == ONE and view.mark("n2") == 0
    equity = view.equity()
    rig.executor.books.forget(["y2", "n2"])
    view.forget(["y2", "n2"])
    assert view.mark("y2") is None and view.remembered() == {"settled_marks": 0, "values": 0}
    assert view.equity() == equity


def test_the_taker_forgets_its_takes_on_the_tokens_given_only() -> None:
    taker = CompleteSetTaker(config_for=lambda market: Config().strategies, ids=Ids())
    taker._taken = {("y1", SELL, 400_000): (10, 5), ("n1", SELL, 500_000): (10, 5), ("y0", SELL, 400_000): (9, 1)}
    taker.forget(["y1", "n1"])
    assert taker._taken == {("y0", SELL, 400_000): (9, 1)} and taker.remembered() == 1


def test_boundaries_forget_a_market_whose_timer_has_not_fired() -> None:
    clock = FakeClock(T0)
    scheduler = Scheduler(clock)  # type: ignore[arg-type]
    sent: list[MarketClosing] = []
    inbox = attrs.make_class("Inbox", {})()
    inbox.send = sent.append
    boundaries = Boundaries(scheduler=scheduler, inbox=inbox, buffer_s=10)
    early, late = (MarketInfo(market=m, tokens=(f"y{m}", f"n{m}"), end_ns=T0 + s * SECOND)
                   for m, s in (("a", 20), ("b", 40)))
    boundaries.watch(early)
    boundaries.watch(late)
    scheduler.fire_due(T0 + 10 * SECOND)
    assert [m.market for m in sent] == ["a"]
    boundaries.forget("a")
    boundaries.forget("b")  # resolved before its end, and forgotten: its timer never fires
    assert boundaries.watched() == 0
    scheduler.fire_due(T0 + 100 * SECOND)
    assert [m.market for m in sent] == ["a"]
    boundaries.watch(MarketInfo(market="c", tokens=("yc", "nc"), end_ns=T0 + 200 * SECOND))
    scheduler.fire_due(T0 + 200 * SECOND)
    assert [m.cid for m in sent] == ["end-1", "end-3"]  # numbered as watched, never reused


def test_slots_forget_pending_updates_without_counting_a_drop() -> None:
    slots: LatestSlots[str] = LatestSlots()
    slots.put("y1", "a")
    slots.put("y0", "b")
    assert slots.forget(["y1", "n1"]) == 1
    assert slots.take_all() == ["b"] and slots.statistics().dropped == 0


def test_the_paper_venue_forgets_ended_orders_and_markets_and_no_late_resolution() -> None:
    rig = driven([POOL[2], M1], horizon_s=60)
    for token in M1.tokens:
        rig.inject(snapshot(M1, token, T0, fair=50))
    rig.advance(T0 + SECOND)
    paper = rig.gateway
    quotes = rig.engine.executor.orders.open_orders(market="m1")
    assert len(quotes) == 2 and paper.remembered()["accepted_ids"] == 2
    assert paper.forget([quotes[0].order_id]) == 0  # still resting: kept
    rig.inject(resolution(M1, rig.clock.t))
    rig.advance(rig.clock.t + SECOND)
    assert paper.remembered()["resolved_markets"] == 1 and not rig.engine.executor.orders.open_orders()
    assert paper.forget([q.order_id for q in quotes]) == 2 and paper.remembered()["accepted_ids"] == 0
    paper.forget_markets([M1])
    assert paper.remembered()["resolved_markets"] == 0
    rig.engine.markets.forget("m1")
    rig.inject(resolution(M1, rig.clock.t))  # late: the registry no longer knows the market
    assert paper.remembered()["resolved_markets"] == 0


# --------------------------------------------------------------------------- the executor decides


def test_a_resolved_market_with_nothing_left_is_forgotten_a_horizon_after_its_resolution() -> None:
    rig = build()
    executor = rig.executor
    executor.handle(MarketClosing(cid="r", market="m2", winning_token="y2"))
    rows = len(rig.sink.rows)
    assert executor.forget_markets(rig.clock.now + 59 * SECOND, 60 * SECOND).markets == ()
    gone = executor.forget_markets(rig.clock.now + 60 * SECOND, 60 * SECOND)
    assert [info.market for info in gone.markets] == ["m2"] and gone.tokens == ["y2", "n2"]
    assert executor.markets.get("m2") is None and executor.books.get("y2") is None
    assert executor.markets.get("m1") is not None and executor.books.get("y1") is not None
    assert executor.lifecycle.over() == 0 and len(rig.sink.rows) == rows  # records nothing


def test_held_shares_keep_a_resolved_market_and_its_marks_until_they_go() -> None:
    rig = build(pays_on_resolution=False)  # with signed orders winners wait to be redeemed on chain
    executor = rig.executor
    request = buy_and_fill(rig, "y2", 10 * ONE)
    executor.handle(MarketClosing(cid="r", market="m2", winning_token="y2"))
    hour = 3_600 * SECOND
    first = executor.forget_markets(rig.clock.now + hour, 60 * SECOND)
    # kept for the shares alone: the market and its marks stay, its books go (nothing trades it)
    assert [info.market for info in first.held] == ["m2"] and first.markets == ()
    assert executor.books.get("y2") is None and executor.books.get("n2") is None
    assert not executor.forget_markets(rig.clock.now + 5 * hour, 60 * SECOND)  # released once
    assert executor.view.marks() == {"y2": ONE} and executor.markets.get("m2") is not None
    rig.clock.now += 5 * hour  # the shares leave the ledger (a correction, as a redemption would)
    executor.handle(Correction(cid="x", order_id=request.order_id, fill_id="", market="m2", token="y2", side=SELL,
                               price=ONE, size_delta=10 * ONE, fee_delta=0, reason="redeemed"))
    assert not executor.forget_markets(rig.clock.now, 60 * SECOND)  # found quiet now: a horizon from now
    assert not executor.forget_markets(rig.clock.now + 59 * SECOND, 60 * SECOND)
    gone = executor.forget_markets(rig.clock.now + 60 * SECOND, 60 * SECOND)
    assert [info.market for info in gone.markets] == ["m2"] and executor.view.remembered()["settled_marks"] == 0
    rig.ledger.check()


def test_an_open_order_keeps_a_closed_market_until_a_horizon_after_it_ended() -> None:
    info = MarketInfo(market="m9", tokens=("y9", "n9"), tick=TICK, end_ns=T0 + 100 * SECOND)
    rig = build()
    executor = rig.executor
    executor.markets.add(info)
    executor.books.apply(snapshot(info, "y9", T0, fair=50))
    request = place_buy(rig, "y9")
    executor.handle(MarketClosing(cid="end-1", market="m9"))  # the boundary asks for the cancel
    assert executor.orders.get(request.order_id).is_open
    rig.clock.now = T0 + 3_600 * SECOND
    assert not executor.forget_markets(rig.clock.now, 60 * SECOND)
    executor.handle(OrderDone(cid="d", order_id=request.order_id, reason="canceled"))  # at last
    assert not executor.forget_markets(rig.clock.now + 30 * SECOND, 60 * SECOND)  # quiet from here
    assert not executor.forget_markets(rig.clock.now + 89 * SECOND, 60 * SECOND)
    assert [i.market for i in executor.forget_markets(rig.clock.now + 90 * SECOND, 60 * SECOND).markets] == ["m9"]


def test_a_market_closed_at_its_boundary_is_over_at_its_end_and_an_unknown_one_never() -> None:
    info = MarketInfo(market="m9", tokens=("y9", "n9"), tick=TICK, end_ns=T0 + 100 * SECOND)
    rig = build()
    executor = rig.executor
    executor.markets.add(info)
    executor.handle(MarketClosing(cid="end-1", market="m9"))  # the boundary, before the end
    executor.handle(MarketClosing(cid="end-2", market="nobody"))
    assert executor.lifecycle.over() == 1
    assert not executor.forget_markets(T0 + 159 * SECOND, 60 * SECOND)
    assert [i.market for i in executor.forget_markets(T0 + 160 * SECOND, 60 * SECOND).markets] == ["m9"]


def place_buy(rig, token: str, size: int = 10 * ONE):
    rig.executor.handle(PlaceOrder(
        cid=f"i-{token}", cause="f0", strategy="test", market=f"m{token[1:]}", token=token, side=BUY,
        price=400_000, size=size, tif=TimeInForce.GTC, post_only=True,
    ))
    request = rig.gateway.sent[-1]
    rig.executor.handle(OrderAccepted(cid=request.cid, order_id=request.order_id))
    return request


def buy_and_fill(rig, token: str, size: int):
    request = place_buy(rig, token, size)
    rig.executor.handle(fill_of(request, fill_id=f"f-{token}", price=request.price, size=size,
                                liquidity=Liquidity.MAKER))
    return request


# --------------------------------------------------------------------------- the engine, and late messages


def traded_and_resolved(horizon_s: int = 60) -> tuple[Driven, list[Any]]:
    """A paper engine that quoted in m1 (both quotes filled), saw it resolve, and forgot it."""
    rig = driven([POOL[2], M1], horizon_s=horizon_s)
    for token in M1.tokens:
        rig.inject(snapshot(M1, token, rig.clock.t, fair=50))
    rig.advance(rig.clock.t + SECOND)
    quotes = rig.engine.executor.orders.open_orders(market="m1")
    assert len(quotes) == 2
    for quote in quotes:
        rig.inject(trade(M1, quote.token, rig.clock.t, price=quote.price - TICK, size=quote.size, side=SELL))
    rig.advance(rig.clock.t + SECOND)
    assert rig.engine.executor.counts["fills"] == 2
    assert rig.engine.prune("early") is None  # nothing ended long enough ago: no row
    assert not rig.sink.of("pruned")
    rig.inject(resolution(M1, rig.clock.t))
    rig.advance(rig.clock.t + (horizon_s + 2 * PRUNE_EVERY_S) * SECOND)  # the engine's own rounds
    return rig, quotes


def test_the_engine_forgets_a_resolved_market_everywhere_and_says_so_once() -> None:
    rig, quotes = traded_and_resolved()
    engine = rig.engine
    [row] = rig.sink.of("pruned")
    assert row.payload["markets"] == ["m1"] and row.payload["orders"] == 2
    assert row.payload["gateway_entries"] == 2  # the paper venue's ids of the ended orders
    assert engine.markets.get("m1") is None and engine.books.get(Y1) is None
    assert all(engine.executor.orders.get(q.order_id) is None for q in quotes)
    remembered = engine.remembered()
    assert remembered["markets"] == 1 and remembered["books"] == 0 and remembered["resolutions"] == 0
    assert remembered["venue_accepted_ids"] == 0 and remembered["venue_resolved_markets"] == 0
    assert remembered["markets_over"] == 0 and remembered["orders"] == 0 and remembered["fill_ids"] == 0
    assert row.payload["remembered"] == remembered
    rig.advance(rig.clock.t + 10 * PRUNE_EVERY_S * SECOND)
    assert len(rig.sink.of("pruned")) == 1  # rounds with nothing to forget leave no row


def test_a_late_book_frame_for_a_forgotten_market_trades_nothing_and_is_dropped_once_quiet() -> None:
    rig, _ = traded_and_resolved()
    engine, sent, rows = rig.engine, len(rig.gateway.sent), len(rig.sink.rows)
    for token in M1.tokens:
        rig.inject(snapshot(M1, token, rig.clock.t, fair=30))  # cheap sets: the taker would buy them
    rig.inject(PriceChange(cid="late", recv_ns=rig.clock.t, market="m1", venue_ts_ms=0,
                           changes=(LevelChange(token=Y1, side=BUY, price=200_000, size=ONE),)))
    assert len(rig.gateway.sent) == sent
    assert [(row.kind, row.payload["previous"]) for row in rig.sink.rows[rows:]] == [("book_state", "empty")] * 2
    assert engine.markets.get("m1") is None and engine.executor.lifecycle.over() == 0
    assert len(engine.books) == 2  # fresh books of a token never seen: nothing else of the market
    rig.advance(rig.clock.t + (60 + PRUNE_EVERY_S) * SECOND)
    assert len(engine.books) == 0 and rig.sink.of("pruned")[-1].payload["orphan_books"] == 2


def test_a_late_resolution_from_gamma_for_a_forgotten_market_is_not_remembered() -> None:
    rig, _ = traded_and_resolved()
    engine, rows = rig.engine, len(rig.sink.rows)
    ledger = engine.executor.ledger.snapshot()
    rig.engine.frames.inject(resolution(M1, rig.clock.t, winner=1, cid="gamma"), rig.clock.t)  # as resolution_watch does
    rig.settle()
    assert rig.sink.rows[rows:] == [] and engine.executor.ledger.snapshot() == ledger
    assert engine.markets.resolved == {} and engine.markets.get("m1") is None
    assert engine.executor.lifecycle.over() == 0 and engine.remembered()["venue_resolved_markets"] == 0


def test_a_late_fill_for_a_forgotten_market_is_an_error_and_books_nothing() -> None:
    rig, quotes = traded_and_resolved()
    engine = rig.engine
    ledger = engine.executor.ledger.snapshot()
    quote = quotes[0]
    late = Fill(cid="late", fill_id="late-1", order_id=quote.order_id, market="m1", token=quote.token,
                side=BUY, price=quote.price, size=quote.size, fee=0, liquidity=Liquidity.MAKER, ts_ns=rig.clock.t)
    engine.inbox.send(late)
    rig.settle()
    assert engine.executor.ledger.snapshot() == ledger and engine.markets.get("m1") is None
    assert rig.sink.rows[-1].kind == "error" and rig.sink.rows[-1].payload["error"] == "fill for an unknown order"


# --------------------------------------------------------------------------- the memory shape of a long run


def test_a_replay_of_many_short_markets_keeps_every_per_market_structure_bounded(tmp_path: Path) -> None:
    """Fifty-odd 20-second Up/Down windows list and resolve in a 20-minute recording, with a
    one-minute horizon: what is kept per market and per token stays at what the last couple of
    minutes need, while the number of markets seen keeps growing."""
    recording = tmp_path / "short.jsonl.gz"
    header = generate_recording(recording, seed=11, duration_s=1_200, markets=4, interval_s=20)
    windows = [info for info in header.markets if info.end_ns is not None and info.end_ns < header.start_ns + 86_400 * SECOND]
    assert len(windows) >= 55
    rows = replay_rows(recording, tmp_path / "forgetting.db", horizon_s=60)
    pruned = [row for row in rows if row.kind == "pruned"]
    forgotten = [market for row in pruned for market in row.payload["markets"]]
    assert len(forgotten) >= 45 and len(set(forgotten)) == len(forgotten)
    assert len(pruned) >= 15  # (almost) every minute after the first
    plain_tokens = 2 * (len(header.markets) - len(windows))
    # a window's tokens live from its listing (half an interval before it opens) to a horizon and
    # at most two rounds after its resolution (5 s after its end): about eleven windows at a time
    window_tokens = 2 * ((10 + 20 + 5 + 60 + 2 * 60) // 20 + 1)
    for row in pruned:
        sizes = row.payload["remembered"]
        assert sizes["books"] <= plain_tokens + window_tokens, sizes
        assert sizes["markets_over"] <= window_tokens // 2, sizes
        assert sizes["resolutions"] <= window_tokens // 2 and sizes["venue_resolved_markets"] <= window_tokens // 2
        assert sizes["settled_marks"] == 0 and sizes["slots_pending"] == 0, sizes
        assert sizes["strategy_entries"] <= 2 * 99 * (plain_tokens + window_tokens), sizes
        assert sizes["venue_liquidity_tokens"] <= plain_tokens + window_tokens, sizes
    last = pruned[-1].payload["remembered"]
    submits = sum(1 for row in rows if row.kind == "submit")
    assert last["orders"] <= submits // 5 and last["venue_accepted_ids"] <= submits // 5, (last, submits)
    # what the header listed up front goes as its windows do
    assert last["markets"] <= len(header.markets) - len(forgotten) and last["boundaries"] <= last["markets"]
    # and not a decision changed: the same rows as a run that forgets nothing, but for the pruned ones
    kept = replay_rows(recording, tmp_path / "kept.db", horizon_s=3_600)
    assert not any(row.kind == "pruned" for row in kept)
    assert decisions(rows) == decisions(kept)


def replay_rows(recording: Path, db: Path, *, horizon_s: int) -> list[Any]:
    config = Config(retention=RetentionConfig(ended_after_s=horizon_s))
    trio.run(functools.partial(app.replay, config=config, recording=recording, db_path=db, seed=1),
             clock=trio.testing.MockClock(autojump_threshold=0))
    return select_rows(db)


def decisions(rows: list[Any]) -> list[tuple[Any, ...]]:
    """The rows but for ``pruned`` and ``run_start`` (its config hash tells the horizon)."""
    return [(row.ts_ns, row.kind, row.cid, row.market, row.token, row.payload) for row in rows
            if row.kind not in ("pruned", "run_start")]

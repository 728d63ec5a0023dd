"""The daily-loss kill switch that flattens (``[risk] on_daily_loss = "flatten"``, decisions/flatten.py).

A hypothesis state machine drives a real executor through fills, book moves, the venue's answers
to the flatten's orders and its deadlines: once the flatten began no BUY ever goes out, sells
never exceed what is held, and the stop is requested exactly once. Targeted cases pin down the
phases, and an end-to-end test runs paper trading on the simulator over loopback until the
flatten stops it.
"""

from __future__ import annotations

import json

import sqlite_utils
from hypothesis import event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mmbot.config import RiskConfig
from mmbot.decisions.flatten import PHASE_S, ROUNDS, Phase
from mmbot.model import (
    ONE,
    BookSnapshot,
    CancelRequest,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderDone,
    OrderOutcomeUnknown,
    OrderRejected,
    Side,
    SubmitRequest,
    TimeInForce,
)
from tests.test_executor import MARKET_OF, NOW_NS, TICK, TOKENS, Rig, build, buy_and_fill, place

BUY, SELL = Side.BUY, Side.SELL
LIMIT = 2 * ONE


def flatten_risk(**overrides) -> RiskConfig:
    values = dict(max_daily_loss=LIMIT, max_order_notional=30 * ONE, max_open_orders=20, on_daily_loss="flatten")
    values.update(overrides)
    return RiskConfig(**values)


def snapshot(rig: Rig, token: str, bids: tuple = (), asks: tuple = ()) -> None:
    info = MARKET_OF[token]
    rig.executor.books.apply(BookSnapshot(
        cid=f"snap-{token}-{len(rig.sink.rows)}", recv_ns=rig.clock.now, market=info.market, token=token,
        bids=bids, asks=asks, venue_ts_ms=rig.clock.now // 1_000_000, tick=TICK,
    ))


def connect(rig: Rig) -> dict[str, list]:
    """The engine's hooks, recorded: halts, timers and stop requests."""
    calls: dict[str, list] = {"halt": [], "timers": [], "stop": []}
    rig.executor.flatten.connect(
        halt=lambda cid, reason: calls["halt"].append(reason),
        call_at=lambda t, callback: calls["timers"].append((t, callback)),
        stop=calls["stop"].append,
    )
    return calls


def sells(rig: Rig, since: int = 0) -> list[SubmitRequest]:
    return [r for r in rig.gateway.sent[since:] if isinstance(r, SubmitRequest) and r.side is SELL]


def answer_cancels(rig: Rig) -> None:
    for request in rig.gateway.of(CancelRequest):
        order = rig.executor.orders.get(request.order_id)
        if order is not None and order.is_open:
            rig.executor.handle(OrderDone(cid=f"done-{request.order_id}", order_id=request.order_id, reason="CANCELED"))


def fill(rig: Rig, request: SubmitRequest, size: int, fill_id: str, price: int | None = None) -> None:
    rig.executor.handle(Fill(
        cid=f"c-{fill_id}", fill_id=fill_id, order_id=request.order_id, market=request.market, token=request.token,
        side=request.side, price=request.price if price is None else price, size=size, fee=0,
        liquidity=Liquidity.TAKER, ts_ns=rig.clock.now,
    ))


def loss_rig(**risk) -> tuple[Rig, dict[str, list]]:
    """10 shares of y1 bought at 0.50 and a resting bid on n1; then y1's book drops to 0.20/0.30:
    a marked loss of 2.5 pUSD, past the 2 pUSD limit."""
    rig = build(risk=flatten_risk(**risk))
    calls = connect(rig)
    buy_and_fill(rig, "y1", 500_000, 10 * ONE, cid="b1")
    assert place(rig, "n1", BUY, 300_000, 10 * ONE, cid="rest") is not None
    snapshot(rig, "y1", bids=((200_000, 6 * ONE), (190_000, 50 * ONE)), asks=((300_000, 50 * ONE),))
    return rig, calls


# --------------------------------------------------------------------------- the phases


def test_with_the_default_halt_nothing_is_flattened_and_only_buys_are_refused() -> None:
    rig = build(risk=flatten_risk(on_daily_loss="halt"))
    assert rig.executor.flatten is None
    buy_and_fill(rig, "y1", 500_000, 10 * ONE, cid="b1")
    snapshot(rig, "y1", bids=((200_000, 50 * ONE),), asks=((300_000, 50 * ONE),))
    assert place(rig, "n1", BUY, 300_000, 10 * ONE, cid="late") is None
    assert rig.sink.of("risk_verdict", reason="max_daily_loss")
    assert place(rig, "y1", SELL, 200_000, 5 * ONE, cid="s") is not None  # sells still pass
    assert not rig.sink.of("daily_loss_flatten")


def test_at_the_limit_it_cancels_halts_then_sells_at_the_best_bid_and_stops_once() -> None:
    rig, calls = loss_rig()
    rig.executor.handle(OrderAccepted(cid="rest", order_id="o2"))  # any message: the check runs after it
    [start] = rig.sink.of("daily_loss_flatten")
    assert start.payload["daily_pnl"] <= -LIMIT and start.payload["limit"] == LIMIT
    assert start.payload["positions"] == {"y1": 10 * ONE} and start.payload["open_orders"] == 1
    assert [r.order_id for r in rig.gateway.of(CancelRequest)] == ["o2"]
    assert calls["halt"] == ["daily loss limit: flatten"] and len(calls["timers"]) == 1
    assert sells(rig) == []  # not before every cancel is answered
    # strategies asking for anything now are refused, sells too
    assert place(rig, "n1", BUY, 100_000, 10 * ONE, cid="late") is None
    assert place(rig, "y1", SELL, 200_000, 5 * ONE, cid="late-sell") is None
    assert len(rig.sink.of("risk_verdict", reason="daily_loss_flatten")) == 2
    answer_cancels(rig)
    [sell] = sells(rig)
    assert (sell.token, sell.price, sell.size, sell.tif) == ("y1", 200_000, 10 * ONE, TimeInForce.FAK)
    assert rig.executor.orders.get(sell.order_id).strategy == "flatten"
    assert rig.executor.flatten.phase is Phase.SELLING and calls["stop"] == []
    rig.executor.handle(OrderAccepted(cid=sell.cid, order_id=sell.order_id))
    fill(rig, sell, 4 * ONE, "f1")
    rig.executor.handle(OrderDone(cid=sell.cid, order_id=sell.order_id, reason="fak_remainder_canceled"))
    # a second round at the bid of the moment (the book still shows 0.20: the FAK takes what is there)
    [again] = sells(rig, rig.gateway.sent.index(sell) + 1)
    assert (again.price, again.size) == (200_000, 6 * ONE)
    rig.executor.handle(OrderDone(cid=again.cid, order_id=again.order_id, reason="fak_remainder_canceled"))
    assert rig.executor.flatten.phase is Phase.DONE
    [left] = rig.sink.of("flatten_left")
    assert left.payload["tokens"] == {"y1": {"shares": 6 * ONE, "why": "not filled at the bid"}}
    [done] = rig.sink.of("flatten_done")
    assert done.payload["sold"] == 4 * ONE and done.payload["rounds"] == 2
    assert calls["stop"] == ["daily loss limit reached: flattened"]
    assert rig.sink.of("stop_requested")[0].payload["connected"] is True
    rig.executor.flatten.after("later")
    rig.executor.flatten.expire()
    assert len(calls["stop"]) == 1


def test_sells_are_split_by_max_order_notional_and_what_cannot_be_sold_is_recorded() -> None:
    rig = build(risk=flatten_risk())  # 30 pUSD an order at most
    calls = connect(rig)
    snapshot(rig, "y1", bids=((940_000, 50 * ONE),), asks=((960_000, 50 * ONE),))
    for n in range(3):
        buy_and_fill(rig, "y1", 950_000, 15 * ONE, cid=f"b{n}")  # 45 shares
    rig.executor.adopt_holdings("startup", {"n1": (3 * ONE + 5_000, 1_500_000)}, basis="test")  # under the minimum
    buy_and_fill(rig, "y2", 500_000, 10 * ONE, cid="b3")
    snapshot(rig, "y2", bids=(), asks=((310_000, 50 * ONE),))  # no bid
    snapshot(rig, "y1", bids=((800_000, 50 * ONE),), asks=((820_000, 50 * ONE),))  # 45 x 0.14 lost
    rig.executor.flatten.after("tick")
    out = sells(rig)
    # 30 pUSD at 0.80 is 37.5 shares: 37.5 + 7.5, both at the best bid
    assert [(r.token, r.price, r.size) for r in out] == [("y1", 800_000, 37_500_000), ("y1", 800_000, 7_500_000)]
    for request in out:
        rig.executor.handle(OrderRejected(cid=request.cid, order_id=request.order_id, reason="MARKET_NOT_READY"))
    assert rig.executor.flatten.phase is Phase.DONE
    why = {t: v["why"] for t, v in rig.sink.of("flatten_left")[0].payload["tokens"].items()}
    assert why == {"y1": "not filled at the bid", "n1": "under min size", "y2": "no bid"}
    assert len(calls["stop"]) == 1


def test_an_unanswered_cancel_or_sell_does_not_keep_the_run_from_stopping() -> None:
    rig, calls = loss_rig()
    rig.executor.handle(OrderOutcomeUnknown(cid="rest", order_id="o2", detail="timeout"))
    assert rig.executor.flatten.phase is Phase.CANCELLING
    (t, expire), = calls["timers"]
    assert t == NOW_NS + PHASE_S * 1_000_000_000
    rig.clock.now = t - 1
    expire()
    assert sells(rig) == []  # not yet
    rig.clock.now = t
    expire()
    [sell] = sells(rig)
    assert rig.sink.of("flatten_timeout")[0].payload["phase"] == "cancelling"
    (t2, expire2) = calls["timers"][1]
    rig.clock.now = t2
    expire2()
    assert rig.executor.flatten.phase is Phase.DONE and calls["stop"] == ["daily loss limit reached: flattened"]
    assert rig.sink.of("flatten_timeout")[1].payload == {"phase": "selling", "open_orders": [sell.order_id]}


def test_without_a_connected_stop_the_request_is_recorded_as_not_connected() -> None:
    rig = build(risk=flatten_risk(max_daily_loss=0))
    rig.executor.flatten.after("tick")  # nothing held, nothing open: done at once
    assert rig.executor.flatten.phase is Phase.DONE
    assert rig.sink.of("stop_requested")[0].payload["connected"] is False
    assert not rig.sink.of("flatten_left")


# --------------------------------------------------------------------------- the state machine

PRICES = st.integers(5, 95).map(lambda k: k * TICK)
BUY_PRICES = st.integers(5, 60).map(lambda k: k * TICK)
SIZES = st.integers(5, 8).map(lambda n: n * ONE)


class FlattenMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.rig = build(cash=1_000 * ONE, risk=flatten_risk(max_daily_loss=ONE // 2, max_order_notional=5 * ONE,
                                                                max_open_orders=12))
        self.calls = connect(self.rig)
        self.started_at: int | None = None  # how many requests had gone out when the flatten began
        halt = self.rig.executor.flatten._halt

        def halted(cid: str, reason: str) -> None:
            self.started_at = len(self.rig.gateway.sent)
            halt(cid, reason)

        self.rig.executor.flatten._halt = halted
        self.n = 0
        for token in TOKENS:  # some inventory to start with, bought at the mid: no loss yet
            buy_and_fill(self.rig, token, 500_000, 8 * ONE, cid=f"start-{token}")

    @property
    def flatten(self):
        return self.rig.executor.flatten

    def _cid(self) -> str:
        self.n += 1
        return f"x{self.n}"

    def _after(self) -> None:
        assert (self.started_at is None) == (not self.flatten.active)

    @rule(token=st.sampled_from(TOKENS), price=BUY_PRICES, size=SIZES, filled=st.booleans())
    def strategy_buys(self, token: str, price: int, size: int, filled: bool) -> None:
        request = place(self.rig, token, BUY, price, size, cid=self._cid())
        if request is not None:
            self.rig.executor.handle(OrderAccepted(cid=request.cid, order_id=request.order_id))
            if filled:
                fill(self.rig, request, size, f"f{self.n}")
        self._after()

    @rule(token=st.sampled_from(TOKENS), bid=st.none() | PRICES, bid_size=SIZES, spread=st.integers(1, 5),
          stale=st.integers(0, 4).map(lambda n: n == 0))
    def book_moves(self, token: str, bid: int | None, bid_size: int, spread: int, stale: bool) -> None:
        bids = () if bid is None else ((bid, bid_size),)
        ask = min((bid or 50 * TICK) + spread * TICK, ONE - TICK)
        snapshot(self.rig, token, bids=bids, asks=((ask, 100 * ONE),))
        if stale:
            self.rig.executor.books.mark_stale([token], "test", "stale")
        self.flatten.after("timer")  # the engine's one-second check
        self._after()

    @rule(token=st.sampled_from(TOKENS), bid=st.integers(1, 30).map(lambda k: k * TICK), bid_size=SIZES)
    def market_falls(self, token: str, bid: int, bid_size: int) -> None:
        snapshot(self.rig, token, bids=((bid, bid_size), (TICK, 2 * ONE)), asks=((bid + TICK, 100 * ONE),))
        self.flatten.after("timer")
        self._after()

    @rule(data=st.data(), how=st.sampled_from(["fill_all", "fill_some", "done", "rejected", "unknown"]))
    def venue_answers(self, data, how: str) -> None:
        open_orders = self.rig.executor.orders.open_orders()
        if not open_orders:
            return
        order = data.draw(st.sampled_from(open_orders))
        executor, cid = self.rig.executor, f"a{self._cid()}"
        request = SubmitRequest(cid=cid, order_id=order.order_id, market=order.market, token=order.token,
                                side=order.side, price=order.price, size=order.size, tif=order.tif)
        if how.startswith("fill") and order.remaining:
            size = order.remaining if how == "fill_all" else max(TICK, order.remaining // 2 // TICK * TICK)
            fill(self.rig, request, size, f"v{self.n}")
            if order.tif is TimeInForce.FAK and executor.orders.get(order.order_id).is_open:
                executor.handle(OrderDone(cid=cid, order_id=order.order_id, reason="fak_remainder_canceled"))
        elif how == "rejected":
            executor.handle(OrderRejected(cid=cid, order_id=order.order_id, reason="INVALID_ORDER"))
        elif how == "unknown":
            executor.handle(OrderOutcomeUnknown(cid=cid, order_id=order.order_id, detail="timeout"))
        else:
            executor.handle(OrderDone(cid=cid, order_id=order.order_id, reason="CANCELED"))
        self._after()

    @precondition(lambda self: self.calls["timers"])
    @rule()
    def deadline(self) -> None:
        t, callback = self.calls["timers"][-1]
        self.rig.clock.now = max(self.rig.clock.now, t)
        callback()
        self._after()

    @invariant()
    def no_buy_after_the_flatten_began(self) -> None:
        if self.started_at is not None:
            late = [r for r in self.rig.gateway.sent[self.started_at:] if isinstance(r, SubmitRequest)]
            assert all(r.side is SELL and r.tif is TimeInForce.FAK for r in late)
            assert all(self.rig.executor.orders.get(r.order_id).strategy == "flatten" for r in late)

    @invariant()
    def sells_never_exceed_holdings(self) -> None:
        ledger, orders = self.rig.executor.ledger, self.rig.executor.orders
        for token in TOKENS:
            selling = sum(o.remaining for o in orders.open_orders(token=token) if o.side is SELL)
            assert selling <= ledger.position(token)
            assert ledger.available_shares(token) >= 0
        ledger.check()

    @invariant()
    def the_stop_is_requested_once_and_only_when_done(self) -> None:
        assert len(self.calls["stop"]) == (1 if self.flatten.phase is Phase.DONE else 0)
        assert self.flatten.rounds <= ROUNDS

    def teardown(self) -> None:
        """Whatever happened, once the deadlines pass the flatten is done and the stop requested once."""
        if not hasattr(self, "rig"):
            return
        event(f"flatten {self.flatten.phase.value}, {self.flatten.rounds} round(s), sold {self.flatten.sold > 0}")
        if not self.flatten.active:
            return
        for _ in range(3):
            if self.flatten.phase is Phase.DONE:
                break
            self.deadline()
        assert self.flatten.phase is Phase.DONE and len(self.calls["stop"]) == 1


TestFlattenMachine = FlattenMachine.TestCase
TestFlattenMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


# --------------------------------------------------------------------------- end to end, paper on the simulator


async def test_a_paper_run_on_the_simulator_flattens_and_stops_at_the_daily_loss_limit(
        nursery, autojump_clock, tmp_path) -> None:
    """``mmbot run``'s paper wiring (``app.run_paper``, its stop connected to the flatten). The loss
    is made sure of: a taker allowed to pay up to 1.5 a complete set (risk's own edge lifted too,
    which no config file may say) buys sets above 1 at once, fees on top."""
    import attrs

    from mmbot import app
    from mmbot.clock import TrioClock
    from mmbot.config import Config
    from tests.test_paper_live import START_NS, serve

    _server, urls, markets = await serve(nursery, markets=4, seed=5)
    config = Config(seed=3, risk=RiskConfig(max_daily_loss=ONE // 2, on_daily_loss="flatten", min_edge=-ONE // 2))
    config = attrs.evolve(config, strategies=attrs.evolve(
        config.strategies, taker=attrs.evolve(config.strategies.taker, min_edge=-ONE // 2)))
    db = tmp_path / "flatten.db"
    # no fail_after: the autojump clock leaps to the nearest deadline whenever every task waits (a
    # log write on its thread included); the hour's duration is only a net, checked below
    engine = await app.run_paper(config=config, markets=markets, ws_url=urls.ws, db_path=db, duration_s=3_600,
                                 clock=TrioClock(anchor_ns=START_NS))
    assert engine.clock.now_ns() - START_NS < 3_000 * 1_000_000_000  # stopped by the flatten, not by the net
    rows = sqlite_utils.Database(db)

    def payloads(kind: str) -> list[dict]:
        return [json.loads(r[0]) for r in rows.execute("SELECT payload FROM events WHERE kind = ? ORDER BY seq",
                                                       [kind]).fetchall()]

    [start] = payloads("daily_loss_flatten")
    assert start["daily_pnl"] <= -ONE // 2 and start["positions"], start  # there was inventory to sell
    seq = {kind: rows.execute("SELECT MIN(seq) FROM events WHERE kind = ?", [kind]).fetchone()[0]
           for kind in ("daily_loss_flatten", "flatten_done", "stop_requested", "run_end")}
    assert seq["daily_loss_flatten"] < seq["flatten_done"] < seq["stop_requested"] < seq["run_end"]
    submits = [(r[0], json.loads(r[1])) for r in rows.execute(
        "SELECT seq, payload FROM events WHERE kind = 'submit' ORDER BY seq").fetchall()]
    after = [p for s, p in submits if s > seq["daily_loss_flatten"]]
    assert after and all(p["side"] == "SELL" and p["strategy"] == "flatten" and p["tif"] == "FAK" for p in after)
    flatten_fills = rows.execute(
        "SELECT COUNT(*) FROM events WHERE kind = 'fill' AND seq > ?", [seq["daily_loss_flatten"]]).fetchone()[0]
    assert flatten_fills > 0  # sold where there were bids
    [end] = payloads("run_end")
    assert end["open_orders"] == 0
    left = {t for p in payloads("flatten_left") for t in p["tokens"]}
    assert {t for t, shares in end["positions"].items() if shares} <= left  # whatever is still held is accounted for
    assert payloads("stop_requested")[0]["connected"] is True

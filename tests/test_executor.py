"""Executor accounting: a rule-based state machine over intents and venue answers, plus targeted cases.

The machine drives a real Executor (Ledger, Orders, Risk, Books, Markets) through any interleaving
of strategy intents and venue responses. After every step it checks the executor against a model
built only from the messages this test sent and the executor accepted (cash, positions, fees,
filled sizes) and against what the fake gateway and the event log received: no order reaches the
gateway without risk's yes, no position appears without a fill, closed orders hold nothing.

The last section pins down executor bugs this machine found (and that are fixed): a reject after
the ack, a stale merge answer, an ack under a pending cancel, UNKNOWN orders and the kill switch,
repeated fills, overfills, and fee rounding over many small fills.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any, Callable

import attrs
import msgspec
from hypothesis import event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mmbot.config import RiskConfig
from mmbot.decisions.book import Books
from mmbot.decisions.executor import Executor
from mmbot.decisions.ledger import Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import Orders, OrderStatus
from mmbot.decisions.risk import Risk
from mmbot.model import (
    ONE,
    BookSnapshot,
    CancelOrder,
    CancelRejected,
    CancelRequest,
    Correction,
    Fill,
    Ids,
    KillSwitch,
    Liquidity,
    MarketClosing,
    MarketInfo,
    MergeDone,
    MergeRequest,
    MergeSets,
    OrderAccepted,
    OrderDone,
    OrderOutcomeUnknown,
    OrderRejected,
    PlaceOrder,
    Side,
    SubmitRequest,
    TimeInForce,
    notional,
    notional_down,
    taker_fee,
)
from mmbot.model.money import SHARE_STEP, market_buy_budget

BUY, SELL = Side.BUY, Side.SELL
NOW_NS = 1_700_000_000 * 1_000_000_000
TICK = 10_000
FEE_MARKET = MarketInfo(market="m1", tokens=("y1", "n1"), tick=TICK, fee_rate=72_000)
FREE_MARKET = MarketInfo(market="m2", tokens=("y2", "n2"), tick=TICK, fee_rate=0)
MARKETS = (FEE_MARKET, FREE_MARKET)
MARKET_OF = {token: info for info in MARKETS for token in info.tokens}
TOKENS = tuple(MARKET_OF)


# --------------------------------------------------------------------------- fakes and wiring


class FakeClock:
    def __init__(self, now_ns: int = NOW_NS) -> None:
        self.now = now_ns

    def now_ns(self) -> int:
        return self.now


class CollectingGateway:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, request: Any) -> None:
        self.sent.append(request)

    def of(self, kind: type) -> list[Any]:
        return [r for r in self.sent if isinstance(r, kind)]


@attrs.frozen
class Row:
    kind: str
    cid: str
    payload: dict[str, Any]
    market: str
    token: str


class ListSink:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def record(
        self, kind: str, cid: str, payload: dict[str, Any] | None = None, *, market: str = "", token: str = ""
    ) -> None:
        self.rows.append(Row(kind, cid, dict(payload or {}), market, token))

    def of(self, kind: str, **match: Any) -> list[Row]:
        return [
            row for row in self.rows
            if row.kind == kind and all(row.payload.get(key) == value for key, value in match.items())
        ]


@attrs.define
class Rig:
    executor: Executor
    gateway: CollectingGateway
    sink: ListSink
    clock: FakeClock
    published: list[Fill]

    @property
    def ledger(self) -> Ledger:
        return self.executor.ledger


def build(
    cash: int = 1_000 * ONE, risk: RiskConfig | None = None, pays_on_resolution: bool = True,
    publish_refused: Callable[[Fill], None] = lambda fill: None,
) -> Rig:
    """An executor wired as app.build_engine wires it, with both markets' books SYNCED."""
    sink, gateway, clock, published = ListSink(), CollectingGateway(), FakeClock(), []
    books = Books(sink)
    for info in MARKETS:
        for token in info.tokens:
            books.apply(
                BookSnapshot(
                    cid=f"snap-{token}", recv_ns=NOW_NS, market=info.market, token=token,
                    bids=((400_000, 100 * ONE),), asks=((600_000, 100 * ONE),),
                    venue_ts_ms=NOW_NS // 1_000_000, tick=TICK,
                )
            )
    executor = Executor(
        ledger=Ledger(cash=cash), orders=Orders(), risk=Risk(risk or RiskConfig()), books=books,
        markets=Markets(MARKETS), gateway=gateway, sink=sink, clock=clock, ids=Ids(),
        publish_fill=published.append, pays_on_resolution=pays_on_resolution, publish_refused=publish_refused,
    )
    return Rig(executor, gateway, sink, clock, published)


def worst_buy_cost(info: MarketInfo, price: int, size: int, post_only: bool) -> int:
    """Cost at the limit plus the largest taker fee a fill at or below it can pay, plus half a fee
    unit of rounding for each possible fill of 0.01 share."""
    if post_only or not info.fee_rate:
        return notional(price, size)
    fee = taker_fee(size, min(price, ONE // 2), info.fee_rate, info.fee_exponent) + 5 * -(-size // 10_000)
    return notional(price, size) + fee


def place(
    rig: Rig, token: str, side: Side, price: int, size: int, *, cid: str,
    tif: TimeInForce = TimeInForce.GTC, post_only: bool = False,
) -> SubmitRequest | None:
    """Send a PlaceOrder; the SubmitRequest it produced, or None if it was refused."""
    before = len(rig.gateway.sent)
    rig.executor.handle(
        PlaceOrder(
            cid=cid, cause=f"cause-{cid}", strategy="test", market=MARKET_OF[token].market, token=token,
            side=side, price=price, size=size, tif=tif, post_only=post_only,
        )
    )
    new = rig.gateway.sent[before:]
    return new[0] if new else None


def fill_of(request: SubmitRequest, *, fill_id: str, price: int, size: int, liquidity: Liquidity) -> Fill:
    info = MARKET_OF[request.token]
    fee = taker_fee(size, price, info.fee_rate, info.fee_exponent) if liquidity is Liquidity.TAKER else 0
    return Fill(
        cid=f"c-{fill_id}", fill_id=fill_id, order_id=request.order_id, market=request.market,
        token=request.token, side=request.side, price=price, size=size, fee=fee, liquidity=liquidity, ts_ns=NOW_NS,
    )


def buy_and_fill(rig: Rig, token: str, price: int, size: int, *, cid: str) -> SubmitRequest:
    """A BUY filled completely at its limit as a maker: a position with no fee."""
    request = place(rig, token, BUY, price, size, cid=cid)
    assert request is not None
    rig.executor.handle(OrderAccepted(cid=cid, order_id=request.order_id))
    rig.executor.handle(fill_of(request, fill_id=f"{cid}-f", price=price, size=size, liquidity=Liquidity.MAKER))
    return request


def budget_of(request: SubmitRequest) -> int | None:
    """A market (FOK/FAK) BUY's pUSD: its cost at its limit, rounded down to whole cents."""
    if request.side is BUY and request.tif in (TimeInForce.FOK, TimeInForce.FAK):
        return market_buy_budget(request.price, request.size)
    return None


# --------------------------------------------------------------------------- the state machine

CASH = 60 * ONE
TIGHT_RISK = RiskConfig(
    max_position_per_token=60 * ONE,
    max_position_per_market=100 * ONE,
    max_gross_exposure=120 * ONE,
    max_open_orders=8,
    max_order_notional=30 * ONE,
    max_daily_loss=1_000 * ONE,
)
# Reasons risk or the ledger may give for a PlaceOrder in this setup (no pair_cost, no end time).
KNOWN_REASONS = {
    "kill_switch", "invalid_tick", "below_min_size", "max_order_notional", "max_open_orders",
    "sell_exceeds_position", "max_daily_loss", "max_position_token", "max_position_market",
    "max_gross_exposure", "insufficient_cash", "insufficient_shares",
}

on_grid = st.integers(1, 99).map(lambda k: k * TICK)


def mostly(usual: st.SearchStrategy[int], rare: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
    """``usual`` nine times in ten, ``rare`` otherwise (``one_of`` would weigh them equally)."""
    return st.tuples(st.integers(0, 9), usual, rare).map(lambda t: t[2] if t[0] == 9 else t[1])


# On the 0.01 grid; now and then anything in [0, 1], mostly refused as invalid_tick.
prices = mostly(on_grid, st.integers(0, ONE))
# Whole shares or hundredths of shares; now and then any amount (below the 5-share minimum too).
sizes = mostly(
    st.one_of(st.integers(5, 30).map(lambda n: n * ONE), st.integers(500, 3_000).map(lambda n: n * 10_000)),
    st.integers(1, 40 * ONE),
)


ANSWERS = {
    "accepted": lambda r: OrderAccepted(cid=r.cid, order_id=r.order_id),
    "rejected": lambda r: OrderRejected(cid=r.cid, order_id=r.order_id, reason="INVALID_ORDER"),
    "done": lambda r: OrderDone(cid=r.cid, order_id=r.order_id, reason="CANCELED"),
    "cancel_rejected": lambda r: CancelRejected(cid=r.cid, order_id=r.order_id, reason="NOT_FOUND"),
    "outcome_unknown": lambda r: OrderOutcomeUnknown(cid=r.cid, order_id=r.order_id, detail="timeout"),
}


class ExecutorMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.rig = build(cash=CASH, risk=TIGHT_RISK)
        self.executor = self.rig.executor
        self.submitted: dict[str, SubmitRequest] = {}
        self.answered: set[str] = set()  # orders that got an ack or an accepted fill
        self.cash = CASH
        self.fees = 0
        self.positions = dict.fromkeys(TOKENS, 0)
        self.filled: Counter[str] = Counter()  # order id -> Σ accepted fill sizes
        self.spent: Counter[str] = Counter()  # order id -> Σ accepted fills' cost (fees apart)
        self.fill_count: Counter[str] = Counter()  # order id -> accepted fills
        self.accepted_fills: list[Fill] = []
        self.merges: list[MergeRequest] = []  # every merge sent, answered or not
        self.pending_merges: dict[str, MergeRequest] = {}  # market -> the merge awaiting its answer
        self.serial = 0

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def pick_order(self, data: st.DataObject) -> SubmitRequest:
        """Any order sent, open ones nine times in ten: answers for finished orders are repeats."""
        every = sorted(self.submitted)
        open_ids = [oid for oid in every if self.executor.orders.get(oid).is_open] or every
        return self.submitted[data.draw(mostly(st.sampled_from(open_ids), st.sampled_from(every)), label="order")]

    # ------------------------------------------------------------------ intents

    @rule(token=st.sampled_from(TOKENS), bid=st.integers(1, 50), one_sided=st.booleans())
    def book_moves(self, token: str, bid: int, one_sided: bool) -> None:
        """The market moves (marks change the running equity); a one-sided book has no mark."""
        info = next(i for i in MARKETS if token in i.tokens)
        self.executor.books.apply(
            BookSnapshot(
                cid=self.next_id("snap"), recv_ns=NOW_NS, market=info.market, token=token,
                bids=((bid * TICK, 100 * ONE),), asks=() if one_sided else (((bid + 10) * TICK, 100 * ONE),),
                venue_ts_ms=NOW_NS // 1_000_000, tick=TICK,
            )
        )

    @rule(
        token=st.sampled_from(TOKENS), side=st.integers(0, 3).map(lambda n: SELL if n == 3 else BUY),
        price=prices, size=sizes,
        tif=st.sampled_from(TimeInForce), post_only=st.booleans(),
    )
    def place_order(self, token: str, side: Side, price: int, size: int, tif: TimeInForce, post_only: bool) -> None:
        self.place_and_check(token, side, price, size, tif, post_only)

    @precondition(lambda self: any(self.positions.values()))
    @rule(data=st.data(), price=on_grid, tif=st.sampled_from(TimeInForce), post_only=st.booleans())
    def sell_holdings(self, data: st.DataObject, price: int, tif: TimeInForce, post_only: bool) -> None:
        token = data.draw(st.sampled_from([t for t in TOKENS if self.positions[t]]), label="token")
        held = self.positions[token]
        size = data.draw(st.one_of(st.just(held), st.integers(1, held)), label="size")
        self.place_and_check(token, SELL, price, size, tif, post_only)

    @rule(info=st.sampled_from(MARKETS), yes=on_grid, no=on_grid, size=sizes, post_only=st.booleans())
    def buy_both_tokens(self, info: MarketInfo, yes: int, no: int, size: int, post_only: bool) -> None:
        """Both legs of complete sets, so that merges have something to merge."""
        for token, price in zip(info.tokens, (yes, no)):
            self.place_and_check(token, BUY, price, size, TimeInForce.GTC, post_only)

    def place_and_check(self, token: str, side: Side, price: int, size: int, tif: TimeInForce, post_only: bool) -> None:
        info = MARKET_OF[token]
        ledger, cid = self.executor.ledger, self.next_id("i")
        available_cash, available_shares = ledger.available_cash(), ledger.available_shares(token)
        kill_switch, open_before = self.executor.risk.kill_switch, self.executor.orders.open_count()
        request = place(self.rig, token, side, price, size, cid=cid, tif=tif, post_only=post_only)
        verdicts = [row for row in self.rig.sink.of("risk_verdict") if row.cid == cid]
        assert len(verdicts) == 1
        accepted, reason = verdicts[0].payload["accepted"], verdicts[0].payload["reason"]
        worst = worst_buy_cost(info, price, size, post_only)
        if not accepted:
            assert request is None and reason in KNOWN_REASONS
            assert not [row for row in self.rig.sink.of("submit") if row.cid == cid]
            if kill_switch:
                assert reason == "kill_switch"
            elif price % TICK or not TICK <= price <= ONE - TICK:
                assert reason == "invalid_tick"
            elif size < info.min_size:
                assert reason == "below_min_size"
            elif notional(price, size) > TIGHT_RISK.max_order_notional:
                assert reason == "max_order_notional"
            elif open_before >= TIGHT_RISK.max_open_orders:
                assert reason == "max_open_orders"
            elif side is SELL:
                assert reason == ("sell_exceeds_position" if size > self.positions[token] else "insufficient_shares")
                assert size > available_shares
            elif reason == "insufficient_cash":
                assert worst > available_cash
            return
        assert reason == "ok" and not kill_switch and isinstance(request, SubmitRequest)
        sent = (request.cid, request.token, request.side, request.price, request.size)
        assert sent == (cid, token, side, price, size)
        assert request.order_id not in self.submitted
        self.submitted[request.order_id] = request
        if side is BUY:
            assert ledger.reservation(request.order_id) == worst <= available_cash
        else:
            assert ledger.reservation(request.order_id) == size <= available_shares

    @precondition(lambda self: self.submitted)
    @rule(data=st.data())
    def cancel_order(self, data: st.DataObject) -> None:
        request = self.pick_order(data)
        order = self.executor.orders.get(request.order_id)
        cancellable = order.is_open and order.status is not OrderStatus.PENDING_CANCEL
        before = len(self.rig.gateway.sent)
        cid = self.next_id("x")
        self.executor.handle(CancelOrder(cid=cid, cause=cid, strategy="test", order_id=request.order_id, reason="test"))
        expected = [CancelRequest(cid=cid, order_id=request.order_id)] if cancellable else []
        assert self.rig.gateway.sent[before:] == expected
        if cancellable:
            assert order.status is OrderStatus.PENDING_CANCEL

    def mergeable(self, info: MarketInfo) -> int:
        return min(self.executor.ledger.available_shares(t) for t in info.tokens)

    @rule(info=st.sampled_from(MARKETS), size=st.integers(1, 40 * ONE))
    def merge_sets(self, info: MarketInfo, size: int) -> None:
        self.merge_and_check(info, size)

    @precondition(lambda self: any(self.mergeable(info) for info in MARKETS))
    @rule(data=st.data())
    def merge_held_sets(self, data: st.DataObject) -> None:
        info = data.draw(st.sampled_from([info for info in MARKETS if self.mergeable(info)]), label="market")
        held = self.mergeable(info)
        self.merge_and_check(info, data.draw(st.one_of(st.just(held), st.integers(1, held)), label="size"))

    def merge_and_check(self, info: MarketInfo, size: int) -> None:
        ledger, can_merge = self.executor.ledger, self.mergeable(info)
        cid, before = self.next_id("g"), len(self.rig.gateway.sent)
        before_shares = [ledger.available_shares(t) for t in info.tokens]
        self.executor.handle(MergeSets(cid=cid, cause=cid, strategy="test", market=info.market, size=size))
        new = self.rig.gateway.sent[before:]
        if info.market in self.pending_merges:
            assert new == []  # one merge per market at a time
            return
        if size <= can_merge:
            assert new == [MergeRequest(cid=cid, market=info.market, tokens=info.tokens, size=size)]
            assert [ledger.available_shares(t) for t in info.tokens] == [
                held - size for held in before_shares
            ]  # both legs are held until the venue answers
            self.merges.append(new[0])
            self.pending_merges[info.market] = new[0]
        else:
            assert new == []
            assert [row.payload["reason"] for row in self.rig.sink.of("risk_verdict") if row.cid == cid] == [
                "insufficient_shares"
            ]

    @rule(engaged=st.integers(0, 3).map(lambda n: n == 3))  # engaged a quarter of the time
    def kill_switch(self, engaged: bool) -> None:
        cid = self.next_id("k")
        self.executor.handle(KillSwitch(cid=cid, reason="test", engaged=engaged))
        assert self.executor.risk.kill_switch is engaged
        if engaged:
            for order in self.executor.orders.open_orders():
                assert order.status in (OrderStatus.PENDING_CANCEL, OrderStatus.UNKNOWN)

    @rule(info=st.sampled_from(MARKETS))
    def market_closing(self, info: MarketInfo) -> None:
        self.executor.handle(MarketClosing(cid=self.next_id("c"), market=info.market))
        for order in self.executor.orders.open_orders(market=info.market):
            assert order.status in (OrderStatus.PENDING_CANCEL, OrderStatus.UNKNOWN)

    # ------------------------------------------------------------------ venue responses

    @precondition(lambda self: self.submitted)
    @rule(data=st.data())
    def acknowledge(self, data: st.DataObject) -> None:
        """The usual first answer, on its own rule so that orders often go LIVE."""
        self.venue_answer(data, "accepted")

    @precondition(lambda self: self.submitted)
    @rule(data=st.data(), answer=st.sampled_from(sorted(ANSWERS)))
    def venue_answer(self, data: st.DataObject, answer: str) -> None:
        """Any answer but a fill, for any order sent: late, repeated or out of order."""
        request = self.pick_order(data)
        if answer == "accepted":
            self.answered.add(request.order_id)
        self.executor.handle(ANSWERS[answer](request))

    @precondition(lambda self: self.submitted)
    @rule(data=st.data())
    def fill(self, data: st.DataObject) -> None:
        request = self.pick_order(data)
        order = self.executor.orders.get(request.order_id)
        if order.is_open:
            within = st.one_of(st.just(order.remaining), st.integers(1, order.remaining))
            if budget_of(request) is not None:  # a market BUY: now and then past its size
                within = mostly(within, st.integers(order.remaining + 1, order.remaining + order.size))
            size = data.draw(within, label="size")
        else:  # a fill for a finished order: refused, whatever its size (a FILLED market BUY's within its budget)
            size = data.draw(st.integers(1, order.size), label="size")
        self.fill_and_check(data, request, size)

    @precondition(lambda self: self.executor.orders.open_count())
    @rule(data=st.data())
    def fill_the_rest(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(self.executor.orders.open_orders()), label="order")
        self.fill_and_check(data, self.submitted[order.order_id], order.remaining)

    def filled_market_buys(self) -> list[SubmitRequest]:
        orders = self.executor.orders
        return [r for oid, r in sorted(self.submitted.items())
                if budget_of(r) is not None and orders.get(oid).status is OrderStatus.FILLED]

    @precondition(lambda self: self.filled_market_buys())
    @rule(data=st.data())
    def fill_a_filled_market_buy(self, data: st.DataObject) -> None:
        """The rest of a market BUY's matching, after a fill that reached its size: booked while it
        stays within the budget."""
        request = data.draw(st.sampled_from(self.filled_market_buys()), label="order")
        self.fill_and_check(data, request, data.draw(st.integers(1, request.size), label="size"))

    def fill_and_check(self, data: st.DataObject, request: SubmitRequest, size: int) -> None:
        was_open = self.executor.orders.get(request.order_id).is_open
        # at or better than the limit, on the grid
        if request.side is BUY:
            price = data.draw(st.integers(1, request.price // TICK), label="ticks") * TICK
        else:
            price = ONE - data.draw(st.integers(1, (ONE - request.price) // TICK), label="ticks") * TICK
        liquidity = Liquidity.MAKER if request.post_only else data.draw(st.sampled_from(Liquidity), label="liquidity")
        fill = fill_of(request, fill_id=self.next_id("f"), price=price, size=size, liquidity=liquidity)
        oid, ledger = request.order_id, self.executor.ledger
        ledger_before = ledger.snapshot()
        # The model: an order is bound by its size, a market BUY by its budget too; a FILLED market
        # BUY still takes fills within its budget; past its size or after it filled, a fill draws on
        # the order's reservation and then available cash, and is refused if those fall short.
        budget, filled, spent = budget_of(request), self.filled[oid], self.spent[oid]
        fits = filled + size <= request.size or (budget is not None and spent + notional(price, size) <= budget)
        spending_on = budget is not None and self.executor.orders.get(oid).status is OrderStatus.FILLED
        past = filled + size > request.size or spending_on
        covered = notional(price, size) + fill.fee <= ledger.reservation(oid) + ledger.available_cash()
        booked = fits and (was_open or spending_on) and (covered or not past)
        self.executor.handle(fill)
        rows = self.rig.sink.of("fill", fill_id=fill.fill_id)
        if not booked:  # a late fill (handed to reconciliation), or one that does not fit (an error)
            assert rows == [] and self.executor.ledger.snapshot() == ledger_before
            late = fits and not was_open and not spending_on
            kind, key = ("late_fill", "order_id") if late else ("error", "subject")
            assert [row.payload[key] for row in self.rig.sink.of(kind) if row.cid == fill.cid] == [request.order_id]
            return
        assert len(rows) == 1
        beyond = max(0, filled + size - max(request.size, filled))
        assert rows[0].payload.get("beyond_size", 0) == beyond
        if beyond:
            event("a market BUY filled past its size")
        if spending_on:
            event("a FILLED market BUY filled further")
        if budget is not None:
            self.spent[oid] += notional(price, size)
        order = self.executor.orders.get(oid)
        short = order.size - order.filled if not beyond and order.status is OrderStatus.FILLED else 0
        assert rows[0].payload.get("short_of_size", 0) == max(0, short)  # a market BUY filled with its budget spent
        self.answered.add(request.order_id)
        self.accepted_fills.append(fill)
        self.filled[request.order_id] += size
        self.fill_count[request.order_id] += 1
        self.fees += fill.fee
        if request.side is BUY:
            self.cash -= notional(price, size) + fill.fee
            self.positions[request.token] += size
        else:
            self.cash += notional_down(price, size) - fill.fee
            self.positions[request.token] -= size

    @precondition(lambda self: self.merges)
    @rule(data=st.data())
    def merge_done(self, data: st.DataObject) -> None:
        request = data.draw(st.sampled_from(self.merges), label="merge")
        pending = self.pending_merges.get(request.market)
        ledger_before = self.executor.ledger.snapshot()
        self.executor.handle(MergeDone(cid=request.cid, market=request.market, size=request.size))
        rows = [row for row in self.rig.sink.rows if row.cid == request.cid and row.kind in ("merge", "error")]
        if pending is not request:  # a repeated answer, or a stale one while a newer merge is pending
            assert self.executor.ledger.snapshot() == ledger_before
            assert rows[-1].kind == "error" and rows[-1].payload["subject"] == request.market
            return
        del self.pending_merges[request.market]
        assert [row.kind for row in rows] == ["merge"]
        self.cash += request.size
        for token in request.tokens:
            self.positions[token] -= request.size

    # ------------------------------------------------------------------ invariants

    @invariant()
    def ledger_adds_up(self) -> None:
        ledger = self.executor.ledger
        ledger.check()
        assert ledger.cash == self.cash
        assert ledger.fees_paid == self.fees
        for token in TOKENS:
            assert ledger.position(token) == self.positions[token]  # no position without a fill
        assert set(ledger.tokens()) <= set(TOKENS)

    @invariant()
    def only_open_orders_and_merges_hold_reservations(self) -> None:
        ledger, orders = self.executor.ledger, self.executor.orders
        open_cash = 0
        open_shares: Counter[str] = Counter()
        for order_id, request in self.submitted.items():
            order = orders.get(order_id)
            held = ledger.reservation(order_id)
            assert held >= 0
            if not order.is_open:
                assert held == 0, f"closed order {order_id} ({order.status.name}) still holds {held}"
            elif order.side is BUY:
                open_cash += held
                # what is left covers the rest at the worst, up to rounding: each fill's cost rounds
                # up by under 1 micro-unit and its fee by up to 5; the reserved fee is within 10
                slack = 16 + 6 * self.fill_count[order_id]
                worst = worst_buy_cost(MARKET_OF[order.token], order.price, order.remaining, order.post_only)
                assert held >= worst - slack, f"open order {order_id} holds {held}, its rest may cost {worst}"
            else:
                assert held == order.remaining
                open_shares[order.token] += held
        for merge in self.pending_merges.values():
            for token in merge.tokens:
                open_shares[token] += merge.size
        assert ledger.reserved_cash == open_cash
        assert ledger.snapshot()["reserved_shares"] == {t: n for t, n in sorted(open_shares.items()) if n}

    @invariant()
    def orders_match_what_was_sent_and_filled(self) -> None:
        orders = self.executor.orders
        orders.check()  # the indexes and the running buy notional agree with a full scan
        view, ledger = self.executor.view, self.executor.ledger
        assert view.equity() == ledger.cash + ledger.cost_basis() + ledger.unrealised(view.marks())
        for order in orders.open_orders():
            assert order.order_id in self.submitted
        for order_id, request in self.submitted.items():
            order = orders.get(order_id)
            budget, filled = budget_of(request), self.filled[order_id]
            assert order.filled == filled
            if budget is None:
                assert filled <= order.size
                assert (filled == order.size) == (order.status is OrderStatus.FILLED)
            else:  # past its size only within its budget; FILLED at its size or once the budget is spent
                spent_out = budget - self.spent[order_id] < notional(order.price, SHARE_STEP)
                assert filled <= order.size or self.spent[order_id] <= budget
                assert (filled >= order.size or (filled > 0 and spent_out)) == (order.status is OrderStatus.FILLED)
            assert (order.token, order.side, order.price, order.size) == (
                request.token, request.side, request.price, request.size
            )
        submits = Counter(row.payload["order_id"] for row in self.rig.sink.of("submit"))
        assert submits == Counter(self.submitted.keys())
        assert submits == Counter(r.order_id for r in self.rig.gateway.of(SubmitRequest))
        fill_rows = Counter(row.payload["fill_id"] for row in self.rig.sink.of("fill"))
        assert fill_rows == Counter(f.fill_id for f in self.accepted_fills)
        assert self.rig.published == self.accepted_fills


ExecutorMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestExecutorMachine = ExecutorMachine.TestCase


# --------------------------------------------------------------------------- targeted cases


def test_a_buy_reserves_the_worst_taker_fee_of_any_fill_at_or_below_its_limit() -> None:
    size = 10 * ONE
    # above 0.5 the worst fee is at 0.5 (p(1-p) peaks there), below it at the limit itself
    assert taker_fee(size, ONE // 2, FEE_MARKET.fee_rate) > taker_fee(size, 700_000, FEE_MARKET.fee_rate)
    for limit, fee_price in ((700_000, ONE // 2), (300_000, 300_000)):
        rig = build()
        request = place(rig, "y1", BUY, limit, size, cid="i1")
        fee = taker_fee(size, fee_price, FEE_MARKET.fee_rate, FEE_MARKET.fee_exponent)
        rounding = 5 * (size // 10_000)  # half a fee unit for each possible 0.01-share fill
        assert rig.ledger.reservation(request.order_id) == notional(limit, size) + fee + rounding
    # a post-only order only ever makes, and makers pay nothing
    rig = build()
    request = place(rig, "y1", BUY, 700_000, size, cid="i1", post_only=True)
    assert rig.ledger.reservation(request.order_id) == notional(700_000, size)


def test_a_taker_fill_at_the_costliest_fee_price_is_paid_from_the_reservation_alone() -> None:
    size, limit = 10 * ONE, 700_000
    worst = worst_buy_cost(FEE_MARKET, limit, size, post_only=False)
    rig = build(cash=worst)  # not a micro-unit to spare outside the reservation
    request = place(rig, "y1", BUY, limit, size, cid="i1")
    assert rig.ledger.available_cash() == 0
    rig.executor.handle(fill_of(request, fill_id="f1", price=ONE // 2, size=size, liquidity=Liquidity.TAKER))
    paid = notional(ONE // 2, size) + taker_fee(size, ONE // 2, FEE_MARKET.fee_rate)
    assert rig.ledger.cash == worst - paid
    assert rig.ledger.position("y1") == size
    rig.ledger.check()


def test_price_improvement_leaves_no_reservation_behind_after_a_full_fill() -> None:
    rig = build()
    request = place(rig, "y1", BUY, 600_000, 10 * ONE, cid="i1")
    rig.executor.handle(OrderAccepted(cid="i1", order_id=request.order_id))
    first = notional(550_000, 4 * ONE) + taker_fee(4 * ONE, 550_000, FEE_MARKET.fee_rate)
    rig.executor.handle(fill_of(request, fill_id="f1", price=550_000, size=4 * ONE, liquidity=Liquidity.TAKER))
    assert rig.ledger.reservation(request.order_id) == worst_buy_cost(FEE_MARKET, 600_000, 10 * ONE, False) - first
    rig.executor.handle(fill_of(request, fill_id="f2", price=500_000, size=6 * ONE, liquidity=Liquidity.MAKER))
    assert rig.executor.orders.get(request.order_id).status is OrderStatus.FILLED
    assert rig.ledger.reservation(request.order_id) == 0
    assert rig.ledger.reserved_cash == 0
    spent = first + notional(500_000, 6 * ONE)
    assert rig.ledger.available_cash() == rig.ledger.cash == 1_000 * ONE - spent
    rig.ledger.check()


def test_a_kill_switch_cancels_every_open_order_and_refuses_new_intents() -> None:
    rig = build()
    buy_and_fill(rig, "y2", 500_000, 20 * ONE, cid="held")
    pending = place(rig, "y1", BUY, 400_000, 10 * ONE, cid="pending")  # no answer yet
    live = place(rig, "n1", BUY, 300_000, 10 * ONE, cid="live")
    partial = place(rig, "y2", SELL, 600_000, 10 * ONE, cid="partial")
    rig.executor.handle(OrderAccepted(cid="live", order_id=live.order_id))
    rig.executor.handle(fill_of(partial, fill_id="p1", price=600_000, size=ONE, liquidity=Liquidity.MAKER))
    before = len(rig.gateway.sent)

    rig.executor.handle(KillSwitch(cid="kill", reason="operator"))

    cancels = rig.gateway.sent[before:]
    assert cancels == [CancelRequest(cid="kill", order_id=r.order_id) for r in (pending, live, partial)]
    assert all(o.status is OrderStatus.PENDING_CANCEL for o in rig.executor.orders.open_orders())
    assert [row.payload["reason"] for row in rig.sink.of("kill_switch")] == ["operator"]
    for side, cid in ((BUY, "refused-buy"), (SELL, "refused-sell")):
        assert place(rig, "y2", side, 500_000, 5 * ONE, cid=cid) is None
        verdicts = [row.payload for row in rig.sink.of("risk_verdict") if row.cid == cid]
        assert verdicts == [{"accepted": False, "reason": "kill_switch", "strategy": "test"}]
    assert len(rig.gateway.sent) == before + 3

    rig.executor.handle(KillSwitch(cid="release", reason="operator", engaged=False))
    assert place(rig, "y2", BUY, 500_000, 5 * ONE, cid="after") is not None


def test_the_kill_switch_also_cancels_orders_whose_submit_outcome_is_unknown() -> None:
    rig = build()
    lost = place(rig, "y1", BUY, 400_000, 10 * ONE, cid="lost")
    rig.executor.handle(OrderOutcomeUnknown(cid="lost", order_id=lost.order_id, detail="timeout"))
    before = len(rig.gateway.sent)
    rig.executor.handle(KillSwitch(cid="kill", reason="operator"))
    assert rig.gateway.sent[before:] == [CancelRequest(cid="kill", order_id=lost.order_id)]


def test_a_resolution_pays_the_winning_shares_through_the_ledger() -> None:
    rig = build()
    buy_and_fill(rig, "y1", 400_000, 10 * ONE, cid="yes")
    buy_and_fill(rig, "n1", 500_000, 5 * ONE, cid="no")
    resting = place(rig, "y1", SELL, 900_000, 5 * ONE, cid="resting")
    other = buy_and_fill(rig, "y2", 500_000, 6 * ONE, cid="other")
    cash_before = rig.ledger.cash
    before = len(rig.gateway.sent)

    rig.executor.handle(MarketClosing(cid="resolved", market="m1", winning_token="y1"))

    assert rig.gateway.sent[before:] == [CancelRequest(cid="resolved", order_id=resting.order_id)]
    assert rig.ledger.cash == cash_before + 10 * ONE
    assert (rig.ledger.position("y1"), rig.ledger.position("n1")) == (0, 0)
    assert rig.ledger.position(other.token) == 6 * ONE  # the other market is untouched
    assert rig.ledger.reservation(resting.order_id) == 0
    rows = rig.sink.of("resolution")
    assert [(r.cid, r.market, r.payload) for r in rows] == [
        ("resolved", "m1", {"winning_token": "y1", "payout": 10 * ONE, "cash": rig.ledger.cash})
    ]
    rig.ledger.check()


def test_where_the_venue_does_not_pay_out_resolved_shares_stay_held_at_their_redemption_value() -> None:
    rig = build(pays_on_resolution=False)
    buy_and_fill(rig, "y1", 400_000, 10 * ONE, cid="yes")
    buy_and_fill(rig, "n1", 500_000, 5 * ONE, cid="no")
    resting = place(rig, "y1", SELL, 900_000, 5 * ONE, cid="resting")
    cash_before = rig.ledger.cash
    equity_before = rig.executor.view.equity()

    rig.executor.handle(MarketClosing(cid="resolved", market="m1", winning_token="y1"))

    assert rig.gateway.sent[-1] == CancelRequest(cid="resolved", order_id=resting.order_id)
    assert rig.ledger.cash == cash_before  # nothing paid until the shares are redeemed on chain
    assert (rig.ledger.position("y1"), rig.ledger.position("n1")) == (10 * ONE, 5 * ONE)
    assert {t: m for t, m in rig.executor.view.marks().items() if t in ("y1", "n1")} == {"y1": ONE, "n1": 0}
    # marked at 1 and 0 instead of the books' 0.5 mid: +10 × 0.5 on the winner, -5 × 0.5 on the loser
    assert rig.executor.view.equity() - equity_before == 5 * ONE - 2_500_000
    [row] = rig.sink.of("resolution")
    assert row.payload == {"winning_token": "y1", "payout": 0, "cash": cash_before, "redeemable": 10 * ONE,
                           "worthless": 5 * ONE}
    rig.ledger.check()


def test_an_orders_end_told_twice_is_recorded_once() -> None:
    rig = build()
    request = place(rig, "y1", BUY, 400_000, 10 * ONE, cid="i1")
    rig.executor.handle(OrderAccepted(cid="i1", order_id=request.order_id))
    for cid in ("cancel-answer", "user-channel"):  # live: the cancel's REST answer, then the user channel
        rig.executor.handle(OrderDone(cid=cid, order_id=request.order_id, reason="canceled"))
    assert [r.cid for r in rig.sink.of("order_done")] == ["cancel-answer"]
    assert rig.sink.of("error") == []


def test_a_fill_after_its_order_ended_is_refused_and_handed_to_reconciliation() -> None:
    refused: list[Fill] = []
    rig = build(publish_refused=refused.append)
    request = place(rig, "y1", BUY, 400_000, 10 * ONE, cid="i1")
    rig.executor.handle(OrderAccepted(cid="i1", order_id=request.order_id))
    rig.executor.handle(OrderDone(cid="c1", order_id=request.order_id, reason="canceled"))
    ledger_before = rig.ledger.snapshot()
    late = fill_of(request, fill_id="late", price=400_000, size=4 * ONE, liquidity=Liquidity.MAKER)
    rig.executor.handle(late)
    assert rig.ledger.snapshot() == ledger_before and refused == [late] and rig.published == []
    [row] = rig.sink.of("late_fill")
    assert row.payload["fill_id"] == "late" and row.payload["status"] == "expired" and rig.sink.of("error") == []
    rig.executor.handle(fill_of(msgspec.structs.replace(request, order_id="o-nobody"), fill_id="ghost", price=400_000, size=ONE,
                                liquidity=Liquidity.TAKER))
    assert refused == [late]  # an order never ours is not a late fill: reconciliation waits as usual


def test_a_fill_for_an_unknown_order_is_an_error_and_changes_nothing() -> None:
    rig = build()
    request = buy_and_fill(rig, "y1", 400_000, 10 * ONE, cid="known")
    ledger_before, rows_before = rig.ledger.snapshot(), len(rig.sink.rows)
    orders_before = copy.deepcopy(rig.executor.orders.get(request.order_id))
    stranger = msgspec.structs.replace(request, order_id="o-nobody")

    rig.executor.handle(fill_of(stranger, fill_id="ghost", price=400_000, size=ONE, liquidity=Liquidity.TAKER))

    assert rig.ledger.snapshot() == ledger_before
    assert rig.executor.orders.get("o-nobody") is None
    assert rig.executor.orders.get(request.order_id) == orders_before
    new_rows = rig.sink.rows[rows_before:]
    assert [(r.kind, r.cid, r.payload["subject"]) for r in new_rows] == [("error", "c-ghost", "o-nobody")]
    assert [f.fill_id for f in rig.published] == ["known-f"]


def test_a_duplicate_ack_or_done_changes_nothing() -> None:
    rig = build()
    request = place(rig, "y1", BUY, 400_000, 10 * ONE, cid="i1")
    rig.executor.handle(OrderAccepted(cid="i1", order_id=request.order_id))
    rig.executor.handle(OrderAccepted(cid="i1", order_id=request.order_id))
    assert rig.executor.orders.get(request.order_id).status is OrderStatus.LIVE
    rig.executor.handle(OrderDone(cid="i1", order_id=request.order_id, reason="CANCELED"))
    state = rig.ledger.snapshot()
    assert state["reserved_cash"] == 0
    rig.executor.handle(OrderDone(cid="i1", order_id=request.order_id, reason="CANCELED"))
    assert rig.executor.orders.get(request.order_id).status is OrderStatus.EXPIRED
    assert rig.ledger.snapshot() == state
    rig.ledger.check()


# --------------------------------------------------------------------------- bugs found here, fixed


def test_a_reject_after_the_ack_keeps_the_reservation() -> None:
    rig = build()
    request = place(rig, "y1", BUY, 400_000, 10 * ONE, cid="i1")
    reserved = rig.ledger.reservation(request.order_id)
    rig.executor.handle(OrderAccepted(cid="i1", order_id=request.order_id))
    rig.executor.handle(OrderRejected(cid="i1", order_id=request.order_id, reason="INVALID"))
    assert rig.executor.orders.get(request.order_id).status is OrderStatus.LIVE
    assert [r.payload["subject"] for r in rig.sink.of("error")] == [request.order_id]
    assert rig.ledger.reservation(request.order_id) == reserved


def test_a_sell_cannot_take_the_shares_of_a_merge_in_flight() -> None:
    rig = build()
    buy_and_fill(rig, "y1", 400_000, 10 * ONE, cid="yes")
    buy_and_fill(rig, "n1", 500_000, 10 * ONE, cid="no")
    rig.executor.handle(MergeSets(cid="g1", cause="g1", strategy="test", market="m1", size=10 * ONE))
    assert rig.gateway.of(MergeRequest)
    assert place(rig, "y1", SELL, 600_000, 10 * ONE, cid="sell") is None
    assert [r.payload["reason"] for r in rig.sink.of("risk_verdict") if r.cid == "sell"] == ["insufficient_shares"]
    cash = rig.ledger.cash
    rig.executor.handle(MergeDone(cid="g1", market="m1", size=10 * ONE))
    assert rig.ledger.cash == cash + 10 * ONE
    assert (rig.ledger.position("y1"), rig.ledger.position("n1")) == (0, 0)
    rig.ledger.check()


def test_a_repeated_merge_answer_is_an_error_and_changes_nothing() -> None:
    rig = build()
    buy_and_fill(rig, "y1", 400_000, 20 * ONE, cid="yes")
    buy_and_fill(rig, "n1", 500_000, 20 * ONE, cid="no")
    rig.executor.handle(MergeSets(cid="g1", cause="g1", strategy="test", market="m1", size=10 * ONE))
    rig.executor.handle(MergeDone(cid="g1", market="m1", size=10 * ONE))
    state = rig.ledger.snapshot()
    rig.executor.handle(MergeDone(cid="g1", market="m1", size=10 * ONE))
    assert rig.ledger.snapshot() == state
    assert [r.cid for r in rig.sink.of("error")] == ["g1"]


def test_a_stale_merge_answer_does_not_lose_the_merge_in_flight() -> None:
    rig = build()
    buy_and_fill(rig, "y1", 400_000, 20 * ONE, cid="yes")
    buy_and_fill(rig, "n1", 500_000, 20 * ONE, cid="no")
    rig.executor.handle(MergeSets(cid="g1", cause="g1", strategy="test", market="m1", size=5 * ONE))
    rig.executor.handle(MergeDone(cid="g1", market="m1", size=5 * ONE))
    rig.executor.handle(MergeSets(cid="g2", cause="g2", strategy="test", market="m1", size=5 * ONE))
    rig.executor.handle(MergeDone(cid="g1", market="m1", size=5 * ONE))  # the venue repeats itself
    assert rig.executor.view.busy("m1", "merge")
    cash = rig.ledger.cash
    rig.executor.handle(MergeDone(cid="g2", market="m1", size=5 * ONE))
    assert rig.ledger.cash == cash + 5 * ONE
    assert rig.ledger.available_shares("y1") == rig.ledger.position("y1") == 10 * ONE
    assert [r.cid for r in rig.sink.of("error")] == ["g1"]


def test_fee_rounding_on_many_small_fills_never_crashes_the_executor() -> None:
    size, limit, cash = 5 * ONE, 370_000, 60 * ONE
    rig = build(cash=cash)
    small = place(rig, "y1", BUY, limit, size, cid="small")
    # another order takes every free micro-unit (price 0.5 on the fee-free market: notional = free exactly)
    place(rig, "y2", BUY, ONE // 2, 2 * rig.ledger.available_cash(), cid="big")
    piece = 10_000  # 0.01 shares: fee 0.000167832 each, rounded to 0.00017
    for n in range(size // piece):
        rig.executor.handle(fill_of(small, fill_id=f"f{n}", price=limit, size=piece, liquidity=Liquidity.TAKER))
    paid = notional(limit, size) + (size // piece) * taker_fee(piece, limit, FEE_MARKET.fee_rate)
    one_fill_fee = taker_fee(size, limit, FEE_MARKET.fee_rate)
    assert paid > notional(limit, size) + one_fill_fee  # rounding each small fill costs more in all
    assert paid <= worst_buy_cost(FEE_MARKET, limit, size, post_only=False)  # and the reservation covers it
    assert rig.ledger.cash == cash - paid
    assert rig.ledger.position("y1") == size
    rig.ledger.check()


def test_an_ack_during_a_pending_cancel_counts_when_the_cancel_is_refused() -> None:
    rig = build()
    request = place(rig, "y1", BUY, 400_000, 10 * ONE, cid="i1")
    rig.executor.handle(CancelOrder(cid="x1", cause="x1", strategy="test", order_id=request.order_id, reason="t"))
    rig.executor.handle(OrderAccepted(cid="i1", order_id=request.order_id))
    rig.executor.handle(CancelRejected(cid="x1", order_id=request.order_id, reason="NOT_FOUND"))
    assert rig.executor.orders.get(request.order_id).status is OrderStatus.LIVE
    assert not rig.executor.view.busy("m1", "test")


def test_a_repeated_fill_id_is_booked_once() -> None:
    rig = build()
    request = place(rig, "y1", BUY, 400_000, 10 * ONE, cid="i1")
    fill = fill_of(request, fill_id="f1", price=400_000, size=2 * ONE, liquidity=Liquidity.MAKER)
    rig.executor.handle(fill)
    state = rig.ledger.snapshot()
    rig.executor.handle(fill)
    assert rig.ledger.snapshot() == state
    assert rig.executor.orders.get(request.order_id).filled == 2 * ONE


def test_an_overfill_is_an_error_and_changes_nothing() -> None:
    rig = build()
    request = place(rig, "y1", BUY, 400_000, 10 * ONE, cid="i1")
    state = rig.ledger.snapshot()
    rig.executor.handle(fill_of(request, fill_id="f1", price=400_000, size=11 * ONE, liquidity=Liquidity.MAKER))
    assert rig.ledger.snapshot() == state
    assert [r.cid for r in rig.sink.of("error")] == ["c-f1"]


def test_a_correction_row_carries_what_it_takes_to_replay_it_without_the_order() -> None:
    rig = build()
    buy_and_fill(rig, "y1", 400_000, 10 * ONE, cid="held")
    # reconciliation reverses a trade of an order from an earlier run: this executor never knew it
    rig.executor.handle(Correction(
        cid="rc-1", order_id="o-earlier", fill_id="t-9", market="m1", token="y1", side=BUY, price=400_000,
        size_delta=-3 * ONE, fee_delta=-2_000, reason="trade t-9 failed",
    ))
    [row] = rig.sink.of("correction")
    assert (row.market, row.token) == ("m1", "y1")
    assert row.payload == {
        "order_id": "o-earlier", "fill_id": "t-9", "side": "BUY", "price": 400_000, "size_delta": -3 * ONE,
        "fee_delta": -2_000, "reason": "trade t-9 failed", "cash": rig.ledger.cash, "position": 7 * ONE,
    }
    assert rig.ledger.cash == 1_000 * ONE - notional(400_000, 10 * ONE) + notional(400_000, 3 * ONE) + 2_000
    assert rig.sink.of("error") == []

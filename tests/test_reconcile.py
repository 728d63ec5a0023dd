"""Reconciliation as a state machine: optimistic fills, user-channel legs in every status,
duplicates, reordering, lost answers, timeouts and venue queries in any interleaving.

Invariant when the dust settles: what the executor holds for each order equals the venue's
truth (every leg that did not fail), every trade counted once, and every difference settled by
a correction the executor received."""

from __future__ import annotations

from collections import Counter

import attrs

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mmbot.decisions.reconcile import CONFIRMED, FAILED, FINAL, MATCHED, MINED, RETRYING, Reconciler, VenueLeg
from mmbot.model import ONE, Correction, Fill, Ids, Liquidity, Side

TIMEOUT_NS = 5_000_000_000
ORDERS = {"o1": 400_000, "o2": 550_000, "o3": 610_000}  # order id -> limit price


class ReconcileMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.corrections: list[Correction] = []
        self.rec = Reconciler(emit=self.corrections.append, ids=Ids(), timeout_ns=TIMEOUT_NS)
        self.status: dict[str, str] = {}  # venue truth: trade id -> status
        self.legs: dict[str, VenueLeg] = {}  # trade id -> MATCHED leg
        self.messages: list[VenueLeg] = []  # user-channel messages not yet delivered
        self.answers: list[Fill] = []  # our gateway's answers (optimistic fills) not yet delivered
        self.held: Counter[str] = Counter()  # what the executor holds per order
        self.booked_fill_ids: set[str] = set()
        self.ended: set[str] = set()  # orders the executor has seen end: it books no fill of them
        self.trades = 0

    # ------------------------------------------------------------------ the venue matches

    @rule(order=st.sampled_from(sorted(ORDERS)), shares=st.integers(1, 30), answered=st.booleans())
    def venue_matches(self, order: str, shares: int, answered: bool) -> None:
        self.trades += 1
        trade = f"t{self.trades}"
        leg = VenueLeg(trade_id=trade, order_id=order, market="M", token="Y", side=Side.BUY, price=ORDERS[order],
                       size=shares * ONE, fee=shares * 100, status=MATCHED)
        self.legs[trade] = leg
        self.status[trade] = MATCHED
        self.messages.append(leg)
        if answered:  # our own answer carries the fill; sometimes it is lost (timeout after sending)
            self.answers.append(Fill(cid=trade, fill_id=f"{trade}.f", order_id=order, market="M", token="Y",
                                     side=Side.BUY, price=ORDERS[order], size=shares * ONE, fee=shares * 100,
                                     liquidity=Liquidity.TAKER, ts_ns=self.now))

    @precondition(lambda self: any(s not in FINAL for s in self.status.values()))
    @rule(data=st.data(), to=st.sampled_from([MINED, CONFIRMED, RETRYING, FAILED]))
    def venue_advances(self, data: st.DataObject, to: str) -> None:
        trade = data.draw(st.sampled_from(sorted(t for t, s in self.status.items() if s not in FINAL)))
        self.status[trade] = to
        self.messages.append(self._leg(trade, to))

    # ------------------------------------------------------------------ delivery, in any order

    @precondition(lambda self: self.messages)
    @rule(data=st.data(), duplicate=st.booleans())
    def deliver_a_message(self, data: st.DataObject, duplicate: bool) -> None:
        i = data.draw(st.integers(0, len(self.messages) - 1))
        msg = self.messages[i] if duplicate else self.messages.pop(i)
        self.rec.on_leg(msg, self.now)
        self._apply_corrections()

    @precondition(lambda self: self.answers)
    @rule(data=st.data(), duplicate=st.booleans())
    def our_answer_arrives(self, data: st.DataObject, duplicate: bool) -> None:
        i = data.draw(st.integers(0, len(self.answers) - 1))
        self._executor_takes(self.answers[i] if duplicate else self.answers.pop(i))

    @rule(order=st.sampled_from(sorted(ORDERS)))
    def the_order_ends(self, order: str) -> None:
        """Cancelled (its cancel answered) while fills of it may still be on their way."""
        self.ended.add(order)

    @rule(seconds=st.integers(1, 8))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds * 1_000_000_000
        for order in self.rec.due_queries(self.now):
            self.rec.on_order_truth(order, self._truth(order), ORDERS[order], self.now)
        self._apply_corrections()

    # ------------------------------------------------------------------ checks

    @invariant()
    def never_holds_a_failed_trade_it_was_told_of(self) -> None:
        for order in ORDERS:
            assert self.held[order] >= 0

    def teardown(self) -> None:
        """The dust settles: everything is delivered, time runs out, queries are answered."""
        for msg in self.messages:
            self.rec.on_leg(msg, self.now)
        for fill in self.answers:
            self._executor_takes(fill)
        for _ in range(3):
            self.now += TIMEOUT_NS
            for order in self.rec.due_queries(self.now):
                self.rec.on_order_truth(order, self._truth(order), ORDERS[order], self.now)
            self._apply_corrections()
        for order in ORDERS:
            assert self.held[order] == self._truth(order), (order, self.held[order], self._truth(order))
        assert self.rec.unsettled() == {}
        assert self.rec.counts["legs"] == len(self.legs)  # every trade counted once

    # ------------------------------------------------------------------ helpers

    def _executor_takes(self, fill: Fill) -> None:
        """As the executor: a fill of an ended order is refused and handed over; any other is
        booked once per fill id and published."""
        if fill.order_id in self.ended:
            if fill.fill_id not in self.booked_fill_ids:
                self.rec.on_refused_fill(fill, self.now)
        else:
            if fill.fill_id not in self.booked_fill_ids:
                self.booked_fill_ids.add(fill.fill_id)
                self.held[fill.order_id] += fill.size
            self.rec.on_our_fill(fill, self.now)
        self._apply_corrections()

    def _leg(self, trade: str, status: str) -> VenueLeg:
        return attrs.evolve(self.legs[trade], status=status)

    def _truth(self, order: str) -> int:
        return sum(leg.size for t, leg in self.legs.items() if leg.order_id == order and self.status[t] != FAILED)

    def _apply_corrections(self) -> None:
        while self.corrections:  # the executor's inbox: each correction applied once
            correction = self.corrections.pop(0)
            self.held[correction.order_id] += correction.size_delta


TestReconcileMachine = ReconcileMachine.TestCase
TestReconcileMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


def test_a_failed_leg_that_was_booked_is_reversed_at_once() -> None:
    sent: list[Correction] = []
    rec = Reconciler(emit=sent.append, ids=Ids(), timeout_ns=TIMEOUT_NS)
    leg = VenueLeg(trade_id="t1", order_id="o1", market="M", token="Y", side=Side.BUY, price=400_000,
                   size=10 * ONE, fee=720, status=MATCHED)
    rec.on_our_fill(Fill(cid="c", fill_id="f1", order_id="o1", market="M", token="Y", side=Side.BUY, price=400_000,
                         size=10 * ONE, fee=720, liquidity=Liquidity.TAKER, ts_ns=0), 0)
    rec.on_leg(leg, 1)
    assert sent == [] and rec.unsettled() == {}
    rec.on_leg(attrs.evolve(leg, status=FAILED), 2)
    assert [(c.size_delta, c.fee_delta, c.reason) for c in sent] == [(-10 * ONE, -720, "trade t1 failed")]
    rec.on_leg(attrs.evolve(leg, status=CONFIRMED), 3)  # too late: FAILED is final
    assert len(sent) == 1 and rec.counts["stale_statuses"] == 1


def test_a_fill_the_executor_refused_because_its_order_had_ended_is_adopted_at_once() -> None:
    sent: list[Correction] = []
    rec = Reconciler(emit=sent.append, ids=Ids(), timeout_ns=TIMEOUT_NS)
    leg = VenueLeg(trade_id="t1:0xo1", order_id="o1", market="M", token="Y", side=Side.BUY, price=400_000,
                   size=8 * ONE, fee=0, status=MATCHED, liquidity=Liquidity.MAKER)
    rec.on_leg(leg, 1_000)  # the venue's report; the executor has not answered yet
    assert rec.due_queries(1_000) == [] and sent == []
    rec.on_refused_fill(Fill(cid="u7", fill_id="t1:0xo1", order_id="o1", market="M", token="Y", side=Side.BUY,
                             price=400_000, size=8 * ONE, fee=0, liquidity=Liquidity.MAKER, ts_ns=1_000), 1_000)
    assert rec.due_queries(1_000) == []  # adopted, not asked about
    assert [(c.order_id, c.size_delta, c.price, c.fill_id) for c in sent] == [("o1", 8 * ONE, 400_000, "t1:0xo1")]
    assert rec.unsettled() == {}
    rec.on_refused_fill(Fill(cid="u8", fill_id="t1:0xo1", order_id="o1", market="M", token="Y", side=Side.BUY,
                             price=400_000, size=8 * ONE, fee=0, liquidity=Liquidity.MAKER, ts_ns=2_000), 2_000)
    assert rec.due_queries(2_000) == [] and len(sent) == 1  # settled: told again, nothing more

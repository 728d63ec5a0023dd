"""Reconciliation as a state machine: optimistic fills, user-channel legs in every status,
duplicates, reordering, lost answers, timeouts, venue queries and pruning in any interleaving.

Invariant when the dust settles: what the executor holds for each order equals the venue's
truth (every leg that did not fail), every trade counted once, and every difference settled by
a correction the executor received. At every step: a twin reconciler that gets the same inputs
but is never pruned has emitted exactly the same corrections."""

from __future__ import annotations

from collections import Counter

import attrs

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mmbot.decisions.reconcile import CONFIRMED, FAILED, FINAL, MATCHED, MINED, RETRYING, Reconciler, VenueLeg
from mmbot.model import ONE, Correction, Fill, Ids, Liquidity, Side

SECOND = 1_000_000_000
TIMEOUT_NS = 5 * SECOND
ORDERS = {"o1": 400_000, "o2": 550_000, "o3": 610_000}  # our resting orders (slots) -> limit price
# Longer than anything stays in flight here: between two long quiets at most 40 steps of ≤ 8 s
# pass, and a long quiet first delivers everything on its way. So a record forgotten two
# horizons after its order was last touched is truly finished (see ``a_long_quiet``).
HORIZON_NS = 1_000 * SECOND
PRUNE_COUNTS = ("pruned", "revived", "forgotten")
NEW_STATUS = "MATCHED_NOT_BROADCASTED"  # one the venue may add (NautilusTrader's adapter knows it); not ours


class ReconcileMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.corrections: list[Correction] = []  # every correction emitted, in order
        self.applied = 0  # how many of them the executor has taken from its inbox
        self.rec = Reconciler(emit=self.corrections.append, ids=Ids(), timeout_ns=TIMEOUT_NS)
        self.twin_corrections: list[Correction] = []
        self.twin = Reconciler(emit=self.twin_corrections.append, ids=Ids(), timeout_ns=TIMEOUT_NS)
        self.status: dict[str, str] = {}  # venue truth: trade id -> status
        self.legs: dict[str, VenueLeg] = {}  # trade id -> MATCHED leg
        self.messages: list[tuple[int, VenueLeg]] = []  # user-channel messages not yet delivered (epoch sent)
        self.sent: list[tuple[int, VenueLeg]] = []  # messages delivered, which the venue may repeat
        self.answers: list[Fill] = []  # our gateway's answers (optimistic fills) not yet delivered
        self.held: Counter[str] = Counter()  # what the executor holds per order
        self.booked_fill_ids: set[str] = set()
        self.ended: set[str] = set()  # orders the executor has seen end: it books no fill of them
        self.trades = 0
        self.price = dict(ORDERS)  # every order id so far -> limit price
        self.resting = {slot: slot for slot in ORDERS}  # slot -> the order resting at the venue now
        self.matched: set[str] = set()  # orders the venue matched since the last long quiet
        self.epoch = 0  # long quiets so far

    # ------------------------------------------------------------------ the venue matches

    @rule(slot=st.sampled_from(sorted(ORDERS)), shares=st.integers(1, 30), answered=st.booleans())
    def venue_matches(self, slot: str, shares: int, answered: bool) -> None:
        order = self.resting[slot]
        self.matched.add(order)
        self.trades += 1
        trade = f"t{self.trades}"
        leg = VenueLeg(trade_id=trade, order_id=order, market="M", token="Y", side=Side.BUY, price=self.price[order],
                       size=shares * ONE, fee=shares * 100, status=MATCHED)
        self.legs[trade] = leg
        self.status[trade] = MATCHED
        self.messages.append((self.epoch, leg))
        if answered:  # our own answer carries the fill; sometimes it is lost (timeout after sending)
            self.answers.append(Fill(cid=trade, fill_id=f"{trade}.f", order_id=order, market="M", token="Y",
                                     side=Side.BUY, price=self.price[order], size=shares * ONE, fee=shares * 100,
                                     liquidity=Liquidity.TAKER, ts_ns=self.now))

    @precondition(lambda self: any(s not in FINAL for s in self.status.values()))
    @rule(data=st.data(), to=st.sampled_from([MINED, CONFIRMED, RETRYING, FAILED, NEW_STATUS]))
    def venue_advances(self, data: st.DataObject, to: str) -> None:
        trade = data.draw(st.sampled_from(sorted(t for t, s in self.status.items() if s not in FINAL)))
        self.status[trade] = to
        self.messages.append((self.epoch, self._leg(trade, to)))

    # ------------------------------------------------------------------ delivery, in any order

    @precondition(lambda self: self.messages)
    @rule(data=st.data(), duplicate=st.booleans())
    def deliver_a_message(self, data: st.DataObject, duplicate: bool) -> None:
        i = data.draw(st.integers(0, len(self.messages) - 1))
        self._deliver(self.messages[i] if duplicate else self.messages.pop(i))

    @precondition(lambda self: any(epoch >= self.epoch - 1 for epoch, _ in self.sent))
    @rule(data=st.data())
    def the_venue_repeats_a_report(self, data: st.DataObject) -> None:
        """Any report sent since the long quiet before last, again (a pruned order's included)."""
        recent = [sent for sent in self.sent if sent[0] >= self.epoch - 1]
        self._deliver(data.draw(st.sampled_from(recent)))

    @precondition(lambda self: self.answers)
    @rule(data=st.data(), duplicate=st.booleans())
    def our_answer_arrives(self, data: st.DataObject, duplicate: bool) -> None:
        i = data.draw(st.integers(0, len(self.answers) - 1))
        self._executor_takes(self.answers[i] if duplicate else self.answers.pop(i))

    @rule(slot=st.sampled_from(sorted(ORDERS)))
    def the_order_ends(self, slot: str) -> None:
        """Cancelled (its cancel answered) while fills of it may still be on their way."""
        self.ended.add(self.resting[slot])

    @rule(seconds=st.integers(1, 8))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds * SECOND
        self._tick()

    @rule()
    def prune(self) -> None:
        self.rec.prune(self.now, HORIZON_NS)

    @rule(data=st.data())
    def a_long_quiet(self, data: st.DataObject) -> None:
        """A horizon passes. Every trade ends (CONFIRMED or FAILED) and everything on its way
        arrives first; an order the venue did not match since the last long quiet is gone from
        the venue (a fresh one rests in its slot)."""
        for trade in sorted(t for t, s in self.status.items() if s not in FINAL):
            self.status[trade] = data.draw(st.sampled_from([CONFIRMED, FAILED]))
            self.messages.append((self.epoch, self._leg(trade, self.status[trade])))
        while self.messages:
            self._deliver(self.messages.pop(0))
        while self.answers:
            self._executor_takes(self.answers.pop(0))
        self.epoch += 1
        for slot, order in self.resting.items():
            if order not in self.matched:
                self.resting[slot] = f"{slot}.{self.epoch}"
                self.price[self.resting[slot]] = ORDERS[slot]
        self.matched.clear()
        self.now += HORIZON_NS
        self._tick()

    # ------------------------------------------------------------------ checks

    @invariant()
    def never_holds_a_failed_trade_it_was_told_of(self) -> None:
        for order in self.price:
            assert self.held[order] >= 0

    @invariant()
    def pruning_changes_nothing(self) -> None:
        assert self.corrections == self.twin_corrections
        assert self.rec.unsettled() == self.twin.unsettled()
        assert self._counts(self.rec) == self._counts(self.twin)

    def teardown(self) -> None:
        """The dust settles: everything is delivered, time runs out, queries are answered."""
        for sent in self.messages:
            self._deliver(sent)
        for fill in self.answers:
            self._executor_takes(fill)
        for _ in range(3):
            self.now += TIMEOUT_NS
            self._tick()
        for order in self.price:
            assert self.held[order] == self._truth(order), (order, self.held[order], self._truth(order))
        assert self.rec.unsettled() == {}
        assert self.rec.counts["legs"] == len(self.legs)  # every trade counted once
        self.pruning_changes_nothing()

    # ------------------------------------------------------------------ helpers

    def _deliver(self, sent: tuple[int, VenueLeg]) -> None:
        self.sent.append(sent)
        for rec in (self.rec, self.twin):
            rec.on_leg(sent[1], self.now)
        self._apply_corrections()

    def _tick(self) -> None:
        asks = self.rec.due_queries(self.now)
        assert asks == self.twin.due_queries(self.now)
        for order in asks:
            for rec in (self.rec, self.twin):
                rec.on_order_truth(order, self._truth(order), self.price[order], self.now)
        self._apply_corrections()

    def _executor_takes(self, fill: Fill) -> None:
        """As the executor: a fill of an ended order is refused and handed over; any other is
        booked once per fill id and published."""
        if fill.order_id in self.ended:
            if fill.fill_id not in self.booked_fill_ids:
                for rec in (self.rec, self.twin):
                    rec.on_refused_fill(fill, self.now)
        else:
            if fill.fill_id not in self.booked_fill_ids:
                self.booked_fill_ids.add(fill.fill_id)
                self.held[fill.order_id] += fill.size
            for rec in (self.rec, self.twin):
                rec.on_our_fill(fill, self.now)
        self._apply_corrections()

    def _leg(self, trade: str, status: str) -> VenueLeg:
        return attrs.evolve(self.legs[trade], status=status)

    def _truth(self, order: str) -> int:
        return sum(leg.size for t, leg in self.legs.items() if leg.order_id == order and self.status[t] != FAILED)

    def _apply_corrections(self) -> None:
        while self.applied < len(self.corrections):  # the executor's inbox: each correction applied once
            correction = self.corrections[self.applied]
            self.applied += 1
            self.held[correction.order_id] += correction.size_delta

    @staticmethod
    def _counts(rec: Reconciler) -> dict[str, int]:
        return {k: v for k, v in rec.counts.items() if k not in PRUNE_COUNTS}


TestReconcileMachine = ReconcileMachine.TestCase
TestReconcileMachine.settings = settings(max_examples=500, stateful_step_count=60, deadline=None)


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


# --------------------------------------------------------------------------- statuses we do not know


def _leg(trade: str, status: str, *, order: str = "o1", size: int = 10, price: int = 400_000, fee: int = 720) -> VenueLeg:
    return VenueLeg(trade_id=trade, order_id=order, market="M", token="Y", side=Side.BUY, price=price,
                    size=size * ONE, fee=fee, status=status)


def _fill(fill_id: str, *, order: str = "o1", size: int = 10, price: int = 400_000, fee: int = 720) -> Fill:
    return Fill(cid="c", fill_id=fill_id, order_id=order, market="M", token="Y", side=Side.BUY, price=price,
                size=size * ONE, fee=fee, liquidity=Liquidity.TAKER, ts_ns=0)


def test_an_unknown_status_stands_like_matched_and_a_known_one_replaces_it() -> None:
    sent: list[Correction] = []
    rec = Reconciler(emit=sent.append, ids=Ids(), timeout_ns=TIMEOUT_NS)
    rec.on_our_fill(_fill("t1"), 0)
    rec.on_leg(_leg("t1", MATCHED), 1)
    rec.on_leg(_leg("t1", NEW_STATUS), 2)  # below MATCHED: stale, and no KeyError
    rec.on_leg(_leg("t2", NEW_STATUS), 3)  # a new trade first seen with it: it stands, to be adopted
    rec.on_leg(_leg("t2", "SOMETHING_ELSE"), 4)  # unknown over unknown: accepted, still not final
    assert rec.counts["unknown_statuses"] == 3 and rec.counts["stale_statuses"] == 1 and rec.counts["legs"] == 2
    assert rec.unsettled() == {"o1": 10 * ONE}
    assert rec.due_queries(4 + TIMEOUT_NS) == []
    assert [(c.fill_id, c.size_delta) for c in sent] == [("t2", 10 * ONE)]
    rec.on_leg(_leg("t2", FAILED), 5 + TIMEOUT_NS)  # a known status replaces it: the adopted leg is reversed
    assert [(c.fill_id, c.size_delta) for c in sent] == [("t2", 10 * ONE), ("t2", -10 * ONE)]
    assert rec.prune(10**15, 0) == 0  # t1 is still MATCHED


def test_an_order_with_an_unknown_status_is_never_pruned() -> None:
    rec = Reconciler(emit=lambda c: None, ids=Ids(), timeout_ns=TIMEOUT_NS)
    rec.on_our_fill(_fill("t1"), 0)
    rec.on_leg(_leg("t1", NEW_STATUS), 0)
    assert rec.unsettled() == {} and rec.prune(10**15, HORIZON_NS) == 0
    rec.on_leg(_leg("t1", CONFIRMED), 10**15)
    assert rec.prune(10**15 + HORIZON_NS, HORIZON_NS) == 1


# --------------------------------------------------------------------------- pruning


def _pair() -> tuple[Reconciler, list[Correction], Reconciler, list[Correction]]:
    """A reconciler to prune and its twin that never is."""
    sent: list[Correction] = []
    twin_sent: list[Correction] = []
    return (Reconciler(emit=sent.append, ids=Ids(), timeout_ns=TIMEOUT_NS), sent,
            Reconciler(emit=twin_sent.append, ids=Ids(), timeout_ns=TIMEOUT_NS), twin_sent)


def test_a_repeat_of_a_pruned_trade_is_a_duplicate_not_booked_again() -> None:
    rec, sent, _, _ = _pair()
    rec.on_our_fill(_fill("t1.f"), 0)
    rec.on_leg(_leg("t1", MATCHED), 0)
    rec.on_leg(_leg("t1", CONFIRMED), 1)
    assert rec.prune(HORIZON_NS, HORIZON_NS) == 0  # final for a horizon less a nanosecond
    assert rec.prune(HORIZON_NS + 1, HORIZON_NS) == 1
    assert rec.sizes() == {"orders": 0, "pruned": 1, "fill_ids": 1}
    later = HORIZON_NS + 60 * SECOND
    rec.on_leg(_leg("t1", MATCHED), later)  # the venue says it again, late and stale
    rec.on_leg(_leg("t1", CONFIRMED), later)
    rec.on_our_fill(_fill("t1.f"), later)
    for tick in range(3):
        assert rec.due_queries(later + tick * TIMEOUT_NS) == []
    assert sent == [] and rec.unsettled() == {}
    assert (rec.counts["stale_statuses"], rec.counts["duplicates"], rec.counts["revived"]) == (1, 2, 0)
    assert rec.prune(2 * HORIZON_NS, HORIZON_NS) == 0  # the record goes a horizon after pruning
    assert rec.sizes() == {"orders": 0, "pruned": 1, "fill_ids": 1}
    assert rec.prune(2 * HORIZON_NS + 1, HORIZON_NS) == 0
    assert rec.sizes() == {"orders": 0, "pruned": 0, "fill_ids": 0} and rec.counts["forgotten"] == 1


def test_a_report_restarts_the_quiet_time_of_a_settled_order() -> None:
    rec, _, _, _ = _pair()
    rec.on_our_fill(_fill("t1.f"), 0)
    rec.on_leg(_leg("t1", CONFIRMED), 0)
    rec.on_leg(_leg("t2", FAILED), HORIZON_NS // 2)  # a trade of it failed before we booked it: nothing to book
    assert rec.unsettled() == {}
    assert rec.prune(HORIZON_NS, HORIZON_NS) == 0
    assert rec.prune(HORIZON_NS // 2 + HORIZON_NS, HORIZON_NS) == 1


def test_a_pruned_order_comes_back_exactly_as_its_never_pruned_twin() -> None:
    """New trades of a pruned order, a query whose answer counts trades never reported (priced at
    the order's price, not at the pruned legs'), and two orders due in the same tick."""
    rec, sent, twin, twin_sent = _pair()
    both = (rec, twin)
    for r in both:
        r.on_our_fill(_fill("t1.f", size=10, price=390_000, fee=700), 0)  # a maker leg below our limit
        r.on_leg(_leg("t1", CONFIRMED, size=10, price=390_000, fee=700), 0)
        r.on_our_fill(_fill("t9.f", order="o2", size=4), 0)
        r.on_leg(_leg("t9", CONFIRMED, order="o2", size=4), 0)
    assert rec.prune(HORIZON_NS, HORIZON_NS) == 2
    now = HORIZON_NS + SECOND
    for r in both:
        r.on_our_fill(_fill("t2.f", size=5), now)  # o1 again: booked 5 more, reported with t2
        r.on_our_fill(_fill("t3.f", size=5), now)  # and 5 more the venue has not reported
        r.on_leg(_leg("t2", MATCHED, size=5), now)
        r.on_our_fill(_fill("t8.f", order="o2", size=4), now)  # o2 again, never reported
    assert rec.counts["revived"] == 2
    asks = rec.due_queries(now + TIMEOUT_NS)
    assert asks == twin.due_queries(now + TIMEOUT_NS) == ["o1", "o2"]
    for r in both:  # the venue matched 30 of o1 (a trade of 10 not reported yet) and only the first 4 of o2
        r.on_order_truth("o1", 30 * ONE, 400_000, now + TIMEOUT_NS)
        r.on_order_truth("o2", 4 * ONE, 400_000, now + TIMEOUT_NS)
    assert sent == twin_sent
    assert [(c.order_id, c.fill_id, c.size_delta, c.price, c.fee_delta) for c in sent] == [
        ("o1", "", 10 * ONE, 400_000, 0),  # matched beyond every reported leg: at the order's price
        ("o2", "", -4 * ONE, 400_000, -1440 * 4 // 8),  # booked beyond the venue: backed out at the average
    ]
    assert rec.unsettled() == twin.unsettled() == {"o1": -15 * ONE}  # until the venue reports t3 and the 10

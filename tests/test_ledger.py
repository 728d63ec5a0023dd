"""Ledger: rounding directions, protocol errors, and a rule-based state machine with a reference model."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mmbot.decisions.ledger import (
    INSUFFICIENT_CASH,
    INSUFFICIENT_SHARES,
    InsufficientFunds,
    Ledger,
    LedgerInvariantError,
    Position,
)
from mmbot.model import ONE, Side, notional, notional_down

BUY, SELL = Side.BUY, Side.SELL


def _state(ledger: Ledger) -> dict:
    return copy.deepcopy(vars(ledger))


# --------------------------------------------------------------------------- rounding


def test_a_buyers_cost_rounds_up_and_a_sellers_proceeds_round_down() -> None:
    ledger = Ledger(cash=10 * ONE)
    # 0.333333 × 3 micro-shares = 0.999999 micro-pUSD: the buyer pays 1, the seller gets 0
    ledger.apply_fill("b", token="T", side=BUY, price=333_333, size=3, fee=0)
    assert ledger.cash == 10 * ONE - 1
    ledger.apply_fill("s", token="T", side=SELL, price=333_333, size=3, fee=0)
    assert ledger.cash == 10 * ONE - 1
    assert ledger.realised == -1
    ledger.check()


def test_average_cost_of_a_partial_sale_rounds_down_and_the_rest_leaves_with_the_last_share() -> None:
    ledger = Ledger(cash=10 * ONE)
    ledger.apply_fill("b", token="T", side=BUY, price=333_334, size=3, fee=0)
    cost = notional(333_334, 3)  # 1.000002 micro-pUSD, rounded up to 2
    assert ledger.holding("T") == Position(shares=3, cost=cost)
    ledger.apply_fill("s1", token="T", side=SELL, price=ONE // 2, size=1, fee=0)
    assert ledger.holding("T").cost == cost - cost * 1 // 3
    ledger.apply_fill("s2", token="T", side=SELL, price=ONE // 2, size=2, fee=0)
    assert ledger.holding("T") == Position(shares=0, cost=0)
    assert ledger.realised == notional_down(ONE // 2, 1) + notional_down(ONE // 2, 2) - cost
    ledger.check()


def test_unrealised_marks_round_down() -> None:
    ledger = Ledger(cash=ONE)
    ledger.apply_fill("b", token="T", side=BUY, price=500_000, size=3, fee=0)  # cost 1.5 -> 2 micro
    assert ledger.unrealised({"T": 333_333}) == notional_down(333_333, 3) - 2 == -2
    assert ledger.unrealised({}) == 0


# --------------------------------------------------------------------------- reservations and fills


def test_failed_reservations_name_the_reason_and_change_nothing() -> None:
    ledger = Ledger(cash=100)
    ledger.reserve_buy("a", 60)
    before = _state(ledger)
    with pytest.raises(InsufficientFunds) as cash_error:
        ledger.reserve_buy("b", 41)
    assert cash_error.value.reason == INSUFFICIENT_CASH
    with pytest.raises(InsufficientFunds) as shares_error:
        ledger.reserve_sell("c", "T", 1)
    assert shares_error.value.reason == INSUFFICIENT_SHARES
    assert _state(ledger) == before
    ledger.reserve_buy("b", 40)  # exactly what is available
    assert ledger.available_cash() == 0


def test_a_buy_fill_consumes_its_reservation_then_available_cash() -> None:
    ledger = Ledger(cash=10 * ONE)
    ledger.reserve_buy("o", 5 * ONE)
    ledger.apply_fill("o", token="T", side=BUY, price=500_000, size=12 * ONE, fee=20_000)
    assert ledger.reservation("o") == 0
    assert ledger.cash == 10 * ONE - 6 * ONE - 20_000
    assert ledger.reserved_cash == 0
    assert ledger.holding("T") == Position(shares=12 * ONE, cost=6 * ONE + 20_000)
    assert ledger.fees_paid == 20_000
    assert ledger.release("o") == 0
    ledger.check()


def test_a_buy_fill_the_reservation_and_available_cash_cannot_cover_raises_unchanged() -> None:
    ledger = Ledger(cash=10 * ONE)
    ledger.reserve_buy("o", 5 * ONE)
    ledger.reserve_buy("other", 4 * ONE)
    before = _state(ledger)
    with pytest.raises(LedgerInvariantError):
        ledger.apply_fill("o", token="T", side=BUY, price=ONE // 2, size=12 * ONE + 2, fee=0)
    assert _state(ledger) == before


def test_a_sell_fill_consumes_its_share_reservation_and_realises_against_average_cost() -> None:
    ledger = Ledger(cash=10 * ONE)
    ledger.apply_fill("b1", token="T", side=BUY, price=400_000, size=10 * ONE, fee=0)
    ledger.apply_fill("b2", token="T", side=BUY, price=600_000, size=10 * ONE, fee=0)
    ledger.reserve_sell("s", "T", 5 * ONE)
    assert ledger.available_shares("T") == 15 * ONE
    ledger.apply_fill("s", token="T", side=SELL, price=700_000, size=5 * ONE, fee=10_000)
    assert ledger.available_shares("T") == 15 * ONE
    assert ledger.reservation("s") == 0
    assert ledger.realised == 3_500_000 - 10_000 - 2_500_000
    assert ledger.cash == 10 * ONE - 10 * ONE + 3_500_000 - 10_000
    ledger.check()


def test_fills_against_the_other_kind_of_reservation_are_bugs() -> None:
    ledger = Ledger(cash=10 * ONE)
    ledger.reserve_buy("b", ONE)
    ledger.apply_fill("x", token="T", side=BUY, price=ONE // 2, size=2 * ONE, fee=0)
    ledger.reserve_sell("s", "T", ONE)
    with pytest.raises(LedgerInvariantError):
        ledger.apply_fill("b", token="T", side=SELL, price=ONE // 2, size=ONE, fee=0)
    with pytest.raises(LedgerInvariantError):
        ledger.apply_fill("s", token="T", side=BUY, price=ONE // 2, size=ONE, fee=0)
    with pytest.raises(LedgerInvariantError):
        ledger.apply_fill("s", token="U", side=SELL, price=ONE // 2, size=ONE, fee=0)
    with pytest.raises(LedgerInvariantError):
        ledger.reserve_buy("s", 1)


def test_release_returns_what_is_left_once() -> None:
    ledger = Ledger(cash=10 * ONE)
    ledger.reserve_buy("o", 3 * ONE)
    ledger.apply_fill("o", token="T", side=BUY, price=ONE // 2, size=2 * ONE, fee=0)
    assert ledger.release("o") == 2 * ONE
    assert ledger.release("o") == 0
    assert ledger.release("never-seen") == 0
    assert ledger.available_cash() == 9 * ONE
    ledger.reserve_sell("s", "T", ONE)
    assert ledger.release("s") == ONE
    assert ledger.available_shares("T") == 2 * ONE
    ledger.check()


# --------------------------------------------------------------------------- complete sets, resolution, corrections


def test_merge_pays_one_per_set_and_realises_against_both_legs() -> None:
    ledger = Ledger(cash=20 * ONE)
    ledger.apply_fill("y", token="Y", side=BUY, price=400_000, size=10 * ONE, fee=0)
    ledger.apply_fill("n", token="N", side=BUY, price=500_000, size=10 * ONE, fee=0)
    ledger.merge("Y", "N", 10 * ONE)
    assert ledger.cash == 20 * ONE - 9 * ONE + 10 * ONE
    assert ledger.realised == ONE
    assert ledger.position("Y") == ledger.position("N") == 0
    ledger.check()


def test_merge_of_reserved_shares_is_refused_unchanged() -> None:
    ledger = Ledger(cash=20 * ONE)
    ledger.split("Y", "N", 10 * ONE)
    ledger.reserve_sell("s", "N", 5 * ONE)
    before = _state(ledger)
    with pytest.raises(InsufficientFunds) as error:
        ledger.merge("Y", "N", 6 * ONE)
    assert error.value.reason == INSUFFICIENT_SHARES
    assert _state(ledger) == before
    ledger.merge("Y", "N", 5 * ONE)
    ledger.check()


def test_split_shares_its_cost_equally_between_the_tokens() -> None:
    ledger = Ledger(cash=20 * ONE)
    ledger.split("Y", "N", 3)
    assert ledger.holding("Y") == Position(shares=3, cost=2)
    assert ledger.holding("N") == Position(shares=3, cost=1)
    assert ledger.cash == 20 * ONE - 3 and ledger.realised == 0
    ledger.check()


def test_resolve_pays_winning_shares_and_writes_off_losing_ones() -> None:
    ledger = Ledger(cash=20 * ONE)
    ledger.apply_fill("y", token="Y", side=BUY, price=300_000, size=10 * ONE, fee=0)
    ledger.apply_fill("n", token="N", side=BUY, price=600_000, size=5 * ONE, fee=0)
    assert ledger.resolve("Y", "N") == 10 * ONE
    assert ledger.realised == 10 * ONE - 3 * ONE - 3 * ONE
    assert ledger.cash == 20 * ONE + ledger.realised
    assert ledger.positions() == {}
    ledger.check()


def test_resolve_releases_what_open_sells_on_the_market_still_reserve() -> None:
    ledger = Ledger(cash=20 * ONE)
    ledger.split("Y", "N", ONE)
    ledger.split("Z", "W", ONE)
    ledger.reserve_sell("s", "N", ONE)
    ledger.reserve_sell("other", "Z", ONE)
    assert ledger.resolve("Y", "N") == ONE
    assert ledger.reservation("s") == 0 and ledger.release("s") == 0
    assert ledger.reservation("other") == ONE
    ledger.check()


def test_reversing_a_buy_restores_cash_and_position() -> None:
    ledger = Ledger(cash=20 * ONE)
    ledger.apply_fill("a", token="T", side=BUY, price=400_000, size=10 * ONE, fee=0)
    ledger.apply_fill("b", token="T", side=BUY, price=600_000, size=10 * ONE, fee=30_000)
    ledger.adjust(token="T", side=BUY, price=600_000, size_delta=-10 * ONE, fee_delta=-30_000)
    assert ledger.cash == 16 * ONE
    assert ledger.holding("T") == Position(shares=10 * ONE, cost=4 * ONE)
    assert ledger.realised == 0 and ledger.fees_paid == 0
    ledger.check()


def test_reversing_a_sell_takes_the_proceeds_back_and_returns_the_shares() -> None:
    ledger = Ledger(cash=20 * ONE)
    ledger.apply_fill("a", token="T", side=BUY, price=400_000, size=10 * ONE, fee=0)
    ledger.apply_fill("s", token="T", side=SELL, price=700_000, size=10 * ONE, fee=0)
    ledger.adjust(token="T", side=SELL, price=700_000, size_delta=-10 * ONE, fee_delta=0)
    assert ledger.cash == 16 * ONE
    assert ledger.position("T") == 10 * ONE
    assert ledger.realised + ledger.unrealised({"T": 400_000}) == 0  # total PnL is exact again
    ledger.check()


def test_a_reversed_buy_takes_back_shares_held_for_a_merge_or_a_sell() -> None:
    """Found by the deposit-wallet soak: the venue failed a trade whose shares the ledger had since
    held for a merge; the correction found them reserved, raised, and the decision task dropped it,
    leaving the ledger 20 shares and 9 pUSD off the venue for good. The venue is right: the holds
    shrink (latest first), and the correction is booked."""
    ledger = Ledger(cash=20 * ONE)
    ledger.apply_fill("a", token="T", side=BUY, price=450_000, size=20 * ONE, fee=0)
    ledger.reserve_sell("sell", "T", 5 * ONE)
    ledger.reserve_sell("merge:i1:0", "T", 12 * ONE)
    ledger.adjust(token="T", side=BUY, price=450_000, size_delta=-18 * ONE, fee_delta=0)
    assert ledger.position("T") == 2 * ONE and ledger.cash == 20 * ONE - 9 * ONE + 8_100_000
    assert ledger.reservation("merge:i1:0") == 0 and ledger.reservation("sell") == 2 * ONE
    assert ledger.available_shares("T") == 0
    ledger.check()
    with pytest.raises(LedgerInvariantError, match="only 2000000 held"):  # more than the position: a bug
        ledger.adjust(token="T", side=BUY, price=450_000, size_delta=-3 * ONE, fee_delta=0)


def test_adopted_positions_and_snapshot_are_json_native() -> None:
    ledger = Ledger(cash=5 * ONE)
    ledger.adopt_position("T", 10 * ONE, 4 * ONE)
    ledger.reserve_sell("s", "T", ONE)
    ledger.apply_fill("b", token="A", side=BUY, price=ONE // 2, size=2 * ONE, fee=0)
    assert ledger.tokens() == ["A", "T"] and ledger.cost_basis() == 5 * ONE
    ledger.adjust(token="A", side=BUY, price=ONE // 2, size_delta=-2 * ONE, fee_delta=0)
    ledger.check()
    snap = ledger.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert snap == {
        "cash": 5 * ONE, "reserved_cash": 0, "positions": {"T": 10 * ONE}, "cost_basis": {"T": 4 * ONE},
        "reserved_shares": {"T": ONE}, "realised": 0, "fees": 0,
    }


# --------------------------------------------------------------------------- the state machine

MARKETS = (("A_yes", "A_no"), ("B_yes", "B_no"))
TOKENS = tuple(t for pair in MARKETS for t in pair)
MARKS = {token: 500_000 for token in TOKENS}
prices = st.integers(1, ONE - 1)
fees = st.integers(0, 50_000)


class LedgerMachine(RuleBasedStateMachine):
    """Drives a Ledger beside a plain reference model of cash flows, holdings and reservations."""

    @initialize(cash=st.integers(ONE, 200 * ONE))
    def start(self, cash: int) -> None:
        self.ledger = Ledger(cash=cash)
        self.initial = cash
        self.buy_costs = self.fees = self.sell_proceeds = self.merged = self.payouts = 0
        self.splits = self.corrections = 0
        self.shares = {token: 0 for token in TOKENS}
        self.traded: set[str] = set()
        self.buy_res: dict[str, int] = {}
        self.sell_res: dict[str, tuple[str, int]] = {}
        self.ended: list[str] = []
        self.next_id = 0

    # ---- reference helpers

    def _new_id(self) -> str:
        self.next_id += 1
        return f"o{self.next_id}"

    def _held(self) -> list[str]:
        return [token for token in TOKENS if self.shares[token]]

    def _available_cash(self) -> int:
        return self._cash() - sum(self.buy_res.values())

    def _available_shares(self, token: str) -> int:
        return self.shares[token] - sum(n for t, n in self.sell_res.values() if t == token)

    def _cash(self) -> int:
        return (
            self.initial - self.buy_costs - self.fees + self.sell_proceeds + self.merged
            + self.payouts - self.splits + self.corrections
        )

    @staticmethod
    def _size(data: st.DataObject, limit: int) -> int:
        """A size within ``limit`` three times out of four, else up to one share beyond it."""
        limit = max(limit, 0)
        within = st.integers(1, limit) if limit >= 1 else st.just(1)
        return data.draw(st.one_of(within, within, within, st.integers(limit + 1, limit + ONE)))

    def _refused(self, error: type[Exception], call, *args, **kwargs) -> Exception:
        before = _state(self.ledger)
        with pytest.raises(error) as caught:
            call(*args, **kwargs)
        assert _state(self.ledger) == before
        return caught.value

    # ---- rules

    @rule(data=st.data())
    def reserve_buy(self, data: st.DataObject) -> None:
        order_id = self._new_id()
        amount = self._size(data, self._available_cash() // 2)  # leave some for adopted fills
        if amount > self._available_cash():
            error = self._refused(InsufficientFunds, self.ledger.reserve_buy, order_id, amount)
            assert error.reason == INSUFFICIENT_CASH
            return
        self.ledger.reserve_buy(order_id, amount)
        self.buy_res[order_id] = amount

    @precondition(lambda self: any(self.shares.values()))
    @rule(data=st.data())
    def reserve_sell(self, data: st.DataObject) -> None:
        order_id = self._new_id()
        token = data.draw(st.sampled_from(self._held()))
        shares = self._size(data, self._available_shares(token))
        if shares > self._available_shares(token):
            error = self._refused(InsufficientFunds, self.ledger.reserve_sell, order_id, token, shares)
            assert error.reason == INSUFFICIENT_SHARES
            return
        self.ledger.reserve_sell(order_id, token, shares)
        self.sell_res[order_id] = (token, shares)

    @precondition(lambda self: self._available_cash() > 0 or self.buy_res)
    @rule(data=st.data(), token=st.sampled_from(TOKENS), price=prices, fee=fees, adopted=st.booleans())
    def fill_buy(self, data: st.DataObject, token: str, price: int, fee: int, adopted: bool) -> None:
        if (adopted and self._available_cash() > 0) or not self.buy_res:
            order_id, reserved = "adopted", 0
        else:
            order_id = data.draw(st.sampled_from(sorted(self.buy_res)))
            reserved = self.buy_res[order_id]
        size = self._size(data, (reserved + self._available_cash() - fee) * ONE // price)
        spend = notional(price, size) + fee
        taken = min(reserved, spend)
        fill = dict(token=token, side=BUY, price=price, size=size, fee=fee)
        if spend - taken > self._available_cash():
            self._refused(LedgerInvariantError, self.ledger.apply_fill, order_id, **fill)
            return
        self.ledger.apply_fill(order_id, **fill)
        if order_id in self.buy_res:
            self.buy_res[order_id] -= taken
        self.buy_costs += notional(price, size)
        self.fees += fee
        self.shares[token] += size
        self.traded.add(token)

    @precondition(lambda self: any(self.shares.values()))
    @rule(data=st.data(), price=prices, fee=fees)
    def fill_sell(self, data: st.DataObject, price: int, fee: int) -> None:
        unreserved = [token for token in TOKENS if self._available_shares(token) > 0]
        if self.sell_res and (not unreserved or data.draw(st.booleans())):
            order_id = data.draw(st.sampled_from(sorted(self.sell_res)))
            token, reserved = self.sell_res[order_id]
        else:
            order_id, token, reserved = "adopted", data.draw(st.sampled_from(unreserved or TOKENS)), 0
        size = self._size(data, reserved + self._available_shares(token))
        taken = min(reserved, size)
        net = notional_down(price, size) - fee
        fill = dict(token=token, side=SELL, price=price, size=size, fee=fee)
        if size - taken > self._available_shares(token) or self._available_cash() + net < 0:
            self._refused(LedgerInvariantError, self.ledger.apply_fill, order_id, **fill)
            return
        self.ledger.apply_fill(order_id, **fill)
        if order_id in self.sell_res:
            self.sell_res[order_id] = (token, reserved - taken)
        self.sell_proceeds += notional_down(price, size)
        self.fees += fee
        self.shares[token] -= size
        self.traded.add(token)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        known = sorted(self.buy_res) + sorted(self.sell_res) + self.ended
        if not known:
            return
        order_id = data.draw(st.sampled_from(known))
        if order_id in self.buy_res:
            expected = self.buy_res.pop(order_id)
        elif order_id in self.sell_res:
            expected = self.sell_res.pop(order_id)[1]
        else:
            expected = 0  # released before: idempotent
        assert self.ledger.release(order_id) == expected
        self.ended.append(order_id)

    @precondition(lambda self: any(self.shares.values()))
    @rule(data=st.data(), market=st.sampled_from(MARKETS))
    def merge(self, data: st.DataObject, market: tuple[str, str]) -> None:
        size = self._size(data, min(self._available_shares(t) for t in market))
        if size > min(self._available_shares(t) for t in market):
            error = self._refused(InsufficientFunds, self.ledger.merge, *market, size)
            assert error.reason == INSUFFICIENT_SHARES
            return
        self.ledger.merge(*market, size)
        self.merged += size
        for token in market:
            self.shares[token] -= size

    @rule(data=st.data(), market=st.sampled_from(MARKETS))
    def split(self, data: st.DataObject, market: tuple[str, str]) -> None:
        size = self._size(data, self._available_cash() // 2)
        if size > self._available_cash():
            error = self._refused(InsufficientFunds, self.ledger.split, *market, size)
            assert error.reason == INSUFFICIENT_CASH
            return
        self.ledger.split(*market, size)
        self.splits += size
        for token in market:
            self.shares[token] += size
            self.traded.add(token)

    @precondition(lambda self: any(self.shares.values()))
    @rule(market=st.sampled_from(MARKETS), winner=st.integers(0, 1))
    def resolve(self, market: tuple[str, str], winner: int) -> None:
        for order_id, (token, _) in sorted(self.sell_res.items()):
            if token in market:  # resolution frees what the market's sells still reserve
                del self.sell_res[order_id]
                self.ended.append(order_id)
        winning, losing = market[winner], market[1 - winner]
        assert self.ledger.resolve(winning, losing) == self.shares[winning]
        self.payouts += self.shares[winning]
        self.shares[winning] = self.shares[losing] = 0

    @rule(
        data=st.data(), token=st.sampled_from(TOKENS), side=st.sampled_from([BUY, SELL]), price=prices,
        adds_shares=st.booleans(), fee_delta=st.integers(-20_000, 20_000),
    )
    def adjust(
        self, data: st.DataObject, token: str, side: Side, price: int, adds_shares: bool, fee_delta: int
    ) -> None:
        room = self._available_cash() * ONE // price if adds_shares else self.shares[token]
        shares_in = self._size(data, room // 2) * (1 if adds_shares else -1)
        if data.draw(st.integers(0, 9)) == 0:
            shares_in = 0  # a fee-only correction
        size_delta = shares_in if side is BUY else -shares_in
        if side is BUY:
            shares_out = -size_delta
            traded = notional(price, abs(size_delta))
            cash_delta = (-traded if size_delta >= 0 else traded) - fee_delta
        else:
            shares_out = size_delta
            traded = notional_down(price, abs(size_delta))
            cash_delta = (traded if size_delta >= 0 else -traded) - fee_delta
        correction = dict(token=token, side=side, price=price, size_delta=size_delta, fee_delta=fee_delta)
        if shares_out > self.shares[token] or self._available_cash() + cash_delta < 0:
            self._refused(LedgerInvariantError, self.ledger.adjust, **correction)
            return
        self.ledger.adjust(**correction)
        # the venue took back reserved shares: the reservations shrink, latest first
        short = shares_out - self._available_shares(token)
        for order_id in reversed([o for o, (t, _) in self.sell_res.items() if t == token]):
            if short <= 0:
                break
            taken = min(short, self.sell_res[order_id][1])
            self.sell_res[order_id] = (token, self.sell_res[order_id][1] - taken)
            short -= taken
        self.corrections += cash_delta + fee_delta
        self.fees += fee_delta
        self.shares[token] -= shares_out
        self.traded.add(token)

    # ---- invariants

    @invariant()
    def books_balance(self) -> None:
        self.ledger.check()

    @invariant()
    def cash_is_the_sum_of_its_flows(self) -> None:
        assert self.ledger.cash == self._cash()
        assert self.ledger.fees_paid == self.fees

    @invariant()
    def reservations_match_and_are_never_negative(self) -> None:
        assert self.ledger.reserved_cash == sum(self.buy_res.values())
        for order_id, amount in self.buy_res.items():
            assert self.ledger.reservation(order_id) == amount >= 0
        for order_id, (_, shares) in self.sell_res.items():
            assert self.ledger.reservation(order_id) == shares >= 0
        for order_id in self.ended:
            assert self.ledger.reservation(order_id) == 0

    @invariant()
    def holdings_match_and_come_only_from_trades(self) -> None:
        assert {t: p.shares for t, p in self.ledger.positions().items()} == {
            t: n for t, n in self.shares.items() if n
        }
        assert set(self.ledger.positions()) <= self.traded
        for token in TOKENS:
            assert self.ledger.available_shares(token) == self._available_shares(token)

    @invariant()
    def total_pnl_is_cash_and_marked_holdings_less_what_came_in(self) -> None:
        marked = sum(notional_down(MARKS[t], n) for t, n in self.shares.items())
        assert self.ledger.realised + self.ledger.unrealised(MARKS) == self.ledger.cash + marked - self.initial


LedgerMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
test_ledger_state_machine = LedgerMachine.TestCase

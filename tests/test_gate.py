"""The trading gate as a state machine: open exactly when the user channel's current connection is
up and a catch-up that began while it was up has finished — over any interleaving of connections
coming and going, catch-ups starting and ending (a catch-up may outlive its connection), and the
heartbeats failing and recovering."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mmbot.venues.polymarket.gate import TradingGateState


class GateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.gate = TradingGateState()
        self.connection = 0
        self.up = False
        self.running: list[int] = []  # catch-ups under way, by the connection they began under (0: down)
        self.covered: set[int] = set()  # connections a finished catch-up vouches for
        self.beating = True

    @precondition(lambda self: not self.up)
    @rule()
    def connect(self) -> None:
        self.connection += 1
        self.up = True
        self.gate.on_up(self.connection)

    @precondition(lambda self: self.up)
    @rule()
    def disconnect(self) -> None:
        self.up = False
        self.gate.on_down()

    @rule()
    def begin_catch_up(self) -> None:
        self.running.append(self.connection if self.up else 0)

    @precondition(lambda self: self.running)
    @rule(which=st.integers(min_value=0, max_value=10))
    def finish_catch_up(self, which: int) -> None:
        began_under = self.running.pop(which % len(self.running))
        self.gate.on_caught_up(began_under)
        self.covered.add(began_under)

    @rule(ok=st.booleans())
    def heartbeats(self, ok: bool) -> None:
        self.beating = ok
        self.gate.on_heartbeats(ok)

    @invariant()
    def open_exactly_when_connected_caught_up_and_beating(self) -> None:
        expected = self.up and self.connection in self.covered and self.beating
        assert self.gate.open is expected
        assert (self.gate.why_closed() == "") is expected


TestGate = GateMachine.TestCase


def test_the_gate_starts_closed_and_numbers_only_grow() -> None:
    gate = TradingGateState()
    assert not gate.open and gate.why_closed() == "the user channel has not connected yet"
    gate.on_up(1)
    assert not gate.open and "catching up" in gate.why_closed()
    gate.on_caught_up(0)  # a catch-up that began while down vouches for no connection
    assert not gate.open
    gate.on_caught_up(1)
    assert gate.open
    gate.on_down()
    assert not gate.open and gate.why_closed() == "the user channel is down"
    with pytest.raises(ValueError):
        gate.on_up(1)

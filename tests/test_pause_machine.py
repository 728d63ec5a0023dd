"""The decision loop's gates as a state machine (hypothesis): the venue's trading gate, the
operator's pause and a halt, in any order, with book updates arriving meanwhile. Strategies see a
book update only while the gate is open, the operator has not paused and the run is not halted;
what arrived while they could not act is given to them once they can — the latest update of each
token, once — and nothing is given after a halt."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mmbot.decisions.tasks import DecisionLoop
from mmbot.facts.bus import Doorbell, LatestSlots, Stream
from mmbot.model import BookState, BookUpdate, OperatorPause, TradingGate

TOKENS = ("t1", "t2", "t3")


class _View:
    def equity(self) -> int:
        return 0


class _Executor:
    """What the loop asks of the executor about its gates; the real one's rules (executor.py)."""

    def __init__(self) -> None:
        self.gate_open = True
        self.paused = False
        self.view = _View()
        self.cancels = 0

    @property
    def quoting(self) -> bool:
        return self.gate_open and not self.paused

    def handle(self, msg: object) -> None:
        if isinstance(msg, TradingGate):
            self.gate_open = msg.open
        elif isinstance(msg, OperatorPause):
            self.paused = msg.paused

    def cancel_all(self, cid: str, reason: str, market: str | None = None) -> int:
        self.cancels += 1
        return 0


class _Strategies:
    def __init__(self) -> None:
        self.seen: list[BookUpdate] = []

    def on_book(self, update: BookUpdate, view: object) -> list:
        self.seen.append(update)
        return []

    def on_fill(self, fill: object, view: object) -> list:
        return []


class GateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        bell = Doorbell()
        self.inbox: Stream = Stream(bell)
        self.slots: LatestSlots = LatestSlots(bell)
        self.executor = _Executor()
        self.strategies = _Strategies()
        self.loop = DecisionLoop(inbox=self.inbox, slots=self.slots, executor=self.executor,  # type: ignore[arg-type]
                                 strategies=self.strategies)  # type: ignore[arg-type]
        self.count = 0
        self.latest: dict[str, BookUpdate] = {}  # the newest update of each token not yet seen
        self.gate_open, self.paused, self.halted = True, False, False

    def _can_act(self) -> bool:
        return self.gate_open and not self.paused and not self.halted

    def _step(self) -> None:
        before = len(self.strategies.seen)
        self.loop.step()
        given = self.strategies.seen[before:]
        if not self._can_act():
            assert given == []
            return
        # everything held (and just arrived) is given now: the latest of each token, once
        assert sorted(u.cid for u in given) == sorted(u.cid for u in self.latest.values())
        self.latest.clear()

    @rule(token=st.sampled_from(TOKENS))
    def book(self, token: str) -> None:
        self.count += 1
        update = BookUpdate(cid=f"f{self.count}", recv_ns=self.count, market="m", token=token,
                            state=BookState.SYNCED, best_bid=400_000, best_ask=600_000)
        self.slots.put(token, update)
        if not self.halted:
            self.latest[token] = update
        self._step()

    @rule(open_=st.booleans())
    def gate(self, open_: bool) -> None:
        self.inbox.send(TradingGate(cid="g", open=open_, reason="test"))
        self.gate_open = open_
        self._step()

    @rule(paused=st.booleans())
    def operator(self, paused: bool) -> None:
        self.inbox.send(OperatorPause(cid="op", paused=paused, reason="test"))
        self.paused = paused
        self._step()

    @rule()
    def halt(self) -> None:
        self.loop.halt("h", "test")
        self.halted = True
        self.latest.clear()
        self._step()

    @invariant()
    def nothing_after_a_halt_and_nothing_twice(self) -> None:
        cids = [u.cid for u in self.strategies.seen]
        assert len(cids) == len(set(cids))


TestGateMachine = GateMachine.TestCase

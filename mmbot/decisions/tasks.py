"""The decision task: the one Trio task that drives the executor (the only trio import in decisions/).

It sleeps on a single doorbell shared by the executor's inbox and the book slots, and on each
wake-up handles, in this fixed order: everything in the inbox (venue responses, corrections,
lifecycle and operator messages), then every pending book update through the strategies. Strategy
intents go straight to the executor in the same task — no extra hop (DESIGN §13).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterable

import trio

from mmbot.decisions.executor import Executor
from mmbot.decisions.strategy import Strategies
from mmbot.model import BookUpdate, Fill, MarketClosing, MarketResolved, NewMarket, OperatorCancelAll, OperatorPause, TradingGate


class DecisionLoop:
    def __init__(self, *, inbox: Any, slots: Any, executor: Executor, strategies: Strategies) -> None:
        # inbox: facts.bus.Stream, slots: facts.bus.LatestSlots, sharing one doorbell
        if inbox.doorbell is not slots.doorbell:
            raise ValueError("the inbox and the book slots must share one doorbell")
        self._inbox = inbox
        self._slots = slots
        self._executor = executor
        self._strategies = strategies
        self._backlog: deque[Any] = deque()
        self._updates: deque[BookUpdate] = deque()
        self.book_updates = 0
        self.halted = False
        # While the trading gate is closed (or the operator paused) strategies rest; the latest update of each token seen
        # meanwhile is replayed to them when it opens (at most one per token: bounded).
        self._held: dict[str, BookUpdate] = {}
        self._parked = False  # the decision task is waiting on its doorbell, healthy
        self._crashed: Exception | None = None  # raised by an inline step, for the task to raise

    def step_inline(self) -> bool:
        """Replay's way to decide on a frame: ``step()`` in the caller's task, at once, instead of
        waiting for the decision task to be scheduled (one decision path, two callers).

        Only while the decision task is parked on its doorbell: while it is down (restarting
        after a crash) nothing is stepped and False is returned, so the caller lets Trio run
        instead, as without this. A crash here is kept for the task, which raises it where its
        supervisor sees it (restart, breaker); False is returned then too.
        """
        if not self._parked or self._crashed is not None:
            return False
        try:
            self.step()
        except Exception as exc:
            self._crashed = exc
            self._inbox.doorbell.ring()
            return False
        return True

    def step(self) -> int:
        """Handle everything pending now; returns how many messages were handled.

        Messages are taken one at a time from a backlog, so if handling one raises (a bug: the
        supervisor restarts the task) the ones after it are still there for the restarted loop;
        the message that raised is not retried.
        """
        handled = 0
        executor = self._executor
        backlog = self._backlog
        backlog.extend(self._inbox.drain())
        while backlog:
            msg = backlog.popleft()
            handled += 1
            if isinstance(msg, MarketResolved):
                msg = MarketClosing(cid=msg.cid, market=msg.market, winning_token=msg.winning_token)
            elif isinstance(msg, NewMarket):
                continue  # the markets registry learnt it already; nothing to decide
            elif isinstance(msg, OperatorCancelAll):
                executor.cancel_all(msg.cid, f"cancelled by the operator: {msg.reason}")
                continue
            executor.handle(msg)
            if isinstance(msg, (TradingGate, OperatorPause)) and executor.quoting and self._held:
                updates_held = list(self._held.values())
                self._held.clear()
                self._updates.extend(updates_held)
            if isinstance(msg, Fill) and not self.halted and executor.quoting:
                for intent in self._strategies.on_fill(msg, executor.view):
                    executor.handle(intent)
        updates = self._updates
        updates.extend(self._slots.take_all())
        while updates:
            update = updates.popleft()
            handled += 1
            self.book_updates += 1
            if self.halted:
                continue
            assert isinstance(update, BookUpdate)
            if not executor.quoting:
                self._held[update.token] = update
                continue
            for intent in self._strategies.on_book(update, executor.view):
                executor.handle(intent)
        if handled:
            # value the positions whose marks just moved now, after this step's orders went out,
            # rather than inside risk's check of the next order
            executor.view.equity()
        return handled

    def forget(self, tokens: Iterable[str]) -> None:
        """Forget what is kept on these tokens (their market was forgotten): an update held while
        the gate is closed, and the strategies' memory."""
        tokens = list(tokens)
        for token in tokens:
            self._held.pop(token, None)
        self._strategies.forget(tokens)

    def sweep(self, cid: str) -> int:
        """The capital sweep (signed trading, a timer between steps): the redemptions due go out
        (``Executor.sweep``), then, while the trading gate is open, the merge strategy offers
        merges of the complete sets held in any market. Nothing once halted. Returns how many
        requests and intents it made."""
        if self.halted:
            return 0
        executor = self._executor
        made = executor.sweep(cid)
        if executor.gate_open:
            for intent in self._strategies.on_sweep(cid, executor.view):
                executor.handle(intent)
                made += 1
        return made

    def halt(self, cid: str, reason: str) -> None:
        """Stop quoting and cancel every open order (breaker trip or shutdown)."""
        self.halted = True
        self._executor.cancel_all(cid, reason)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        doorbell = self._inbox.doorbell
        while True:
            self.step()  # first of all whatever a crashed predecessor left in the backlog
            self._parked = True
            try:
                await doorbell.wait()
            finally:
                self._parked = False
            if self._crashed is not None:
                crashed, self._crashed = self._crashed, None
                raise crashed

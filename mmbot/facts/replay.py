"""RecordedFeed: deliver a recording's frames at their recorded times, deterministically.

Replay runs on Trio's MockClock anchored at the recording's start. For each instant that has
frames, in this fixed order (DESIGN §8):

1. every scheduler timer due up to that instant fires (paper acknowledgements, boundaries,
   statistics), instant by instant, each followed by a decision step;
2. the clock moves to the instant;
3. the frames of the instant are handed to their channel's handler one by one, in file order,
   each followed by a decision step, so every frame is decided on before the next arrives, as
   it would be live.

The decision step is the decision task's own ``DecisionLoop.step``, called here at once
(``step_inline``) rather than by waiting for every task to block; the clock is moved with
``TrioClock.advance_to`` rather than by a ``sleep_until`` (unless a task sleeps until earlier:
then it is a ``sleep_until``, so that task wakes at its own time). Both give the same order as the
quiescence they replace, without a turn of Trio's run loop per frame and per instant, which
was most of what Trio cost a replay. When the decision task cannot step inline (it is
restarting after a crash, or the inline step crashed and the task must raise it), the feed
falls back to waiting until every task is blocked, as it always did. It yields to the loop
every ``yield_every`` deliveries so the event log's writer keeps up.

Nothing then depends on Trio's (deliberately random) scheduling order.
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter
from typing import Callable, Iterable, Mapping

import trio
import trio.testing

from mmbot.clock import Scheduler, TrioClock, monotonic_ns
from mmbot.facts.frame_times import FrameTimes

FrameHandler = Callable[[str, int], None]  # (frame text, recv_ns)
YIELD_EVERY = 64  # deliveries between turns of the run loop: the log's writer runs then


def _never_inline() -> bool:
    return False


class RecordedFeed:
    def __init__(
        self,
        frames: Iterable[tuple[int, str, str]],  # (t_ns, channel, text), non-decreasing t
        *,
        handlers: Mapping[str, FrameHandler],
        scheduler: Scheduler,
        clock: TrioClock,
        step_inline: Callable[[], bool] = _never_inline,
        drain_ns: int = 5_000_000_000,
        on_progress: Callable[[int], None] | None = None,
        yield_every: int = YIELD_EVERY,
        frame_times: FrameTimes | None = None,
    ) -> None:
        """``step_inline()`` decides on what was just delivered and returns True, or returns
        False when the caller must let Trio run instead (``DecisionLoop.step_inline``).
        ``frame_times``, if given, gets each frame's real handling time, to its decision step's end."""
        self._frames = frames
        self._handlers = handlers
        self._scheduler = scheduler
        self._clock = clock
        self._step_inline = step_inline
        self._drain_ns = drain_ns
        self._on_progress = on_progress
        self._yield_every = yield_every
        self._frame_times = frame_times
        self._since_yield = 0
        self._next_deadline: float | None = None  # float-ok: Trio's; None once another task may have run
        self._wait_for_all = False  # the last step was not taken inline: let every task block
        self.delivered = 0
        self.skipped = 0  # frames on channels nobody listens to
        self.last_ns: int | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        handlers, times, scheduler = self._handlers, self._frame_times, self._scheduler
        for t_ns, group in groupby(self._frames, key=itemgetter(0)):
            # the common instant has no timer due and needs no turn of the loop: nothing awaited
            if (due := scheduler.next_deadline()) is not None and due <= t_ns:
                await self._fire_until(t_ns)
            elif not self._moved_to(t_ns):
                await self._sleep_until(t_ns)
            for _, channel, text in group:
                handler = handlers.get(channel)
                if handler is None:
                    self.skipped += 1
                    continue
                began = monotonic_ns() if times is not None else 0
                handler(text, t_ns)
                self.delivered += 1
                turn = self._decided()  # decide on this frame before the next
                if times is not None:
                    times.add(monotonic_ns() - began)
                if turn:
                    await self._let_trio_run()
            self.last_ns = t_ns
            if not started:
                task_status.started()
                started = True
            if self._on_progress is not None:
                self._on_progress(self.delivered)
        if not started:
            task_status.started()
        if self.last_ns is not None:
            # let in-flight acknowledgements and fills come back before the run ends
            await self._fire_until(self.last_ns + self._drain_ns)
            await trio.testing.wait_all_tasks_blocked()

    async def _fire_until(self, t_ns: int) -> None:
        """Every timer due up to ``t_ns``, instant by instant, a decision step after each; then
        the clock at ``t_ns``."""
        scheduler = self._scheduler
        while (deadline := scheduler.next_deadline()) is not None and deadline <= t_ns:
            if not self._moved_to(deadline):
                await self._sleep_until(deadline)
            scheduler.fire_due(deadline)
            if self._decided():
                await self._let_trio_run()
        if not self._moved_to(t_ns):
            await self._sleep_until(t_ns)

    def _moved_to(self, t_ns: int) -> bool:
        """The clock at ``t_ns`` without a turn of the loop, if no task sleeps until earlier."""
        if self._next_deadline is None:
            self._next_deadline = self._clock.next_trio_deadline()
        return self._clock.advance_to(t_ns, next_deadline=self._next_deadline)

    async def _sleep_until(self, t_ns: int) -> None:
        await self._clock.sleep_until(t_ns)
        self._next_deadline = None

    def _decided(self) -> bool:
        """Take the decision step inline; True when Trio must run now: the step could not be
        taken inline (then every task must block before the next delivery), or it is time to
        let the event log's writer run."""
        if not self._step_inline():
            self._wait_for_all = True
            return True
        self._since_yield += 1
        return self._since_yield >= self._yield_every

    async def _let_trio_run(self) -> None:
        self._since_yield, self._next_deadline = 0, None
        if self._wait_for_all:
            self._wait_for_all = False
            await trio.testing.wait_all_tasks_blocked()
        else:
            await trio.lowlevel.checkpoint()

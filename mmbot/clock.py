"""Time: what time it is, and running callbacks at a given instant.

This is the only module that reads real time (tests/test_layers.py checks). Everything else
gets a ``Clock`` and a ``Scheduler`` injected. In replay the clock is Trio's MockClock anchored
at the recording's start, so ``now_ns`` is the recorded time of the frame being handled.
"""

from __future__ import annotations

import heapq
import math
import time
from typing import Callable

import attrs
import trio
import trio.testing


def wall_ns() -> int:
    """Real wall-clock time, for the event log's ``wall_ns`` column only (never decisions)."""
    return time.time_ns()


# A real monotonic reading, for measuring latency in benchmarks and metrics. The function itself,
# not a wrapper: replay reads it twice per frame for its processing-time figures.
monotonic_ns: Callable[[], int] = time.perf_counter_ns


class TrioClock:
    """Epoch nanoseconds on Trio's clock: real in paper/live, virtual under a MockClock."""

    def __init__(self, anchor_ns: int | None = None) -> None:
        # anchor_ns is the epoch time that trio.current_time() == 0 stands for.
        if anchor_ns is None:
            anchor_ns = time.time_ns() - round(trio.current_time() * 1e9)
        self.anchor_ns = anchor_ns

    def now_ns(self) -> int:
        return self.anchor_ns + round(trio.current_time() * 1e9)

    def trio_time(self, t_ns: int) -> float:
        """The trio.current_time() value at which epoch time ``t_ns`` falls."""
        return (t_ns - self.anchor_ns) / 1e9

    async def sleep_until(self, t_ns: int) -> None:
        await trio.sleep_until(self.trio_time(t_ns))

    def advance_to(self, t_ns: int, *, next_deadline: float | None = None) -> bool:  # float-ok: Trio's time
        """Replay only: move Trio's MockClock on to epoch time ``t_ns`` at once, without a turn of
        the run loop. It is the jump the autojump clock makes for a ``sleep_until(t_ns)``, so the
        time read afterwards is the same; the turn it saves (~23 µs) was most of what Trio cost a
        replay (DESIGN §13). Returns False, and moves nothing, when some task sleeps until no
        later than that (a supervisor's restart backoff): the caller must ``sleep_until`` then,
        so that task wakes at its own time. Earlier than now: nothing to do, True.

        ``next_deadline`` is ``next_trio_deadline()`` as the caller last read it: deadlines change
        only while other tasks run, so a caller that has not yielded since may pass it on instead
        of having it read again (~1.7 µs)."""
        mock = trio.lowlevel.current_clock()
        if not isinstance(mock, trio.testing.MockClock):
            raise RuntimeError("TrioClock.advance_to needs Trio's MockClock (replay runs on one)")
        now = mock.current_time()
        step = self.trio_time(t_ns) - now
        if step <= 0:
            return True
        if next_deadline is None:
            next_deadline = self.next_trio_deadline()
        if next_deadline - now <= step:
            return False
        mock.jump(step)
        return True

    @staticmethod
    def next_trio_deadline() -> float:  # float-ok: Trio's time
        """When the earliest task sleeping on Trio's clock wakes (inf if none does)."""
        return trio.current_time() + trio.lowlevel.current_statistics().seconds_to_next_deadline


class ReplayClock(TrioClock):
    """``TrioClock`` for replay, made inside the run under its MockClock, which it reads
    directly: the same reading as ``trio.current_time()`` (the run loop only asks its clock),
    without the two calls between, on every read (the maker reads it on each book update)."""

    def __init__(self, anchor_ns: int) -> None:
        super().__init__(anchor_ns)
        mock = trio.lowlevel.current_clock()
        if not isinstance(mock, trio.testing.MockClock):
            raise RuntimeError("ReplayClock needs Trio's MockClock (replay runs on one)")
        self._read = mock.current_time

    def now_ns(self) -> int:
        return self.anchor_ns + round(self._read() * 1e9)


@attrs.define(eq=False)
class _Timer:
    callback: Callable[[], None] | None

    def cancel(self) -> None:
        self.callback = None


class Scheduler:
    """A heap of timers fired in (time, insertion) order: ties never depend on Trio's scheduler.

    Three drivers exist. ``run()`` is a task for the real clock; in replay the recorded feed fires
    the timers due up to instant ``t`` itself, a decision step after each, before delivering the
    frames of ``t`` (timers first, then frames: the fixed rule of DESIGN §8,
    ``facts/replay.py``); ``fire_until(t)`` does the same by waiting for quiescence, for the end
    of a replay's shutdown (``app_engine.stop_safely``) and for tests.
    """

    def __init__(self, clock: TrioClock) -> None:
        self._clock = clock
        self._heap: list[tuple[int, int, _Timer]] = []
        self._seq = 0
        self._wakeup = trio.Event()

    def call_at(self, t_ns: int, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(callback)
        self._seq += 1
        heapq.heappush(self._heap, (t_ns, self._seq, timer))
        if self._heap[0][2] is timer:
            self._wakeup.set()
        return timer

    def next_deadline(self) -> int | None:
        while self._heap and self._heap[0][2].callback is None:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def fire_due(self, now_ns: int) -> int:
        """Run every timer due at or before ``now_ns``; returns how many ran."""
        fired = 0
        while self._heap and self._heap[0][0] <= now_ns:
            _, _, timer = heapq.heappop(self._heap)
            callback, timer.callback = timer.callback, None
            if callback is not None:
                callback()
                fired += 1
        return fired

    async def fire_until(self, t_ns: int) -> None:
        """Replay driver: run timers up to ``t_ns`` instant by instant, settling after each."""
        while (deadline := self.next_deadline()) is not None and deadline <= t_ns:
            if deadline > self._clock.now_ns():
                await self._clock.sleep_until(deadline)
            self.fire_due(deadline)
            await trio.testing.wait_all_tasks_blocked()
        if t_ns > self._clock.now_ns():
            await self._clock.sleep_until(t_ns)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Real-time driver: sleep to the next deadline, or until an earlier timer is set."""
        task_status.started()
        while True:
            self._wakeup = trio.Event()
            deadline = self.next_deadline()
            target = math.inf if deadline is None else self._clock.trio_time(deadline)
            with trio.move_on_at(target):
                await self._wakeup.wait()
            self.fire_due(self._clock.now_ns())

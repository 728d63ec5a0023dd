"""RecordedFeed: deliver a recording's frames at their recorded times, deterministically.

Replay runs on Trio's MockClock (autojump) anchored at the recording's start. For each instant
that has frames, in this fixed order (DESIGN §8):

1. every scheduler timer due up to that instant fires (paper acknowledgements, boundaries,
   statistics), instant by instant, and the system goes quiescent after each;
2. the clock moves to the instant (one ``sleep_until`` per distinct instant, DESIGN §13);
3. the frames of the instant are handed to their channel's handler one by one, in file order,
   and the system goes quiescent (``wait_all_tasks_blocked``) after each (DESIGN §8), so every
   frame is decided on before the next arrives, as it would be live.

Nothing then depends on Trio's (deliberately random) scheduling order.
"""

from __future__ import annotations

from itertools import groupby
from typing import Callable, Iterable, Mapping

import trio
import trio.testing

from mmbot.clock import Scheduler

FrameHandler = Callable[[str, int], None]  # (frame text, recv_ns)


class RecordedFeed:
    def __init__(
        self,
        frames: Iterable[tuple[int, str, str]],  # (t_ns, channel, text), non-decreasing t
        *,
        handlers: Mapping[str, FrameHandler],
        scheduler: Scheduler,
        drain_ns: int = 5_000_000_000,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self._frames = frames
        self._handlers = handlers
        self._scheduler = scheduler
        self._drain_ns = drain_ns
        self._on_progress = on_progress
        self.delivered = 0
        self.skipped = 0  # frames on channels nobody listens to
        self.last_ns: int | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        for t_ns, group in groupby(self._frames, key=lambda frame: frame[0]):
            await self._scheduler.fire_until(t_ns)
            for _, channel, text in group:
                handler = self._handlers.get(channel)
                if handler is None:
                    self.skipped += 1
                    continue
                handler(text, t_ns)
                self.delivered += 1
                await trio.testing.wait_all_tasks_blocked()  # decide on this frame before the next
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
            await self._scheduler.fire_until(self.last_ns + self._drain_ns)
            await trio.testing.wait_all_tasks_blocked()


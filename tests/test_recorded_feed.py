"""RecordedFeed: frames at their recorded instants, timers of the same instant first, then a drain."""

from __future__ import annotations

from mmbot.clock import Scheduler, TrioClock
from mmbot.facts.replay import RecordedFeed

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


async def test_frames_arrive_at_their_recorded_instants_after_that_instants_timers(autojump_clock) -> None:
    clock = TrioClock(anchor_ns=T0)
    scheduler = Scheduler(clock)
    seen: list[tuple[str, int]] = []

    def on_market(text: str, recv_ns: int) -> None:
        seen.append((text, clock.now_ns() - T0))
        if text == "b":  # a reaction scheduled for the instant of frame "c", and one after the end
            scheduler.call_at(T0 + 20 * MS, lambda: seen.append(("timer@20", clock.now_ns() - T0)))
            scheduler.call_at(T0 + 25 * MS, lambda: seen.append(("timer@25", clock.now_ns() - T0)))

    frames = [(T0, "market", "a"), (T0 + 10 * MS, "market", "b"), (T0 + 10 * MS, "user", "x"),
              (T0 + 20 * MS, "market", "c"), (T0 + 20 * MS, "market", "d")]
    feed = RecordedFeed(frames, handlers={"market": on_market}, scheduler=scheduler, clock=clock, drain_ns=10 * MS)
    await feed.run()
    assert seen == [
        ("a", 0), ("b", 10 * MS), ("timer@20", 20 * MS), ("c", 20 * MS), ("d", 20 * MS), ("timer@25", 25 * MS),
    ]
    assert (feed.delivered, feed.skipped, feed.last_ns) == (4, 1, T0 + 20 * MS)

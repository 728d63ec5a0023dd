"""The venue's time as its own frames tell it, for questions about the venue's schedule.

"Has this market's end passed?" is a question about the venue's clock, and the venue's clock is
not ours (never compare the clocks of two machines: the simulator's may run at ``--speed 3``, and a
real venue's drifts). So the answer comes from the latest venue timestamp seen on the market
channel, moved on by the time elapsed on our own clock since it was seen — a duration on one
machine, which is safe to measure.
"""

from __future__ import annotations

from typing import Any

from mmbot.ports import Clock


class VenueTime:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._venue_ms: int | None = None
        self._seen_ns = 0

    def observe(self, msg: Any) -> None:
        """A market-channel message; those with a venue timestamp move the venue's time on."""
        venue_ms = getattr(msg, "venue_ts_ms", None)
        if isinstance(venue_ms, int) and (self._venue_ms is None or venue_ms >= self._venue_ms):
            self._venue_ms = venue_ms
            self._seen_ns = self._clock.now_ns()

    def now_ns(self) -> int | None:
        """The venue's time now, or None before any timestamped message was seen."""
        if self._venue_ms is None:
            return None
        return self._venue_ms * 1_000_000 + (self._clock.now_ns() - self._seen_ns)

"""How long the simulator remembers what is over, sans-IO.

The world may run hundreds of times faster than its clients' clocks (``--speed``), so "long ago"
is measured on the server's clock, as the clients live it: a client that was away for less than
``retain_s`` still finds everything it may ask about (a resolved market in the listing, its
trades of it on ``/data/trades``, the answer "already canceled or matched" for its ended
orders). ``Horizon`` turns that into the world time before which ``LiveVenue.forget`` may drop
things: it samples (server time, world time) once a second and keeps ``retain_s`` of samples.
"""

from __future__ import annotations

import collections

SECOND = 1_000_000_000


class Horizon:
    def __init__(self, retain_s: int) -> None:
        self.retain_s = retain_s
        self._marks: collections.deque[tuple[int, int]] = collections.deque()  # (server ns, world ns)

    def mark(self, server_ns: int, world_ns: int) -> int | None:
        """Note the world's time now; returns the world time ``retain_s`` ago on the server's clock
        (everything over before it may be forgotten), or None if the server is younger than that
        or a second has not passed since the last mark."""
        if self._marks and server_ns - self._marks[-1][0] < SECOND:
            return None
        self._marks.append((server_ns, world_ns))
        edge = server_ns - self.retain_s * SECOND
        while len(self._marks) > 1 and self._marks[1][0] <= edge:
            self._marks.popleft()
        return self._marks[0][1] if self._marks[0][0] <= edge else None

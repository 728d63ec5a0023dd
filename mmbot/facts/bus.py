"""The bus: latest-value slots for book updates, unbounded ordered streams for everything else.

Producers never await: ``put``/``send`` are synchronous, so a feed reader can never be blocked
by a slow consumer (DESIGN §2). One ``Doorbell`` per consumer lets a single task wait on
several slots and streams at once and then drain everything pending in one go, which keeps
hops per event at two or fewer (DESIGN §13).
"""

from __future__ import annotations

import math
from typing import Generic, Iterable, TypeVar

import attrs
import trio

T = TypeVar("T")


class Doorbell:
    """Wakes one waiting consumer when any of its inputs has something pending."""

    def __init__(self) -> None:
        self._lot = trio.lowlevel.ParkingLot()
        self._rung = False

    def ring(self) -> None:
        self._rung = True
        if self._lot:
            self._lot.unpark_all()

    async def wait(self) -> None:
        """Return at once if rung since the last wait, else park until the next ring."""
        if not self._rung:
            await self._lot.park()
        else:
            await trio.lowlevel.checkpoint()
        self._rung = False


@attrs.frozen
class SlotStatistics:
    updates: int
    delivered: int
    dropped: int  # updates replaced before anyone read them
    pending: int
    peak_pending: int


class LatestSlots(Generic[T]):
    """One size-one overwrite slot per key; an unread value that is replaced counts as a drop."""

    def __init__(self, doorbell: Doorbell | None = None) -> None:
        self.doorbell = doorbell or Doorbell()
        self._pending: dict[str, T] = {}
        self._updates = 0
        self._delivered = 0
        self._dropped = 0
        self._peak = 0

    def put(self, key: str, value: T) -> None:
        self._updates += 1
        if key in self._pending:
            self._dropped += 1
        self._pending[key] = value
        if len(self._pending) > self._peak:
            self._peak = len(self._pending)
        self.doorbell.ring()

    def take_all(self) -> list[T]:
        """Every pending value, in the order their keys first became pending."""
        if not self._pending:
            return []
        values = list(self._pending.values())
        self._pending.clear()
        self._delivered += len(values)
        return values

    def forget(self, keys: Iterable[str]) -> int:
        """Drop the values pending for these keys (their market was forgotten: no one wants them);
        not counted as drops. Returns how many there were."""
        gone = 0
        for key in keys:
            if self._pending.pop(key, None) is not None:
                gone += 1
        return gone

    def __len__(self) -> int:
        return len(self._pending)

    def statistics(self) -> SlotStatistics:
        return SlotStatistics(
            updates=self._updates,
            delivered=self._delivered,
            dropped=self._dropped,
            pending=len(self._pending),
            peak_pending=self._peak,
        )


@attrs.frozen
class StreamStatistics:
    sent: int
    received: int
    backlog: int
    peak_backlog: int


class Stream(Generic[T]):
    """An unbounded, ordered, never-dropping channel: a Trio memory channel with accounting."""

    def __init__(self, doorbell: Doorbell | None = None) -> None:
        self.doorbell = doorbell or Doorbell()
        self._send, self._receive = trio.open_memory_channel[T](math.inf)
        self._sent = 0
        self._received = 0
        self._peak = 0

    def send(self, item: T) -> None:
        self._send.send_nowait(item)
        self._sent += 1
        backlog = self._sent - self._received
        if backlog > self._peak:
            self._peak = backlog
        self.doorbell.ring()

    def drain(self) -> list[T]:
        """Everything pending right now, in order, without waiting."""
        if self._sent == self._received:
            return []  # the common case on every decision step: no WouldBlock raised and caught
        items: list[T] = []
        while True:
            try:
                items.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        self._received += len(items)
        return items

    async def receive_batch(self) -> list[T]:
        """Wait until at least one item is pending, then return all of them."""
        while True:
            items = self.drain()
            if items:
                return items
            await self.doorbell.wait()

    def __len__(self) -> int:
        return self._sent - self._received

    def statistics(self) -> StreamStatistics:
        return StreamStatistics(
            sent=self._sent,
            received=self._received,
            backlog=self._sent - self._received,
            peak_backlog=self._peak,
        )

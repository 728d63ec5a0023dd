"""The small interfaces the core needs, and the venue error tree.

Decision code depends on these Protocols only; app.py injects the concrete clock, feed,
gateway and event sink for each mode (DESIGN §7). This module imports nothing of ours but
model (tests/test_layers.py checks).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

from mmbot.model import VenueLeg, VenueRequest


class Clock(Protocol):
    def now_ns(self) -> int:
        """Current time in nanoseconds since the Unix epoch (virtual in replay)."""


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Runs a plain callback at a virtual instant. Ties run in the order they were set."""

    def call_at(self, t_ns: int, callback: Callable[[], None]) -> TimerHandle: ...


class FeedSource(Protocol):
    """A source of venue frames (a websocket or a recording).

    ``run`` delivers every frame to the handler it was built with, calls
    ``task_status.started()`` once the first snapshot is in, and never awaits a consumer.
    """

    async def run(self, *, task_status: Any = ...) -> None: ...


Service = Callable[..., Awaitable[None]]  # ``async def run(*, task_status)``: what the supervisor runs


class OrderGateway(Protocol):
    """Takes venue requests without blocking; answers arrive later in the executor's inbox."""

    def send(self, request: VenueRequest) -> None: ...


class Reconciliation(Protocol):
    """Reconciliation as the venue session sees it (decisions.reconcile.Reconciler): the venue's
    reports of our trade legs in, and the orders it wants the venue asked about out."""

    def on_leg(self, leg: VenueLeg, now_ns: int) -> None: ...

    def due_queries(self, now_ns: int) -> list[str]: ...

    def on_order_truth(self, order_id: str, matched_size: int, price: int, now_ns: int) -> None: ...


class EventSink(Protocol):
    """The memory layer as seen from everywhere else: append one row to the event log."""

    def record(
        self,
        kind: str,
        cid: str,
        payload: dict[str, Any] | None = None,
        *,
        market: str = "",
        token: str = "",
    ) -> None: ...


# --------------------------------------------------------------------------- venue errors


class VenueError(Exception):
    """Root of the errors a gateway turns every venue outcome into (DESIGN §3)."""


class Retryable(VenueError):
    """Nothing happened at the venue (429, 425, connect error): safe to try again later."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:  # float-ok: a delay, not money
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Rejected(VenueError):
    """The venue said no; ``reason`` is its error string (INVALID_ORDER_MIN_TICK_SIZE, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutcomeUnknown(VenueError):
    """The request left us and no answer came back: never resubmit, reconcile instead."""


class Fatal(VenueError):
    """Authentication is broken or a bug was found: stop trading."""

"""What the live gateway's lanes share: every order it has taken, where each one is on its way to
the venue, the two queues, and the answers into the executor's inbox.

An order moves QUEUED → BATCHED (taken by the submit lane, provably not sent yet) ⇄ SENDING (a
post of it is in flight) → PLACED (the venue took it, or its outcome is unknown: either way it may
rest) or ENDED (refused, or ended by a cancel). Where a cancel goes depends on that phase
(``route_cancel``): a submit that was never sent is taken back and rejected locally; a cancel of a
post in flight waits for the post's answer; the cancel of a placed order, or of an ended one that
was sent, goes to the cancel lane (the venue says what became of it).
Everything here is plain synchronous code run by the lanes' tasks: no awaits, so each step is
atomic with respect to the other lanes.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Callable, Iterable

import attrs

from mmbot.facts.bus import Doorbell
from mmbot.model import (
    CancelRejected, CancelRequest, OrderAccepted, OrderDone, OrderOutcomeUnknown, OrderRejected, SubmitRequest,
    VenueResponse,
)
from mmbot.ports import Clock, EventSink, Retryable
from mmbot.venues.polymarket.rest import EngineRestarting, RateLimited

NOT_SENT_REASON = "local: cancelled before it was sent"
POST_ONLY_WINDOW_NS = 120_000_000_000  # after the last 425, the venue rejects takers this long

COUNTS = ("submits_sent", "submit_retries", "submits_unknown", "answers_after_deadline", "submits_rejected_unsent",
          "cancels_sent", "cancel_retries", "cancels_confirmed", "cancels_escalated_market", "cancels_escalated_all",
          "cancels_taken_back", "heartbeats_ok", "heartbeats_failed", "rate_limited", "forgotten")


class Phase(enum.Enum):
    QUEUED = "queued"
    BATCHED = "batched"
    SENDING = "sending"
    PLACED = "placed"
    ENDED = "ended"


@attrs.define(eq=False)
class Tracked:
    request: SubmitRequest
    phase: Phase = Phase.QUEUED
    held: list[CancelRequest] = attrs.Factory(list)  # cancels waiting for this order's post to be answered
    sent: bool = False  # a post of it left (it may have reached the venue)

    @property
    def order_id(self) -> str:
        return self.request.order_id


class GatewayBook:
    def __init__(self, *, respond: Callable[[VenueResponse], None], sink: EventSink, clock: Clock) -> None:
        self.respond = respond
        self.sink = sink
        self.clock = clock
        self.orders: dict[str, Tracked] = {}
        self.venue_ids: dict[str, str] = {}  # our order id -> the venue's (the digest)
        self.local_ids: dict[str, str] = {}  # and back
        self.unknown_since: dict[str, int] = {}  # our order id -> when its post was declared unanswered
        self.submit_queue: deque[str] = deque()  # order ids
        self.submit_bell = Doorbell()
        self.cancel_queue: deque[CancelRequest] = deque()
        self.cancel_bell = Doorbell()
        self.counts = dict.fromkeys(COUNTS, 0)
        self.post_only_until_ns = 0  # after an engine restart: only post-only orders until then

    # ------------------------------------------------------------------ in

    def add_submit(self, request: SubmitRequest) -> None:
        if request.order_id in self.orders:
            self.sink.record("error", request.cid, {"where": "gateway", "error": "order id submitted twice",
                                                    "order_id": request.order_id})
            return
        self.orders[request.order_id] = Tracked(request=request)
        self.submit_queue.append(request.order_id)
        self.submit_bell.ring()

    def route_cancel(self, request: CancelRequest) -> None:
        tracked = self.orders.get(request.order_id)
        if tracked is None:
            self.respond(CancelRejected(cid=request.cid, order_id=request.order_id, reason="never sent"))
        elif tracked.phase is Phase.QUEUED:
            self.submit_queue.remove(request.order_id)
            self.counts["cancels_taken_back"] += 1
            self.reject(tracked, NOT_SENT_REASON)
        elif tracked.phase is Phase.BATCHED:  # the submit lane drops it from its batch before the next try
            self.counts["cancels_taken_back"] += 1
            self.reject(tracked, NOT_SENT_REASON)
        elif tracked.phase is Phase.SENDING:
            tracked.held.append(request)
        elif tracked.phase is Phase.PLACED or tracked.sent:  # an ended one too: the venue says what became of it
            self.cancel_queue.append(request)
            self.cancel_bell.ring()
        else:
            self.respond(CancelRejected(cid=request.cid, order_id=request.order_id, reason="never sent"))

    def note_refusal(self, error: Retryable) -> None:
        """A request the venue turned away unsent: a 429 is counted, a 425 opens the post-only window."""
        if isinstance(error, RateLimited):
            self.counts["rate_limited"] += 1
        elif isinstance(error, EngineRestarting):
            self.post_only_until_ns = self.clock.now_ns() + POST_ONLY_WINDOW_NS

    def remember_venue_id(self, order_id: str, venue_id: str) -> None:
        self.venue_ids[order_id] = venue_id
        self.local_ids[venue_id] = order_id

    # ------------------------------------------------------------------ answers

    def accept(self, tracked: Tracked, venue_id: str, cid: str | None = None) -> None:
        tracked.phase = Phase.PLACED
        self.respond(OrderAccepted(cid=cid or tracked.request.cid, order_id=tracked.order_id, venue_order_id=venue_id))
        self._release_held(tracked)

    def reject(self, tracked: Tracked, reason: str) -> None:
        tracked.phase = Phase.ENDED
        self.unknown_since.pop(tracked.order_id, None)
        self.respond(OrderRejected(cid=tracked.request.cid, order_id=tracked.order_id, reason=reason))
        self._release_held(tracked)

    def unknown(self, tracked: Tracked, detail: str) -> None:
        """Its post may have reached the venue: it may rest, so a held cancel is sent now."""
        tracked.phase = Phase.PLACED
        self.unknown_since[tracked.order_id] = self.clock.now_ns()
        self.counts["submits_unknown"] += 1
        self.respond(OrderOutcomeUnknown(cid=tracked.request.cid, order_id=tracked.order_id, detail=detail))
        self._release_held(tracked)

    def done(self, tracked: Tracked, cid: str, reason: str) -> None:
        tracked.phase = Phase.ENDED
        self.unknown_since.pop(tracked.order_id, None)
        self.respond(OrderDone(cid=cid, order_id=tracked.order_id, reason=reason))

    def _release_held(self, tracked: Tracked) -> None:
        held, tracked.held = tracked.held, []
        for request in held:
            self.route_cancel(request)

    # ------------------------------------------------------------------ bounded memory

    def forget(self, order_ids: Iterable[str], busy: set[str]) -> int:
        """Drop ended orders; one the lanes still work on (``busy``, or on its way) is kept."""
        dropped = 0
        for order_id in order_ids:
            tracked = self.orders.get(order_id)
            if tracked is None or order_id in busy or tracked.held or tracked.phase in (
                    Phase.QUEUED, Phase.BATCHED, Phase.SENDING):
                continue
            del self.orders[order_id]
            venue_id = self.venue_ids.pop(order_id, None)
            if venue_id is not None:
                self.local_ids.pop(venue_id, None)
            self.unknown_since.pop(order_id, None)
            dropped += 1
        self.counts["forgotten"] += dropped
        return dropped

    def cancels_held(self) -> int:
        return sum(len(t.held) for t in self.orders.values() if t.held)

"""The live gateway's submit lane: signed orders posted in batches of at most 15, one batch at a
time, retried while provably not sent, never resent once they may have been.

A batch is taken from the queue, signed, and posted. Its outcome:

* answered → ``OrderAccepted`` (with the venue's id) or ``OrderRejected`` (the venue's string) per
  order; a refused batch (4xx) rejects every order in it;
* ``Retryable`` (429, 425, no connection: nothing reached the venue) → posted again after the
  backoff's delay (never sooner than the venue's ``Retry-After``) until ``submit_deadline_s``
  after the batch was taken; then ``OrderRejected("not sent: ...")``, the truth. After a 425 only
  post-only orders are sent for two minutes (the venue's post-only window); others are rejected
  locally;
* ``OutcomeUnknown`` → ``OrderOutcomeUnknown`` at once and never resent: the reservation stays and
  the session settles it (``LiveGateway.confirm_placed`` / ``settle_unknown``);
* the deadline passes while a post is in flight (a slow venue) → ``OrderOutcomeUnknown`` at the
  deadline, and the post is still waited for: its answer, when it comes, is applied to the orders
  not settled meanwhile (``answers_after_deadline``).

A cancel may take an order out of the batch between two tries (it was never sent). The batch is
kept on the lane, so a lane restarted after a crash finds it: orders whose post was in flight are
answered ``OrderOutcomeUnknown`` (they may have been sent), orders between tries go back to the
head of the queue.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import attrs
import trio

from mmbot.backoff import Backoff
from mmbot.config import VenueConfig
from mmbot.model import CancelRequest, SubmitRequest
from mmbot.ports import OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.auth import SigningError
from mmbot.venues.polymarket.gateway_book import GatewayBook, Phase, Tracked
from mmbot.venues.polymarket.rest import MAX_BATCH, ClobRest
from mmbot.venues.polymarket.rest_answers import PostAnswer

Sign = Callable[[SubmitRequest], dict[str, Any]]  # the signed POST body of an order (its venue id remembered)


@attrs.define(eq=False)
class Batch:
    taken_ns: int
    deadline_ns: int
    items: list[tuple[Tracked, dict[str, Any]]]  # each order with its signed body
    attempts: int = 0
    overdue: bool = False  # declared unknown at the deadline while a post was in flight


class SubmitLane:
    def __init__(self, *, book: GatewayBook, rest: ClobRest, sign: Sign, config: VenueConfig, rng: random.Random,
                 pretend: Callable[[list[tuple[Tracked, dict[str, Any]]]], None] | None = None) -> None:
        self._book = book
        self._rest = rest
        self._sign = sign
        self._deadline_ns = config.submit_deadline_s * 1_000_000_000
        self._backoff = Backoff(base_s=config.retry_base_ms / 1000, cap_s=config.retry_cap_s, rng=rng)
        self._pretend = pretend  # a dry run: answered locally, nothing sent
        self.batch: Batch | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._recover()
        task_status.started()
        book = self._book
        while True:
            while not book.submit_queue:
                await book.submit_bell.wait()
            batch = self._take()
            if batch.items:
                if self._pretend is not None:
                    self._pretend(batch.items)
                else:
                    await self._work(batch)
            self.batch = None

    def busy(self) -> set[str]:
        return set() if self.batch is None else {t.order_id for t, _ in self.batch.items}

    def _recover(self) -> None:
        batch, self.batch = self.batch, None
        if batch is None:
            return
        back = []
        for tracked, _ in batch.items:
            if tracked.phase is Phase.SENDING:
                self._book.unknown(tracked, "the submit lane restarted while the post was in flight")
            elif tracked.phase is Phase.BATCHED:
                tracked.phase = Phase.QUEUED
                back.append(tracked.order_id)
        self._book.submit_queue.extendleft(reversed(back))

    def _take(self) -> Batch:
        book = self._book
        now = book.clock.now_ns()
        items = []
        while book.submit_queue and len(items) < MAX_BATCH:
            tracked = book.orders[book.submit_queue.popleft()]
            if not self._may_send(tracked):
                continue
            try:
                body = self._sign(tracked.request)
            except SigningError as exc:
                book.reject(tracked, f"local: {exc}")
                continue
            tracked.phase = Phase.BATCHED
            items.append((tracked, body))
        self.batch = Batch(taken_ns=now, deadline_ns=now + self._deadline_ns, items=items)
        return self.batch

    def _may_send(self, tracked: Tracked) -> bool:
        if self._book.clock.now_ns() < self._book.post_only_until_ns and not tracked.request.post_only:
            self._book.reject(tracked, "local: post-only window after an engine restart")
            return False
        return True

    async def _work(self, batch: Batch) -> None:
        book = self._book
        while True:
            batch.items = [(t, body) for t, body in batch.items if t.phase is Phase.BATCHED and self._may_send(t)]
            if not batch.items:
                return
            for tracked, _ in batch.items:
                tracked.phase = Phase.SENDING
                tracked.sent = True
            if batch.attempts == 0:
                book.counts["submits_sent"] += len(batch.items)
            else:
                book.counts["submit_retries"] += 1
            batch.attempts += 1
            outcome = await self._post(batch)
            if isinstance(outcome, list):
                self._backoff.reset()
                for (tracked, _), answer in zip(batch.items, outcome):
                    self._answered(batch, tracked, answer)
                return
            if isinstance(outcome, Rejected):
                self._backoff.reset()
                for tracked, _ in batch.items:
                    self._refused(batch, tracked, outcome.reason)
                return
            if isinstance(outcome, OutcomeUnknown):
                self._backoff.reset()
                for tracked, _ in batch.items:
                    if tracked.phase is Phase.SENDING:
                        book.unknown(tracked, str(outcome))
                return
            # Retryable: nothing reached the venue
            book.note_refusal(outcome)
            delay = self._backoff.next_s(outcome.retry_after_s)  # float-ok: a delay
            if batch.overdue or book.clock.now_ns() + round(delay * 1e9) >= batch.deadline_ns:
                for tracked, _ in batch.items:
                    if self._refused(batch, tracked, f"not sent: {outcome}"):
                        book.counts["submits_rejected_unsent"] += 1
                return
            for tracked, _ in batch.items:
                tracked.phase, tracked.sent = Phase.BATCHED, False  # every try so far was refused unsent
            await trio.sleep(delay)

    async def _post(self, batch: Batch) -> list[PostAnswer] | Retryable | Rejected | OutcomeUnknown:
        """One post of the batch, with a watch that answers ``OrderOutcomeUnknown`` at the deadline
        while the post goes on. A crash (``Fatal``, a bug) comes out bare, not in a group."""
        crash: Exception | None = None
        outcome: list[PostAnswer] | Retryable | Rejected | OutcomeUnknown | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._unknown_at_deadline, batch)
            try:
                outcome = await self._rest.post_orders([body for _, body in batch.items])
            except (Retryable, Rejected, OutcomeUnknown) as exc:
                outcome = exc
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the nursery
                crash = exc
            nursery.cancel_scope.cancel()
        if crash is not None:
            raise crash
        assert outcome is not None
        return outcome

    async def _unknown_at_deadline(self, batch: Batch) -> None:
        book = self._book
        await trio.sleep(max(0, batch.deadline_ns - book.clock.now_ns()) / 1e9)  # float-ok: a trio sleep
        batch.overdue = True
        for tracked, _ in batch.items:
            if tracked.phase is Phase.SENDING:
                book.unknown(tracked, f"no answer within {self._deadline_ns // 1_000_000_000} s")

    def _late(self, batch: Batch, tracked: Tracked) -> bool:
        """An answer after the deadline counts only for an order still unknown (not settled since)."""
        if not batch.overdue:
            return False
        self._book.counts["answers_after_deadline"] += 1
        return tracked.order_id not in self._book.unknown_since

    def _answered(self, batch: Batch, tracked: Tracked, answer: PostAnswer) -> None:
        book = self._book
        if self._late(batch, tracked):
            if answer.accepted and tracked.phase is Phase.ENDED:
                # answered as ended (a cancel or the open orders found it gone) while the post was
                # still on its way, and the venue placed it after all: it must not rest unseen
                book.sink.record("error", tracked.request.cid, {
                    "where": "gateway", "error": "placed after it was answered as ended: cancelled again",
                    "order_id": tracked.order_id})
                tracked.phase = Phase.PLACED
                book.route_cancel(CancelRequest(cid=f"{tracked.request.cid}:late", order_id=tracked.order_id))
            return
        book.unknown_since.pop(tracked.order_id, None)
        if not answer.accepted:
            book.reject(tracked, answer.error or f"refused ({answer.status or 'no status'})")
            return
        ours = book.venue_ids.get(tracked.order_id, "")
        if answer.order_id != ours:
            book.sink.record("error", tracked.request.cid, {"where": "gateway", "error": "venue order id differs",
                                                            "ours": ours, "venue": answer.order_id})
        book.accept(tracked, answer.order_id)

    def _refused(self, batch: Batch, tracked: Tracked, reason: str) -> bool:
        if self._late(batch, tracked):
            return False
        self._book.reject(tracked, reason)
        return True

"""The live gateway's cancel lane: its own task, so a cancel never waits behind a submit or its
retries, and no cancel is ever dropped.

The lane takes every cancel pending and sends them in one request. A cancel is idempotent, so it
is retried on ``Retryable`` and on ``OutcomeUnknown`` alike, through the backoff (never sooner than
the venue's ``Retry-After``), until ``cancel_deadline_s``. A cancel that cannot be confirmed by
then escalates: ``DELETE /cancel-market-orders`` for each market involved, retried for another
``cancel_deadline_s``, then ``DELETE /cancel-all``, retried until the venue answers, for ever if
need be. Each escalation is a ``cancel_escalated`` row {order_ids, to, reason}.

Answers: an order in the venue's ``canceled`` list → ``OrderDone("canceled")``; in
``not_canceled`` → ``CancelRejected`` with the venue's reason. A market-wide or account-wide cancel
also ends orders of ours nobody asked to cancel (``OrderDone("canceled")`` for each), and an order
we asked about that it neither cancelled nor refused was no longer resting there (filled or
cancelled before): ``OrderDone("not resting at the venue")``, its fills, if any, still to come from
the user channel. An order the direct cancel's answer left out is asked about again.

The cancels being worked on are kept on the lane: a lane restarted after a crash puts them back at
the head of the queue.
"""

from __future__ import annotations

import random
from typing import Iterable

import attrs
import trio

from mmbot.backoff import Backoff
from mmbot.config import VenueConfig
from mmbot.model import CancelRejected, CancelRequest, OrderDone
from mmbot.ports import OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.gateway_book import GatewayBook, Phase
from mmbot.venues.polymarket.rest import MAX_CANCELS, ClobRest
from mmbot.venues.polymarket.rest_answers import CancelAnswer

NOT_RESTING = "not resting at the venue"


@attrs.frozen
class Pending:
    request: CancelRequest
    venue_id: str
    market: str


class CancelLane:
    def __init__(self, *, book: GatewayBook, rest: ClobRest, config: VenueConfig, rng: random.Random,
                 dry_run: bool = False) -> None:
        self._book = book
        self._rest = rest
        self._deadline_ns = config.cancel_deadline_s * 1_000_000_000
        self._backoff = Backoff(base_s=config.retry_base_ms / 1000, cap_s=config.retry_cap_s, rng=rng)
        self._dry_run = dry_run
        self.batch: list[Pending] = []  # taken and not answered yet

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.batch:  # left by a crashed predecessor: first in line again
            self._book.cancel_queue.extendleft(reversed([p.request for p in self.batch]))
            self.batch = []
        task_status.started()
        book = self._book
        while True:
            while not book.cancel_queue:
                await book.cancel_bell.wait()
            self._take()
            if self.batch:
                await self._work()

    def busy(self) -> set[str]:
        return {p.request.order_id for p in self.batch} | {r.order_id for r in self._book.cancel_queue}

    def _take(self) -> None:
        book = self._book
        while book.cancel_queue and len(self.batch) < MAX_CANCELS:
            request = book.cancel_queue.popleft()
            tracked = book.orders.get(request.order_id)
            if tracked is None or not (tracked.phase is Phase.PLACED or tracked.phase is Phase.ENDED and tracked.sent):
                book.route_cancel(request)  # forgotten since it was queued: answered there
            elif self._dry_run:
                book.done(tracked, request.cid, "canceled")
            else:
                book.counts["cancels_sent"] += 1
                self.batch.append(Pending(request=request, venue_id=book.venue_ids[request.order_id],
                                          market=tracked.request.market))

    async def _work(self) -> None:
        reason = await self._direct()
        if reason is not None:
            reason = await self._by_market(reason)
        if reason is not None:
            await self._all(reason)

    async def _direct(self) -> str | None:
        """Until the deadline: the cancels themselves. Returns why it gave up, or None when done."""
        deadline = self._book.clock.now_ns() + self._deadline_ns
        while True:
            venue_ids = list(dict.fromkeys(p.venue_id for p in self.batch))
            try:
                answer = await self._rest.cancel(venue_ids)
            except Rejected as exc:
                return f"refused: {exc.reason}"
            except (Retryable, OutcomeUnknown) as exc:
                problem: str = str(exc)
                delay = self._backoff.next_s(self._advised(exc))
            else:
                self._backoff.reset()
                self._apply(answer, scope=None)
                if not self.batch:
                    return None
                problem = "the answer left some out"
                delay = self._backoff.next_s()
            if not await self._wait(delay, deadline):
                return problem

    async def _by_market(self, reason: str) -> str | None:
        """Until another deadline: every order of ours in each market involved."""
        self._escalate("market", reason)
        deadline = self._book.clock.now_ns() + self._deadline_ns
        while True:
            problem, advised = "", None
            for market in sorted({p.market for p in self.batch}):
                placed = self._placed(market)
                try:
                    answer = await self._rest.cancel_market(market)
                except (Retryable, Rejected, OutcomeUnknown) as exc:
                    problem, advised = str(exc), max(advised or 0, self._advised(exc) or 0) or None
                else:
                    self._apply(answer, scope=market, placed=placed)
            if not self.batch:
                self._backoff.reset()
                return None
            if not await self._wait(self._backoff.next_s(advised), deadline):
                return problem

    async def _all(self, reason: str) -> None:
        """Every order of the account, until the venue answers."""
        self._escalate("all", reason)
        while True:
            placed = self._placed("")
            try:
                answer = await self._rest.cancel_all()
            except (Retryable, Rejected, OutcomeUnknown) as exc:
                self._book.counts["cancel_retries"] += 1
                await trio.sleep(self._backoff.next_s(self._advised(exc)))
            else:
                self._backoff.reset()
                self._apply(answer, scope="", placed=placed)
                return

    def _placed(self, scope: str) -> list[str]:
        """Our orders that may rest in ``scope`` (a market, or "" for all) before a wide cancel is
        sent: once the venue confirms it, none of them rests any more."""
        return [order_id for order_id, tracked in self._book.orders.items()
                if tracked.phase is Phase.PLACED and scope in ("", tracked.request.market)]

    def _advised(self, exc: Exception) -> float | None:  # float-ok: a delay
        """The venue's Retry-After, if it gave one."""
        if not isinstance(exc, Retryable):
            return None
        self._book.note_refusal(exc)
        return exc.retry_after_s

    async def _wait(self, delay: float, deadline_ns: int) -> bool:  # float-ok: a delay
        """Sleep before the next try, unless that try would come after the deadline (False)."""
        if self._book.clock.now_ns() + round(delay * 1e9) >= deadline_ns:
            return False
        self._book.counts["cancel_retries"] += 1
        await trio.sleep(delay)
        return True

    def _escalate(self, to: str, reason: str) -> None:
        book = self._book
        book.counts[f"cancels_escalated_{to}"] += 1
        book.sink.record("cancel_escalated", self.batch[0].request.cid, {
            "order_ids": [p.request.order_id for p in self.batch], "to": to, "reason": reason})

    def _apply(self, answer: CancelAnswer, scope: str | None, placed: Iterable[str] = ()) -> None:
        """``scope``: None for the direct cancel, a market id, or "" for the whole account, with the
        orders of ours ``placed`` there when the wide cancel was sent."""
        book = self._book
        canceled = set(answer.canceled)
        cause = self.batch[0].request.cid
        asked = {p.request.order_id for p in self.batch}
        left = []
        for pending in self.batch:
            request, tracked = pending.request, book.orders.get(pending.request.order_id)
            in_scope = scope == "" or scope == pending.market
            if pending.venue_id in canceled or (in_scope and pending.venue_id not in answer.not_canceled):
                reason = "canceled" if pending.venue_id in canceled else NOT_RESTING
                if tracked is not None and tracked.phase is not Phase.ENDED:
                    book.done(tracked, request.cid, reason)
                else:  # asked twice in one batch, or forgotten meanwhile: answered all the same
                    book.respond(OrderDone(cid=request.cid, order_id=request.order_id, reason=reason))
            elif pending.venue_id in answer.not_canceled:
                book.respond(CancelRejected(cid=request.cid, order_id=request.order_id,
                                            reason=answer.not_canceled[pending.venue_id] or "not canceled"))
            else:
                left.append(pending)
                continue
            book.counts["cancels_confirmed"] += 1
        self.batch = left
        if scope is None:
            return
        # ours, ended by a wider cancel than we asked for: cancelled by it, or gone before it
        ended = {book.local_ids.get(v, ""): "canceled" for v in answer.canceled}
        for order_id in placed:
            ended.setdefault(order_id, NOT_RESTING)
        waiting: dict[str, list[CancelRequest]] = {}  # cancels queued meanwhile: answered with their own cid
        for request in book.cancel_queue:
            if request.order_id in ended:
                waiting.setdefault(request.order_id, []).append(request)
        for order_id, reason in ended.items():
            tracked = book.orders.get(order_id)
            if tracked is None or tracked.phase is not Phase.PLACED or order_id in asked:
                continue
            requests = waiting.get(order_id, [])
            book.done(tracked, requests[0].cid if requests else cause, reason)
            for request in requests:
                book.cancel_queue.remove(request)
                book.counts["cancels_confirmed"] += 1
                if request is not requests[0]:
                    book.respond(OrderDone(cid=request.cid, order_id=order_id, reason=reason))

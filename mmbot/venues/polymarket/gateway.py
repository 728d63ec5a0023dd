"""The live ``OrderGateway``: the executor's requests as signed CLOB V2 orders over REST, and the
venue's answers back into the executor's inbox (DESIGN §3: acknowledgement as input).

``send`` never blocks: requests queue on an unbounded stream, and the gateway's own task takes
everything pending at once, posts submits in batches of at most 15 and cancels in one request.
Each order's venue ID (the EIP-712 digest) is computed before it is sent, so an answer that never
comes can still be matched on the user channel. Outcomes, per ``rest.py``:

* accepted (``live``, ``matched``, ``delayed``, ``unmatched``) → ``OrderAccepted`` with the venue
  ID; the fills themselves come from the user channel;
* refused (``success: false``, an empty ``orderID`` in a batch, or a 4xx) → ``OrderRejected``
  with the venue's string;
* ``Retryable`` (429, 425, not sent) → the same batch again after the advised delay: nothing
  happened at the venue; after a 425 only post-only orders are sent for two minutes (the venue's
  post-only window), others are rejected locally;
* ``OutcomeUnknown`` → ``OrderOutcomeUnknown`` for every order of the batch: the reservation
  stays, nothing is resent; the user channel's PLACEMENT of the order (``confirm_placed``), or
  failing that a look at the open orders after a while (``settle_unknown``), says whether it
  rests (``OrderAccepted``) or not (``OrderDone``);
* ``Fatal`` propagates: the supervisor stops trading.

With ``dry_run`` every order is built and signed exactly as it would be sent, recorded as a
``dry_run_order`` row (the order's fields and venue ID, not its signature) and answered locally as
resting; cancels are answered locally; nothing is sent and no heartbeat is needed.

Not built yet: merges (an on-chain call, not a CLOB request) are refused with an error row.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import trio

from mmbot.facts.bus import Stream
from mmbot.model import (
    CancelRejected, CancelRequest, MarketInfo, MergeRequest, OrderAccepted, OrderDone, OrderOutcomeUnknown,
    OrderRejected, SubmitRequest, TimeInForce, VenueRequest, VenueResponse, format_micro, size_off_step,
)
from mmbot.ports import Clock, EventSink, OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.auth import EOA, OrderSigner, OrderV2, SigningError, order_amounts
from mmbot.venues.polymarket.rest import MAX_BATCH, ClobRest, EngineRestarting

ACCEPTED_STATUSES = frozenset({"live", "matched", "delayed", "unmatched"})
MAX_RETRIES = 5
POST_ONLY_WINDOW_NS = 120_000_000_000  # after the last 425, the venue rejects takers this long
HEARTBEAT_S = 5  # the venue cancels everything after 10 s without one


class LiveGateway:
    def __init__(
        self, *, rest: ClobRest, signer: OrderSigner, owner: str, markets: Callable[[str], MarketInfo | None],
        respond: Callable[[VenueResponse], None], sink: EventSink, clock: Clock, rng: random.Random,
        maker: str | None = None, signature_type: int = EOA, dry_run: bool = False,
    ) -> None:
        self._rest = rest
        self._signer = signer
        self._owner = owner  # the API key
        self._markets = markets  # token -> its market
        self._respond = respond
        self._sink = sink
        self._clock = clock
        self._rng = rng
        self._maker = maker or signer.key.address
        self._signature_type = signature_type
        self._dry_run = dry_run
        self._pending: Stream[VenueRequest] = Stream()
        self.venue_ids: dict[str, str] = {}  # our order id -> the venue's (the digest)
        self.local_ids: dict[str, str] = {}  # and back
        self._post_only_until_ns = 0  # after an engine restart: only post-only orders until then
        self.unknown_since: dict[str, int] = {}  # our order id -> when its post went unanswered

    def send(self, request: VenueRequest) -> None:
        self._pending.send(request)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if not self._dry_run:
                nursery.start_soon(self._heartbeats)
            task_status.started()
            await self._requests()

    async def _heartbeats(self) -> None:
        """Every ``HEARTBEAT_S``: without them the venue cancels every resting order (cancel-on-
        disconnect), which is the point — if this process dies, its quotes do not outlive it."""
        beat = ""
        while True:
            try:
                beat = await self._rest.heartbeat(beat)
            except (Retryable, Rejected, OutcomeUnknown) as exc:
                self._sink.record("error", "heartbeat", {"where": "gateway", "error": f"heartbeat: {exc}"})
            await trio.sleep(HEARTBEAT_S)

    async def _requests(self) -> None:
        while True:
            requests = await self._pending.receive_batch()
            submits = [r for r in requests if isinstance(r, SubmitRequest)]
            cancels = [r for r in requests if isinstance(r, CancelRequest)]
            for merge in (r for r in requests if isinstance(r, MergeRequest)):
                self._sink.record("error", merge.cid, {"where": "gateway", "error": "merges are not built for live"})
            for at in range(0, len(submits), MAX_BATCH):
                await self._submit(submits[at : at + MAX_BATCH])
            if cancels:
                await self._cancel(cancels)

    # ------------------------------------------------------------------ submits

    def body(self, request: SubmitRequest) -> dict[str, Any]:
        """The ``POST /order`` body of one request, signed; remembers its venue ID."""
        info = self._markets(request.token)
        if info is None:
            raise SigningError(f"no market known for token {request.token}")
        if request.price % info.tick:  # order_amounts would round it: never send a price we did not choose
            raise SigningError(f"INVALID_ORDER_MIN_TICK_SIZE: price {format_micro(request.price)} is not on the"
                               f" {format_micro(info.tick)} grid")
        if (off_step := size_off_step(request.size)) is not None:  # nor a size
            raise SigningError(off_step)
        maker_amount, taker_amount = order_amounts(
            request.side, format_micro(request.price), format_micro(request.size), format_micro(info.tick)
        )
        order = OrderV2(
            salt=self._rng.getrandbits(48), maker=self._maker, signer=self._signer.key.address,
            token_id=int(request.token), maker_amount=maker_amount, taker_amount=taker_amount, side=request.side,
            signature_type=self._signature_type, timestamp_ms=self._clock.now_ns() // 1_000_000,
        )
        venue_id, signature = self._signer.sign(order, neg_risk=info.neg_risk)
        self.venue_ids[request.order_id] = venue_id
        self.local_ids[venue_id] = request.order_id
        return {"order": order.wire(signature), "owner": self._owner, "orderType": request.tif.value,
                "postOnly": request.post_only and request.tif in (TimeInForce.GTC, TimeInForce.GTD)}

    async def _submit(self, batch: list[SubmitRequest]) -> None:
        bodies, signed = [], []
        in_window = self._clock.now_ns() < self._post_only_until_ns
        for request in batch:
            if in_window and not request.post_only:
                self._respond(OrderRejected(cid=request.cid, order_id=request.order_id,
                                            reason="local: post-only window after an engine restart"))
                continue
            try:
                bodies.append(self.body(request))
                signed.append(request)
            except SigningError as exc:
                self._respond(OrderRejected(cid=request.cid, order_id=request.order_id, reason=f"local: {exc}"))
        if not signed:
            return
        if self._dry_run:
            self._pretend_sent(signed, bodies)
            return
        for attempt in range(MAX_RETRIES + 1):
            try:
                answers = await self._rest.post_orders(bodies)
                break
            except Retryable as exc:
                if isinstance(exc, EngineRestarting):
                    self._post_only_until_ns = self._clock.now_ns() + POST_ONLY_WINDOW_NS
                if attempt == MAX_RETRIES:
                    for request in signed:
                        self._respond(OrderRejected(cid=request.cid, order_id=request.order_id,
                                                    reason=f"not sent: {exc}"))
                    return
                await trio.sleep(exc.retry_after_s or 2**attempt)
            except Rejected as exc:
                for request in signed:
                    self._respond(OrderRejected(cid=request.cid, order_id=request.order_id, reason=exc.reason))
                return
            except OutcomeUnknown as exc:
                for request in signed:
                    self.unknown_since[request.order_id] = self._clock.now_ns()
                    self._respond(OrderOutcomeUnknown(cid=request.cid, order_id=request.order_id, detail=str(exc)))
                return
        for request, answer in zip(signed, answers):
            self._answer(request, answer)

    def _answer(self, request: SubmitRequest, answer: dict[str, Any]) -> None:
        venue_id = answer.get("orderID") or ""
        status = str(answer.get("status", "")).lower()
        if answer.get("success") and venue_id and status in ACCEPTED_STATUSES:
            if venue_id != self.venue_ids[request.order_id]:
                self._sink.record("error", request.cid, {"where": "gateway", "error": "venue order id differs",
                                                         "ours": self.venue_ids[request.order_id], "venue": venue_id})
            self._respond(OrderAccepted(cid=request.cid, order_id=request.order_id, venue_order_id=venue_id))
        else:
            reason = answer.get("errorMsg") or f"refused ({status or 'no status'})"
            self._respond(OrderRejected(cid=request.cid, order_id=request.order_id, reason=str(reason)))

    def _pretend_sent(self, signed: list[SubmitRequest], bodies: list[dict[str, Any]]) -> None:
        for request, body in zip(signed, bodies):
            order = {k: v for k, v in body["order"].items() if k != "signature"}
            venue_id = self.venue_ids[request.order_id]
            self._sink.record("dry_run_order", request.cid, {
                "order_id": request.order_id, "venue_order_id": venue_id, "order": order,
                "order_type": body["orderType"], "post_only": body["postOnly"],
            }, market=request.market, token=request.token)
            self._respond(OrderAccepted(cid=request.cid, order_id=request.order_id, venue_order_id=venue_id))

    # ------------------------------------------------------------------ unknown outcomes

    def confirm_placed(self, venue_id: str, cid: str) -> None:
        """The user channel saw the order rest: an unanswered post did reach the book."""
        order_id = self.local_ids.get(venue_id)
        if order_id is not None and self.unknown_since.pop(order_id, None) is not None:
            self._respond(OrderAccepted(cid=cid, order_id=order_id, venue_order_id=venue_id))

    def unknown_due(self, now_ns: int, after_ns: int) -> list[str]:
        """Orders whose post has gone unanswered for ``after_ns``, and no PLACEMENT seen either."""
        return [order_id for order_id, since in self.unknown_since.items() if now_ns - since >= after_ns]

    def settle_unknown(self, order_id: str, resting: bool, cid: str) -> None:
        """The venue's open orders, asked: the order rests (accepted), or it is not on the book —
        never placed, or already filled or cancelled; its fills, if any, come from the user channel
        and reconciliation."""
        if self.unknown_since.pop(order_id, None) is None:
            return
        if resting:
            self._respond(OrderAccepted(cid=cid, order_id=order_id, venue_order_id=self.venue_ids[order_id]))
        else:
            self._respond(OrderDone(cid=cid, order_id=order_id, reason="not on the venue's book"))

    # ------------------------------------------------------------------ cancels

    async def _cancel(self, cancels: list[CancelRequest]) -> None:
        by_venue = {self.venue_ids[c.order_id]: c for c in cancels if c.order_id in self.venue_ids}
        for unknown in (c for c in cancels if c.order_id not in self.venue_ids):
            self._respond(CancelRejected(cid=unknown.cid, order_id=unknown.order_id, reason="never sent"))
        if not by_venue:
            return
        if self._dry_run:
            for request in by_venue.values():
                self._respond(OrderDone(cid=request.cid, order_id=request.order_id, reason="canceled"))
            return
        try:
            answer = await self._rest.cancel(list(by_venue))
        except (Retryable, Rejected, OutcomeUnknown) as exc:
            # the order stays PENDING_CANCEL; the user channel (or a later cancel) settles it
            for request in by_venue.values():
                self._sink.record("error", request.cid, {"where": "gateway", "error": f"cancel: {exc}"})
            return
        for venue_id in answer.get("canceled", []):
            if (request := by_venue.get(venue_id)) is not None:
                self._respond(OrderDone(cid=request.cid, order_id=request.order_id, reason="canceled"))
        for venue_id, reason in (answer.get("not_canceled") or {}).items():
            if (request := by_venue.get(venue_id)) is not None:
                self._respond(CancelRejected(cid=request.cid, order_id=request.order_id, reason=str(reason)))

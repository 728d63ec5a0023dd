"""The live ``OrderGateway``: the executor's requests as signed CLOB V2 orders over REST, and the
venue's answers back into the executor's inbox (DESIGN §3: acknowledgement as input).

``send`` never blocks: it routes each request (``gateway_book.py``) and three lanes, each its own
task, do the I/O:

* the submit lane (``submit_lane.py``) signs and posts orders in batches of at most 15, retries a
  batch while it provably was not sent, and never resends one that may have been;
* the cancel lane (``cancel_lane.py``) sends cancels, retries them (a cancel is idempotent), and
  escalates one that cannot be confirmed to cancel-by-market, then cancel-all: a cancel is never
  behind a submit, and never dropped;
* the heartbeat lane posts ``/v1/heartbeats`` every 5 s, echoing the id the last one returned:
  without them the venue cancels every resting order (cancel-on-disconnect), which is the point —
  if this process dies, its quotes do not outlive it.

Each order's venue ID (the EIP-712 digest) is computed before it is sent, so an answer that never
comes can still be matched on the user channel. An order whose post went unanswered is settled by
the session: the user channel's PLACEMENT of it (``confirm_placed``), or failing that a look at
the open orders after a while (``unknown_due``, ``settle_unknown``). ``Fatal`` propagates out of
the lane: the supervisor stops trading. Each lane may be restarted by the supervisor after a crash;
what it had in hand is on the lane, found by its successor (see the lanes' modules).

With ``dry_run`` every order is built and signed exactly as it would be sent, recorded as a
``dry_run_order`` row (the order's fields and venue ID, not its signature) and answered locally as
resting; cancels are answered locally; nothing is sent and no heartbeat is needed.

Merges and redemptions are on-chain actions, not CLOB requests: they go to the chain lane
(``chain.py``) when the run has chain access; without it each is answered ``ChainActionFailed`` at
once, so the executor releases what it held for it.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable, Mapping

import trio

from mmbot.backoff import Backoff
from mmbot.config import VenueConfig
from mmbot.model import (
    CancelRequest, ChainActionFailed, MarketInfo, MergeRequest, RedeemRequest, SubmitRequest, TimeInForce, VenueRequest,
    VenueResponse, format_micro, size_off_step,
)
from mmbot.ports import Clock, EventSink, OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.auth import (
    EOA, OrderSigner, OrderV2, SigningError, market_order_amounts, order_amounts,
)
from mmbot.venues.polymarket.cancel_lane import CancelLane
from mmbot.venues.polymarket.chain import ChainLane
from mmbot.venues.polymarket.gateway_book import GatewayBook, Phase, Tracked
from mmbot.venues.polymarket.rest import ClobRest, RateLimited
from mmbot.venues.polymarket.submit_lane import SubmitLane

HEARTBEAT_S = 5  # the venue cancels everything after 10 s without one
NO_CHAIN = "no chain access: pass --rpc (and relayer credentials for a deposit wallet)"


class LiveGateway:
    def __init__(
        self, *, rest: ClobRest, signer: OrderSigner, owner: str, markets: Callable[[str], MarketInfo | None],
        respond: Callable[[VenueResponse], None], sink: EventSink, clock: Clock, rng: random.Random,
        config: VenueConfig, maker: str | None = None, signature_type: int = EOA, dry_run: bool = False,
        chain: ChainLane | None = None,
    ) -> None:
        self._rest = rest
        self._respond = respond
        self._chain = chain  # merges and redemptions; None: the run has no chain access
        self._signer = signer
        self._owner = owner  # the API key
        self._markets = markets  # token -> its market
        self._sink = sink
        self._clock = clock
        self._rng = rng  # order salts
        self._maker = maker or signer.signer_address
        self._signature_type = signature_type
        self._dry_run = dry_run
        self._book = GatewayBook(respond=respond, sink=sink, clock=clock)
        # each lane its own generator, drawn from the injected one: the lanes' timing never shifts the salts'
        lane_rngs = [random.Random(rng.getrandbits(64)) for _ in range(3)]
        self._submits = SubmitLane(book=self._book, rest=rest, sign=self.body, config=config, rng=lane_rngs[0],
                                   pretend=self._pretend_sent if dry_run else None)
        self._cancels = CancelLane(book=self._book, rest=rest, config=config, rng=lane_rngs[1], dry_run=dry_run)
        self._beat_backoff = Backoff(base_s=config.retry_base_ms / 1000, cap_s=config.retry_cap_s, rng=lane_rngs[2])
        self._heartbeat_id = ""
        self._beats_failing = 0
        self.venue_ids: Mapping[str, str] = self._book.venue_ids  # ours -> the venue's (the digest)
        self.local_ids: Mapping[str, str] = self._book.local_ids  # the venue's -> ours
        self.unknown_since: dict[str, int] = self._book.unknown_since  # ours -> when its post went unanswered

    def send(self, request: VenueRequest) -> None:
        if isinstance(request, SubmitRequest):
            self._book.add_submit(request)
        elif isinstance(request, CancelRequest):
            self._book.route_cancel(request)
        elif isinstance(request, (MergeRequest, RedeemRequest)):
            if self._chain is not None:
                self._chain.send(request)
                return
            action = "merge" if isinstance(request, MergeRequest) else "redeem"
            self._sink.record("chain_failed", request.cid, {"action": action, "reason": NO_CHAIN, "retryable": False},
                              market=request.market)
            self._respond(ChainActionFailed(cid=request.cid, market=request.market, action=action, reason=NO_CHAIN))

    # ------------------------------------------------------------------ the lanes

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """All three lanes in one nursery (tests and simple callers; the session supervises each)."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.run_cancels)
            await nursery.start(self.run_submits)
            await nursery.start(self.run_heartbeats)
            task_status.started()

    async def run_submits(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._submits.run(task_status=task_status)

    async def run_cancels(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._cancels.run(task_status=task_status)

    async def run_heartbeats(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Every ``HEARTBEAT_S``; a failed one is tried again sooner (the backoff's delay, never
        more than the interval: the venue's dead-man switch does not wait for a Retry-After)."""
        task_status.started()
        if self._dry_run:
            return
        counts = self._book.counts
        while True:
            try:
                self._heartbeat_id = await self._rest.heartbeat(self._heartbeat_id)
            except (Retryable, Rejected, OutcomeUnknown) as exc:
                counts["heartbeats_failed"] += 1
                if isinstance(exc, RateLimited):
                    counts["rate_limited"] += 1
                self._beats_failing += 1
                if isinstance(exc, Rejected):
                    self._heartbeat_id = ""  # an id the venue refused without naming the current one
                self._sink.record("error", "heartbeat", {"where": "gateway", "error": f"heartbeat: {exc}",
                                                         "failing_in_a_row": self._beats_failing})
                advised = exc.retry_after_s if isinstance(exc, Retryable) else None
                delay = min(self._beat_backoff.next_s(advised), HEARTBEAT_S)  # float-ok: a delay
            else:
                counts["heartbeats_ok"] += 1
                self._beats_failing = 0
                self._beat_backoff.reset()
                delay = HEARTBEAT_S
            await trio.sleep(delay)

    # ------------------------------------------------------------------ signing

    def body(self, request: SubmitRequest) -> dict[str, Any]:
        """The ``POST /order`` body of one request, signed; remembers its venue ID. A FOK/FAK order
        carries market-order amounts (a BUY's pUSD to spend, whole cents), any other limit ones."""
        info = self._markets(request.token)
        if info is None:
            raise SigningError(f"no market known for token {request.token}")
        if request.price % info.tick:  # order_amounts would round it: never send a price we did not choose
            raise SigningError(f"INVALID_ORDER_MIN_TICK_SIZE: price {format_micro(request.price)} is not on the"
                               f" {format_micro(info.tick)} grid")
        if (off_step := size_off_step(request.size)) is not None:  # nor a size
            raise SigningError(off_step)
        amounts = market_order_amounts if request.tif in (TimeInForce.FOK, TimeInForce.FAK) else order_amounts
        maker_amount, taker_amount = amounts(
            request.side, format_micro(request.price), format_micro(request.size), format_micro(info.tick)
        )
        order = OrderV2(
            salt=self._rng.getrandbits(48), maker=self._maker, signer=self._signer.signer_address,
            token_id=int(request.token), maker_amount=maker_amount, taker_amount=taker_amount, side=request.side,
            signature_type=self._signature_type, timestamp_ms=self._clock.now_ns() // 1_000_000,
        )
        venue_id, signature = self._signer.sign(order, neg_risk=info.neg_risk)
        self._book.remember_venue_id(request.order_id, venue_id)
        return {"order": order.wire(signature), "owner": self._owner, "orderType": request.tif.value,
                "postOnly": request.post_only and request.tif in (TimeInForce.GTC, TimeInForce.GTD)}

    def _pretend_sent(self, items: list[tuple[Tracked, dict[str, Any]]]) -> None:
        for tracked, body in items:
            request = tracked.request
            order = {k: v for k, v in body["order"].items() if k != "signature"}
            venue_id = self.venue_ids[request.order_id]
            self._sink.record("dry_run_order", request.cid, {
                "order_id": request.order_id, "venue_order_id": venue_id, "order": order,
                "order_type": body["orderType"], "post_only": body["postOnly"],
            }, market=request.market, token=request.token)
            self._book.accept(tracked, venue_id)

    # ------------------------------------------------------------------ unknown outcomes

    def confirm_placed(self, venue_id: str, cid: str) -> None:
        """The user channel saw the order rest: an unanswered post did reach the book."""
        order_id = self.local_ids.get(venue_id)
        if order_id is not None and self.unknown_since.pop(order_id, None) is not None:
            self._book.accept(self._book.orders[order_id], venue_id, cid)

    def token_of(self, order_id: str) -> str | None:
        """The token of an order the gateway still tracks."""
        tracked = self._book.orders.get(order_id)
        return None if tracked is None else tracked.request.token

    def unknown_due(self, now_ns: int, after_ns: int) -> list[str]:
        """Orders whose post has gone unanswered for ``after_ns``, and no PLACEMENT seen either."""
        return [order_id for order_id, since in self.unknown_since.items() if now_ns - since >= after_ns]

    def settle_unknown(self, order_id: str, resting: bool, cid: str) -> None:
        """The venue's open orders, asked: the order rests (accepted), or it is not on the book —
        never placed, or already filled or cancelled; its fills, if any, come from the user channel
        and reconciliation."""
        if self.unknown_since.pop(order_id, None) is None:
            return
        tracked = self._book.orders[order_id]
        if resting:
            self._book.accept(tracked, self.venue_ids[order_id], cid)
        else:
            self._book.done(tracked, cid, "not on the venue's book")

    # ------------------------------------------------------------------ bounded memory and statistics

    def forget(self, order_ids: Iterable[str]) -> int:
        """Drop ended orders from the id maps and every per-order record; returns how many. An order
        a lane still works on (queued, in flight, or a cancel of it pending) is kept."""
        return self._book.forget(order_ids, busy=self._submits.busy() | self._cancels.busy())

    def statistics(self) -> dict[str, int]:
        book = self._book
        in_batch = 0 if self._submits.batch is None else sum(
            t.phase in (Phase.BATCHED, Phase.SENDING) for t, _ in self._submits.batch.items)
        return {
            **book.counts,
            "submits_queued": len(book.submit_queue) + in_batch,
            "submits_unknown_open": len(book.unknown_since),
            "cancels_pending": len(book.cancel_queue) + len(self._cancels.batch) + book.cancels_held(),
            "heartbeats_failing_in_a_row": self._beats_failing,
            "id_map_size": len(book.venue_ids),
            "orders_tracked": len(book.orders),
        }

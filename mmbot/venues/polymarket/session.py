"""The venue session: one service owning everything that talks to the venue with signed orders
(DESIGN §3, §6) — the REST client's gateway (a submit lane, a cancel lane, heartbeats), the user
channel, the REST catch-up of our trades, the reconcile tick and the trading gate. It exposes the
executor's ``OrderGateway`` port (``gateway``) and statistics, and everything it learns goes into
the executor's inbox (``respond``). Its loops are handed to the nursery tree by ``services()``, each
to run under the supervisor (restart with backoff, breaker).

Never trading blind: new orders may go out only while the user channel is connected and the
trades it may have missed have been fetched (``gate.TradingGateState``). The gate starts closed;
the channel coming up starts a catch-up, whose end opens it; losing the channel closes it at once
(the executor cancels every open order) and a catch-up runs every ``catch_up_interval_s`` while it
is down — also when it never comes up at all, so fills of orders that matched before the cancels
landed are still booked. A run whose user channel never connected stops after
``user_channel_timeout_s`` (``failure`` says why; the run exits non-zero).

The catch-up asks for the trades matched since the last match time it can vouch for, less a
margin (the venue's times compared only with the venue's own), and books each leg once, by id.
"""

from __future__ import annotations

import math
import random
from typing import Callable

import trio

from mmbot.backoff import Backoff
from mmbot.config import Config
from mmbot.model import (
    CancelRejected, MalformedFrame, MarketInfo, OrderDone, TradingGate, UserTrade, VenueResponse,
)
from mmbot.ports import Clock, EventSink, OutcomeUnknown, Reconciliation, Rejected, Retryable, Service
from mmbot.venues.polymarket.auth import ApiCredentials, OrderSigner, SigningKey
from mmbot.venues.polymarket.chain import ChainLane
from mmbot.venues.polymarket.gate import TradingGateState
from mmbot.venues.polymarket.gateway import LiveGateway
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.polymarket.startup import StartupSnapshot
from mmbot.venues.polymarket.user_fills import CATCH_UP_MARGIN_S, UserFills, involves
from mmbot.venues.polymarket.ws import user_connection

RECONCILE_EVERY_S = 1
NOT_ON_BOOK = "already canceled or matched"  # the venue's reason for a cancel of a finished order
NOT_ON_BOOK_REASONS = (NOT_ON_BOOK, "not found")  # ... and of one it no longer remembers
HEARTBEATS_MISSED_TO_CLOSE = 2  # the venue cancels our orders after ~10 s without one: two 5 s beats


class VenueSession:
    def __init__(
        self, *, rest: ClobRest, key: SigningKey, creds: ApiCredentials, markets: Callable[[str], MarketInfo | None],
        respond: Callable[[VenueResponse | TradingGate], None], reconcile: Reconciliation, sink: EventSink,
        clock: Clock, config: Config, user_ws_url: str, snapshot: StartupSnapshot, rng: random.Random,
        on_failure: Callable[[str], None], funder: str | None = None, signature_type: int = 0, dry_run: bool = False,
        chain: ChainLane | None = None, signer: OrderSigner | None = None,
    ) -> None:
        """``rng``: the orders' salts; ``on_failure(reason)``: the run cannot go on (it stops);
        ``chain``: the lane of merges and redemptions (None: the run has no chain access, and the
        gateway answers them failed); ``signer``: the orders' signer (default: ``key``'s own, an
        EOA's; a deposit wallet's signs POLY_1271)."""
        self.chain = chain
        self._rest = rest
        self._respond = respond
        self._reconcile = reconcile
        self._sink = sink
        self._clock = clock
        self._config = config.venue
        self._on_failure = on_failure
        self.gateway = LiveGateway(rest=rest, signer=signer or OrderSigner(key), owner=creds.api_key, markets=markets,
                                   respond=self._from_gateway, sink=sink, clock=clock, rng=rng, config=config.venue,
                                   maker=funder, signature_type=signature_type, dry_run=dry_run, chain=chain)
        self.fills = UserFills(api_key=creds.api_key, addresses=frozenset({key.address, funder or key.address}),
                               our_ids=self.gateway.local_ids, markets=markets, respond=respond,
                               reconcile=reconcile.on_leg, sink=sink, placed=self.gateway.confirm_placed,
                               prerun=snapshot.trades, now_ns=clock.now_ns())
        self.user = user_connection(url=user_ws_url, creds=creds, markets=[], sink=sink, clock=clock,
                                    config=config.feed, on_frame=self.fills.on_frame, on_gap=self._on_gap,
                                    on_up=self._on_up, rng=random.Random(f"{config.seed}:user-channel"))
        self._catch_up_backoff = Backoff(base_s=self._config.retry_base_ms / 1000,  # float-ok: a delay
                                         cap_s=self._config.retry_cap_s, rng=random.Random(f"{config.seed}:catch-up"))
        self.gate = TradingGateState()
        self._gate_open = False
        self._gates = 0
        # The match time (venue's clock) up to which every trade of ours is known to have been seen;
        # None while the channel is up and caught up (then it is the latest match seen).
        self._window_from_s: int | None = self.fills.last_match_s
        self._catch_up_wanted = trio.Event()
        self._not_resting: dict[str, str] = {}  # order id -> cid: the venue says it is no longer on its book
        self.failure = ""
        self.counts = {"catch_ups": 0, "catch_up_failures": 0, "outside_window": 0, "reconcile_asks": 0,
                       "reconcile_failures": 0, "gate_closed": 0, "orders_ended_at_venue": 0,
                       "trades_of_ended_orders": 0}

    # ------------------------------------------------------------------ the loops, for the supervisor

    def services(self) -> list[tuple[str, Service]]:
        return [
            ("venue-cancels", self.gateway.run_cancels),
            ("venue-submits", self.gateway.run_submits),
            ("venue-heartbeats", self.gateway.run_heartbeats),
            ("user-channel", self._run_user_channel),
            ("user-catch-up", self._run_catch_up),
            ("venue-reconcile", self._run_reconcile),
            ("user-channel-watch", self._watch_user_channel),
        ] + ([("chain", self.chain.run)] if self.chain is not None else [])

    def close_gate_at_start(self) -> TradingGate:
        """The first message of a run: nothing may be placed before the user channel is caught up."""
        return self._gate_message(False, self.gate.why_closed())

    # ------------------------------------------------------------------ user channel

    def _on_up(self) -> None:
        self.gate.on_up(self.user.sessions)
        self._catch_up_wanted.set()

    def _on_gap(self, keys: list[str], reason: str) -> None:
        self.gate.on_down()
        if self._window_from_s is None:
            self._window_from_s = self.fills.last_match_s
        self._sink.record("user_gap", "user", {"reason": reason})
        self._sync_gate()
        self._catch_up_wanted.set()

    async def _run_user_channel(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self.user.run(task_status=task_status)
        except Exception:
            self.user.lost("the user channel's task crashed")  # the gate closes before the restart
            raise

    async def _watch_user_channel(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(self._config.user_channel_timeout_s)
        if self.user.sessions == 0:
            self.fail(f"the user channel at {self.user.url} never connected in {self._config.user_channel_timeout_s} s,"
                      " so no order was placed")

    def final_failure(self) -> str:
        """At the end of the run: why it failed, if it did — a user channel that never connected
        fails it even if the run ended before the watch gave up on it."""
        if not self.failure and self.user.sessions == 0:
            self.failure = f"the user channel at {self.user.url} never connected, so no order was placed"
        return self.failure

    def fail(self, reason: str) -> None:
        if not self.failure:
            self.failure = reason
            self._sink.record("error", "session", {"where": "session", "error": reason})
            self._on_failure(reason)

    # ------------------------------------------------------------------ catch-up

    async def _run_catch_up(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            wait_s = math.inf if self.gate.connected else self._config.catch_up_interval_s
            with trio.move_on_after(wait_s):
                await self._catch_up_wanted.wait()
            self._catch_up_wanted = trio.Event()
            if self.gate.connected and self.gate.open:
                continue  # a quiet interval while all is well: nothing to catch up
            began_under = self.user.sessions if self.gate.connected else 0
            if await self._catch_up_once():
                self._catch_up_backoff.reset()
                self.gate.on_caught_up(began_under)
                if self.gate.open:
                    self._window_from_s = None
                self._sync_gate()
            else:
                self._catch_up_wanted.set()
                await trio.sleep(self._catch_up_backoff.next_s())

    def _after_s(self) -> int | None:
        window = self.fills.last_match_s if self._window_from_s is None else self._window_from_s
        return window - CATCH_UP_MARGIN_S if window > 0 else None

    async def _catch_up_once(self) -> bool:
        after_s = self._after_s()
        try:
            records = await self._rest.trades(after_s=after_s)
        except (Retryable, Rejected, OutcomeUnknown) as exc:
            self.counts["catch_up_failures"] += 1
            self._sink.record("error", "catch_up", {"where": "catch_up", "error": f"trades: {exc}"})
            return False
        # a venue that ignored ``after`` must not bring back trades we forgot as long finished
        inside = [r for r in records
                  if isinstance(r, MalformedFrame) or after_s is None or r.match_time_s >= after_s]
        self.counts["outside_window"] += len(records) - len(inside)
        new = self.fills.on_records(inside, self._clock.now_ns())
        matched = [r.match_time_s for r in inside if isinstance(r, UserTrade)]
        if matched and self._window_from_s is not None:
            self._window_from_s = max(self._window_from_s, max(matched))
        self.counts["catch_ups"] += 1
        self._sink.record("user_catch_up", "user", {"after_s": after_s, "trades": len(records), "new_legs": new,
                                                    "connected": self.gate.connected})
        return True

    # ------------------------------------------------------------------ the gate

    def _sync_gate(self) -> None:
        if self.gate.open != self._gate_open:
            self._respond(self._gate_message(self.gate.open, "user channel up, caught up, heartbeats ok"
                                             if self.gate.open else self.gate.why_closed()))

    def _gate_message(self, open_: bool, reason: str) -> TradingGate:
        self._gate_open = open_
        self._gates += 1
        if not open_:
            self.counts["gate_closed"] += 1
        return TradingGate(cid=f"gate{self._gates}", open=open_, reason=reason)

    # ------------------------------------------------------------------ orders the venue ended unseen

    def _from_gateway(self, msg: VenueResponse) -> None:
        """The gateway's answers on their way to the executor. A cancel refused because the order
        is no longer on the venue's book means it was cancelled or *matched* — a fill whose report
        may have been lost (the user channel is best-effort even while connected). Such an order
        is settled from the venue's own record of its trades, then ended."""
        if isinstance(msg, CancelRejected) and any(reason in msg.reason for reason in NOT_ON_BOOK_REASONS):
            self._not_resting.setdefault(msg.order_id, msg.cid)
        self._respond(msg)

    async def _settle_not_resting(self) -> None:
        """One ``/data/trades`` read per token, however many of its orders wait to be settled."""
        fetched: dict[str, list[UserTrade | MalformedFrame]] = {}
        for order_id, cid in list(self._not_resting.items()):
            token, venue_id = self.gateway.token_of(order_id), self.gateway.venue_ids.get(order_id)
            if token is None or venue_id is None:
                del self._not_resting[order_id]
                continue
            if token not in fetched:
                try:
                    fetched[token] = await self._rest.trades(asset_id=token)
                except (Retryable, Rejected, OutcomeUnknown) as exc:  # asked again next second
                    self._sink.record("error", cid, {"where": "reconcile", "error": f"trades of {order_id}: {exc}"})
                    return
            mine = [r for r in fetched[token] if isinstance(r, UserTrade) and involves(r, venue_id)]
            new = self.fills.on_records(mine, self._clock.now_ns())
            del self._not_resting[order_id]
            self.counts["orders_ended_at_venue"] += 1
            self.counts["trades_of_ended_orders"] += new
            self._sink.record("order_settled_from_trades", cid, {"order_id": order_id, "trades": len(mine),
                                                                 "new_legs": new})
            self._respond(OrderDone(cid=cid, order_id=order_id, reason="not on the venue's book: " + NOT_ON_BOOK))

    # ------------------------------------------------------------------ reconcile tick

    async def _run_reconcile(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Once a second: the heartbeats' health into the gate; ask the venue about orders whose
        fills it never reported, and about posts that went unanswered and were never seen resting."""
        task_status.started()
        unknown_after_ns = self._config.unknown_after_s * 1_000_000_000
        while True:
            await trio.sleep(RECONCILE_EVERY_S)
            self.gate.on_heartbeats(self.gateway.statistics()["heartbeats_failing_in_a_row"]
                                    < HEARTBEATS_MISSED_TO_CLOSE)
            self._sync_gate()
            if self._not_resting:
                await self._settle_not_resting()
            now = self._clock.now_ns()
            asks = self._reconcile.due_queries(now)
            unknown = self.gateway.unknown_due(now, unknown_after_ns)
            if not asks and not unknown:
                continue
            try:
                open_now = {o.id: o for o in await self._rest.open_orders()}
            except (Retryable, Rejected, OutcomeUnknown) as exc:  # asked again next second
                self.counts["reconcile_failures"] += 1
                self._sink.record("error", "reconcile", {"where": "reconcile", "error": f"query: {exc}"})
                continue
            self.counts["reconcile_asks"] += 1
            now = self._clock.now_ns()
            for order_id in asks:
                venue = open_now.get(self.gateway.venue_ids.get(order_id, ""))
                if venue is not None:
                    self._reconcile.on_order_truth(order_id, venue.size_matched, venue.price, now)
            for order_id in unknown:
                venue_id = self.gateway.venue_ids.get(order_id, "")
                self.gateway.settle_unknown(order_id, venue_id in open_now, f"asked{self.counts['reconcile_asks']}")

    # ------------------------------------------------------------------ bounded memory and statistics

    def forget(self, order_ids: list[str], now_ns: int, horizon_ns: int) -> int:
        """The executor pruned ``order_ids``: drop them here too, with trades long final."""
        after_s = self._after_s()
        forgotten = self.gateway.forget(order_ids)
        return forgotten + self.fills.forget(now_ns, horizon_ns, after_s or 0,
                                             tracked=lambda venue_id: venue_id in self.gateway.local_ids)

    def statistics(self) -> dict[str, object]:
        return {
            "gate_open": self.gate.open, "user_connected": self.gate.connected, "user_sessions": self.user.sessions,
            "user_frames": self.user.frames, **self.counts,
            "fills": dict(self.fills.counts), "trades_remembered": self.fills.remembered(),
            "gateway": self.gateway.statistics(),
            **({"chain": self.chain.statistics()} if self.chain is not None else {}),
        }

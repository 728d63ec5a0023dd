"""Composition root for trading with signed orders (``--mode sim`` against the simulator; the same
wiring is what ``--mode live`` will run): the replay/paper engine with the live gateway, the user
channel and reconciliation.

Fills come from the user channel: the first report of each of our trade legs that has not failed
becomes a ``Fill`` in the executor's inbox (booked at once: optimistic), and every report goes to
the reconciler, which reverses a leg that fails later and adopts legs the executor refused or
never saw. At start-up the venue's order version is checked and every open order of the account
is cancelled (a clean slate: nothing rests on decisions of an earlier run).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import trio

from mmbot import __version__
from mmbot.app import Engine, build_engine, market_channel, run_live_tree
from mmbot.clock import TrioClock, wall_ns
from mmbot.config import Config
from mmbot.decisions.markets import Markets
from mmbot.decisions.reconcile import FAILED, Reconciler
from mmbot.memory.log import EventLog
from mmbot.model import Fill, Ids, MalformedFrame, MarketInfo, OrderDone, UserOrder, UserTrade, parse_micro, taker_fee
from mmbot.ports import OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.auth import ApiCredentials, OrderSigner, SigningKey
from mmbot.venues.polymarket.gateway import LiveGateway
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.polymarket.user_fills import our_legs
from mmbot.venues.polymarket.wire_user import decode_user_frame
from mmbot.venues.polymarket.ws import user_connection

RECONCILE_TIMEOUT_NS = 10_000_000_000


async def run_trading(
    *, config: Config, markets: list[MarketInfo], ws_url: str, user_ws_url: str, rest_url: str, key: SigningKey,
    creds: ApiCredentials | None, db_path: str | Path, mode: str, duration_s: int | None = None,
    clock: TrioClock | None = None, stop: trio.Event | None = None, task_status: Any = trio.TASK_STATUS_IGNORED,
) -> Engine:
    clock = clock or TrioClock()
    async with httpx.AsyncClient(base_url=rest_url, timeout=10) as http:
        if creds is None:
            creds = await ClobRest.create_or_derive_api_key(http, key, clock)
        rest = ClobRest(client=http, creds=creds, address=key.address, clock=clock)
        await rest.check_version()
        log = EventLog(db_path, clock=clock, wall=wall_ns, batch_rows=config.log.batch_rows,
                       batch_ms=config.log.batch_ms)
        log.start_run(mode=mode, seed=config.seed, recording=ws_url, config_hash=config.digest(),
                      code_version=__version__)
        cleared = await rest.cancel_all()
        log.record("startup_cancel_all", "run", {"canceled": len(cleared.get("canceled", []))})
        built: dict[str, Any] = {}  # the gateway and reconciler, made while the engine is wired

        def gateway_factory(*, books, markets, scheduler, clock, respond, rng, sink) -> LiveGateway:  # noqa: ANN001
            built["gateway"] = LiveGateway(rest=rest, signer=OrderSigner(key), owner=creds.api_key,
                                           markets=markets.for_token, respond=respond, sink=sink, clock=clock, rng=rng)
            built["reconciler"] = Reconciler(emit=respond, ids=Ids(), timeout_ns=RECONCILE_TIMEOUT_NS)
            return built["gateway"]

        engine = build_engine(config=config, clock=clock, log=log, markets=Markets(markets),
                              gateway_factory=gateway_factory, seed=config.seed,
                              publish_fill=lambda fill: built["reconciler"].on_our_fill(fill, clock.now_ns()))
        gateway, reconciler = built["gateway"], built["reconciler"]
        log.record("run_start", "run", {"mode": mode, "seed": config.seed, "ws": ws_url, "rest": rest_url,
                                        "address": key.address, "markets": len(markets),
                                        "config_hash": config.digest()})
        engine.every(config.log.stats_interval_s, engine.record_stats, "stats")
        engine.every(config.log.stats_interval_s, engine.record_pnl, "pnl")
        market_channel(engine, markets, ws_url)
        user = user_connection(
            url=user_ws_url, creds=creds, markets=[], sink=log, clock=clock, config=config.feed,
            on_frame=_user_frames(engine, gateway, reconciler, creds, key, clock),
            on_gap=lambda keys, reason: log.record("user_gap", "user", {"reason": reason}),
            rng=random.Random(config.seed ^ 0x05E4),
        )

        async def reconcile(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await _reconcile_loop(reconciler, rest, gateway, clock, log)

        await run_live_tree(engine, services=(gateway.run, user.run, reconcile), stop=stop, duration_s=duration_s,
                            drain_s=3, task_status=task_status)
    return engine


def _user_frames(engine: Engine, gateway: LiveGateway, reconciler: Reconciler, creds: ApiCredentials,
                 key: SigningKey, clock: TrioClock) -> Any:
    """User-channel frames → optimistic fills for the executor, every report to the reconciler."""
    sent: set[str] = set()
    addresses = frozenset({key.address.lower()})
    counter = [0]

    def fee_of(token: str, price: int, size: int) -> int:
        info = engine.markets.for_token(token)
        return 0 if info is None else taker_fee(size, price, info.fee_rate, info.fee_exponent)

    def on_frame(text: str, recv_ns: int) -> None:
        counter[0] += 1
        for msg in decode_user_frame(text, recv_ns=recv_ns, cid=f"u{counter[0]}"):
            if isinstance(msg, UserTrade):
                for leg in our_legs(msg, api_key=creds.api_key, addresses=addresses, our_ids=gateway.local_ids,
                                    taker_fee=fee_of):
                    if leg.status != FAILED and leg.trade_id not in sent:
                        sent.add(leg.trade_id)
                        engine.inbox.send(Fill(
                            cid=msg.cid, fill_id=leg.trade_id, order_id=leg.order_id, market=leg.market,
                            token=leg.token, side=leg.side, price=leg.price, size=leg.size, fee=leg.fee,
                            liquidity=leg.liquidity, ts_ns=recv_ns,
                        ))
                    reconciler.on_leg(leg, recv_ns)
            elif isinstance(msg, UserOrder) and msg.event == "CANCELLATION":
                local = gateway.local_ids.get(msg.order_id)
                if local is not None:
                    engine.inbox.send(OrderDone(cid=msg.cid, order_id=local, reason=msg.status.lower()))
            elif isinstance(msg, MalformedFrame):
                engine.log.record("frame_malformed", msg.cid, {"channel": "user", "error": msg.error,
                                                               "excerpt": msg.excerpt})

    return on_frame


async def _reconcile_loop(reconciler: Reconciler, rest: ClobRest, gateway: LiveGateway, clock: TrioClock,
                          log: EventLog) -> None:
    """Once a second: adopt what waited long enough, and ask the venue about orders it never reported."""
    while True:
        await trio.sleep(1)
        asks = reconciler.due_queries(clock.now_ns())
        if not asks:
            continue
        try:
            open_now = {o["id"]: o for o in await rest.open_orders()}
        except (Retryable, Rejected, OutcomeUnknown) as exc:  # asked again next second; Fatal stops the run
            log.record("error", "reconcile", {"where": "reconcile", "error": f"query: {exc}"})
            continue
        for order_id in asks:
            venue = open_now.get(gateway.venue_ids.get(order_id, ""))
            if venue is not None:
                reconciler.on_order_truth(order_id, parse_micro(venue["size_matched"]), parse_micro(venue["price"]),
                                          clock.now_ns())


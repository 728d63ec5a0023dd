"""Composition root for trading with signed orders — ``--mode sim`` against the simulator and
``--mode live`` against Polymarket, wired identically: the replay/paper engine with the venue
session (``venues/polymarket/session.py``) as its gateway, and reconciliation.

Start-up (``venues/polymarket/startup.py``) happens inside the run's event log, so a refusal (a
401, an unapproved allowance) closes the log with the run marked as failed. ``dry_run`` signs and
logs every order without sending it (nothing is cancelled at start-up either): what the strategy
would do, with real books and a real account.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Callable

import httpx
import trio

from mmbot import __version__
from mmbot.app import Engine, build_engine, market_channel, run_live_tree
from mmbot.app_tree import ExtraServices, LiveParts, gamma_services, schedule_rows
from mmbot.clock import TrioClock, wall_ns
from mmbot.config import Config, SelectConfig
from mmbot.decisions.markets import Markets
from mmbot.decisions.reconcile import Reconciler
from mmbot.memory.log import EventLog
from mmbot.model import Ids, MarketInfo
from mmbot.ports import EventSink, OrderGateway, Retryable, VenueError
from mmbot.app_chain import ChainAccess, ChainSetupError, check_ready, open_chain, wait_for_unfinished
from mmbot.venues.polymarket.auth import EOA, POLY_1271, ApiCredentials, OrderSigner, SigningKey
from mmbot.venues.polymarket.chain import ChainLane
from mmbot.venues.polymarket.sign_1271 import DepositWalletSigner
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.polymarket.session import VenueSession
from mmbot.venues.polymarket.startup import StartupSnapshot, take_snapshot

RECONCILE_TIMEOUT_NS = 10_000_000_000
STARTUP_PATIENCE_S = 180  # a venue answering "try again" at start-up is waited for this long (an engine restart ~90 s)
CHAIN_SETTLE_S = 300  # at exit, how long a merge or redemption in flight is waited for (a relayer deadline and more)


class UserChannelUnavailable(VenueError):
    """The run could not follow its fills: the user channel never connected."""


async def run_trading(
    *, config: Config, markets: list[MarketInfo], ws_url: str, user_ws_url: str, rest_url: str, key: SigningKey,
    creds: ApiCredentials | None, db_path: str | Path, mode: str, duration_s: int | None = None,
    clock: TrioClock | None = None, stop: trio.Event | None = None, dry_run: bool = False,
    signature_type: int = EOA, funder: str | None = None, gamma_url: str | None = None,
    rpc_url: str | None = None, relayer_url: str | None = None, extra_services: ExtraServices | None = None,
    select: SelectConfig | None = None,
    task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED,
) -> Engine:
    """``funder``: the address holding the funds when it is not the key's own (a Polymarket proxy
    wallet or Safe, with ``signature_type`` POLY_PROXY or POLY_GNOSIS_SAFE). ``gamma_url``: where
    the details of markets listed during the run come from (default the simulator's listing,
    ``{rest_url}/gamma``). Raises ``UserChannelUnavailable`` (after a clean stop) if the user
    channel never connected. ``rpc_url``: chain access (``app_chain``) for merges and redemptions,
    checked at start-up (deployed, approvals in place); with ``signature_type`` POLY_1271 the
    orders' maker is the owner's deposit wallet, found on chain, and ``relayer_url`` is needed."""
    clock = clock or TrioClock()
    stop = trio.Event() if stop is None else stop
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=rest_url, timeout=10))
        if creds is None:
            creds = await ClobRest.create_or_derive_api_key(http, key, clock)
        rest = ClobRest(client=http, creds=creds, address=key.address, clock=clock)
        log = EventLog(db_path, clock=clock, wall=wall_ns, batch_rows=config.log.batch_rows,
                       batch_ms=config.log.batch_ms)
        log.start_run(mode=f"{mode}-dry-run" if dry_run else mode, seed=config.seed, recording=ws_url,
                      config_hash=config.digest(), code_version=__version__)
        chain: ChainAccess | None = None
        signer = OrderSigner(key)
        try:
            if rpc_url:
                chain = await stack.enter_async_context(open_chain(
                    rpc_url=rpc_url, relayer_url=relayer_url, key=key, sink=log,
                    poll_s=config.capital.poll_ms / 1000,  # float-ok: a delay in seconds
                    signature_type=POLY_1271 if signature_type == POLY_1271 else EOA))
                await check_ready(chain)
                await wait_for_unfinished(chain, log)
                log.record("chain_ready", "run", {"owner": chain.owner, "wallet": chain.wallet,
                                                  "via": "relayer" if chain.relayer else "eoa"})
            if signature_type == POLY_1271:
                if chain is None:
                    raise ChainSetupError("a deposit wallet is found on chain: expected --rpc")
                funder = chain.wallet
                signer = DepositWalletSigner(key, chain.wallet)
            snapshot = await snapshot_when_ready(rest, markets, signature_type=signature_type, dry_run=dry_run,
                                                 sink=log)
        except VenueError as exc:
            await log.close(failed=f"start-up: {exc}")
            raise
        sessions: list[VenueSession] = []  # made while the engine is wired: the gateway is the session's
        reconcilers: list[Reconciler] = []

        def gateway_factory(*, books: object, markets: Markets, scheduler: object, clock: TrioClock,
                            respond: Callable[[object], None], rng: random.Random, sink: EventSink) -> OrderGateway:
            reconciler = Reconciler(emit=respond, ids=Ids(), timeout_ns=RECONCILE_TIMEOUT_NS)
            lane = None if chain is None or chain.adapter is None or dry_run else ChainLane(
                adapter=chain.adapter, balances=chain.view, markets=markets.get, respond=respond, sink=sink)
            sessions.append(VenueSession(signer=signer, chain=lane,
                rest=rest, key=key, creds=creds, markets=markets.for_token, respond=respond, reconcile=reconciler,
                sink=sink, clock=clock, config=config, user_ws_url=user_ws_url, snapshot=snapshot, rng=rng,
                on_failure=lambda reason: stop.set(), funder=funder, signature_type=signature_type, dry_run=dry_run,
            ))
            reconcilers.append(reconciler)
            return sessions[0].gateway

        engine = build_engine(config=config, clock=clock, log=log, markets=Markets(markets, learn_listings=False),
                              cash=snapshot.cash,
                              pays_on_resolution=False,  # winners are redeemed on chain, not by the CLOB
                              gateway_factory=gateway_factory, seed=config.seed,
                              publish_fill=lambda fill: reconcilers[0].on_our_fill(fill, clock.now_ns()),
                              publish_refused=lambda fill: reconcilers[0].on_refused_fill(fill, clock.now_ns()),
                              request_stop=lambda reason: stop.set())  # the daily-loss flatten, done
        session = sessions[0]
        engine.inbox.send(session.close_gate_at_start())
        engine.executor.adopt_holdings("startup", snapshot.holdings, basis="venue midpoint at start-up")
        log.record("run_start", "run", {"mode": mode, "dry_run": dry_run, "seed": config.seed, "ws": ws_url,
                                        "rest": rest_url, "address": key.address, "funder": funder or key.address,
                                        "signature_type": signature_type, "markets": len(markets),
                                        "cash": snapshot.cash, "config_hash": config.digest()})
        schedule_rows(engine, markets)
        engine.every(config.log.stats_interval_s,
                     lambda cid: log.record("venue_stats", cid, session.statistics()), "venue-stats")
        engine.forget_orders = lambda order_ids, now_ns, horizon_ns: forget_at_venue(
            session, reconcilers[0], order_ids, now_ns, horizon_ns)  # Engine.prune does the rest
        market_channel(engine, markets, ws_url, follow=select is None)
        async with httpx.AsyncClient(base_url=gamma_url or f"{rest_url.rstrip('/')}/gamma", timeout=10) as gamma:
            services = [*session.services(), *gamma_services(engine, gamma, select)]
            if extra_services is not None:
                parts = LiveParts(rest=rest, user=session.user, services=tuple(name for name, _ in services))
                services += extra_services(engine, parts)
            capital = engine.executor.capital
            await run_live_tree(engine, services=services, stop=stop, duration_s=duration_s, drain_s=3,
                                failed=lambda: session.final_failure() or None, task_status=task_status,
                                chain_pending=lambda: len(capital.merges_pending) + len(capital.redemptions),
                                # a chain lane whose breaker tripped answers nothing more: no use waiting
                                chain_alive=lambda: "chain" not in engine.tripped,
                                chain_settle_s=CHAIN_SETTLE_S)
    if session.failure:
        raise UserChannelUnavailable(session.failure)
    return engine


async def snapshot_when_ready(rest: ClobRest, markets: list[MarketInfo], *, signature_type: int, dry_run: bool,
                              sink: EventSink) -> StartupSnapshot:
    """The start-up snapshot, waiting out a venue that is briefly unable to answer (the weekly
    engine restart's 425, a 429, a connection refused) for up to ``STARTUP_PATIENCE_S``, a
    ``startup_retry`` row each time: nothing happened at the venue, and the snapshot starts over."""
    delay_s, waited_s = 1, 0
    while True:
        try:
            return await take_snapshot(rest, markets, signature_type=signature_type, dry_run=dry_run, sink=sink)
        except Retryable as exc:
            if waited_s >= STARTUP_PATIENCE_S:
                raise
            delay_s = max(delay_s, round(exc.retry_after_s or 0))
            sink.record("startup_retry", "run", {"reason": str(exc), "retry_in_s": delay_s, "waited_s": waited_s})
            await trio.sleep(delay_s)
            waited_s += delay_s
            delay_s = min(delay_s * 2, 30)


def forget_at_venue(session: VenueSession, reconciler: Reconciler, order_ids: list[str], now_ns: int,
                    horizon_ns: int) -> dict[str, int]:
    """The venue side of ``Engine.prune``: the orders the executor pruned leave the session's id
    maps, with its trades long final, and reconciliation forgets what it settled long ago."""
    return {"session_entries": session.forget(order_ids, now_ns, horizon_ns),
            "reconciled_orders": reconciler.prune(now_ns, horizon_ns)}

"""Composition root for trading with signed orders — ``--mode sim`` against the simulator and
``--mode live`` against Polymarket, wired identically: the replay/paper engine with the live
gateway, the user channel and reconciliation.

Start-up, before any strategy may act: the venue's order version is checked; every open order of
the account is cancelled (a clean slate: nothing rests on an earlier run's decisions); the
account's pUSD balance becomes the ledger's cash and its shares of each traded token are adopted
as positions, at the book's midpoint as cost basis (the venue does not know what we paid).

Fills come from the user channel (``user_fills.UserFills``): booked at once (optimistic), every
report also to the reconciler, which reverses a leg that fails later and adopts legs the executor
refused or never saw. Once the user channel is first connected, and after every gap in it once it
is back, the trades since the last one seen are fetched over REST (``/data/trades``) and go the
same way; a trade seen twice is booked once. ``dry_run`` signs and logs every order without sending it (nothing is cancelled at
start-up either): what the strategy would do, with real books and a real account.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import trio

from mmbot import __version__
from mmbot.app import Engine, build_engine, listing_details, market_channel, resolution_watch, run_live_tree
from mmbot.clock import TrioClock, wall_ns
from mmbot.config import Config
from mmbot.decisions.markets import Markets
from mmbot.decisions.reconcile import Reconciler
from mmbot.memory.log import EventLog
from mmbot.model import Ids, MarketInfo, format_micro, notional, parse_micro
from mmbot.ports import Fatal, OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.auth import EOA, ApiCredentials, OrderSigner, SigningKey
from mmbot.venues.polymarket.gateway import LiveGateway
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.polymarket.user_fills import UserFills
from mmbot.venues.polymarket.ws import ChannelConnection, user_connection

RECONCILE_TIMEOUT_NS = 10_000_000_000
CATCH_UP_MARGIN_S = 60  # a catch-up asks for trades this long before the last one seen


async def run_trading(
    *, config: Config, markets: list[MarketInfo], ws_url: str, user_ws_url: str, rest_url: str, key: SigningKey,
    creds: ApiCredentials | None, db_path: str | Path, mode: str, duration_s: int | None = None,
    clock: TrioClock | None = None, stop: trio.Event | None = None, dry_run: bool = False,
    signature_type: int = EOA, funder: str | None = None, gamma_url: str | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> Engine:
    """``funder``: the address holding the funds when it is not the key's own (a Polymarket proxy
    wallet or Safe, with ``signature_type`` POLY_PROXY or POLY_GNOSIS_SAFE). ``gamma_url``: where
    the details of markets listed during the run come from (default ``rest_url``, as on the
    simulator)."""
    clock = clock or TrioClock()
    async with httpx.AsyncClient(base_url=rest_url, timeout=10) as http:
        if creds is None:
            creds = await ClobRest.create_or_derive_api_key(http, key, clock)
        rest = ClobRest(client=http, creds=creds, address=key.address, clock=clock)
        await rest.check_version()
        log = EventLog(db_path, clock=clock, wall=wall_ns, batch_rows=config.log.batch_rows,
                       batch_ms=config.log.batch_ms)
        log.start_run(mode=f"{mode}-dry-run" if dry_run else mode, seed=config.seed, recording=ws_url,
                      config_hash=config.digest(), code_version=__version__)
        if dry_run:
            resting = await rest.open_orders()
            log.record("startup_dry_run", "run", {"open_orders_left_alone": len(resting)})
        else:
            cleared = await rest.cancel_all()
            log.record("startup_cancel_all", "run", {"canceled": len(cleared.get("canceled", []))})
        cash, holdings = await venue_holdings(rest, markets, signature_type)
        built: dict[str, Any] = {}  # the gateway and reconciler, made while the engine is wired

        def gateway_factory(*, books, markets, scheduler, clock, respond, rng, sink) -> LiveGateway:  # noqa: ANN001
            built["gateway"] = LiveGateway(rest=rest, signer=OrderSigner(key), owner=creds.api_key,
                                           markets=markets.for_token, respond=respond, sink=sink, clock=clock, rng=rng,
                                           maker=funder, signature_type=signature_type, dry_run=dry_run)
            built["reconciler"] = Reconciler(emit=respond, ids=Ids(), timeout_ns=RECONCILE_TIMEOUT_NS)
            return built["gateway"]

        engine = build_engine(config=config, clock=clock, log=log, markets=Markets(markets, learn_listings=False),
                              cash=cash,
                              pays_on_resolution=False,  # winners are redeemed on chain, not by the CLOB
                              gateway_factory=gateway_factory, seed=config.seed,
                              publish_fill=lambda fill: built["reconciler"].on_our_fill(fill, clock.now_ns()),
                              publish_refused=lambda fill: built["reconciler"].on_refused_fill(fill, clock.now_ns()))
        gateway, reconciler = built["gateway"], built["reconciler"]
        engine.executor.adopt_holdings("startup", holdings, basis="venue midpoint at start-up")
        log.record("run_start", "run", {"mode": mode, "dry_run": dry_run, "seed": config.seed, "ws": ws_url,
                                        "rest": rest_url, "address": key.address, "funder": funder or key.address,
                                        "signature_type": signature_type, "markets": len(markets), "cash": cash,
                                        "config_hash": config.digest()})
        engine.every(config.log.stats_interval_s, engine.record_stats, "stats")
        engine.every(config.log.stats_interval_s, engine.record_pnl, "pnl")
        market_channel(engine, markets, ws_url)
        fills = UserFills(api_key=creds.api_key, addresses=frozenset({key.address, funder or key.address}),
                          our_ids=gateway.local_ids, markets=engine.markets.for_token, respond=engine.inbox.send,
                          reconcile=reconciler.on_leg, sink=log, since_s=clock.now_ns() // 1_000_000_000,
                          placed=gateway.confirm_placed)
        gaps = Gaps()
        gaps.signal()  # orders may fill before the user channel first connects: catch up once it has

        def on_gap(keys: list[str], reason: str) -> None:
            log.record("user_gap", "user", {"reason": reason})
            gaps.signal()

        user = user_connection(url=user_ws_url, creds=creds, markets=[], sink=log, clock=clock, config=config.feed,
                               on_frame=fills.on_frame, on_gap=on_gap, rng=random.Random(config.seed ^ 0x05E4))

        async def reconcile(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await _reconcile_loop(reconciler, rest, gateway, clock, log)

        async def catch_up(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await _catch_up_after_gaps(gaps, user, fills, rest, clock, log)

        async with httpx.AsyncClient(base_url=gamma_url or rest_url, timeout=10) as gamma:
            services = (gateway.run, user.run, reconcile, catch_up, listing_details(engine, gamma).run,
                        resolution_watch(engine, gamma).run)
            await run_live_tree(engine, services=services, stop=stop, duration_s=duration_s, drain_s=3,
                                task_status=task_status)
    return engine


async def venue_holdings(rest: ClobRest, markets: list[MarketInfo],
                         signature_type: int) -> tuple[int, dict[str, tuple[int, int]]]:
    """The account at the venue: pUSD, and {token: (shares, cost)} of the traded markets' tokens,
    each valued at its midpoint (at cost 0 if the book has none)."""
    cash, allowance = await rest.collateral(signature_type)
    if allowance is not None and allowance < cash:
        raise Fatal(f"the exchanges may spend {format_micro(allowance)} of the account's {format_micro(cash)} pUSD:"
                    " approve them for the whole balance first (an on-chain step mmbot does not take)")
    holdings = {}
    for token in (t for info in markets for t in info.tokens):
        shares = await rest.token_balance(token, signature_type)
        if shares > 0:
            mid = await rest.midpoint(token)
            holdings[token] = (shares, 0 if mid is None else notional(mid, shares))
    return cash, holdings


class Gaps:
    """Gaps in the user channel not yet caught up: set by the channel, taken by the catch-up."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def signal(self) -> None:
        self._event.set()

    async def take(self) -> None:
        await self._event.wait()
        self._event = trio.Event()  # a gap from now on needs a catch-up of its own


async def _catch_up_after_gaps(gaps: Gaps, user: ChannelConnection, fills: UserFills, rest: ClobRest,
                               clock: TrioClock, log: EventLog) -> None:
    """After each gap in the user channel, once it is connected again: the trades we may have
    missed, from ``/data/trades``. A failed fetch is tried again a second later."""
    while True:
        await gaps.take()
        while True:
            while not user.connected:
                await trio.sleep(0.2)
            after_s = fills.last_match_s - CATCH_UP_MARGIN_S
            try:
                records = await rest.trades(after_s=after_s)
                break
            except (Retryable, Rejected, OutcomeUnknown) as exc:
                log.record("error", "catch_up", {"where": "catch_up", "error": f"trades: {exc}"})
                await trio.sleep(1)
        new = fills.on_records(records, clock.now_ns())
        log.record("user_catch_up", "user", {"after_s": after_s, "trades": len(records), "new_legs": new})


async def _reconcile_loop(reconciler: Reconciler, rest: ClobRest, gateway: LiveGateway, clock: TrioClock,
                          log: EventLog) -> None:
    """Once a second: adopt what waited long enough; ask the venue about orders whose fills it never
    reported, and about posts that went unanswered and were never seen resting."""
    asked = 0
    while True:
        await trio.sleep(1)
        now = clock.now_ns()
        asks = reconciler.due_queries(now)
        unknown = gateway.unknown_due(now, RECONCILE_TIMEOUT_NS)
        if not asks and not unknown:
            continue
        try:
            open_now = {o["id"]: o for o in await rest.open_orders()}
        except (Retryable, Rejected, OutcomeUnknown) as exc:  # asked again next second; Fatal stops the run
            log.record("error", "reconcile", {"where": "reconcile", "error": f"query: {exc}"})
            continue
        asked += 1
        for order_id in asks:
            venue = open_now.get(gateway.venue_ids.get(order_id, ""))
            if venue is not None:
                reconciler.on_order_truth(order_id, parse_micro(venue["size_matched"]), parse_micro(venue["price"]),
                                          clock.now_ns())
        for order_id in unknown:
            gateway.settle_unknown(order_id, gateway.venue_ids[order_id] in open_now, f"asked{asked}")

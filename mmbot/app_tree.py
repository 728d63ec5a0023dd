"""Runs on a live feed: the nursery tree every live mode shares (DESIGN §6), the market channel and
the Gamma services it feeds, and paper trading, which is that tree with the paper venue.
``app_live`` wires signed trading into the same tree."""

from __future__ import annotations

import contextlib
import functools
import math
import random
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import httpx
import trio

from mmbot import __version__
from mmbot.app_engine import SHUTDOWN_GRACE_S, Engine, build_engine, memory_nursery, paper_gateway, run_decisions, supervised
from mmbot.clock import TrioClock, wall_ns
from mmbot.app_select import follow_resolutions, selection_service
from mmbot.config import Config, SelectConfig
from mmbot.decisions.markets import Markets
from mmbot.facts.venue_time import VenueTime
from mmbot.memory.log import EventLog
from mmbot.model import MarketInfo, MarketResolved, NewMarket
from mmbot.supervisor import Service
from mmbot.venues.polymarket.discovery import ListingDetails, ResolutionWatch
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.polymarket.ws import ChannelConnection, MarketChannel


async def run_live_tree(
    engine: Engine, *, services: Sequence[tuple[str, Service]], stop: trio.Event | None, duration_s: int | None,
    drain_s: float, failed: Callable[[], str | None] = lambda: None,  # float-ok: drain_s, a trio sleep
    chain_pending: Callable[[], int] = lambda: 0, chain_settle_s: int = 0,
    chain_alive: Callable[[], bool] = lambda: True,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """The nursery tree of a run on a live feed (DESIGN §6): the event log outermost, then the
    decision task, then the facts — the scheduler, the market feed and ``services``, each a
    ``(name, service)`` pair started under the supervisor (restarts with backoff; a tripped
    breaker stops quoting and is recorded). Until ``stop`` or ``duration_s``; then quotes come
    down, orders are cancelled, ``drain_s`` lets the answers come back, and the final rows are
    written — but first, for up to ``chain_settle_s``, the on-chain actions still in flight
    (``chain_pending()``) are waited for, while the service answering them is alive
    (``chain_alive()``): a merge the chain runs after the run stopped listening
    would part the ledger from the wallet. The log is then closed as completed, or as failed if
    ``failed()`` gives a reason (a
    service that stopped the run because it could not go on safely). If the tree itself fails,
    the log is closed with the run marked failed and the error goes on to the caller."""
    stop = trio.Event() if stop is None else stop
    seed = engine.config.seed
    async with memory_nursery(engine.log):
        async with trio.open_nursery() as decisions:
            await decisions.start(functools.partial(run_decisions, engine, seed=seed))
            async with trio.open_nursery() as facts:
                await facts.start(engine.scheduler.run)
                for name, service in (("market-feed", market_feed(engine, engine.channel)), *services):
                    await facts.start(functools.partial(supervised, engine, name, service, seed=seed))
                task_status.started(engine)
                with trio.move_on_after(duration_s if duration_s is not None else math.inf):
                    await stop.wait()
                with trio.move_on_after(SHUTDOWN_GRACE_S, shield=True):
                    engine.loop.halt("shutdown", "stopped by the operator" if stop.is_set() else "duration reached")
                    await trio.sleep(drain_s)  # the feeds stay up while the cancels' answers come back
                if chain_pending():
                    engine.log.record("waiting_for_chain", "shutdown", {"pending": chain_pending(),
                                                                        "up_to_s": chain_settle_s})
                    with trio.move_on_after(chain_settle_s, shield=True):
                        while chain_pending() and chain_alive():
                            await trio.sleep(0.5)
                    if chain_pending():
                        engine.log.record("chain_unsettled", "shutdown", {
                            "level": "error", "pending": chain_pending(),
                            "why": "on-chain actions still unanswered at exit: the next run reads the wallet's balances"})
                facts.cancel_scope.cancel()
            decisions.cancel_scope.cancel()
        engine.record_stats("final")
        engine.record_pnl("exit")
        engine.record_pnl("final", kind="run_end")
        await engine.log.close(failed=failed())


@attrs.frozen
class LiveParts:
    """What signed trading adds to a run that the cockpit reads: the venue's REST client (its
    requests' latency), the user channel's connection, and the names of the venue's services."""

    rest: ClobRest
    user: ChannelConnection
    services: tuple[str, ...]


# More (name, service) pairs for a run's tree, made once the engine is built (the operator's
# cockpit); LiveParts with signed trading, None on paper.
ExtraServices = Callable[[Engine, "LiveParts | None"], Sequence[tuple[str, Service]]]


def schedule_rows(engine: Engine, markets: list[MarketInfo]) -> None:
    """The periodic rows of a run on a live feed, and the first ones: a ``market_known`` row per
    market it starts with (what a reader of the log needs to name them: slug, question, outcome
    names), a ``pnl`` row now and every ``[log] pnl_interval_s``, bus statistics every
    ``stats_interval_s``. (Replay keeps its own schedule: its digest must not change.)"""
    config, log = engine.config, engine.log
    for info in markets:
        log.record("market_known", "start", {
            "slug": info.slug, "question": info.question, "outcomes": list(info.outcomes), "tokens": list(info.tokens),
            "tick": info.tick, "min_size": info.min_size, "end_ns": info.end_ns, "neg_risk": info.neg_risk,
            "fee_rate": info.fee_rate}, market=info.market)
    engine.record_pnl("start")
    engine.every(config.log.stats_interval_s, engine.record_stats, "stats")
    engine.every(config.log.pnl_interval_s, engine.record_pnl, "pnl")


def market_feed(engine: Engine, channel: MarketChannel) -> Service:
    """The market channel as a service: a crash (a bug; lost connections are not crashes) marks
    every book stale at once, so quotes come down until the restarted feed has resubscribed and
    fresh snapshots resync the books."""
    clock = engine.clock

    async def feed(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await channel.run(task_status=task_status)
        except Exception:
            tokens = [token for conn in channel.connections for token in conn.assets]
            engine.frames.on_gap(tokens, "feed crashed", clock.now_ns())
            raise

    return feed


def market_channel(engine: Engine, markets: list[MarketInfo], ws_url: str, *,
                   on_frame: Callable[[str, int], None] | None = None, follow: bool = True) -> MarketChannel:
    """The live market channel of a run: every market's tokens subscribed, lost connections
    marking their books stale; with ``follow`` every new listing subscribed too, else (``[select]``
    chooses what is traded, ``app_select``) only resolved markets let go."""
    config, clock = engine.config, engine.clock
    channel = MarketChannel(
        url=ws_url, on_frame=on_frame or engine.frames.on_frame,
        on_gap=lambda tokens, reason: engine.frames.on_gap(tokens, reason, clock.now_ns()),
        sink=engine.log, clock=clock, config=config.feed, rng=random.Random(config.seed ^ 0xFEED),
    )
    engine.frames.add_observer(follow_listings(channel) if follow else follow_resolutions(channel))
    channel.subscribe(token for info in markets for token in info.tokens)
    engine.channel = channel
    return channel


def follow_listings(channel: MarketChannel) -> Callable[[Any], None]:
    """Subscribe to markets as they are listed, and let resolved ones go."""

    def observe(msg: Any) -> None:
        if isinstance(msg, NewMarket):
            channel.subscribe(msg.tokens)
        elif isinstance(msg, MarketResolved):
            channel.unsubscribe(msg.tokens)

    return observe


def listing_details(engine: Engine, client: httpx.AsyncClient) -> ListingDetails:
    """Markets listed during a live run are traded once Gamma has told their full facts."""

    def adopt(info: MarketInfo) -> None:
        if engine.markets.get(info.market) is not None:
            return
        engine.markets.add(info)
        engine.boundaries.watch(info)
        engine.log.record("market_listed", "listing", {
            "tokens": list(info.tokens), "tick": info.tick, "min_size": info.min_size, "end_ns": info.end_ns,
            "fee_rate": info.fee_rate, "neg_risk": info.neg_risk, "slug": info.slug,
            "outcomes": list(info.outcomes), "question": info.question,
        }, market=info.market)

    details = ListingDetails(client=client, on_details=adopt, sink=engine.log, clock=engine.clock)
    engine.frames.add_observer(details.observe)
    return details


def resolution_watch(engine: Engine, client: httpx.AsyncClient) -> ResolutionWatch:
    """Resolutions the market channel missed (it was down), found on Gamma and fed in as its own."""

    def found(msg: MarketResolved) -> None:
        engine.log.record("resolution_found", msg.cid, {"winning_token": msg.winning_token, "source": "gamma"},
                          market=msg.market)
        engine.frames.inject(msg, msg.recv_ns)

    venue_time = VenueTime(engine.clock)
    engine.frames.add_observer(venue_time.observe)
    return ResolutionWatch(client=client, markets=lambda: list(engine.markets),
                           resolved=lambda market: market in engine.markets.resolved, on_resolved=found,
                           sink=engine.log, clock=engine.clock, venue_now=venue_time.now_ns)


def gamma_services(engine: Engine, client: httpx.AsyncClient,
                   select: SelectConfig | None = None) -> list[tuple[str, Service]]:
    """The services a live run takes from Gamma: the markets it trades — every market listed during
    the run once its details are known, or with ``select`` those the ``[select]`` rules choose,
    kept current (``app_select``) — and the resolutions the market channel missed."""
    chooser = (("listing-details", listing_details(engine, client).run) if select is None
               else ("selection", selection_service(engine, client, select).run))
    return [chooser, ("resolution-watch", resolution_watch(engine, client).run)]


# --------------------------------------------------------------------------- paper on a live feed


async def run_paper(
    *,
    config: Config,
    markets: list[MarketInfo],
    ws_url: str,
    db_path: str | Path,
    duration_s: int | None = None,
    clock: TrioClock | None = None,
    stop: trio.Event | None = None,
    tap: Callable[[str, str, int], None] | None = None,
    gamma_url: str | None = None,
    extra_services: ExtraServices | None = None,
    select: SelectConfig | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> Engine:
    """Paper trading on a live market channel, on the real (or a test's) clock.

    Runs until ``duration_s`` has passed or ``stop`` is set (the CLI sets it on Ctrl-C); then it
    stops quoting, cancels the paper orders, lets their answers come back, flushes the log and
    returns the engine (for the summary). ``task_status`` gets the engine once the feed started.
    ``tap(channel, text, recv_ns)`` sees every frame first (the recorder of ``mmbot run --record``).
    With ``gamma_url``, markets listed during the run are traded once their details are fetched
    from it (``listing_details``); without, with what ``new_market`` says. ``extra_services(engine)``
    gives more ``(name, service)`` pairs to supervise with the others (the operator's cockpit).
    With ``select`` (and ``gamma_url``) the traded set is kept current by the ``[select]`` rules
    (``app_select``) instead of taking every listing.
    """
    clock = clock or TrioClock()
    stop = trio.Event() if stop is None else stop
    log = EventLog(db_path, clock=clock, wall=wall_ns, batch_rows=config.log.batch_rows, batch_ms=config.log.batch_ms)
    log.start_run(mode="paper", seed=config.seed, recording=ws_url, config_hash=config.digest(), code_version=__version__)
    engine = build_engine(
        config=config, clock=clock, log=log, markets=Markets(markets, learn_listings=gamma_url is None),
        gateway_factory=paper_gateway(config), seed=config.seed,
        request_stop=lambda reason: stop.set(),  # the daily-loss flatten, done
    )
    log.record("run_start", "run", {"mode": "paper", "seed": config.seed, "ws": ws_url, "markets": len(markets),
                                    "config_hash": config.digest(), "cash": engine.executor.ledger.cash})
    schedule_rows(engine, markets)
    on_frame = engine.frames.on_frame
    if tap is not None:
        handle = on_frame

        def on_frame(text: str, recv_ns: int) -> None:
            tap("market", text, recv_ns)
            handle(text, recv_ns)

    market_channel(engine, markets, ws_url, on_frame=on_frame, follow=select is None)
    drain_s = 2 * (config.paper.ack_latency_ms + config.paper.latency_jitter_ms) / 1000  # float-ok: a trio sleep
    async with contextlib.AsyncExitStack() as stack:
        services: list[tuple[str, Service]] = []
        if gamma_url:
            gamma = await stack.enter_async_context(httpx.AsyncClient(base_url=gamma_url, timeout=10))
            services = gamma_services(engine, gamma, select)
        if extra_services is not None:
            services = [*services, *extra_services(engine, None)]
        await run_live_tree(engine, services=services, stop=stop, duration_s=duration_s, drain_s=drain_s,
                            task_status=task_status)
    return engine

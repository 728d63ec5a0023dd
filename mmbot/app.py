"""Composition root: config + mode → wired objects and the nursery tree (DESIGN §6, §7).

Modes differ only in what is injected here. This is the one module (with cli.py) that imports
every layer.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
from pathlib import Path
from typing import Any, Callable

import attrs
import httpx
import trio
import trio.testing

from mmbot import __version__
from mmbot.clock import Scheduler, TrioClock, wall_ns
from mmbot.config import Config
from mmbot.decisions.book import Books
from mmbot.decisions.executor import Executor
from mmbot.decisions.ledger import Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import Orders
from mmbot.decisions.risk import Risk
from mmbot.decisions.strategy import Strategies
from mmbot.decisions.tasks import DecisionLoop
from mmbot.facts.boundary import Boundaries
from mmbot.facts.bus import Doorbell, LatestSlots, Stream
from mmbot.facts.feed import MarketFrames
from mmbot.facts.recording import iter_frames, read_header
from mmbot.facts.replay import RecordedFeed
from mmbot.memory.log import EventLog
from mmbot.model import BookUpdate, Fill, Ids, MarketInfo, MarketResolved, NewMarket
from mmbot.ports import EventSink, OrderGateway
from mmbot.supervisor import RestartPolicy, supervise
from mmbot.venues.paper import PaperGateway
from mmbot.venues.polymarket.discovery import ListingDetails, ResolutionWatch
from mmbot.venues.polymarket.wire import decode_market_frame
from mmbot.venues.polymarket.ws import MarketChannel

SHUTDOWN_GRACE_S = 5  # how long the shielded cancel-all on exit may take


def book_updates(books: Books) -> Callable[[str, str, int], BookUpdate | None]:
    """What goes into a token's latest-value slot after its book changed."""

    def update(token: str, cid: str, recv_ns: int) -> BookUpdate | None:
        book = books.get(token)
        if book is None:
            return None
        return BookUpdate(
            cid=cid,
            recv_ns=recv_ns,
            market=book.market,
            token=token,
            state=book.state,
            best_bid=book.best_bid,
            best_ask=book.best_ask,
        )

    return update


@attrs.define
class Engine:
    """Everything one run wires together, for the nursery tree and for tests to inspect."""

    config: Config
    clock: TrioClock
    scheduler: Scheduler
    log: EventLog
    inbox: Stream
    slots: LatestSlots
    markets: Markets
    books: Books
    executor: Executor
    loop: DecisionLoop
    frames: MarketFrames
    boundaries: Boundaries
    channel: Any = None  # the live market channel (paper and live modes), for statistics

    # ------------------------------------------------------------------ periodic and final rows

    def record_stats(self, cid: str) -> None:
        slots = attrs.asdict(self.slots.statistics())
        self.log.record(
            "bus_stats",
            cid,
            {
                "slots": slots,
                "streams": {"inbox": attrs.asdict(self.inbox.statistics())},
                "frames": self.frames.frames,
                "malformed": self.frames.malformed,
            },
        )

    def record_pnl(self, cid: str, kind: str = "pnl") -> dict[str, Any]:
        ledger = self.executor.ledger
        marks = self.executor.view.marks()
        payload = {
            "cash": ledger.cash,
            "reserved": ledger.reserved_cash,
            "realised": ledger.realised,
            "unrealised": ledger.unrealised(marks),
            "fees": ledger.fees_paid,
            "positions": {t: ledger.position(t) for t in ledger.tokens()},
            "marks": marks,
        }
        if kind == "run_end":
            counts = self.executor.counts
            payload.update(
                frames=self.frames.frames,
                malformed=self.frames.malformed,
                book_updates=self.loop.book_updates,
                drops=self.slots.statistics().dropped,
                intents=counts["intents"],
                orders=counts["orders"],
                fills=counts["fills"],
                open_orders=self.executor.orders.open_count(),
            )
        self.log.record(kind, cid, payload)
        return payload

    def every(self, interval_s: int, action: Callable[[str], None], prefix: str) -> None:
        """Run ``action`` every ``interval_s`` of (virtual) time on the scheduler."""
        interval_ns = interval_s * 1_000_000_000
        count = 0

        def tick() -> None:
            nonlocal count
            count += 1
            action(f"{prefix}{count}")
            self.scheduler.call_at(self.clock.now_ns() + interval_ns, tick)

        self.scheduler.call_at(self.clock.now_ns() + interval_ns, tick)


def build_engine(
    *,
    config: Config,
    clock: TrioClock,
    log: EventLog,
    markets: Markets,
    gateway_factory: Callable[..., OrderGateway],
    seed: int,
    publish_fill: Callable[[Fill], None] = lambda fill: None,
    cash: int | None = None,
    pays_on_resolution: bool = True,
    publish_refused: Callable[[Fill], None] = lambda fill: None,
) -> Engine:
    """``cash``: the ledger's starting pUSD (the venue's balance with signed orders; the config's
    paper cash if not given). ``pays_on_resolution``: whether the venue pays winning shares out
    itself (the paper venue) or they wait to be redeemed on chain (Polymarket)."""
    scheduler = Scheduler(clock)
    doorbell = Doorbell()
    inbox: Stream = Stream(doorbell)
    slots: LatestSlots = LatestSlots(doorbell)
    books = Books(log)
    ids = Ids()
    gateway = gateway_factory(
        books=books, markets=markets, scheduler=scheduler, clock=clock, respond=inbox.send,
        rng=random.Random(seed), sink=log,
    )
    executor = Executor(
        ledger=Ledger(cash=config.paper.cash if cash is None else cash),
        orders=Orders(),
        risk=Risk(config.risk),
        books=books,
        markets=markets,
        gateway=gateway,
        sink=log,
        clock=clock,
        ids=ids,
        publish_fill=publish_fill,
        pays_on_resolution=pays_on_resolution,
        publish_refused=publish_refused,
    )
    loop = DecisionLoop(
        inbox=inbox, slots=slots, executor=executor, strategies=Strategies(config_for=config.strategies_for, ids=ids)
    )
    observers = [markets.apply] + ([gateway.on_market] if hasattr(gateway, "on_market") else [])
    frames = MarketFrames(
        decode=decode_market_frame,
        apply_books=books.apply,
        book_update=book_updates(books),
        observers=observers,
        slots=slots,
        inbox=inbox,
        sink=log,
        mark_stale=books.mark_stale,
    )
    engine = Engine(
        config=config,
        clock=clock,
        scheduler=scheduler,
        log=log,
        inbox=inbox,
        slots=slots,
        markets=markets,
        books=books,
        executor=executor,
        loop=loop,
        frames=frames,
        boundaries=Boundaries(scheduler=scheduler, inbox=inbox, buffer_s=config.strategies.maker.end_buffer_s),
    )
    for info in markets:
        engine.boundaries.watch(info)
    return engine


def paper_gateway(config: Config) -> Callable[..., OrderGateway]:
    """The gateway factory for replay and paper mode. Factories all take the same keywords; the
    event sink is for gateways that log their own traffic (the live one), the paper venue does not."""

    def factory(*, books, markets, scheduler, clock, respond, rng, sink: EventSink) -> OrderGateway:
        return PaperGateway(
            books=books,
            markets=markets.for_token,
            scheduler=scheduler,
            clock=clock,
            respond=respond,
            rng=rng,
            ack_latency_ns=config.paper.ack_latency_ms * 1_000_000,
            jitter_ns=config.paper.latency_jitter_ms * 1_000_000,
        )

    return factory


async def run_decisions(engine: Engine, *, seed: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """The decision task under supervision; a tripped breaker stops quoting and cancels orders."""
    clock = engine.clock
    policy = RestartPolicy(rng=random.Random(seed ^ 0x5EED))

    def trip(service: str, exc: BaseException) -> None:
        engine.loop.halt(f"breaker-{service}", f"breaker tripped: {exc!r}")

    await supervise(
        "decisions",
        engine.loop.run,
        policy=policy,
        sink=engine.log,
        on_trip=trip,
        now=lambda: clock.now_ns() / 1e9,  # float-ok: seconds for the restart window
        task_status=task_status,
    )
    if engine.loop.halted:
        # Tripped: no strategy runs any more, but the venue's answers to the cancels (and any
        # late fills) must still reach the ledger. A crash now is a bug in the executor itself.
        await engine.loop.run()


async def replay(
    *,
    config: Config,
    recording: str | Path,
    db_path: str | Path,
    seed: int,
    on_progress: Callable[[int], None] | None = None,
) -> str:
    """Replay a recording through the whole decision path on paper; returns the log digest.

    Must run under ``trio.run(..., clock=MockClock(autojump_threshold=0))``.
    """
    header = read_header(recording)
    clock = TrioClock(anchor_ns=header.start_ns)
    log = EventLog(
        # virtual milliseconds say nothing about how many rows wait: batch by count alone
        db_path, clock=clock, wall=wall_ns, batch_rows=config.log.batch_rows, batch_ms=None
    )
    log.start_run(
        mode="replay",
        seed=seed,
        recording=Path(recording).name,
        config_hash=config.digest(),
        code_version=__version__,
    )
    engine = build_engine(
        config=config,
        clock=clock,
        log=log,
        markets=Markets(header.markets),
        gateway_factory=paper_gateway(config),
        seed=seed,
    )
    log.record("run_start", "run", {"mode": "replay", "seed": seed, "recording": Path(recording).name,
                                    "config_hash": config.digest()})
    engine.every(config.log.stats_interval_s, engine.record_stats, "stats")
    engine.every(config.log.stats_interval_s, engine.record_pnl, "pnl")
    feed = RecordedFeed(
        iter_frames(recording),
        handlers={"market": engine.frames.on_frame},
        scheduler=engine.scheduler,
        on_progress=on_progress,
    )
    async with trio.open_nursery() as memory:
        await memory.start(log.run)
        async with trio.open_nursery() as decisions:
            await decisions.start(functools.partial(run_decisions, engine, seed=seed))
            await feed.run()
            with trio.move_on_after(SHUTDOWN_GRACE_S, shield=True):
                # the feed has drained its own grace already; give the cancels the same again
                await stop_safely(engine, "end of recording", drain_until=clock.now_ns() + SHUTDOWN_GRACE_S * 1_000_000_000)
            decisions.cancel_scope.cancel()
        engine.record_stats("final")
        engine.record_pnl("final", kind="run_end")
        digest = await log.close()
        memory.cancel_scope.cancel()
    return digest


async def stop_safely(engine: Engine, reason: str, *, drain_until: int | None = None) -> None:
    """Stop quoting, cancel every open order, and let the venue's answers come back."""
    engine.loop.halt("shutdown", reason)
    if drain_until is not None:
        await engine.scheduler.fire_until(drain_until)
    await trio.testing.wait_all_tasks_blocked()


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
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> Engine:
    """Paper trading on a live market channel, on the real (or a test's) clock.

    Runs until ``duration_s`` has passed or ``stop`` is set (the CLI sets it on Ctrl-C); then it
    stops quoting, cancels the paper orders, lets their answers come back, flushes the log and
    returns the engine (for the summary). ``task_status`` gets the engine once the feed started.
    ``tap(channel, text, recv_ns)`` sees every frame first (the recorder of ``mmbot run --record``).
    With ``gamma_url``, markets listed during the run are traded once their details are fetched
    from it (``listing_details``); without, with what ``new_market`` says.
    """
    clock = clock or TrioClock()
    log = EventLog(db_path, clock=clock, wall=wall_ns, batch_rows=config.log.batch_rows, batch_ms=config.log.batch_ms)
    log.start_run(mode="paper", seed=config.seed, recording=ws_url, config_hash=config.digest(), code_version=__version__)
    engine = build_engine(
        config=config, clock=clock, log=log, markets=Markets(markets, learn_listings=gamma_url is None),
        gateway_factory=paper_gateway(config), seed=config.seed,
    )
    log.record("run_start", "run", {"mode": "paper", "seed": config.seed, "ws": ws_url, "markets": len(markets),
                                    "config_hash": config.digest()})
    engine.every(config.log.stats_interval_s, engine.record_stats, "stats")
    engine.every(config.log.stats_interval_s, engine.record_pnl, "pnl")
    on_frame = engine.frames.on_frame
    if tap is not None:
        handle = on_frame

        def on_frame(text: str, recv_ns: int) -> None:
            tap("market", text, recv_ns)
            handle(text, recv_ns)

    market_channel(engine, markets, ws_url, on_frame=on_frame)
    drain_s = 2 * (config.paper.ack_latency_ms + config.paper.latency_jitter_ms) / 1000  # float-ok: a trio sleep
    async with contextlib.AsyncExitStack() as stack:
        services: tuple[Callable[..., Any], ...] = ()
        if gamma_url:
            gamma = await stack.enter_async_context(httpx.AsyncClient(base_url=gamma_url, timeout=10))
            services = (listing_details(engine, gamma).run, resolution_watch(engine, gamma).run)
        await run_live_tree(engine, services=services, stop=stop, duration_s=duration_s, drain_s=drain_s,
                            task_status=task_status)
    return engine


def market_channel(engine: Engine, markets: list[MarketInfo], ws_url: str, *,
                   on_frame: Callable[[str, int], None] | None = None) -> MarketChannel:
    """The live market channel of a run: every market's tokens subscribed, listings followed,
    lost connections marking their books stale."""
    config, clock = engine.config, engine.clock
    channel = MarketChannel(
        url=ws_url, on_frame=on_frame or engine.frames.on_frame,
        on_gap=lambda tokens, reason: engine.frames.on_gap(tokens, reason, clock.now_ns()),
        sink=engine.log, clock=clock, config=config.feed, rng=random.Random(config.seed ^ 0xFEED),
    )
    engine.frames.add_observer(follow_listings(channel))
    channel.subscribe(token for info in markets for token in info.tokens)
    engine.channel = channel
    return channel


async def run_live_tree(
    engine: Engine, *, services: tuple[Callable[..., Any], ...], stop: trio.Event | None, duration_s: int | None,
    drain_s: float, task_status: Any = trio.TASK_STATUS_IGNORED,  # float-ok: a trio sleep
) -> None:
    """The nursery tree of a run on a live feed (DESIGN §6): the event log outermost, then the
    decision task, then the facts — scheduler, supervised market feed and ``services`` (each started
    with ``nursery.start``). Until ``stop`` or ``duration_s``; then quotes come down, orders are
    cancelled, ``drain_s`` lets the answers come back, and the final rows are written."""
    stop = trio.Event() if stop is None else stop
    config = engine.config
    async with trio.open_nursery() as memory:
        await memory.start(engine.log.run)
        async with trio.open_nursery() as decisions:
            await decisions.start(functools.partial(run_decisions, engine, seed=config.seed))
            async with trio.open_nursery() as facts:
                await facts.start(engine.scheduler.run)
                await facts.start(functools.partial(supervised_feed, engine, engine.channel, seed=config.seed))
                for service in services:
                    await facts.start(service)
                task_status.started(engine)
                with trio.move_on_after(duration_s if duration_s is not None else math.inf):
                    await stop.wait()
                with trio.move_on_after(SHUTDOWN_GRACE_S, shield=True):
                    engine.loop.halt("shutdown", "stopped by the operator" if stop.is_set() else "duration reached")
                    await trio.sleep(drain_s)  # the feeds stay up while the cancels' answers come back
                facts.cancel_scope.cancel()
            decisions.cancel_scope.cancel()
        engine.record_stats("final")
        engine.record_pnl("final", kind="run_end")
        await engine.log.close()
        memory.cancel_scope.cancel()


async def supervised_feed(engine: Engine, channel: MarketChannel, *, seed: int,
                           task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """The market feed under the supervisor: a crash (a bug; lost connections are not crashes)
    marks every book stale at once, so quotes come down, and the feed restarts with backoff and
    resubscribes (fresh snapshots resync the books); repeated crashes trip the breaker."""
    clock = engine.clock

    async def feed(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await channel.run(task_status=task_status)
        except Exception:
            tokens = [token for conn in channel.connections for token in conn.assets]
            engine.frames.on_gap(tokens, "feed crashed", clock.now_ns())
            raise

    def trip(service: str, exc: BaseException) -> None:
        engine.loop.halt(f"breaker-{service}", f"breaker tripped: {exc!r}")

    await supervise(
        "market-feed", feed, policy=RestartPolicy(rng=random.Random(seed ^ 0xFEED5)), sink=engine.log,
        on_trip=trip, now=lambda: clock.now_ns() / 1e9, task_status=task_status,  # float-ok: seconds
    )


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

    return ResolutionWatch(client=client, markets=lambda: list(engine.markets),
                           resolved=lambda market: market in engine.markets.resolved, on_resolved=found,
                           sink=engine.log, clock=engine.clock)


def follow_listings(channel: MarketChannel) -> Callable[[Any], None]:
    """Subscribe to markets as they are listed, and let resolved ones go."""

    def observe(msg: Any) -> None:
        if isinstance(msg, NewMarket):
            channel.subscribe(msg.tokens)
        elif isinstance(msg, MarketResolved):
            channel.unsubscribe(msg.tokens)

    return observe

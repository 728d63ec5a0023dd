"""The engine of a run: every object one run wires together (DESIGN §7), and what every mode runs
them under — the event log outermost, and supervision (DESIGN §6).

Modes differ only in what they inject here: the gateway factory, the starting cash, whether the
venue pays winners out itself. ``app_replay``, ``app_tree`` and ``app_live`` build on it.

Every engine forgets, every minute of its clock and in every mode (``Engine.prune``), what ended a
retention horizon ago (``[retention] ended_after_s``): ended orders and their fill ids, and markets
over with nothing of ours left in them (``decisions/forgetting.py``), everywhere at once — the
executor's books, view and registry, the strategies, the book slots, the boundary timers, the
venue's own state, the market channel's subscription.

Where the venue does not pay resolutions out itself (signed trading), the engine also sweeps every
``[capital] sweep_interval_s`` (``Engine.sweep``): resolved markets' shares are redeemed on chain
and held complete sets offered to the merge strategy (``decisions/capital.py``). Replay and paper
have no such timer, so their logs are as they were.

With ``[risk] on_daily_loss = "flatten"`` the executor's ``Flatten`` is connected here: its halt to
``DecisionLoop.halt``, its deadlines to the scheduler, its stop to the caller's ``request_stop``.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, AsyncIterator, Callable

import attrs
import trio
import trio.testing

from mmbot.clock import Scheduler, TrioClock
from mmbot.config import Config, StrategiesConfig
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
from mmbot.failure import one_line, only
from mmbot.memory.log import EventLog
from mmbot.model import BookUpdate, Fill, Ids
from mmbot.ports import EventSink, OrderGateway
from mmbot.supervisor import RestartPolicy, Service, supervise
from mmbot.venues.paper import PaperGateway
from mmbot.venues.polymarket.wire import decode_market_frame

SHUTDOWN_GRACE_S = 5  # how long the shielded cancel-all on exit may take
PRUNE_EVERY_S = 60  # how often an engine forgets what ended a retention horizon ago
_NS_PER_S = 1_000_000_000

# The venue side of forgetting orders: given the ids the executor pruned, the clock and the
# horizon, it forgets them there and returns what it dropped, by kind, for the ``pruned`` row.
ForgetOrders = Callable[[list[str], int, int], dict[str, int]]


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
    gateway: OrderGateway
    strategies: Strategies
    forget_orders: ForgetOrders | None = None  # None: the venue keeps nothing per order
    channel: Any = None  # the live market channel (paper and live modes), for statistics
    tripped: set[str] = attrs.field(factory=set)  # services whose breaker tripped: not running any more

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

    # ------------------------------------------------------------------ bounded memory

    def prune(self, cid: str) -> dict[str, Any] | None:
        """Forget what ended a retention horizon ago, everywhere at once: ended orders (at the venue
        too, through ``forget_orders``) and the markets the executor finds due — their tokens'
        slots, held updates and strategy memory, their boundary timers, the venue's state of them
        and the channel's subscription. Records a ``pruned`` row, and returns its payload, only
        when something went. Runs between decision steps (the scheduler's callbacks never
        interleave with one), as every timer does."""
        now = self.clock.now_ns()
        horizon = self.config.retention.ended_after_s * _NS_PER_S
        order_ids = self.executor.prune(now, horizon)
        gone = self.executor.forget_markets(now, horizon)
        if gone:
            tokens = gone.tokens
            self.slots.forget(tokens)
            self.loop.forget(tokens)
            for info in (*gone.markets, *gone.held):
                self.boundaries.forget(info.market)
            forget_markets = getattr(self.gateway, "forget_markets", None)
            if forget_markets is not None:
                forget_markets(gone.markets)
            if self.channel is not None:  # not the orphans': a listing may still be on its way
                self.channel.unsubscribe(token for info in (*gone.markets, *gone.held) for token in info.tokens)
        venue = self.forget_orders(order_ids, now, horizon) if self.forget_orders is not None else {}
        if not (order_ids or gone or any(venue.values())):
            return None
        payload = {"orders": len(order_ids), "markets": [info.market for info in gone.markets],
                   "orphan_books": len(gone.orphans), "held_books": len(gone.held), **venue, "remembered": self.remembered()}
        self.log.record("pruned", cid, payload)
        return payload

    def sweep(self, cid: str) -> int:
        """The capital sweep (``DecisionLoop.sweep``): redemptions due, then merges offered. Runs
        between decision steps, as every timer does; records only what it sends."""
        return self.loop.sweep(cid)

    def remembered(self) -> dict[str, int]:
        """How many entries are kept per order, market and token: what forgetting keeps bounded."""
        executor = self.executor
        sizes = {
            "orders": executor.orders.statistics().orders_remembered,
            "fill_ids": executor.fill_ids_remembered(),
            "markets": len(self.markets),
            "resolutions": len(self.markets.resolved),
            "markets_over": executor.lifecycle.over(),
            "books": len(self.books),
            "positions": len(executor.ledger.tokens()),
            **executor.view.remembered(),
            "strategy_entries": self.strategies.remembered(),
            "boundaries": self.boundaries.watched(),
            "slots_pending": len(self.slots),
        }
        gateway_sizes = getattr(self.gateway, "remembered", None)
        if gateway_sizes is not None:
            sizes.update({f"venue_{kind}": n for kind, n in gateway_sizes().items()})
        return sizes

    def every(self, interval_s: int, action: Callable[[str], object], prefix: str) -> None:
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
    request_stop: Callable[[str], None] | None = None,
) -> Engine:
    """``cash``: the ledger's starting pUSD (the venue's balance with signed orders; the config's
    paper cash if not given). ``pays_on_resolution``: whether the venue pays winning shares out
    itself (the paper venue) or they wait to be redeemed on chain (Polymarket). ``request_stop(reason)``:
    how the engine asks its run to stop (the daily-loss flatten is done; at most once)."""
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
        capital=config.capital,
    )
    def strategies_for(market: str) -> StrategiesConfig:  # an override may name the market by its slug
        info = markets.get(market) if config.markets else None  # no overrides: no slug needed
        return config.strategies_for(market, info.slug if info is not None else "")

    strategies = Strategies(config_for=strategies_for, ids=ids)
    loop = DecisionLoop(inbox=inbox, slots=slots, executor=executor, strategies=strategies)
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
        gateway=gateway,
        strategies=strategies,
        forget_orders=forget_at(gateway),
    )
    if executor.flatten is not None:  # [risk] on_daily_loss = "flatten" (decisions/flatten.py)
        executor.flatten.connect(halt=loop.halt, call_at=scheduler.call_at, stop=request_stop)
        engine.every(1, executor.flatten.after, "loss-check")  # marks move without a message too
    for info in markets:
        engine.boundaries.watch(info)
    engine.every(PRUNE_EVERY_S, engine.prune, "prune")
    if not pays_on_resolution:  # resolved shares wait to be redeemed on chain
        engine.every(config.capital.sweep_interval_s, engine.sweep, "sweep")
    return engine


def forget_at(gateway: OrderGateway) -> ForgetOrders | None:
    """Pruned orders forwarded to the gateway's ``forget(order_ids)``, if it keeps any per order."""
    forget = getattr(gateway, "forget", None)
    if forget is None:
        return None

    def forget_orders(order_ids: list[str], now_ns: int, horizon_ns: int) -> dict[str, int]:
        return {"gateway_entries": forget(order_ids)}

    return forget_orders


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


# --------------------------------------------------------------------------- supervision


async def supervised(engine: Engine, name: str, service: Service, *, seed: int,
                     task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """``service`` under the supervisor (DESIGN §6): restarted with backoff after a crash; when it
    keeps crashing the breaker trips, which stops quoting and cancels every order. Its restart
    policy draws its jitter from a generator of its own, seeded with ``seed`` and the service's
    name (a string seed is hashed with SHA-512, not ``hash()``): the same on every run."""
    clock = engine.clock

    def trip(service_name: str, exc: BaseException) -> None:
        engine.tripped.add(service_name)
        engine.loop.halt(f"breaker-{service_name}", f"breaker tripped: {exc!r}")

    await supervise(
        name, service, policy=RestartPolicy(rng=random.Random(f"{seed}:{name}")), sink=engine.log, on_trip=trip,
        now=lambda: clock.now_ns() / 1e9,  # float-ok: seconds for the restart window
        task_status=task_status,
    )


async def run_decisions(engine: Engine, *, seed: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """The decision task under supervision; a tripped breaker stops quoting and cancels orders."""
    await supervised(engine, "decisions", engine.loop.run, seed=seed, task_status=task_status)
    if engine.loop.halted:
        # Tripped: no strategy runs any more, but the venue's answers to the cancels (and any
        # late fills) must still reach the ledger. A crash now is a bug in the executor itself.
        await engine.loop.run()


async def stop_safely(engine: Engine, reason: str, *, drain_until: int | None = None) -> None:
    """Stop quoting, cancel every open order, and let the venue's answers come back."""
    engine.loop.halt("shutdown", reason)
    if drain_until is not None:
        await engine.scheduler.fire_until(drain_until)
    await trio.testing.wait_all_tasks_blocked()


# --------------------------------------------------------------------------- the memory nursery


@contextlib.asynccontextmanager
async def memory_nursery(log: EventLog) -> AsyncIterator[None]:
    """The outermost nursery of a run (DESIGN §6): the log's writer runs while the body does.

    The body closes the log itself once its final rows are in. If it raises instead, the log is
    closed here with the run marked failed (``run_failed``, the error in one line) and the error
    goes on to the caller. A cancellation from outside is not a failure of the run: the log is
    left as a kill would leave it.
    """
    async with trio.open_nursery() as memory:
        await memory.start(log.run)
        try:
            yield
        except BaseException as exc:
            if not only(exc, (trio.Cancelled,)):
                with trio.CancelScope(shield=True):
                    try:
                        await log.close(failed=one_line(exc))
                    except Exception as lost:  # the log itself may be what failed: keep the first error
                        exc.add_note(f"the event log could not be closed as failed: {lost!r}")
            raise
        memory.cancel_scope.cancel()

"""The engine of a run: every object one run wires together (DESIGN §7), and what every mode runs
them under — the event log outermost, and supervision (DESIGN §6).

Modes differ only in what they inject here: the gateway factory, the starting cash, whether the
venue pays winners out itself. ``app_replay``, ``app_tree`` and ``app_live`` build on it.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, AsyncIterator, Callable

import attrs
import trio
import trio.testing

from mmbot.clock import Scheduler, TrioClock
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
from mmbot.failure import one_line, only
from mmbot.memory.log import EventLog
from mmbot.model import BookUpdate, Fill, Ids
from mmbot.ports import EventSink, OrderGateway
from mmbot.supervisor import RestartPolicy, Service, supervise
from mmbot.venues.paper import PaperGateway
from mmbot.venues.polymarket.wire import decode_market_frame

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


# --------------------------------------------------------------------------- supervision


async def supervised(engine: Engine, name: str, service: Service, *, seed: int,
                     task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """``service`` under the supervisor (DESIGN §6): restarted with backoff after a crash; when it
    keeps crashing the breaker trips, which stops quoting and cancels every order. Its restart
    policy draws its jitter from a generator of its own, seeded with ``seed`` and the service's
    name (a string seed is hashed with SHA-512, not ``hash()``): the same on every run."""
    clock = engine.clock

    def trip(service_name: str, exc: BaseException) -> None:
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

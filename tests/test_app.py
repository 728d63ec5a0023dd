"""Wiring: the decision loop keeps messages across a crash, a tripped breaker stops safely, every
service of a live run is supervised, and a failed run's log says so."""

from __future__ import annotations

import functools
import random

import pytest
import trio
import trio.testing

from mmbot import app
from mmbot.clock import TrioClock
from mmbot.config import Config
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import OrderStatus
from mmbot.failure import leaves
from mmbot.memory.log import EventLog, run_outcome
from mmbot.memory.query import select_rows
from mmbot.model import ONE, MarketInfo
from mmbot.supervisor import RestartPolicy

YES, NO = "111", "222"
INFO = MarketInfo(market="0xm", tokens=(YES, NO), tick=10_000, min_size=5 * ONE)


def book_frame(token: str, bids: list[str], asks: list[str]) -> str:
    levels = lambda prices: ",".join(f'{{"price":"{p}","size":"100"}}' for p in prices)  # noqa: E731
    return (
        f'{{"event_type":"book","market":"0xm","asset_id":"{token}","timestamp":"1","hash":"h",'
        f'"bids":[{levels(bids)}],"asks":[{levels(asks)}]}}'
    )


def engine_for(tmp_path) -> app.Engine:
    clock = TrioClock(anchor_ns=1_000_000_000_000)
    log = EventLog(tmp_path / "run.db", clock=clock, wall=lambda: 0)
    return app.build_engine(
        config=Config(),
        clock=clock,
        log=log,
        markets=Markets([INFO]),
        gateway_factory=app.paper_gateway(Config()),
        seed=1,
    )


async def test_a_tripped_breaker_stops_quoting_cancels_orders_and_says_why(tmp_path, autojump_clock) -> None:
    engine = engine_for(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.log.run)
        nursery.start_soon(engine.scheduler.run)
        await nursery.start(functools.partial(app.run_decisions, engine, seed=1))
        engine.frames.on_frame(book_frame(YES, ["0.45", "0.46"], ["0.54", "0.55"]), engine.clock.now_ns())
        engine.frames.on_frame(book_frame(NO, ["0.45", "0.46"], ["0.54", "0.55"]), engine.clock.now_ns())
        await trio.sleep(1)  # the maker's quotes are acknowledged
        quotes = engine.executor.orders.open_orders()
        assert len(quotes) == 2 and all(o.status is OrderStatus.LIVE for o in quotes)

        def crash(update, view):
            raise RuntimeError("strategy bug")

        engine.loop._strategies.on_book = crash
        for n in range(3):  # three crashes inside five minutes
            engine.frames.on_frame(book_frame(YES, ["0.44"], ["0.56"]), engine.clock.now_ns())
            await trio.sleep(40)
        assert engine.loop.halted
        await trio.sleep(1)  # the cancels come back from the paper venue
        assert engine.executor.orders.open_orders() == []
        engine.frames.on_frame(book_frame(YES, ["0.40"], ["0.60"]), engine.clock.now_ns())
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    await engine.log.close()
    rows = select_rows(tmp_path / "run.db")
    kinds = [row.kind for row in rows]
    assert kinds.count("restart") == 2 and kinds.count("breaker_trip") == 1
    trip = next(row for row in rows if row.kind == "breaker_trip")
    assert "strategy bug" in trip.payload["error"]
    cancels = [row for row in rows if row.kind == "cancel"]
    assert len(cancels) == 2 and all("breaker tripped" in row.payload["reason"] for row in cancels)
    assert kinds.count("submit") == 2  # nothing new after the trip


async def test_messages_after_a_crashing_one_survive_the_restart(tmp_path, autojump_clock) -> None:
    engine = engine_for(tmp_path)
    handled = []

    def handle(msg):
        handled.append(msg)
        if msg == "poison":
            raise RuntimeError("bug")

    engine.executor.handle = handle
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.log.run)
        await nursery.start(functools.partial(app.run_decisions, engine, seed=1))
        for msg in ("a", "poison", "b", "c"):
            engine.inbox.send(msg)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert handled == ["a", "poison", "b", "c"]


async def test_a_malformed_frame_is_counted_recorded_and_skipped(tmp_path) -> None:
    engine = engine_for(tmp_path)
    engine.frames.on_frame('[{"event_type":"book","market":"0xm"}, {"event_type":"mystery"}]', 5)
    engine.frames.on_frame(book_frame(YES, ["0.45"], ["0.55"]), 6)
    assert engine.frames.malformed == 2 and engine.frames.frames == 2
    assert engine.books.get(YES).best_bid == 450_000  # the feed carried on
    engine.log.flush_sync()
    rows = [row for row in select_rows(tmp_path / "run.db") if row.kind == "frame_malformed"]
    assert [row.cid for row in rows] == ["f1.0", "f1.1"]
    assert "unknown event_type 'mystery'" in rows[1].payload["error"]


# --------------------------------------------------------------------------- the live tree's services


class QuietChannel:
    """Stands in for the market channel: up at once, never a frame (the test hands frames in)."""

    connections: list = []

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()


def crashing(times: list[float], *, at: list[float]):  # float-ok: virtual seconds
    """A service that crashes on each start whose virtual time is in ``at``; otherwise runs on."""

    async def service(*, task_status=trio.TASK_STATUS_IGNORED) -> None:
        times.append(trio.current_time())
        task_status.started()
        await trio.sleep(10)
        if len(times) <= len(at):
            raise RuntimeError(f"crash {len(times)}")
        await trio.sleep_forever()

    return service


def live_engine(tmp_path) -> app.Engine:
    engine = engine_for(tmp_path)
    engine.log.start_run(mode="paper", seed=0, recording="", config_hash="", code_version="")
    engine.channel = QuietChannel()
    return engine


async def live_run(tmp_path, services, *, duration_s: int = 300, failed=lambda: None) -> app.Engine:
    engine = live_engine(tmp_path)

    async def quote() -> None:
        engine.frames.on_frame(book_frame(YES, ["0.45", "0.46"], ["0.54", "0.55"]), engine.clock.now_ns())
        engine.frames.on_frame(book_frame(NO, ["0.45", "0.46"], ["0.54", "0.55"]), engine.clock.now_ns())

    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: app.run_live_tree(
            engine, services=services, stop=None, duration_s=duration_s, drain_s=1, failed=failed,
            task_status=task_status))
        await quote()
        await trio.sleep(1)
        assert len(engine.executor.orders.open_orders()) == 2  # quoting
    return engine


def restart_delays_ms(seed: int, name: str, crashes: int) -> list[int]:
    policy = RestartPolicy(rng=random.Random(f"{seed}:{name}"))
    return [round(policy.on_crash(0).delay_s * 1000) for _ in range(crashes)]


async def test_a_service_that_crashes_once_is_restarted_and_the_run_goes_on(tmp_path, autojump_clock) -> None:
    starts: list[float] = []  # float-ok: virtual seconds
    await live_run(tmp_path, [("user-channel", crashing(starts, at=[0]))])
    assert len(starts) == 2
    rows = select_rows(tmp_path / "run.db")
    [restart] = [row.payload for row in rows if row.kind == "restart"]
    assert restart["service"] == "user-channel" and restart["error"] == "RuntimeError: crash 1"
    # its own generator, seeded by the config's seed and its name: the same delay on every run
    assert [restart["delay_ms"]] == restart_delays_ms(Config().seed, "user-channel", 1)
    assert "breaker_trip" not in [row.kind for row in rows]
    # the quotes stood until the run's end, when the shutdown took them down
    cancels = [row for row in rows if row.kind == "cancel"]
    assert len(cancels) == 2 and {row.payload["reason"] for row in cancels} == {"duration reached"}
    assert [row.kind for row in rows][-1] == "run_end" and run_outcome(tmp_path / "run.db") == "completed"


async def test_a_service_that_keeps_crashing_trips_the_breaker_which_stops_quoting(tmp_path, autojump_clock) -> None:
    starts: list[float] = []  # float-ok: virtual seconds
    engine = await live_run(tmp_path, [("reconcile", crashing(starts, at=[0, 1, 2, 3]))])
    assert len(starts) == 3 and engine.loop.halted  # no fourth start: the breaker tripped on the third crash
    assert engine.executor.orders.open_orders() == []
    rows = select_rows(tmp_path / "run.db")
    kinds = [row.kind for row in rows]
    assert kinds.count("restart") == 2 and kinds.count("breaker_trip") == 1
    trip = next(row for row in rows if row.kind == "breaker_trip")
    assert trip.payload == {"service": "reconcile", "crashes": 3, "error": "RuntimeError: crash 3"}
    cancels = [row for row in rows if row.kind == "cancel"]
    assert len(cancels) == 2 and all("breaker tripped" in row.payload["reason"] for row in cancels)
    assert run_outcome(tmp_path / "run.db") == "completed"  # the run itself went on to its end


async def test_a_run_a_service_stopped_is_closed_as_failed(tmp_path, autojump_clock) -> None:
    await live_run(tmp_path, [], duration_s=30, failed=lambda: "the user channel never connected")
    rows = select_rows(tmp_path / "run.db")
    assert [row.kind for row in rows][-2:] == ["run_end", "run_failed"]
    assert run_outcome(tmp_path / "run.db") == "failed: the user channel never connected"


async def test_a_tree_that_fails_closes_its_log_as_failed(tmp_path, autojump_clock) -> None:
    engine = live_engine(tmp_path)

    def broken(cid: str) -> None:
        raise ZeroDivisionError("a bug in a timer")

    engine.every(20, broken, "broken")
    with pytest.raises(BaseExceptionGroup) as failure:
        await app.run_live_tree(engine, services=[], stop=None, duration_s=300, drain_s=1)
    assert [type(leaf) for leaf in leaves(failure.value)] == [ZeroDivisionError]
    rows = select_rows(tmp_path / "run.db")
    assert rows[-1].kind == "run_failed" and rows[-1].payload == {"reason": "ZeroDivisionError: a bug in a timer"}
    assert run_outcome(tmp_path / "run.db") == "failed: ZeroDivisionError: a bug in a timer"

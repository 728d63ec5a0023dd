"""Wiring: the decision loop keeps messages across a crash, and a tripped breaker stops safely."""

from __future__ import annotations

import functools

import trio
import trio.testing

from mmbot import app
from mmbot.clock import TrioClock
from mmbot.config import Config
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import OrderStatus
from mmbot.memory.log import EventLog
from mmbot.memory.query import select_rows
from mmbot.model import ONE, MarketInfo

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

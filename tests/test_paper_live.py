"""Paper trading on a live socket, over loopback against the simulator: recording what it sees,
replaying that recording to the same decisions, and shutting down cleanly under load."""

from __future__ import annotations

import json

import httpx
import sqlite_utils
import trio
import trio.testing

from mmbot import app
from mmbot.clock import TrioClock
from mmbot.config import Config
from mmbot.facts.recorder import Recorder
from mmbot.facts.recording import RecordingHeader, RecordingWriter
from mmbot.memory.status import status
from mmbot.venues.polymarket.discovery import list_markets
from mmbot.venues.simulator.server import SimServer, SimSettings
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000


async def serve(nursery: trio.Nursery, *, markets: int = 4, seed: int = 11, speed: int = 1):
    venue = LiveVenue(seed=seed, markets=markets, start_ns=START_NS, warmup_s=20)
    server = SimServer(venue, settings=SimSettings(seed=seed, speed=speed))
    urls = await nursery.start(server.run)
    async with httpx.AsyncClient(base_url=urls.gamma) as http:
        listed, problems = await list_markets(http)
    assert problems == []
    return server, urls, listed


def intents(db) -> list[tuple]:
    rows = sqlite_utils.Database(db).execute(
        "SELECT payload FROM events WHERE kind = 'intent' ORDER BY seq"
    ).fetchall()
    return [
        tuple(p.get(k) for k in ("strategy", "action", "token", "side", "price", "size", "book"))
        for p in (json.loads(r[0]) for r in rows)
    ]


async def test_a_recorded_paper_session_replays_to_the_same_books_and_intents(nursery, autojump_clock, tmp_path):
    server, urls, markets = await serve(nursery)
    clock = TrioClock(anchor_ns=START_NS)
    recording = tmp_path / "session.jsonl.gz"
    recorder = Recorder(RecordingWriter(recording), RecordingHeader(start_ns=clock.now_ns(), markets=tuple(markets)))
    config = Config(seed=3)
    async with trio.open_nursery() as inner:
        await inner.start(recorder.run)
        engine = await app.run_paper(config=config, markets=markets, ws_url=urls.ws, db_path=tmp_path / "live.db",
                                     duration_s=120, clock=clock, tap=recorder.on_frame)
        inner.cancel_scope.cancel()
    assert engine.executor.counts["orders"] > 0 and engine.executor.counts["fills"] > 0
    assert recorder.frames_written == engine.frames.frames
    server.pause()

    def replay() -> str:  # a run of its own, as `mmbot replay` does: its virtual clock starts at 0
        return trio.run(
            lambda: app.replay(config=config, recording=recording, db_path=tmp_path / "replay.db", seed=config.seed),
            clock=trio.testing.MockClock(autojump_threshold=0),
        )

    assert await trio.to_thread.run_sync(replay)
    live, replayed = intents(tmp_path / "live.db"), intents(tmp_path / "replay.db")
    assert len(live) > 10
    assert replayed == live  # same frames, same books (each intent row carries both tops), same intents


async def test_shutdown_under_load_leaves_no_task_and_every_frame_handled(nursery, autojump_clock, tmp_path):
    server, urls, markets = await serve(nursery, markets=60, speed=20)
    stop = trio.Event()
    async with trio.open_nursery() as inner:
        inner.start_soon(lambda: app.run_paper(config=Config(), markets=markets, ws_url=urls.ws,
                                               db_path=tmp_path / "load.db", stop=stop))
        await trio.sleep(15)
        assert server.counts["frames_sent"] > 1_000
        stop.set()
    # run_paper has returned and its nursery is closed: nothing of it is left running
    assert inner.child_tasks == frozenset()
    rows = sqlite_utils.Database(tmp_path / "load.db")
    run_end = json.loads(rows.execute("SELECT payload FROM events WHERE kind = 'run_end'").fetchone()[0])
    stats = json.loads(rows.execute("SELECT payload FROM events WHERE kind = 'bus_stats' ORDER BY seq DESC").fetchone()[0])
    assert stats["frames"] > 1_000 and stats["malformed"] == 0
    assert run_end["open_orders"] == 0  # every paper order cancelled on the way out
    assert rows.execute("SELECT COUNT(*) FROM events WHERE kind = 'error'").fetchone()[0] == 0
    now = status(tmp_path / "load.db")  # what `mmbot status` shows
    assert now["mode"] == "paper" and now["finished"] and now["open_orders"] == 0
    assert now["frames"] == stats["frames"] and set(now["feeds"]) == {"market-1"} and now["feeds"]["market-1"]["up"]


def test_markets_listed_later_are_subscribed_and_resolved_ones_let_go() -> None:
    from mmbot.model import MarketResolved, NewMarket

    calls = []

    class Channel:
        def subscribe(self, tokens):
            calls.append(("subscribe", tuple(tokens)))

        def unsubscribe(self, tokens):
            calls.append(("unsubscribe", tuple(tokens)))

    observe = app.follow_listings(Channel())
    observe(NewMarket(cid="f1", recv_ns=1, market="0xm", market_id="7", question="q", slug="s", tokens=("a", "b"),
                      outcomes=("Yes", "No"), tick=10_000, venue_ts_ms=1))
    observe(MarketResolved(cid="f2", recv_ns=2, market="0xm", market_id="7", tokens=("a", "b"), winning_token="a",
                           winning_outcome="Yes", venue_ts_ms=2))
    assert calls == [("subscribe", ("a", "b")), ("unsubscribe", ("a", "b"))]


async def test_a_crashing_feed_is_restarted_and_its_books_resync(nursery, autojump_clock, tmp_path) -> None:
    server, urls, markets = await serve(nursery)
    engine_box: list = []
    async with trio.open_nursery() as inner:
        engine = await inner.start(lambda task_status: app.run_paper(
            config=Config(), markets=markets, ws_url=urls.ws, db_path=tmp_path / "crash.db", duration_s=60,
            task_status=task_status))
        engine_box.append(engine)
        handle, calls = engine.frames.on_frame, []

        def buggy(text: str, recv_ns: int) -> None:  # a bug on the 30th frame, once
            calls.append(1)
            if len(calls) == 30:
                raise RuntimeError("a bug in the frame pipeline")
            handle(text, recv_ns)

        for conn in engine.channel.connections:
            conn._on_frame = buggy
    db = sqlite_utils.Database(tmp_path / "crash.db")
    restarts = [json.loads(r[0]) for r in db.execute("SELECT payload FROM events WHERE kind = 'restart'")]
    assert [r["service"] for r in restarts] == ["market-feed"] and "a bug in the frame pipeline" in restarts[0]["error"]
    gap = json.loads(db.execute("SELECT payload FROM events WHERE kind = 'feed_gap'").fetchone()[0])
    assert gap["reason"] == "feed crashed" and gap["stale"] == 2 * len(markets)
    sessions = [json.loads(r[0])["session"] for r in db.execute("SELECT payload FROM events WHERE kind = 'feed_up'")]
    assert sessions == [1, 2]  # resubscribed after the restart: fresh snapshots
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'breaker_trip'").fetchone()[0] == 0

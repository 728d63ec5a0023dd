"""Replay: a recording through the whole decision path on paper, on Trio's MockClock (DESIGN §7,
§8). The same recording, config and seed give the same event log, and so the same digest."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import trio

from mmbot import __version__
from mmbot.app_engine import SHUTDOWN_GRACE_S, build_engine, memory_nursery, paper_gateway, run_decisions, stop_safely
from mmbot.clock import ReplayClock, wall_ns
from mmbot.config import Config
from mmbot.decisions.markets import Markets
from mmbot.facts.frame_times import FrameTimes
from mmbot.facts.recording import iter_frames, read_header
from mmbot.facts.replay import RecordedFeed
from mmbot.memory.log import EventLog


async def replay(
    *,
    config: Config,
    recording: str | Path,
    db_path: str | Path,
    seed: int,
    on_progress: Callable[[int], None] | None = None,
    frame_times: FrameTimes | None = None,
) -> str:
    """Replay a recording through the whole decision path on paper; returns the log digest.

    Must run under ``trio.run(..., clock=MockClock(autojump_threshold=0))``. A line of the
    recording that cannot be read ends the replay there with ``RecordingError`` (naming the file
    and the line), the log closed and its run marked failed.
    """
    header = read_header(recording)
    clock = ReplayClock(anchor_ns=header.start_ns)
    log = EventLog(
        # virtual milliseconds say nothing about how many rows wait: batch by count alone
        db_path, clock=clock, wall=wall_ns, batch_rows=config.log.batch_rows, batch_ms=None
    )
    log.start_run(
        mode="replay",
        seed=seed,
        recording=str(Path(recording).resolve()),  # where a reader of the log finds its markets' names
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
        clock=clock,
        step_inline=engine.loop.step_inline,
        on_progress=on_progress,
        frame_times=frame_times,
    )
    async with memory_nursery(log):
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
    return digest

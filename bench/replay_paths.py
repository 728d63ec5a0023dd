"""The replay bench's two timed paths, each run in a child process: ``mmbot replay`` itself
(instrumented from outside) and the same decision work as plain calls with no Trio."""

from __future__ import annotations

import contextlib
import cProfile
import functools
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from itertools import groupby
from pathlib import Path
from typing import Any, Callable, Iterator

import attrs

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import trio  # noqa: E402
import trio.testing  # noqa: E402

from mmbot import __version__, app, app_replay  # noqa: E402
from mmbot.clock import monotonic_ns, wall_ns  # noqa: E402
from mmbot.config import Config  # noqa: E402
from mmbot.decisions.markets import Markets  # noqa: E402
from mmbot.facts.recording import iter_frames, read_header  # noqa: E402
from mmbot.memory.log import EventLog  # noqa: E402
from mmbot.memory.query import digest  # noqa: E402
from replay_probe import (  # noqa: E402
    Probe, StepTimes, engine_counts, engine_kept, instrumented, peak_rss_kib, reset_peak_rss_kib,
)

CLOSE_LIMIT_S = 30  # a replay whose event log takes longer to close is reported as such
BEFORE_GIVING_UP: list[Callable[[], None]] = []  # run by the close watchdog before it exits

# --------------------------------------------------------------------------- the two paths


@contextlib.contextmanager
def close_watchdog(limit_s: int, at_close: dict[str, int], give_up: Callable[[], None]) -> Iterator[None]:
    """Note the log's backlog when ``EventLog.close`` starts, and call ``give_up`` (from another
    thread) if the close takes longer than ``limit_s``.

    Why: when the writer thread falls behind during replay, close() can drain its backlog at a
    few rows per second (see bench/README.md), and the benchmark must still report.
    """
    close = EventLog.close

    async def watched_close(log: EventLog) -> str:
        at_close.update(pending=log.statistics().pending, started_ns=monotonic_ns())
        timer = threading.Timer(limit_s, give_up)
        timer.daemon = True
        timer.start()
        try:
            return await close(log)
        finally:
            timer.cancel()
            at_close["took_ns"] = monotonic_ns() - at_close["started_ns"]

    EventLog.close = watched_close  # type: ignore[method-assign]
    try:
        yield
    finally:
        EventLog.close = close  # type: ignore[method-assign]


def taker_only(config: Config) -> Config:
    """``config`` with the maker off: the strategy NautilusTrader's top-of-book run has (the
    merger stays: it is how the taker's complete sets turn back into pUSD)."""
    strategies = config.strategies
    return attrs.evolve(config, strategies=attrs.evolve(strategies, maker=attrs.evolve(strategies.maker, enabled=False)))


def run_replay(recording: Path, db: Path, seed: int, *, taker: bool = False, probed: bool = True) -> dict[str, Any]:
    """``mmbot replay``'s own code path, instrumented from outside (``taker``: the maker off).

    ``probed`` False leaves out what only the replay bench's own figures need and costs per frame
    (the tick-to-submit probe's wrappers, Trio's step timing, the CPU clock read per instant):
    the side by side with NautilusTrader times mmbot's code alone, as it times NT's. Only the
    engine is kept, once, for its counts."""
    idle_kib = reset_peak_rss_kib()  # everything imported, nothing built yet
    probe, steps, engines = Probe(), StepTimes(), []
    last_progress = [0, 0]  # wall and CPU ns after the last instant's frames were handled
    at_close: dict[str, int] = {}

    def progress(_: int) -> None:
        last_progress[0], last_progress[1] = monotonic_ns(), time.process_time_ns()

    def progress_wall(_: int) -> None:
        last_progress[0] = monotonic_ns()

    def result(run_digest: str | None) -> dict[str, Any]:
        return {
            **engine_counts(engines[0]),
            "seconds": (last_progress[0] - started) / 1e9,  # float-ok: frames handled, before the drain
            "cpu_seconds": (last_progress[1] - cpu_started) / 1e9 if probed else None,  # float-ok: all threads
            "wall_s": round((monotonic_ns() - started) / 1e9, 2),  # float-ok: with drain, close and digest
            "pending_at_close": at_close.get("pending"),
            "close_s": round(at_close["took_ns"] / 1e9, 2) if "took_ns" in at_close else None,  # float-ok
            "close_timed_out": run_digest is None,
            "tick_to_submit_us": probe.summary(),
            "stall_ms": steps.summary(),
            "idle_rss_kib": idle_kib,
            "peak_rss_kib": peak_rss_kib(),
            "digest": run_digest,
        }

    def give_up() -> None:
        for hook in BEFORE_GIVING_UP:
            hook()
        print(json.dumps(result(None)), flush=True)
        os._exit(0)  # the Trio thread is still busy closing; the figures so far are the result

    watched = instrumented(probe, engines) if probed else engine_kept(engines)
    with watched, close_watchdog(CLOSE_LIMIT_S, at_close, give_up):
        cpu_started, started = time.process_time_ns(), monotonic_ns()
        run_digest = trio.run(
            functools.partial(app.replay, config=taker_only(Config(seed=seed)) if taker else Config(seed=seed),
                              recording=recording, db_path=db,
                              seed=seed, on_progress=progress if probed else progress_wall),
            clock=trio.testing.MockClock(autojump_threshold=0),
            instruments=[steps] if probed else [],
        )
    return result(run_digest)


class FrameClock:
    """``now_ns`` is the instant being handled: what the MockClock reads during replay."""

    def __init__(self, now_ns: int) -> None:
        self.t = now_ns

    def now_ns(self) -> int:
        return self.t


def run_no_trio(recording: Path, db: Path, seed: int) -> dict[str, Any]:
    """The same decision work as plain calls, in RecordedFeed's order, with no Trio run loop."""
    probe, engines = Probe(), []
    config = Config(seed=seed)
    with instrumented(probe, engines):
        cpu_started, started = time.process_time_ns(), monotonic_ns()
        header = read_header(recording)
        clock = FrameClock(header.start_ns)
        log = EventLog(db, clock=clock, wall=wall_ns, batch_rows=config.log.batch_rows, batch_ms=config.log.batch_ms)
        log.start_run(mode="replay", seed=seed, recording=recording.name, config_hash=config.digest(),
                      code_version=__version__)
        engine = app_replay.build_engine(  # the instrumented ones, as replay looks them up
            config=config, clock=clock, log=log, markets=Markets(header.markets),
            gateway_factory=app_replay.paper_gateway(config), seed=seed,
        )
        log.record("run_start", "run", {"mode": "replay", "seed": seed, "recording": recording.name,
                                        "config_hash": config.digest()})
        engine.every(config.log.stats_interval_s, engine.record_stats, "stats")
        engine.every(config.log.stats_interval_s, engine.record_pnl, "pnl")
        scheduler, loop, on_frame = engine.scheduler, engine.loop, engine.frames.on_frame

        def fire_until(t_ns: int, *, before: bool = False) -> None:
            # Scheduler.fire_until without the awaits: each due instant, then one decision step.
            while (deadline := scheduler.next_deadline()) is not None and (
                deadline < t_ns if before else deadline <= t_ns
            ):
                clock.t = max(clock.t, deadline)
                scheduler.fire_due(deadline)
                loop.step()
            clock.t = max(clock.t, t_ns)

        last_ns = header.start_ns
        for t_ns, group in groupby(iter_frames(recording), key=lambda frame: frame[0]):
            fire_until(t_ns)
            for _, channel, text in group:
                if channel == "market":
                    on_frame(text, t_ns)
                    loop.step()  # RecordedFeed settles after every frame (DESIGN §8)
            last_ns = t_ns
        handled, cpu_handled = monotonic_ns(), time.process_time_ns()

        # app.replay's ending: let answers come back, halt, drain, final rows. Its shielded
        # drain is cut by move_on_after at exactly last + 10 s, so timers due then never fire.
        fire_until(last_ns + 5_000_000_000)
        loop.halt("shutdown", "end of recording")
        fire_until(last_ns + 10_000_000_000, before=True)
        loop.step()
        engine.record_stats("final")
        engine.record_pnl("final", kind="run_end")
        flush_started = monotonic_ns()
        log.flush_sync()
        flushed = monotonic_ns()
    counts = engine_counts(engine)
    return {
        **counts,
        "seconds": (handled - started) / 1e9,  # float-ok: a duration
        "cpu_seconds": (cpu_handled - cpu_started) / 1e9,  # float-ok: a duration
        "flush_s": round((flushed - flush_started) / 1e9, 2),  # float-ok: a duration
        "tick_to_submit_us": probe.summary(),
        "peak_rss_kib": peak_rss_kib(),
        "digest": digest(str(db)),
    }


PATHS = {
    "replay": run_replay,
    "replay-plain": functools.partial(run_replay, probed=False),
    "replay-plain-taker": functools.partial(run_replay, taker=True, probed=False),
    "no-trio": run_no_trio,
}


def run_child(path: str, recording: Path, seed: int) -> dict[str, Any]:
    """One path in a fresh interpreter; its JSON result is the last line of its stdout."""
    started = monotonic_ns()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replay.py"), "--child", path, "--recording", str(recording),
         "--seed", str(seed)],
        capture_output=True, text=True, cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: the {path} run failed:\n{proc.stderr.strip()}")
    took_s = (monotonic_ns() - started) // 1_000_000_000
    print(f"bench: {path} of {recording.name}: {took_s} s", file=sys.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(path: str, recording: Path, seed: int, profile: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mmbot-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        BEFORE_GIVING_UP.append(functools.partial(shutil.rmtree, tmp, ignore_errors=True))  # os._exit skips it
        if not profile:
            return PATHS[path](recording, db, seed)
        profiler = cProfile.Profile()

        def print_stats() -> None:
            stats = pstats.Stats(profiler, stream=sys.stdout)
            for order in ("tottime", "cumulative"):
                print(f"\n===== {path}: top 30 by {order} =====")
                stats.sort_stats(order).print_stats(30)

        BEFORE_GIVING_UP.append(print_stats)
        result = profiler.runcall(PATHS[path], recording, db, seed)
        print_stats()
        return result



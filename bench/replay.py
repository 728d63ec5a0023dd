"""Replay benchmark: how fast the whole decision path runs over a recording, and how much of
that Trio costs.

    .venv/bin/python bench/replay.py                 # 200,000 price_change events, 50 tokens
    .venv/bin/python bench/replay.py --quick --no-rss
    .venv/bin/python bench/replay.py --profile replay   # cProfile of one path, no JSON

It prints ONE JSON line (see bench/README.md for every field). An *event* is one decoded
market message; one frame may hold several (the subscription snapshot is an array).

What runs, each in its own child process so that peak RSS and caches belong to one path:

- **replay**: exactly ``mmbot replay`` (``app.replay`` under an autojump MockClock). The bench
  only wraps three things from outside: the frame decoder (stamps each frame's decode start),
  the executor's ``handle`` (remembers which fact caused the intent being handled) and the
  paper gateway's ``send`` (stamps the order request); a Trio instrument times every task step.
- **no-trio**: the same objects from ``app.build_engine`` driven by plain calls with the same
  fixed order as the recorded feed (timers due, then the instant's frames, then one decision
  step). Rows stay in memory while timed and are written synchronously at the end, timed
  apart. Its digest must equal the replay's: the same work was done.
- **rss**: the replay of a few seconds of market time with 50 and with 1,000 tokens.

Recordings come from the project's seeded generator and are cached in ``bench/.cache/``,
keyed by their parameters and by the generator's source, so a changed generator regenerates.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import hashlib
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from itertools import groupby
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import trio  # noqa: E402
import trio.testing  # noqa: E402

from mmbot import __version__, app, app_engine, app_replay  # noqa: E402
from mmbot.clock import monotonic_ns, wall_ns  # noqa: E402
from mmbot.config import Config  # noqa: E402
from mmbot.decisions.markets import Markets  # noqa: E402
from mmbot.facts.recording import RecordingWriter, iter_frames, read_header  # noqa: E402
from mmbot.memory.log import EventLog  # noqa: E402
from mmbot.memory.query import digest  # noqa: E402
from mmbot.model import SubmitRequest  # noqa: E402
from mmbot.venues.simulator.flow import FlowParams  # noqa: E402
from mmbot.venues.simulator.generate import Simulation  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
INTERVAL_S = 3600  # hourly Up/Down windows: one opens, closes and resolves inside the default recording
QUICK_EVENTS = 10_000
RSS_TOKENS = (50, 1_000)
RSS_SECONDS, RSS_WARMUP_S = 5, 10
CLOSE_LIMIT_S = 30  # a replay whose event log takes longer to close is reported as such
BEFORE_GIVING_UP: list[Callable[[], None]] = []  # run by the close watchdog before it exits
TARGETS = {"ratio": 0.5, "p50_us": 50, "p99_us": 250, "p999_us": 1_000, "writer_stall_ms": 5, "rss_kib_per_token": 16}


# --------------------------------------------------------------------------- recordings


class Spec(NamedTuple):
    """One cached recording. ``price_changes`` 0 means the whole duration."""

    tokens: int
    price_changes: int
    seed: int
    duration_s: int
    warmup_s: int
    interval_s: int = INTERVAL_S


def main_spec(events: int, tokens: int, seed: int) -> Spec:
    markets = tokens // 2
    # Enough market time at 1.5 price_change messages per market-second (the generator makes
    # ~1.8), plus slack: the writer stops at exactly ``events``; report() retries longer if short.
    duration = -(-events * 2 // (markets * 3)) + 120
    return Spec(tokens=tokens, price_changes=events, seed=seed, duration_s=duration, warmup_s=60)


def simulation(spec: Spec) -> Simulation:
    """The generator's ``markets`` is markets at a time; pick it so the header lists tokens/2."""
    wanted = spec.tokens // 2
    best: Simulation | None = None
    for markets in range(1, 2 * wanted + 2):
        sim = Simulation(
            seed=spec.seed, duration_s=spec.duration_s, markets=markets,
            interval_s=spec.interval_s, warmup_s=spec.warmup_s, params=FlowParams(),
        )
        listed = len(sim.header.markets)
        if listed == wanted:
            return sim
        if listed > wanted:
            break
        best = sim
    if best is None:
        raise SystemExit(f"bench: cannot plan a recording with {spec.tokens} tokens")
    return best


# What the recording generator is made of (the simulator's server side is not: editing it must not
# throw away a cached recording that takes minutes to make).
GENERATOR_SOURCES = (
    "mmbot/venues/simulator/generate.py", "mmbot/venues/simulator/engine.py", "mmbot/venues/simulator/flow.py",
    "mmbot/venues/simulator/frames.py", "mmbot/venues/simulator/prices.py", "mmbot/venues/simulator/book.py",
    "mmbot/venues/simulator/events.py", "mmbot/facts/recording.py", "mmbot/model.py",
)


def _generator_fingerprint() -> str:
    sources = [ROOT / name for name in GENERATOR_SOURCES]
    h = hashlib.sha256()
    for path in sources:
        h.update(path.read_bytes())
    return h.hexdigest()


def _level_changes(frame: str) -> int:
    """Entries of the price_change messages in a generated frame: each one carries best_bid."""
    return frame.count('"best_bid"')


def cached_recording(spec: Spec) -> tuple[Path, dict[str, Any]]:
    """The recording for ``spec`` and its metadata, generated once and then read from the cache."""
    key = hashlib.sha256(f"{spec!r}{FlowParams()!r}{_generator_fingerprint()}".encode()).hexdigest()[:12]
    path = CACHE / f"{spec.tokens}tok-{spec.price_changes}pc-{spec.duration_s}s-seed{spec.seed}-{key}.jsonl.gz"
    meta_path = path.with_name(path.name + ".meta.json")
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if "level_changes" not in meta:  # a cache from before the field existed
            meta["level_changes"] = sum(_level_changes(text) for _, channel, text in iter_frames(path)
                                        if channel == "market")
            meta_path.write_text(json.dumps(meta))
        return path, meta
    CACHE.mkdir(parents=True, exist_ok=True)
    started = monotonic_ns()
    sim = simulation(spec)
    partial = path.with_name(path.name + ".part.gz")
    price_changes = frames = level_changes = 0
    with RecordingWriter(partial) as writer:
        writer.write_header(sim.header)
        for t_ns, channel, text in sim.frames():
            writer.write_frame(t_ns, channel, text)
            if channel == "market":
                frames += 1
                price_changes += text.count('"event_type":"price_change"')
                level_changes += _level_changes(text)
                if spec.price_changes and price_changes >= spec.price_changes:
                    break
    meta = {
        "tokens": 2 * len(sim.header.markets),
        "market_frames": frames,
        "price_changes": price_changes,
        "level_changes": level_changes,
        "generated_s": round((monotonic_ns() - started) / 1e9, 1),  # float-ok: a duration
    }
    partial.rename(path)
    meta_path.write_text(json.dumps(meta))
    print(f"bench: generated {path.name} in {meta['generated_s']} s", file=sys.stderr)
    return path, meta


# --------------------------------------------------------------------------- instrumentation


class Probe:
    """Tick-to-submit: decode start of the frame that caused an order -> the request at the gateway.

    A ring of recent frames' decode starts (a decision always follows its frame within the same
    recorded instant, far fewer than RING frames later) keeps memory flat over any recording.
    """

    RING = 1 << 14

    def __init__(self) -> None:
        self._starts: list[tuple[str, int]] = [("", 0)] * self.RING
        self._cause: str = ""
        self.latencies_ns: list[int] = []
        self.unattributed = 0

    def decoder(self, decode: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        starts, mask = self._starts, self.RING - 1

        def timed_decode(text: str | bytes, *, recv_ns: int, cid: str) -> list[Any]:
            starts[int(cid[1:]) & mask] = (cid, monotonic_ns())
            return decode(text, recv_ns=recv_ns, cid=cid)

        return timed_decode

    def handler(self, handle: Callable[[Any], None]) -> Callable[[Any], None]:
        def traced_handle(msg: Any) -> None:
            self._cause = getattr(msg, "cause", "")
            handle(msg)

        return traced_handle

    def sender(self, send: Callable[[Any], None]) -> Callable[[Any], None]:
        starts, mask, latencies = self._starts, self.RING - 1, self.latencies_ns

        def timed_send(request: Any) -> None:
            if isinstance(request, SubmitRequest):
                now = monotonic_ns()
                frame = self._cause.partition(".")[0]  # array elements have cids "f12.3"
                cid, decoded = starts[int(frame[1:]) & mask] if frame[1:].isdigit() else ("", 0)
                if frame[:1] == "f" and cid == frame:
                    latencies.append(now - decoded)
                else:
                    self.unattributed += 1  # caused by a fill or a timer, not by a frame
            send(request)

        return timed_send

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ns)

        def rank(per_mille: int) -> float:  # float-ok: µs
            """Nearest-rank percentile."""
            if not ordered:
                return 0.0
            index = max(0, -(-len(ordered) * per_mille // 1000) - 1)
            return round(ordered[index] / 1e3, 1)  # float-ok: µs

        return {
            "p50": rank(500), "p99": rank(990), "p999": rank(999),
            "max": round(ordered[-1] / 1e3, 1) if ordered else 0.0,  # float-ok: µs
            "count": len(ordered), "unattributed": self.unattributed,
        }


class StepTimes(trio.abc.Instrument):
    """Per Trio task name: the longest single step (how long it held the loop), how many steps,
    and how many took over 1 ms."""

    SLOW_NS = 1_000_000

    def __init__(self) -> None:
        self.tasks: dict[str, list[int]] = {}  # name -> [longest ns, steps, slow steps]
        self._started = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = monotonic_ns()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        took = monotonic_ns() - self._started
        stats = self.tasks.get(task.name)
        if stats is None:
            stats = self.tasks[task.name] = [0, 0, 0]
        stats[1] += 1
        if took > stats[0]:
            stats[0] = took
        if took > self.SLOW_NS:
            stats[2] += 1

    def summary(self) -> dict[str, Any]:
        by_task = {
            name: {"longest_ms": round(longest / 1e6, 3), "steps": steps, "over_1ms": slow}  # float-ok: ms
            for name, (longest, steps, slow) in sorted(self.tasks.items())
        }
        writer = [t["longest_ms"] for name, t in by_task.items() if name.endswith("EventLog.run")]
        return {
            "writer": max(writer, default=0.0),
            "any": max((t["longest_ms"] for t in by_task.values()), default=0.0),
            "by_task": by_task,
        }


@contextlib.contextmanager
def instrumented(probe: Probe, engines: list[app.Engine]) -> Iterator[None]:
    """Patch app's decoder, engine builder and paper gateway for the bench, where replay looks
    them up (app_replay, app_engine); restore on exit."""
    build_engine, paper_gateway, decode = app_replay.build_engine, app_replay.paper_gateway, app_engine.decode_market_frame

    def traced_build(**kwargs: Any) -> app.Engine:
        engine = build_engine(**kwargs)
        engine.executor.handle = probe.handler(engine.executor.handle)  # type: ignore[method-assign]
        engines.append(engine)
        return engine

    def traced_gateway(config: Config) -> Callable[..., Any]:
        factory = paper_gateway(config)

        def make(**kwargs: Any) -> Any:
            gateway = factory(**kwargs)
            gateway.send = probe.sender(gateway.send)
            return gateway

        return make

    app_replay.build_engine, app_replay.paper_gateway = traced_build, traced_gateway  # type: ignore[assignment]
    app_engine.decode_market_frame = probe.decoder(decode)  # type: ignore[assignment]
    try:
        yield
    finally:
        app_replay.build_engine, app_replay.paper_gateway = build_engine, paper_gateway
        app_engine.decode_market_frame = decode


def _engine_counts(engine: app.Engine) -> dict[str, Any]:
    log = engine.log.statistics()
    return {
        "frames": engine.frames.frames,
        "events": engine.frames.messages,
        "malformed": engine.frames.malformed,
        "drops": engine.slots.statistics().dropped,
        "book_updates": engine.loop.book_updates,
        "orders": engine.executor.counts["orders"],
        "fills": engine.executor.counts["fills"],
        "rows_written": log.rows_written,
        "writer_batches": log.batches,
        "writer_longest_write_ms": round(log.longest_write_ms, 2),  # float-ok
        "writer_peak_pending": log.peak_pending,
    }


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_rss_kib() -> int:
    """This process's peak RSS. ``ru_maxrss`` is the fallback only: on Linux it carries the
    parent's peak across fork+exec, so a child of a big parent would report the parent's."""
    peak = _status_kib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak_rss_kib() -> int:
    """Restart the peak-RSS count from now (Linux: clear_refs 5); returns the RSS it starts from."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return _peak_rss_kib()  # cannot reset: the import-time peak stays the baseline
    return _status_kib("VmRSS") or 0


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


def run_replay(recording: Path, db: Path, seed: int) -> dict[str, Any]:
    """``mmbot replay``'s own code path, instrumented from outside."""
    idle_kib = _reset_peak_rss_kib()  # everything imported, nothing built yet
    probe, steps, engines = Probe(), StepTimes(), []
    last_progress = [0, 0]  # wall and CPU ns after the last instant's frames were handled
    at_close: dict[str, int] = {}

    def progress(_: int) -> None:
        last_progress[0], last_progress[1] = monotonic_ns(), time.process_time_ns()

    def result(run_digest: str | None) -> dict[str, Any]:
        return {
            **_engine_counts(engines[0]),
            "seconds": (last_progress[0] - started) / 1e9,  # float-ok: frames handled, before the drain
            "cpu_seconds": (last_progress[1] - cpu_started) / 1e9,  # float-ok: all threads
            "wall_s": round((monotonic_ns() - started) / 1e9, 2),  # float-ok: with drain, close and digest
            "pending_at_close": at_close.get("pending"),
            "close_s": round(at_close["took_ns"] / 1e9, 2) if "took_ns" in at_close else None,  # float-ok
            "close_timed_out": run_digest is None,
            "tick_to_submit_us": probe.summary(),
            "stall_ms": steps.summary(),
            "idle_rss_kib": idle_kib,
            "peak_rss_kib": _peak_rss_kib(),
            "digest": run_digest,
        }

    def give_up() -> None:
        for hook in BEFORE_GIVING_UP:
            hook()
        print(json.dumps(result(None)), flush=True)
        os._exit(0)  # the Trio thread is still busy closing; the figures so far are the result

    with instrumented(probe, engines), close_watchdog(CLOSE_LIMIT_S, at_close, give_up):
        cpu_started, started = time.process_time_ns(), monotonic_ns()
        run_digest = trio.run(
            functools.partial(app.replay, config=Config(seed=seed), recording=recording, db_path=db,
                              seed=seed, on_progress=progress),
            clock=trio.testing.MockClock(autojump_threshold=0),
            instruments=[steps],
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
        engine = app.build_engine(config=config, clock=clock, log=log, markets=Markets(header.markets),
                                  gateway_factory=app.paper_gateway(config), seed=seed)
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
    counts = _engine_counts(engine)
    return {
        **counts,
        "seconds": (handled - started) / 1e9,  # float-ok: a duration
        "cpu_seconds": (cpu_handled - cpu_started) / 1e9,  # float-ok: a duration
        "flush_s": round((flushed - flush_started) / 1e9, 2),  # float-ok: a duration
        "tick_to_submit_us": probe.summary(),
        "peak_rss_kib": _peak_rss_kib(),
        "digest": digest(str(db)),
    }


PATHS = {"replay": run_replay, "no-trio": run_no_trio}


def run_child(path: str, recording: Path, seed: int) -> dict[str, Any]:
    """One path in a fresh interpreter; its JSON result is the last line of its stdout."""
    started = monotonic_ns()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", path, "--recording", str(recording),
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


# --------------------------------------------------------------------------- the report


def _rss_per_token(seed: int) -> tuple[dict[str, float], float]:  # float-ok: KiB figures
    """(peak − idle) / tokens for each run, and the slope between the two runs."""
    net = {}
    for tokens in RSS_TOKENS:
        recording, meta = cached_recording(
            Spec(tokens=tokens, price_changes=0, seed=seed, duration_s=RSS_SECONDS, warmup_s=RSS_WARMUP_S)
        )
        result = run_child("replay", recording, seed)
        net[meta["tokens"]] = result["peak_rss_kib"] - result["idle_rss_kib"]
    (small, small_kib), (large, large_kib) = sorted(net.items())
    per_token = {str(t): round(kib / t, 1) for t, kib in net.items()}  # float-ok
    return per_token, round((large_kib - small_kib) / (large - small), 1)  # float-ok


def main_recording(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    events = QUICK_EVENTS if args.quick else args.events
    spec = main_spec(events, args.tokens, args.seed)
    recording, meta = cached_recording(spec)
    while meta["price_changes"] < events:  # the generator was slower than the bound assumed
        spec = spec._replace(duration_s=spec.duration_s * 2)
        recording, meta = cached_recording(spec)
    return recording, meta


def report(args: argparse.Namespace) -> dict[str, Any]:
    recording, meta = main_recording(args)
    replay = run_child("replay", recording, args.seed)
    no_trio = run_child("no-trio", recording, args.seed)
    rate = round(replay["events"] / replay["seconds"])
    ceiling = round(no_trio["events"] / no_trio["seconds"])
    latency = replay["tick_to_submit_us"]
    out: dict[str, Any] = {
        "recording": recording.name,
        "tokens": meta["tokens"],
        "frames": replay["frames"],
        "events": replay["events"],
        "price_change_events": meta["price_changes"],
        "level_changes": meta["level_changes"],
        "malformed": replay["malformed"],
        "events_per_s": rate,
        "events_per_s_no_trio": ceiling,
        "ratio": round(rate / ceiling, 3),  # float-ok
        "level_changes_per_s": round(meta["level_changes"] / replay["seconds"]),
        "events_per_cpu_s": round(replay["events"] / replay["cpu_seconds"]),
        "events_per_cpu_s_no_trio": round(no_trio["events"] / no_trio["cpu_seconds"]),
        "tick_to_submit_us": latency,
        "tick_to_submit_us_no_trio": no_trio["tick_to_submit_us"],
        "longest_stall_ms": replay["stall_ms"],
        "writer_longest_write_ms": replay["writer_longest_write_ms"],
        "peak_rss_mib": round(replay["peak_rss_kib"] / 1024, 1),  # float-ok
        "drops": replay["drops"],
        "rows_written": replay["rows_written"],
        "book_updates": replay["book_updates"],
        "orders": replay["orders"],
        "fills": replay["fills"],
        "writer_peak_pending": replay["writer_peak_pending"],
        "pending_rows_at_close": replay["pending_at_close"],
        "close_s": replay["close_s"],
        "close_timed_out": replay["close_timed_out"],
        "replay_wall_s": replay["wall_s"],
        "no_trio_flush_s": no_trio["flush_s"],
        "digests_match": None if replay["digest"] is None else replay["digest"] == no_trio["digest"],
    }
    met = {
        "ratio": out["ratio"] >= TARGETS["ratio"],
        "p50": latency["p50"] <= TARGETS["p50_us"],
        "p99": latency["p99"] <= TARGETS["p99_us"],
        "p999": latency["p999"] <= TARGETS["p999_us"],
        "writer_stall": replay["stall_ms"]["writer"] <= TARGETS["writer_stall_ms"],
    }
    if not args.no_rss:
        out["rss_per_token_kib"], out["rss_marginal_kib_per_token"] = _rss_per_token(args.seed)
        met["rss_per_token"] = out["rss_marginal_kib_per_token"] <= TARGETS["rss_kib_per_token"]
    out["targets_met"] = met
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/replay.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="price_change events to generate")
    parser.add_argument("--tokens", type=int, default=50, help="subscribed tokens (two per market)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (also the paper latency seed)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run of {QUICK_EVENTS:,} events")
    parser.add_argument("--no-rss", action="store_true", help="skip the 50/1,000-token RSS runs")
    parser.add_argument("--profile", choices=sorted(PATHS), help="cProfile one path in-process; no JSON")
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--recording", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tokens < 2 or args.tokens % 2 or args.events < 1:
        parser.error("--tokens must be an even number >= 2 and --events positive")
    if args.child:
        print(json.dumps(child(args.child, args.recording, args.seed)))
        return 0
    if args.profile:
        child(args.profile, main_recording(args)[0], args.seed, profile=True)
        return 0
    print(json.dumps(report(args), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the replay bench measures from outside the code it runs: tick-to-submit, Trio task steps,
the engine's counts and the process's RSS."""

from __future__ import annotations

import contextlib
import gc
import resource
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import trio  # noqa: E402
import trio.testing  # noqa: E402

from mmbot import app, app_engine, app_replay  # noqa: E402
from mmbot.clock import monotonic_ns  # noqa: E402
from mmbot.config import Config  # noqa: E402
from mmbot.model import SubmitRequest  # noqa: E402

# --------------------------------------------------------------------------- instrumentation


class Probe:
    """Tick-to-submit: decode start of the frame that caused an order -> the request at the gateway.

    Two populations, reported apart: the **burst**, orders caused by a subscription snapshot (a
    frame that is an array of ``book`` messages, whose elements have cids ``f12.3``: every
    market's first quotes at once, each order waiting for the ones before it), and the **steady
    state**, orders caused by a frame of one message (a ``price_change``, a ``book`` after a
    trade), which is what the bot's reaction time to the market is.

    A ring of recent frames' decode starts (a decision always follows its frame within the same
    recorded instant, far fewer than RING frames later) keeps memory flat over any recording.
    """

    RING = 1 << 14

    def __init__(self) -> None:
        self._starts: list[tuple[str, int]] = [("", 0)] * self.RING
        self._cause: str = ""
        self.steady_ns: list[int] = []
        self.burst_ns: list[int] = []
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
        starts, mask, steady, burst = self._starts, self.RING - 1, self.steady_ns, self.burst_ns

        def timed_send(request: Any) -> None:
            if isinstance(request, SubmitRequest):
                now = monotonic_ns()
                frame, element, _ = self._cause.partition(".")  # array elements have cids "f12.3"
                cid, decoded = starts[int(frame[1:]) & mask] if frame[1:].isdigit() else ("", 0)
                if frame[:1] == "f" and cid == frame:
                    (burst if element else steady).append(now - decoded)
                else:
                    self.unattributed += 1  # caused by a fill or a timer, not by a frame
            send(request)

        return timed_send

    def summary(self) -> dict[str, Any]:
        return {"steady": percentiles(self.steady_ns), "burst": percentiles(self.burst_ns),
                "unattributed": self.unattributed}


def percentiles(samples_ns: list[int]) -> dict[str, Any]:
    """Nearest-rank p50/p99/p99.9 and the max, in µs, and the count."""
    ordered = sorted(samples_ns)

    def rank(per_mille: int) -> float:  # float-ok: µs
        if not ordered:
            return 0.0
        index = max(0, -(-len(ordered) * per_mille // 1000) - 1)
        return round(ordered[index] / 1e3, 1)  # float-ok: µs

    return {
        "p50": rank(500), "p99": rank(990), "p999": rank(999),
        "max": round(ordered[-1] / 1e3, 1) if ordered else 0.0,  # float-ok: µs
        "count": len(ordered),
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
def engine_kept(engines: list[app.Engine]) -> Iterator[None]:
    """Keep the engine replay builds, for its counts: one call at start, nothing per frame."""
    build_engine = app_replay.build_engine

    def kept(**kwargs: Any) -> app.Engine:
        engine = build_engine(**kwargs)
        engines.append(engine)
        return engine

    app_replay.build_engine = kept  # type: ignore[assignment]
    try:
        yield
    finally:
        app_replay.build_engine = build_engine


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


def engine_counts(engine: app.Engine) -> dict[str, Any]:
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


def status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kib() -> int:
    """This process's peak RSS. ``ru_maxrss`` is the fallback only: on Linux it carries the
    parent's peak across fork+exec, so a child of a big parent would report the parent's."""
    peak = status_kib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss_kib() -> int:
    """Restart the peak-RSS count from now (Linux: clear_refs 5); returns the RSS it starts from."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return peak_rss_kib()  # cannot reset: the import-time peak stays the baseline
    return status_kib("VmRSS") or 0



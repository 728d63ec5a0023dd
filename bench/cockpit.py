"""The cockpit's cost on the trading thread: everything the operator's views do runs on the run's
Trio thread, between decision steps, so whatever it takes is taken from trading.

    .venv/bin/python bench/cockpit.py                  # about a minute
    .venv/bin/python bench/cockpit.py --quick          # 10 and 100 markets only, fewer rounds
    .venv/bin/python bench/cockpit.py --profile 5000   # cProfile of one dashboard tick and one terminal frame

It prints a table, then ONE JSON line with every figure (see bench/README.md).

1. **The row observer.** Every event-log row goes through ``Watch.on_row`` (``EventLog.observe``).
   The bundled recording is replayed (``app_replay.replay``) into a temporary log; its rows are
   then recorded again (``EventLog.record``) into fresh logs, alternately with no observer and
   with a ``Watch`` observing: µs per row and the ratio. Then the whole replay, alternately bare,
   with a ``Cockpit`` attached, and with a ``Cockpit`` and the run's metrics (``run_metrics``:
   the feed-lag histogram observes every market message) — attached by wrapping
   ``app_replay.build_engine`` in this process, mmbot unchanged; the digests must be equal.
2. **The views.** Engines of 10, 100, 1,000 and 5,000 markets (``build_engine`` with the paper
   gateway and a real ``EventLog``, as ``run_paper`` builds them), every book synced, a tenth of
   the markets holding a position, quoting (four open orders) and with fills, the watch full
   (2,000 PnL points, 50 notices, 50 fills): ``Cockpit.snapshot()``, ``as_json`` + ``json.dumps``,
   ``health``, the Prometheus scrape (``generate_latest``) and ``terminal.render`` printed to a
   160×50 rich console. Median and p99 ms per call, and the share of each second one dashboard
   (one state a second) and the terminal view (two frames a second) take.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import itertools
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlite_utils  # noqa: E402
import trio  # noqa: E402
import trio.testing  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402
from rich.console import Console  # noqa: E402

from mmbot import app_replay  # noqa: E402
from mmbot.app_cockpit import Cockpit  # noqa: E402
from mmbot.app_engine import build_engine, paper_gateway  # noqa: E402
from mmbot.app_metrics import DASHBOARD_MARKETS, EngineFigures, run_metrics  # noqa: E402
from mmbot.cli_cockpit import TERMINAL_MARKETS  # noqa: E402
from mmbot.clock import TrioClock, wall_ns  # noqa: E402
from mmbot.cockpit.snapshot import Snapshot, as_json  # noqa: E402
from mmbot.cockpit.terminal import render  # noqa: E402
from mmbot.cockpit.watch import Watch  # noqa: E402
from mmbot.config import Config  # noqa: E402
from mmbot.decisions.markets import Markets  # noqa: E402
from mmbot.memory.log import EventLog  # noqa: E402
from mmbot.model import ONE, BookSnapshot, MarketInfo, Side, TimeInForce  # noqa: E402

RECORDING = ROOT / "recordings" / "sim-7.jsonl.gz"
BUSY_EVERY = 10  # one market in ten holds a position, quotes and has fills
# (markets, one busy market in so many): a tenth busy, then every market quoting as at venue scale
SIZES = ((10, BUSY_EVERY), (100, BUSY_EVERY), (1_000, BUSY_EVERY), (5_000, BUSY_EVERY), (1_000, 1), (5_000, 1))
QUICK_SIZES = ((10, BUSY_EVERY), (100, BUSY_EVERY))
LEVELS = 10  # price levels per side of every synthetic book
ASSETS_PER_CONNECTION = 500  # as the market channel splits its subscriptions
PNL_POINTS, FILLS, NOTICES = 2_000, 60, 60  # more than the watch keeps: it is full
SCRAPE_EVERY_S = 15  # Prometheus's default scrape interval
CONSOLE = (160, 50)
_NS_PER_S = 1_000_000_000


# --------------------------------------------------------------------------- helpers


def pct(values: list[float], q: float) -> float:  # float-ok: durations
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-len(ordered) * q // 100) - 1))] if ordered else 0.0


def timed(fn: Callable[[], object], *, min_calls: int, max_calls: int, budget_s: float) -> list[float]:
    """Wall ms of each call: at least ``min_calls``, then until ``budget_s`` or ``max_calls``."""
    fn()  # warm-up
    out: list[float] = []
    started = time.perf_counter()
    while len(out) < max_calls and (len(out) < min_calls or time.perf_counter() - started < budget_s):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(ms), 3), "p99": round(pct(ms, 99), 3), "max": round(max(ms), 3),
            "n": len(ms)}


class StepClock:
    """A clock for logs recorded outside a run: one µs later at every read (cheap and deterministic)."""

    def __init__(self, start_ns: int) -> None:
        self.now_ns = itertools.count(start_ns, 1_000).__next__


# --------------------------------------------------------------------------- 1. the row observer


ENGINES: list[Any] = []  # the last replay's engine, for its counts


def replay_once(db: Path, variant: str) -> tuple[float, float, str]:
    """The bundled recording replayed as ``mmbot replay`` does; ``variant``: bare, watch (a
    Cockpit attached) or metrics (a Cockpit and ``run_metrics``). Wall seconds, CPU seconds of
    this (the Trio) thread — the event log's writer works on another — and the digest."""
    original = app_replay.build_engine

    def with_cockpit(**kwargs: Any) -> Any:
        engine = original(**kwargs)
        ENGINES[:] = [engine]
        if variant != "bare":
            cockpit = Cockpit(engine, mode="replay", wall=wall_ns)
            if variant == "metrics":
                run_metrics(cockpit, EngineFigures(engine))
        return engine

    app_replay.build_engine = with_cockpit
    try:
        started, cpu = time.perf_counter(), time.thread_time()
        digest = trio.run(lambda: app_replay.replay(config=Config(), recording=RECORDING, db_path=db, seed=7),
                          clock=trio.testing.MockClock(autojump_threshold=0))
        return time.perf_counter() - started, time.thread_time() - cpu, digest
    finally:
        app_replay.build_engine = original


def logged_rows(db: Path) -> list[tuple[str, str, dict[str, Any] | None, str, str]]:
    out = []
    for kind, cid, payload, market, token in sqlite_utils.Database(db).execute(
            "SELECT kind, cid, payload, market, token FROM events ORDER BY seq").fetchall():
        parsed = json.loads(payload) if payload else None
        out.append((kind, cid, parsed or None, market, token))
    return out


def record_pass(rows: list, path: Path, watch: Watch | None) -> float:
    """µs per row of ``EventLog.record`` of every row into a fresh log (writer not running)."""
    log = EventLog(path, clock=StepClock(1_700_000_000 * _NS_PER_S), wall=StepClock(1_700_000_000 * _NS_PER_S).now_ns,
                   batch_ms=None)
    if watch is not None:
        log.observe(watch.on_row)
    record = log.record
    t0 = time.perf_counter_ns()
    for kind, cid, payload, market, token in rows:
        record(kind, cid, payload, market=market, token=token)
    elapsed = time.perf_counter_ns() - t0
    assert log.observer_failures == 0, "the watch raised on a row"
    log._conn.close()  # nothing was written: the rows only show the cost of recording them
    return elapsed / 1e3 / len(rows)


def observer_figures(tmp: Path, *, passes: int, replays: int) -> dict[str, Any]:
    rows_db = tmp / "rows.db"
    replay_once(rows_db, "bare")  # also warms every import and cache up
    rows = logged_rows(rows_db)
    messages = ENGINES[0].frames.messages

    bare: list[float] = []
    watched: list[float] = []
    for i in range(passes):  # alternate, so the machine's drift touches both alike
        bare.append(record_pass(rows, tmp / f"bare-{i}.db", None))
        watched.append(record_pass(rows, tmp / f"watch-{i}.db", Watch(describe=lambda t: ("m", "s", "Yes"))))

    # the observer alone, on the stamped rows, as EventLog hands them over
    stamped = [(n, n * 1_000, n * 1_000, kind, cid, market, token, "") for n, (kind, cid, _, market, token)
               in enumerate(rows, 1)]
    alone: list[float] = []
    for _ in range(passes):
        watch = Watch(describe=lambda t: ("m", "s", "Yes"))
        on_row = watch.on_row
        t0 = time.perf_counter_ns()
        for row, (_, _, payload, _, _) in zip(stamped, rows):
            on_row(row, payload)
        alone.append((time.perf_counter_ns() - t0) / 1e3 / len(rows))

    walls: dict[str, list[float]] = {"bare": [], "watch": [], "metrics": []}
    cpus: dict[str, list[float]] = {"bare": [], "watch": [], "metrics": []}
    digests: set[str] = set()
    for i in range(replays):
        order = ("bare", "watch", "metrics") if i % 2 == 0 else ("metrics", "watch", "bare")
        for variant in order:
            wall, cpu, digest = replay_once(tmp / f"replay-{variant}-{i}.db", variant)
            walls[variant].append(wall)
            cpus[variant].append(cpu)
            digests.add(digest)
    med = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    b, w = statistics.median(bare), statistics.median(watched)
    return {
        "rows": len(rows),
        "record_us_per_row": round(b, 3), "record_us_per_row_watched": round(w, 3),
        "record_ratio": round(w / b, 3), "watch_on_row_us": round(statistics.median(alone), 3),
        "record_passes": passes,
        "replay_s": round(med["bare"], 3), "replay_s_watched": round(med["watch"], 3),
        "replay_s_metrics": round(med["metrics"], 3),
        "replay_ratio": round(med["watch"] / med["bare"], 3),
        "replay_ratio_metrics": round(med["metrics"] / med["bare"], 3),
        "replay_cpu_s": round(cpu["bare"], 3), "replay_cpu_s_watched": round(cpu["watch"], 3),
        "replay_cpu_s_metrics": round(cpu["metrics"], 3),
        "replay_cpu_ratio": round(cpu["watch"] / cpu["bare"], 3),
        "replay_cpu_ratio_metrics": round(cpu["metrics"] / cpu["bare"], 3),
        "replay_market_messages": messages,
        "replay_watch_us_per_row": round((cpu["watch"] - cpu["bare"]) * 1e6 / len(rows), 2),
        "replay_metrics_us_per_message": round((cpu["metrics"] - cpu["watch"]) * 1e6 / messages, 2),
        "replay_runs": replays, "replay_digests_match": len(digests) == 1,
    }


# --------------------------------------------------------------------------- 2. the views


def _token(i: int, k: int) -> str:
    return str(10**76 + 2 * i + k)  # token ids are 77-digit decimals at the venue


async def build(n: int, tmp: Path, busy_every: int = BUSY_EVERY) -> tuple[Cockpit, EngineFigures, Any, EventLog]:
    """An engine of ``n`` markets as ``run_paper`` builds one, its books synced, one market in
    ``busy_every`` busy (a position, four open orders, fills), and its cockpit's watch full."""
    config = Config()
    clock = TrioClock()
    now = clock.now_ns()
    log = EventLog(tmp / f"views-{n}-{busy_every}.db", clock=clock, wall=wall_ns, batch_rows=config.log.batch_rows)
    infos = [MarketInfo(market=f"0x{i:064x}", tokens=(_token(i, 0), _token(i, 1)),
                        outcomes=("Up", "Down") if i % 2 else ("Yes", "No"),
                        end_ns=now + (i + 1) * 300 * _NS_PER_S, slug=f"bench-market-{i}-will-it-happen",
                        question=f"Will bench market {i} resolve Yes by the end of its window?")
                 for i in range(n)]
    engine = build_engine(config=config, clock=clock, log=log, markets=Markets(infos),
                          gateway_factory=paper_gateway(config), seed=7)
    cockpit = Cockpit(engine, mode="paper", wall=wall_ns)
    figures = EngineFigures(engine, services=("paper-venue",), stale_after_s=60)
    metrics = run_metrics(cockpit, figures)
    connections = max(1, -(-2 * n // ASSETS_PER_CONNECTION))
    engine.channel = SimpleNamespace(connections=[
        SimpleNamespace(name=f"market-{c}", connected=True, frames=1_000 * (c + 1), sessions=1) for c in range(connections)])

    log.record("run_start", "run", {"mode": "paper", "seed": 7, "cash": config.paper.cash})
    for c in range(connections):
        log.record("feed_up", "feed", {"connection": f"market-{c}", "assets": ASSETS_PER_CONNECTION, "session": 1})
    books, orders, ledger = engine.books, engine.executor.orders, engine.executor.ledger
    fills = 0
    for i, info in enumerate(infos):
        mid = 100_000 + (i * 7919) % 800_000 // info.tick * info.tick
        for k, token in enumerate(info.tokens):
            m = mid if k == 0 else ONE - mid
            books.apply(BookSnapshot(
                cid=f"b{i}-{k}", recv_ns=now, market=info.market, token=token, venue_ts_ms=now // 1_000_000,
                bids=tuple((m - (j + 1) * info.tick, (j + 1) * 10 * ONE) for j in range(LEVELS) if m - (j + 1) * info.tick > 0),
                asks=tuple((m + (j + 1) * info.tick, (j + 1) * 10 * ONE) for j in range(LEVELS) if m + (j + 1) * info.tick < ONE)))
            if i % busy_every:
                continue
            for side, price in ((Side.BUY, m - info.tick), (Side.SELL, m + info.tick)):
                orders.new(order_id=f"o{i}-{k}-{side.value}", cid=f"i{i}-{k}", strategy="maker", market=info.market,
                           token=token, side=side, price=price, size=20 * ONE, tif=TimeInForce.GTC, post_only=True,
                           created_ns=now)
        if i % busy_every == 0:
            ledger.adopt_position(info.tokens[0], 100 * ONE, 45 * ONE)
            log.record("position_adopted", "adopt", {"size": 100 * ONE, "cost": 45 * ONE},
                       market=info.market, token=info.tokens[0])
            for _ in range(2 if fills < FILLS else 1):
                fills += 1
                log.record("fill", f"f{fills}", {"fill_id": f"fill-{fills}", "side": "BUY", "price": mid, "size": 5 * ONE,
                                                 "fee": 0, "liquidity": "maker"}, market=info.market, token=info.tokens[0])
    for i in range(max(0, FILLS - fills)):  # small engines: the watch's recent fills full anyway
        log.record("fill", f"g{i}", {"fill_id": f"more-{i}", "side": "SELL", "price": 500_000, "size": 5 * ONE, "fee": 0,
                                     "liquidity": "taker"}, market=infos[0].market, token=infos[0].tokens[0])
    for p in range(PNL_POINTS):
        log.record("pnl", f"pnl{p}", {"cash": config.paper.cash - p, "realised": p * 1_000, "unrealised": -p * 500,
                                      "fees": p * 10})
    reasons = ("max_position_per_token", "max_position_market", "max_open_orders", "min_size", "post_only_cross")
    for r in range(NOTICES):
        log.record("intent", f"n{r}", {"strategy": ("maker", "taker", "merge")[r % 3]})
        log.record("risk_verdict", f"n{r}", {"accepted": False, "reason": reasons[r % len(reasons)]})
        log.record("reject", f"n{r}", {"order_id": f"o{r}", "reason": "not enough balance / allowance"})
    assert cockpit.watch.counts["fill"] >= FILLS and len(cockpit.watch.pnl_history) == PNL_POINTS
    synced = sum(1 for info in infos for t in info.tokens if books.get(t) is not None
                 and books.get(t).state.value == "synced")
    assert synced == 2 * n, f"{synced} of {2 * n} books synced"
    return cockpit, figures, metrics, log


def dashboard_state(cockpit: Cockpit, figures: EngineFigures) -> str:
    """One state of the dashboard's stream, as ``cockpit.http`` makes it every second."""
    snap = cockpit.snapshot(markets=DASHBOARD_MARKETS)
    verdict = figures.health(cockpit.snapshot(markets=0))
    return json.dumps({**as_json(snap), "health": {"status": verdict.status, "reasons": list(verdict.reasons)}},
                      separators=(",", ":"))


def terminal_frame(cockpit: Cockpit, console: Console) -> None:
    """One frame of the terminal view (``TerminalView._frame`` and its drawing)."""
    console.print(render(cockpit.snapshot(markets=TERMINAL_MARKETS)))


def new_console() -> Console:
    width, height = CONSOLE
    return Console(file=io.StringIO(), width=width, height=height, force_terminal=True, color_system="truecolor",
                   legacy_windows=False)


class GcPauses:
    """The collector's pauses of the oldest generation (the long ones), while installed."""

    def __init__(self) -> None:
        self.pauses_ms: list[float] = []  # float-ok: durations
        self._t0 = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter_ns()
        else:
            self.pauses_ms.append((time.perf_counter_ns() - self._t0) / 1e6)

    def __enter__(self) -> GcPauses:  # noqa: PYI034
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def views_figures(n: int, busy_every: int, tmp: Path, quick: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    cockpit, figures, metrics, log = await build(n, tmp, busy_every)
    built_s = time.perf_counter() - t0
    console = new_console()
    snap: Snapshot = cockpit.snapshot(markets=DASHBOARD_MARKETS)
    budget = 0.6 if quick else 1.5
    opts = {"min_calls": 20, "max_calls": 1_000, "budget_s": budget}
    ops: dict[str, Callable[[], object]] = {
        "snapshot": lambda: cockpit.snapshot(markets=DASHBOARD_MARKETS),
        "as_json_dumps": lambda: json.dumps(as_json(snap), separators=(",", ":")),
        "health": lambda: figures.health(snap),
        "scrape": lambda: generate_latest(metrics.registry),
        "render": lambda: console.print(render(snap)),
        "dashboard_state": lambda: dashboard_state(cockpit, figures),
        "terminal_frame": lambda: terminal_frame(cockpit, console),
    }
    out: dict[str, Any] = {"markets": n, "busy_every": busy_every, "shown_markets": len(snap.markets), "open_orders": sum(snap.orders_by_state.values()),
                           "positions": sum(1 for m in snap.markets for t in m.tokens if t.position),
                           "state_bytes": len(dashboard_state(cockpit, figures)),
                           "scrape_bytes": len(generate_latest(metrics.registry)), "build_s": round(built_s, 2)}
    with GcPauses() as pauses:
        for name, fn in ops.items():
            console.file = io.StringIO()
            out[name] = summary(timed(fn, **opts))
    out["gc_gen2"] = {"collections": len(pauses.pauses_ms),
                      "max_ms": round(max(pauses.pauses_ms), 3) if pauses.pauses_ms else 0.0}
    # what one dashboard (one state a second) and the terminal view (two frames a second) take of
    # each second, and with a Prometheus scrape every SCRAPE_EVERY_S as well
    for q in ("p50", "p99"):
        base = out["dashboard_state"][q] + 2 * out["terminal_frame"][q]
        out[f"share_of_second_pct_{q}"] = round(base / 10, 2)  # ms of 1,000, in %
        out[f"share_with_scrape_pct_{q}"] = round((base + out["scrape"][q] / SCRAPE_EVERY_S) / 10, 2)
    await log.close()
    return out


def feed_lag_us(calls: int = 200_000) -> float:
    """µs per market message of the feed-lag histogram ``run_metrics`` hangs on the frames."""
    from mmbot.cockpit.metrics import RunMetrics

    metrics = RunMetrics(snapshot=lambda: None)  # type: ignore[arg-type,return-value]
    observe = metrics.observe_feed_lag
    t0 = time.perf_counter_ns()
    for i in range(calls):
        observe(1_700_000_000_000_000_000 + i * 1_000_000 + (i * 7919) % 50_000_000, 1_700_000_000_000 + i)
    return (time.perf_counter_ns() - t0) / 1e3 / calls


# --------------------------------------------------------------------------- main


def profile(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-cockpit-") as tmp:
        async def main() -> None:
            cockpit, figures, metrics, log = await build(n, Path(tmp))
            console = new_console()
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(10):
                dashboard_state(cockpit, figures)
                terminal_frame(cockpit, console)
                terminal_frame(cockpit, console)
            generate_latest(metrics.registry)
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(20)
            await log.close()

        trio.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/cockpit.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 and 100 markets, fewer rounds (~15 s)")
    parser.add_argument("--sizes", help="engines to build, comma-separated MARKETS or MARKETS:K (one market in K busy;"
                        " default 10,100,1000,5000 with K=10, then 1000:1,5000:1)")
    parser.add_argument("--profile", type=int, metavar="MARKETS", help="cProfile the views at this size; no JSON")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile)
        return 0
    try:
        sizes = tuple((int(n), int(k or BUSY_EVERY)) for n, _, k in (part.partition(":") for part in args.sizes.split(","))
                      ) if args.sizes else (QUICK_SIZES if args.quick else SIZES)
        if any(n < 1 or k < 1 for n, k in sizes):
            raise ValueError
    except ValueError:
        print(f"bench/cockpit.py: --sizes {args.sizes}: not a list of MARKETS or MARKETS:K (positive numbers)",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-cockpit-") as tmp:
        out["observer"] = observer_figures(Path(tmp), passes=5 if args.quick else 11, replays=1 if args.quick else 5)
        out["feed_lag_observe_us"] = round(feed_lag_us(), 3)
        views = []
        for n, busy_every in sizes:
            gc.collect()
            views.append(trio.run(views_figures, n, busy_every, Path(tmp), args.quick))
        out["views"] = views
    out["bench_s"] = round(time.perf_counter() - started, 1)

    o = out["observer"]
    print(f"row observer: record {o['record_us_per_row']} µs/row bare, {o['record_us_per_row_watched']} µs/row with a"
          f" Watch (×{o['record_ratio']}); Watch.on_row alone {o['watch_on_row_us']} µs/row; {o['rows']} rows")
    print(f"whole replay: {o['replay_s']} s bare, {o['replay_s_watched']} s with a Cockpit (×{o['replay_ratio']}),"
          f" {o['replay_s_metrics']} s with a Cockpit and metrics (×{o['replay_ratio_metrics']});"
          f" digests match: {o['replay_digests_match']}")
    print(f"  Trio thread CPU: {o['replay_cpu_s']} s bare, {o['replay_cpu_s_watched']} s (×{o['replay_cpu_ratio']},"
          f" {o['replay_watch_us_per_row']} µs per row), {o['replay_cpu_s_metrics']} s (×{o['replay_cpu_ratio_metrics']},"
          f" {o['replay_metrics_us_per_message']} µs more per market message of {o['replay_market_messages']})")
    print(f"feed-lag histogram: {out['feed_lag_observe_us']} µs per market message")
    print(f"{'markets':>8} {'busy':>5} {'shown':>6} | {'snapshot':>15} {'json':>15} {'health':>15} {'scrape':>15} {'render':>15}"
          f" | {'dashboard':>15} {'terminal':>15} | share of 1 s p50 / p99")
    for v in views:
        cells = " ".join(f"{v[k]['p50']:>7.2f}/{v[k]['p99']:>7.2f}" for k in
                         ("snapshot", "as_json_dumps", "health", "scrape", "render"))
        both = " ".join(f"{v[k]['p50']:>7.2f}/{v[k]['p99']:>7.2f}" for k in ("dashboard_state", "terminal_frame"))
        print(f"{v['markets']:>8} {'1/' + str(v['busy_every']):>5} {v['shown_markets']:>6} | {cells} | {both} |"
              f" {v['share_of_second_pct_p50']:.2f} % / {v['share_of_second_pct_p99']:.2f} %"
              f"  (state {v['state_bytes'] // 1024} KiB; GC gen-2 {v['gc_gen2']['collections']}, max"
              f" {v['gc_gen2']['max_ms']} ms)")
    print("(ms per call, p50/p99; dashboard = snapshot + health + as_json + dumps, once a second;"
          " terminal = snapshot + render, twice a second)")
    line = json.dumps(out, separators=(",", ":"))
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

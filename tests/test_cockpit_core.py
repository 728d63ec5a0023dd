"""The cockpit's core on a paper run over loopback against the simulator: the watch follows the
log, snapshots agree with the ledger, and the operator's pause, resume and cancel-all act through
the decision task (recorded, and seen in what the run sends)."""

from __future__ import annotations

import json

import sqlite_utils
import trio

from mmbot import app
from mmbot.app_cockpit import Cockpit
from mmbot.clock import TrioClock
from mmbot.cockpit.snapshot import as_json
from mmbot.cockpit.watch import Watch
from mmbot.config import Config
from tests.test_paper_live import START_NS, serve


def rows(db, kind: str) -> list[tuple[int, int, dict]]:
    return [(seq, t, json.loads(p)) for seq, t, p in sqlite_utils.Database(db).execute(
        "SELECT seq, ts_ns, payload FROM events WHERE kind = ? ORDER BY seq", [kind]).fetchall()]


async def test_pause_stops_new_orders_resume_brings_them_back_and_figures_agree(nursery, autojump_clock, tmp_path):
    server, urls, markets = await serve(nursery, markets=4, seed=5)
    clock = TrioClock(anchor_ns=START_NS)
    db = tmp_path / "paper.db"
    cockpits: list[Cockpit] = []

    def cockpit(engine, live=None):
        cockpits.append(Cockpit(engine, mode="paper", wall=clock.now_ns))
        return []

    stop = trio.Event()
    async with trio.open_nursery() as inner:
        inner.start_soon(lambda: app.run_paper(config=Config(seed=2), markets=markets, ws_url=urls.ws, db_path=db,
                                               clock=clock, stop=stop, extra_services=cockpit))
        await trio.sleep(60)
        (cp,) = cockpits
        before = cp.snapshot()
        assert before.fills > 0 and before.counts["submit"] > 0 and before.pnl_history
        assert sum(m.pnl for m in before.markets) == before.pnl  # per market, the cash flows and marks add up
        bare, two = cp.snapshot(markets=0), cp.snapshot(markets=2)
        assert bare.markets == () and bare.markets_total == len(markets) and bare.pnl == before.pnl
        assert [m.market for m in two.markets] == [m.market for m in before.markets][:2]
        busy = [m for m in before.markets if m.fills or any(t.position or t.quotes for t in m.tokens)]
        assert before.markets[:len(busy)] == tuple(busy) and before.markets_busy == len(busy)  # the busy ones first
        cp.pause("test")
        await trio.sleep(1)
        paused_at = clock.now_ns()
        assert cp.snapshot().paused and not cp.snapshot().orders_by_state.get("live")
        await trio.sleep(30)
        cp.cancel_all("test")
        cp.resume("test")
        await trio.sleep(30)
        after = cp.snapshot()
        assert not after.paused and json.dumps(as_json(after))
        stop.set()
    submits = [t for _, t, _ in rows(db, "submit")]
    assert not [t for t in submits if paused_at <= t < paused_at + 29_000_000_000]  # nothing new while paused
    assert [t for t in submits if t >= paused_at + 30_000_000_000]  # quoting came back
    commands = [p["action"] for _, _, p in rows(db, "operator_command")]
    assert commands == ["pause", "cancel_all", "resume"]
    assert len(rows(db, "operator_paused")) == 1 and len(rows(db, "operator_resumed")) == 1
    assert any(p.get("reason", "").startswith("paused by the operator") for _, _, p in rows(db, "cancel"))
    assert len(rows(db, "market_known")) == len(markets)
    assert not [p for _, _, p in rows(db, "error") if p.get("where") == "event log observer"]
    pnl_rows = rows(db, "pnl")
    assert len(pnl_rows) >= 120 // 5  # at start, every 5 s, at exit


def test_the_watch_tracks_feeds_and_keeps_its_memory_bounded():
    watch = Watch(describe=lambda token: ("m", "slug", "Yes"), notices=5, fills=3)

    def row(kind, payload, wall, market="m", token=""):
        watch.on_row((0, wall, wall, kind, "c", market, token, ""), payload)

    row("feed_up", {"connection": "market-0", "assets": 8, "session": 1}, 1)
    row("feed_down", {"connection": "market-0", "reason": "silent for 30 s"}, 10)
    assert watch.down_for_ns(40) == {"market-0": 30}
    row("feed_up", {"connection": "market-0", "assets": 8, "session": 2, "gap_ms": 31_000}, 41)
    assert watch.down_for_ns(50) == {}
    for i in range(10):
        row("fill", {"fill_id": f"f{i}", "side": "BUY", "price": 400_000, "size": 10_000_000, "fee": 0,
                     "liquidity": "maker"}, 100 + i, token="t")
    assert len(watch.recent_fills) == 3 and len(watch.notices) == 2
    assert watch.flows["m"] == -10 * 4_000_000 and watch.liquidity["maker"] == 10
    row("risk_verdict", {"accepted": False, "reason": "max_position_per_token"}, 200)
    assert watch.rejections == {"max_position_per_token": 1}
    for i in range(10):
        row("restart", {"service": "market-feed", "attempt": i, "error": "boom"}, 300 + i)
    assert len(watch.notices) == 5 and watch.notices[-1].level == "warning"
    row("pruned", {"orders": 3, "markets": ["m", "other"]}, 400)  # the engine forgot the market: so does the watch
    assert "m" not in watch.flows and "m" not in watch.market_fills


def test_the_watch_takes_every_row_of_real_logs_without_failing(tmp_path):
    """Every kind of row a replay and a chain-heavy run write goes through the watch: an observer
    that raises is dropped by the event log (and the cockpit would freeze), so none may."""
    import subprocess
    import sys

    db = tmp_path / "replay.db"
    subprocess.run([sys.executable, "-m", "mmbot.cli", "replay", "recordings/sim-7.jsonl.gz", "--quiet", "--db", str(db)],
                   check=True, capture_output=True)
    watch = Watch(describe=lambda token: ("m", "slug", "Yes"))
    seen = set()
    for row in sqlite_utils.Database(db).execute(
            "SELECT seq, ts_ns, wall_ns, kind, cid, market, token, payload FROM events ORDER BY seq").fetchall():
        watch.on_row(tuple(row), json.loads(row[7]))
        seen.add(row[3])
    assert {"fill", "intent", "risk_verdict", "pnl", "resolution"} <= seen
    assert watch.counts["fill"] > 0 and watch.pnl_history
    for kind in ("feed_gap", "feed_down", "feed_up", "restart", "breaker_trip", "correction", "reject", "error",
                 "user_gap", "user_catch_up", "venue_stats", "merge", "redeem", "position_adopted", "chain_failed"):
        watch.on_row((0, 1, 1, kind, "c", "m", "t", ""), {"tokens": 3, "reason": "x", "size": 1, "payout": 1,
                                                           "cost": 1, "user_connected": True})
        watch.on_row((0, 1, 1, kind, "c", "m", "t", ""), {})


async def test_a_simulated_outage_keeps_the_feed_down_for_its_length_then_it_comes_back(nursery, autojump_clock, tmp_path):
    """The simulator's ``outage`` fault: every websocket dropped and reconnects refused for its
    seconds (``stall`` and ``drop`` end at the first reconnect): what an operator's feed-down alert
    and health check are tried against."""
    from mmbot.venues.simulator.faults import Fault

    server, urls, markets = await serve(nursery, markets=2, seed=5)
    clock = TrioClock(anchor_ns=START_NS)
    db = tmp_path / "outage.db"
    cockpits: list[Cockpit] = []
    stop = trio.Event()
    async with trio.open_nursery() as inner:
        inner.start_soon(lambda: app.run_paper(
            config=Config(seed=2), markets=markets, ws_url=urls.ws, db_path=db, clock=clock, stop=stop,
            extra_services=lambda engine, live=None: cockpits.append(Cockpit(engine, mode="paper", wall=clock.now_ns))
            or []))
        await trio.sleep(20)
        cut_at = clock.now_ns()
        assert server.inject(Fault(kind="outage", value="45")) == {"dropped": 1, "refused_for_s": 45}
        await trio.sleep(30)
        (cp,) = cockpits
        assert cp.watch.down_for_ns(clock.now_ns()).keys() == {"market-1"}
        await trio.sleep(60)
        assert cp.watch.down_for_ns(clock.now_ns()) == {}
        stop.set()
    ups = [(t, p) for _, t, p in rows(db, "feed_up") if p.get("gap_ms") is not None]
    assert ups and ups[0][0] >= cut_at + 45_000_000_000  # nothing connected during the outage
    assert len(rows(db, "feed_down")) >= 2  # the drop, then refused reconnects


def test_a_chart_is_sent_at_most_its_points_the_first_and_last_kept():
    from mmbot.cockpit.snapshot import CHART_POINTS, PnlPoint, thinned

    points = tuple(PnlPoint(wall_ns=i, realised=i, unrealised=0, fees=0) for i in range(2_000))
    kept = thinned(points)
    assert len(kept) == CHART_POINTS and kept[0] == points[0] and kept[-1] == points[-1]
    assert [p.wall_ns for p in kept] == sorted({p.wall_ns for p in kept})  # in order, none twice
    assert thinned(points[:10]) == points[:10]


async def test_an_observer_that_raises_is_dropped_told_and_the_recording_goes_on(tmp_path):
    from mmbot.memory.log import EventLog

    log = EventLog(tmp_path / "obs.db", clock=TrioClock(anchor_ns=START_NS), wall=lambda: 0)
    seen: list[str] = []

    def fragile(row, payload):  # noqa: ANN001
        if row[3] == "boom":
            raise ValueError("a bug in a view")
        seen.append(row[3])

    log.observe(fragile)
    log.record("fill", "c1", {"size": 1})
    log.record("boom", "c2")
    log.record("fill", "c3", {"size": 2})
    assert seen == ["fill"] and log.observer_failures == 1
    log.flush_sync()
    kinds = [k for (k,) in sqlite_utils.Database(tmp_path / "obs.db").execute("SELECT kind FROM events ORDER BY seq")]
    assert kinds == ["fill", "boom", "error", "fill"]  # nothing lost, and the failure told

"""Reading a run's log as an operator does: ``mmbot status``, ``report`` (``--json``, ``--plot``),
``fills``, ``orders`` and ``explain`` — as subprocesses, on a hand-built log of a live-feed run,
on a replay's log and on the log of a paper run killed with SIGKILL (its WAL left behind)."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from mmbot.memory.log import EventLog, close_abandoned
from mmbot.memory.plot import build_figure
from mmbot.memory.query import explain, format_explain
from mmbot.memory.report import summary
from mmbot.memory.status import status
from mmbot.memory.status_view import render_status, status_json
from rich.console import Console
from tests.sim_process import simulator_process

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
S = 1_000_000_000
M, UP, DOWN = "0xmarket1", "1" * 70 + "11", "2" * 70 + "22"
SLUG = "btc-updown-5m-1700000000"


def mmbot(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmbot.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


class StepClock:
    def __init__(self) -> None:
        self.now = T0

    def now_ns(self) -> int:
        return self.now


def pnl(cash: int, realised: int, unrealised: int, fees: int, positions: dict, marks: dict) -> dict:
    return {"cash": cash, "reserved": 0, "realised": realised, "unrealised": unrealised, "fees": fees,
            "positions": positions, "marks": marks}  # fmt: skip


def order(order_id: str, token: str, price: int, size: int) -> dict:
    return {"order_id": order_id, "token": token, "side": "BUY", "price": price, "size": size, "tif": "GTC",
            "reserved": price * size // 1_000_000, "strategy": "maker"}  # fmt: skip


def fill(n: int, order_id: str, token: str, price: int, size: int, fee: int, liquidity: str, cash: int) -> dict:
    return {"fill_id": f"t-{n}", "order_id": order_id, "token": token, "side": "BUY", "price": price, "size": size,
            "fee": fee, "liquidity": liquidity, "cash": cash, "position": size, "strategy": "maker"}  # fmt: skip


HELD = {UP: 2_000_000, DOWN: 2_000_000}
# (second of the run, kind, cid, payload, market, token): a one-minute paper run on a live feed,
# PnL rows every 5 s, killed at 60 s (never closed). Total PnL goes 0, 0.1, 0.3, -0.2 (drawdown 0.5), 0.48.
LIVE_RUN = [
    (0, "run_start", "run", {"mode": "paper", "seed": 0, "recording": "ws://127.0.0.1:1/ws/market",
                             "config_hash": "h"}, "", ""),  # fmt: skip
    (0, "market_known", "run", {"slug": SLUG, "question": "BTC up?", "outcomes": ["Up", "Down"], "tokens": [UP, DOWN],
                                "tick": 10_000, "min_size": 5_000_000, "end_ns": T0 + 300 * S, "neg_risk": False,
                                "fee_rate": 0}, M, ""),  # fmt: skip
    (0, "feed_up", "market-1", {"connection": "market-1", "assets": 2, "session": 1}, "", ""),
    (0, "pnl", "pnl0", pnl(100_000_000, 0, 0, 0, {}, {}), "", ""),
    (1, "submit", "i-1", order("o-1", UP, 400_000, 10_000_000), M, UP),
    (1, "ack", "i-1", {"order_id": "o-1"}, "", ""),
    (2, "fill", "r-1", fill(1, "o-1", UP, 400_000, 10_000_000, 0, "MAKER", 96_000_000), M, UP),
    (3, "submit", "i-2", order("o-2", DOWN, 550_000, 10_000_000), M, DOWN),
    (3, "ack", "i-2", {"order_id": "o-2"}, "", ""),
    (4, "fill", "r-2", fill(2, "o-2", DOWN, 550_000, 10_000_000, 20_000, "TAKER", 90_480_000), M, DOWN),
    (5, "pnl", "pnl1", pnl(90_480_000, 0, 100_000, 20_000, {UP: 10_000_000, DOWN: 10_000_000},
                           {UP: 410_000, DOWN: 560_000}), "", ""),  # fmt: skip
    (10, "pnl", "pnl2", pnl(90_480_000, 0, 300_000, 20_000, {UP: 10_000_000, DOWN: 10_000_000},
                            {UP: 430_000, DOWN: 560_000}), "", ""),  # fmt: skip
    (12, "merge", "mg-1", {"size": 8_000_000, "cash": 98_480_000}, M, ""),
    (15, "pnl", "pnl3", pnl(98_480_000, 384_000, -584_000, 20_000, HELD, {UP: 100_000, DOWN: 600_000}), "", ""),
    (20, "submit", "i-3", order("o-3", UP, 300_000, 5_000_000), M, UP),
    (20, "ack", "i-3", {"order_id": "o-3"}, "", ""),
    (30, "feed_down", "market-1", {"connection": "market-1", "reason": "silent for 10 s", "was_connected": True},
     "", ""),  # fmt: skip
    (32, "feed_up", "market-1", {"connection": "market-1", "assets": 2, "session": 2, "gap_ms": 2000}, "", ""),
    *[(t, "pnl", f"pnl{t}", pnl(98_480_000, 384_000, 96_000, 20_000, HELD, {UP: 400_000, DOWN: 500_000}), "", "")
      for t in range(20, 61, 5)],
]


def write_log(path: Path, rows: list, *, wall=None) -> EventLog:  # noqa: ANN001
    clock = StepClock()
    log = EventLog(path, clock=clock, wall=wall or clock.now_ns, batch_rows=8)
    start = rows[0][3]
    log.start_run(mode=start["mode"], seed=0, recording=start["recording"], config_hash="h", code_version="test")
    for i, (t, kind, cid, payload, market, token) in enumerate(sorted(rows, key=lambda r: r[0])):
        clock.now = T0 + t * S + i * 1000
        log.record(kind, cid, payload, market=market, token=token)
    log.flush_sync()
    return log


@pytest.fixture
def live_db(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    write_log(path, LIVE_RUN)
    return path


@pytest.fixture(scope="module")
def replay_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "sim-7.db"
    done = mmbot("replay", "recordings/sim-7.jsonl.gz", "--quiet", "--db", str(path), timeout=120)
    assert done.returncode == 0, done.stderr
    return path


def no_python_leaks(text: str) -> None:
    assert "None" not in text and "{" not in text and "[" not in text and "'" not in text, text


# --------------------------------------------------------------------------- status


def test_status_of_a_killed_run_names_markets_and_outcomes(live_db: Path) -> None:
    shown = mmbot("status", str(live_db))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    no_python_leaks(text)
    assert "stale" in text  # its last row is from 2023: killed or hung
    assert re.search(rf"o-3\s*│\s*{SLUG}\s*│\s*Up\s*│\s*BUY\s*│\s*0\.3\s*│\s*5\s*│\s*0\s*│\s*live", text), text
    assert re.search(rf"{SLUG}\s*│\s*Down\s*│\s*2\s*│", text)  # positions by slug and outcome
    assert "up since" in text and "2 losses" not in text and "1 loss before" in text
    assert "cash / reserved / fees" in text and "98.48 / 0 / 0.02" in text

    as_json = json.loads(mmbot("status", str(live_db), "--json").stdout)
    assert as_json["verdict"] == "stale" and as_json["finished"] is False and as_json["outcome"] is None
    assert as_json["stale_after_ms"] == 15_000  # three PnL intervals of 5 s
    [open_order] = as_json["open_orders"]
    assert {k: open_order[k] for k in ("order_id", "slug", "outcome", "price", "size", "filled", "status")} == {
        "order_id": "o-3", "slug": SLUG, "outcome": "Up", "price": "0.3", "size": "5", "filled": "0",
        "status": "live"}  # fmt: skip
    held = {p["outcome"]: p for p in as_json["positions"]}
    assert held["Up"]["shares"] == "2" and held["Up"]["mark"] == "0.4" and held["Up"]["cost"] == "0.8"
    [market] = as_json["markets"]
    # merge of 8 sets that cost 0.40 + 0.552 each: realised 8 - 7.616 = 0.384; held 2 Up at 0.4 + 2 Down at 0.5
    # against their cost 0.8 + 1.104
    assert (market["slug"], market["realised"], market["marked"], market["pnl"]) == (SLUG, "0.384", "-0.104", "0.28")
    assert as_json["feeds"]["market-1"]["up"] is True and as_json["user_channel"]["state"] == "not used"


def test_status_verdicts_running_stale_stopped_and_failed(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    log = write_log(path, LIVE_RUN)
    last = T0 + 60 * S + (len(LIVE_RUN) - 1) * 1000
    assert status(path, last + 14 * S)["verdict"] == "running"
    assert status(path, last + 16 * S)["verdict"] == "stale"
    assert status(path, last + 14 * S, stale_after_ns=10 * S)["verdict"] == "stale"
    trio.run(log.close)
    assert status(path, last + 3600 * S)["verdict"] == "stopped cleanly"

    failed = tmp_path / "failed.db"
    write_log(failed, LIVE_RUN[:5])
    close_abandoned(failed, reason="the venue refused the key", wall=lambda: T0)
    now = status(failed, T0 + 3600 * S)
    assert now["verdict"] == "failed: the venue refused the key"
    assert "failed: the venue refused the key" in mmbot("status", str(failed)).stdout


def test_status_of_a_live_log_says_running_and_watch_ends_on_ctrl_c(tmp_path: Path) -> None:
    from mmbot.clock import wall_ns

    path = tmp_path / "now.db"
    write_log(path, LIVE_RUN[:6], wall=wall_ns)  # written just now
    assert json.loads(mmbot("status", str(path), "--json").stdout)["verdict"] == "running"
    watch = subprocess.Popen([sys.executable, "-m", "mmbot.cli", "status", str(path), "--watch", "0.2", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines = [watch.stdout.readline(), watch.stdout.readline()]
    watch.send_signal(signal.SIGINT)
    out, err = watch.communicate(timeout=20)
    assert watch.returncode == 0 and "Traceback" not in err, err
    assert all(json.loads(line)["events"] == 6 for line in lines)


# --------------------------------------------------------------------------- report


def test_report_adds_drawdown_return_maker_taker_and_markets(live_db: Path) -> None:
    report = summary(live_db)
    assert report["max_drawdown"] == 500_000  # from +0.3 at 10 s down to -0.2 at 15 s
    assert report["starting_cash"] == 100_000_000 and report["return_on_capital_ppm"] == 4_800  # 0.48 on 100
    assert report["liquidity"] == {"MAKER": {"count": 1, "shares": 10_000_000, "fees": 0},
                                   "TAKER": {"count": 1, "shares": 10_000_000, "fees": 20_000}}  # fmt: skip
    assert report["ended"].startswith("not cleanly")

    text = mmbot("report", str(live_db)).stdout
    no_python_leaks(text)
    assert "ended not cleanly" in text and "return on capital" in text and "0.48%" in text
    assert "max drawdown" in text and "0.5 (total PnL" in text
    assert "maker 1 fills, 10 shares, fees 0 / taker 1 fills, 10 shares, fees 0.02" in text
    assert re.search(rf"{SLUG}\s*│\s*Up / Down\s*│\s*2\s*│\s*9\.5\s*│\s*0\.02\s*│\s*0\.384", text), text

    as_json = json.loads(mmbot("report", str(live_db), "--json").stdout)
    assert (as_json["max_drawdown"], as_json["return_on_capital"], as_json["starting_cash"]) == ("0.5", "0.48%", "100")
    assert as_json["markets"][0]["slug"] == SLUG and as_json["pnl"]["total"] == "0.48"


def test_report_of_a_replay_names_markets_from_the_recording(replay_db: Path) -> None:
    text = mmbot("report", str(replay_db)).stdout
    assert "replay, ended cleanly" in text and "by market" in text
    assert "incumbent-governor-re-elected" in text and "Up / Down" in text
    now = status_json(status(replay_db))
    assert now["verdict"] == "stopped cleanly"
    assert all(p["outcome"] in ("Yes", "No", "Up", "Down") for p in now["positions"]), now["positions"]
    console = Console(width=200, file=io.StringIO())
    console.print(render_status(status(replay_db), title="status"))
    no_python_leaks(console.file.getvalue())


def test_a_dry_run_is_reported_as_signed_not_sent(tmp_path: Path) -> None:
    path = tmp_path / "dry.db"
    signed = {"order_id": "o-1", "venue_order_id": "0xabc", "order_type": "GTC", "post_only": True,
              "order": {"makerAmount": "4000000", "takerAmount": "10000000", "side": "BUY", "tokenId": UP}}
    write_log(path, [
        (0, "run_start", "run", {"mode": "live-dry-run", "seed": 0, "recording": "", "config_hash": "h"}, "", ""),
        (1, "submit", "i-1", order("o-1", UP, 400_000, 10_000_000), M, UP),
        (1, "dry_run_order", "i-1", signed, M, UP),
        (1, "ack", "i-1", {"order_id": "o-1", "venue_order_id": "0xabc"}, "", ""),
    ])  # fmt: skip
    assert "1 signed, not sent (dry run)" in mmbot("report", str(path)).stdout
    [row] = list(csv.DictReader(io.StringIO(mmbot("orders", str(path), "--csv").stdout)))
    assert row["status"] == "signed, not sent" and row["price"] == "0.4" and row["size"] == "10"
    text = format_explain(explain(path, "o-1"))
    assert "makerAmount=4 " in text and "takerAmount=10 " in text and "price=0.4" in text


# --------------------------------------------------------------------------- plot, fills, orders


def test_the_plot_of_a_one_minute_run_has_data_in_every_panel(live_db: Path, tmp_path: Path) -> None:
    figure = build_figure(live_db)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["PnL", "Inventory per token", "Fills", "Fees (cumulative)", "Drawdown of total PnL"]
    for axes in figure.axes:
        points = sum(len(line.get_xdata()) for line in axes.get_lines()) + sum(
            len(c.get_offsets()) for c in axes.collections if hasattr(c, "get_offsets"))
        assert points > 1, axes.get_title()
        assert not [t for t in axes.texts if t.get_text() == "no data in the log"], axes.get_title()
    labels = figure.axes[1].get_legend_handles_labels()[1]
    assert labels == [f"{SLUG} Down", f"{SLUG} Up"]
    assert figure.axes[-1].get_xlabel() == "time since the run's start (s)"

    out = tmp_path / "run.png"
    done = mmbot("report", str(live_db), "--plot", str(out))
    assert done.returncode == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", done.stderr
    import matplotlib.image

    pixels = matplotlib.image.imread(out)
    height = pixels.shape[0]
    for panel in range(5):  # every fifth of the picture has more than one colour in it
        band = pixels[height * panel // 5: height * (panel + 1) // 5, : pixels.shape[1] * 3 // 4]
        assert band.std() > 0.05, panel


def test_fills_and_orders_as_tables_and_csv(live_db: Path) -> None:
    fills = list(csv.DictReader(io.StringIO(mmbot("fills", str(live_db), "--csv").stdout)))
    assert [(f["market"], f["outcome"], f["side"], f["price"], f["size"], f["fee"], f["liquidity"]) for f in fills] == [
        (SLUG, "Up", "BUY", "0.4", "10", "0", "MAKER"), (SLUG, "Down", "BUY", "0.55", "10", "0.02", "TAKER")]
    assert fills[0]["time"] == "2023-11-14T22:13:22.000Z"
    orders = list(csv.DictReader(io.StringIO(mmbot("orders", str(live_db), "--csv").stdout)))
    assert [(o["order"], o["status"], o["filled"]) for o in orders] == [
        ("o-1", "filled", "10"), ("o-2", "filled", "10"), ("o-3", "live", "0")]
    open_only = mmbot("orders", str(live_db), "--open")
    assert "o-3" in open_only.stdout and "o-1 " not in open_only.stdout and "open orders of live.db: 1" in open_only.stdout
    table = mmbot("fills", str(live_db)).stdout
    no_python_leaks(table)
    assert SLUG in table and "MAKER" in table


def test_explain_shows_amounts_inside_maps_as_decimals(live_db: Path) -> None:
    text = format_explain(explain(live_db, "pnl3"))
    assert f"positions=({UP}=2 {DOWN}=2)" in text and f"marks=({UP}=0.1 {DOWN}=0.6)" in text
    assert "realised=0.384" in text and "unrealised=-0.584" in text


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    where = tmp_path_factory.mktemp("bad")
    (where / "text.db").write_text("not a database at all\n" * 10)
    conn = sqlite3.connect(where / "other.db")
    conn.execute("CREATE TABLE things (a)")
    conn.commit()
    conn.close()
    return {"missing": str(where / "missing.db"), "directory": str(where), "not sqlite": str(where / "text.db"),
            "no events": str(where / "other.db")}  # fmt: skip


BAD = {"missing": "no such", "directory": "is a directory", "not sqlite": "file is not a database",
       "no events": "without an events table"}  # fmt: skip


BAD_CASES = [(["status"], bad) for bad in BAD] + [(["report", "--json"], bad) for bad in BAD] + [
    (command, bad) for command in (["fills"], ["orders", "--csv"], ["explain", "@", "o-1"])
    for bad in ("directory", "not sqlite")]


@pytest.mark.parametrize("command, bad", BAD_CASES)
def test_a_path_that_is_no_event_log_is_one_line_and_exit_2(command, bad, bad_paths) -> None:  # noqa: ANN001
    args = [bad_paths[bad] if a == "@" else a for a in command]
    if "@" not in command:
        args.insert(1, bad_paths[bad])
    done = mmbot(*args)
    assert done.returncode == 2 and BAD[bad] in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""


def test_a_bad_plot_path_is_one_line_and_exit_2(live_db: Path, tmp_path: Path) -> None:
    for plot, needle in ((tmp_path, "is a directory"), (tmp_path / "nowhere" / "x.png", "no such directory")):
        done = mmbot("report", str(live_db), "--plot", str(plot))
        assert done.returncode == 2 and needle in done.stderr and done.stderr.count("\n") == 1, done.stderr
    done = mmbot("status", str(live_db), "--watch", "0")
    assert done.returncode == 2 and "--watch expects" in done.stderr


# --------------------------------------------------------------------------- a real run, killed


@pytest.fixture
def simulator():  # noqa: ANN201
    with simulator_process("--seed", "3", "--speed", "5", cwd=ROOT) as running:
        yield running.ws, running.rest


def fills_in(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'fill'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet
        return 0


def test_the_log_of_a_paper_run_killed_with_sigkill(simulator, tmp_path: Path) -> None:  # noqa: ANN001
    ws, rest = simulator
    db = tmp_path / "killed.db"
    run = subprocess.Popen([sys.executable, "-m", "mmbot.cli", "run", "--mode", "paper", "--ws", ws, "--rest", rest,
                            "--duration", "60", "--db", str(db)], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, cwd=ROOT, text=True)
    try:
        fills = 0
        for line in run.stdout:  # its plain lines: one per fill, as they happen
            fills += " FILL " in line
            if fills >= 2 and fills_in(db) >= 2:  # and written: the log holds them
                break
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
    assert Path(str(db) + "-wal").exists()  # killed: the WAL is left behind
    now = json.loads(mmbot("status", str(db), "--json").stdout)
    assert now["verdict"] in ("running", "stale") and not now["finished"]
    assert now["counts"]["fill"] >= 2 and now["markets"]
    text = mmbot("status", str(db)).stdout
    no_python_leaks(text)
    assert "ended not cleanly" in mmbot("report", str(db)).stdout

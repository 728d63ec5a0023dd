"""The soak (bench/soak.py): its short version against real processes, and the log arithmetic
it judges a run by.

The short version is one simulated hour (``mmbot sim --speed 60``, two-minute Up/Down windows),
two faults (a dropped connection, then a FAILED trade), one ``kill -9`` of the bot and a fresh
start against the same account. It runs real processes on real time (about 70 s of wall time):
``pytest -m soak`` selects it, ``-m "not soak"`` leaves it out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from soak_logs import RunLog, cancel_waits, compare_ledger, summarise, unanswered_cancels, unended_orders  # noqa: E402
from soak_venue import venue_legs  # noqa: E402

SHORT = ["--hours", "1", "--speed", "60", "--interval", "120", "--kills", "1", "--fault-every", "20",
         "--fault-kinds", "drop,fail", "--seed", "7"]


@pytest.mark.soak
def test_short_soak_meets_the_targets(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), *SHORT, "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-2000:]
    figures = json.loads(lines[-1])
    # the soak did what it was asked, or its figures mean nothing
    assert figures["simulated_hours"] >= 1 and figures["kills"] == 1, figures["runs"]
    assert figures["faults_injected"] == {"drop": 1, "fail": 1}
    assert figures["final_stop_clean"] and figures["unexpected_exits"] == 0, figures["runs"]
    assert figures["fills_booked"] > 0 and figures["trades_venue"] > 0
    missed = {name: figures[name] for name in ("ledger_equals_venue", "double_counted", "cancels_unanswered",
                                                 "orders_left_open") if not figures["targets_met"][name]}
    detail = {k: figures.get(k) for k in ("cash_diff", "tokens_differing", "tokens_unknown_to_last_run",
                                          "tokens_differing_examples",
                                          "fills_booked", "fills_adopted", "trades_venue", "errors",
                                          "cancels_unanswered_examples", "workdir")}
    assert not missed, (missed, detail)


# ---------------------------------------------------------------------- the arithmetic

def _log(path: Path, rows: list[tuple[str, dict]]) -> Path:
    db = sqlite_utils.Database(path)
    db["events"].insert_all(
        [{"seq": i, "ts_ns": i, "wall_ns": i, "kind": kind, "cid": f"c{i}", "market": "", "token": "",
          "payload": json.dumps(payload)} for i, (kind, payload) in enumerate(rows, 1)], pk="seq")
    return path


def _fill(fill_id: str, order_id: str, size: int) -> tuple[str, dict]:
    return "fill", {"fill_id": fill_id, "order_id": order_id, "size": size}


def test_a_fill_booked_in_two_runs_is_double_counted_and_a_reversed_one_is_not(tmp_path: Path) -> None:
    first = _log(tmp_path / "1.db", [_fill("t1", "o1", 5), _fill("t2:0xa", "o2", 5), _fill("t3", "o3", 5)])
    second = _log(tmp_path / "2.db", [
        ("correction", {"fill_id": "t1", "order_id": "0xb", "size_delta": 5}),  # adopted again: twice
        _fill("t2:0xa", "o9", 5), ("correction", {"fill_id": "t2:0xa", "order_id": "o9", "size_delta": -5}),  # undone
        _fill("t4", "o4", 5), _fill("t4", "o4", 5),  # the same fill row twice in one run
    ])
    figures = summarise([RunLog(1, first, killed=True), RunLog(2, second, killed=False)])
    assert figures["double_counted_across_runs"] == 1
    assert figures["double_counted"] == 2
    assert figures["fills_booked"] == 6 and figures["fills_adopted"] == 1


def test_a_cancel_is_answered_by_its_orders_end_a_refusal_or_a_completing_fill(tmp_path: Path) -> None:
    def submit(order_id: str) -> tuple[str, dict]:
        return "submit", {"order_id": order_id, "size": 10}

    def cancel(order_id: str) -> tuple[str, dict]:
        return "cancel", {"order_id": order_id}

    db = _log(tmp_path / "r.db", [
        *(submit(o) for o in ("o1", "o2", "o3", "o4", "o5")), *(cancel(o) for o in ("o1", "o2", "o3", "o4", "o5")),
        ("order_done", {"order_id": "o1"}), ("cancel_rejected", {"order_id": "o2"}),
        _fill("t1", "o3", 4), ("correction", {"fill_id": "t2", "order_id": "o3", "size_delta": 6}),  # complete
        _fill("t3", "o4", 9),  # partly filled, never ended: unanswered, as is o5
    ])
    assert unanswered_cancels(db) == (5, ["o4", "o5"])
    # rows are 1 ns apart here: the first cancel to the first answer (o3's is the completing leg)
    assert cancel_waits(db) == (5, {"o1": 5, "o2": 5, "o3": 6, "o4": None, "o5": None})
    # a refused cancel answers the cancel but ends nothing: the venue may have matched the order
    assert unended_orders(db) == ["o2", "o4", "o5"]
    killed = summarise([RunLog(1, db, killed=True)])
    assert killed["cancels_sent"] == 5 and killed["cancels_unanswered"] == 0  # a killed run cannot answer
    assert summarise([RunLog(1, db, killed=False)])["cancels_unanswered"] == 2


def test_the_ledger_equals_the_venue_only_in_cash_and_every_token() -> None:
    end = {"cash": 100, "positions": {"a": 5, "b": 0}}
    assert compare_ledger(end, 100, {"a": 5})["ledger_equals_venue"]
    assert not compare_ledger(end, 101, {"a": 5})["ledger_equals_venue"]
    off = compare_ledger(end, 100, {"a": 5, "c": 1})
    assert not off["ledger_equals_venue"] and off["tokens_only_at_venue"] == 1
    assert off["tokens_unknown_to_last_run"] == 1  # shares the run never heard of (an earlier run's)
    assert compare_ledger(end, 100, {"a": 5, "c": 1}, known={"a", "c"})["tokens_unknown_to_last_run"] == 0
    assert not compare_ledger(None, 100, {})["ledger_equals_venue"]


def test_venue_legs_are_named_as_the_bot_names_its_fills() -> None:
    records = [
        {"id": "t1", "status": "CONFIRMED", "trader_side": "TAKER", "owner": "k",
         "maker_orders": [{"owner": "other", "order_id": "0x1"}]},
        {"id": "t2", "status": "MATCHED", "trader_side": "MAKER", "owner": "other",
         "maker_orders": [{"owner": "k", "order_id": "0x2"}, {"owner": "x", "order_id": "0x3"}]},
        {"id": "t3", "status": "FAILED", "trader_side": "TAKER", "owner": "k", "maker_orders": []},
    ]
    assert venue_legs(records, "k") == (2, 1, frozenset({"t1", "t2:0x2"}))

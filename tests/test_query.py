"""The read side: explain, summary, projection and plot over a small hand-built run."""

from __future__ import annotations

import pytest

from mmbot.memory.log import EventLog
from mmbot.memory.plot import plot
from mmbot.memory.query import digest, explain, format_explain, iso_time, project, projection
from mmbot.memory.status import status
from mmbot.memory.report import format_summary, summary

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
MS = 1_000_000
YES, NO, MARKET = "t-yes", "t-no", "m-1"


class StepClock:
    def __init__(self) -> None:
        self.now = T0

    def now_ns(self) -> int:
        return self.now


def place(strategy, token, price, size, *, group="", cause, book=None, tif="GTC"):
    return {
        "strategy": strategy, "action": "place", "token": token, "side": "BUY", "price": price, "size": size,
        "tif": tif, "post_only": False, "group": group, "pair_cost": 960_000, "reason": "edge", "cause": cause,
        "cause_recv_ns": T0, "book": book or {YES: [440_000, 450_000], NO: [490_000, 510_000]},
    }  # fmt: skip


def submit(order_id, token, price, size, tif="GTC"):
    return {"order_id": order_id, "token": token, "side": "BUY", "price": price, "size": size, "tif": tif,
            "reserved": price * size // 1_000_000}  # fmt: skip


def fill(fill_id, order_id, token, price, size, fee, cash, position):
    return {"fill_id": fill_id, "order_id": order_id, "token": token, "side": "BUY", "price": price, "size": size,
            "fee": fee, "liquidity": "TAKER", "cash": cash, "position": position}  # fmt: skip


def pnl(cash, realised, unrealised, positions):
    return {"cash": cash, "reserved": 0, "realised": realised, "unrealised": unrealised, "fees": 0,
            "positions": positions, "marks": {YES: 440_000, NO: 560_000}}  # fmt: skip


# (kind, cid, payload, token) in log order; every row is 1 ms after the previous one.
RUN = [
    ("run_start", "run", {"mode": "replay", "seed": 1, "recording": "r", "config_hash": "h"}, ""),
    ("book_state", "f-1", {"state": "synced", "reason": "snapshot"}, YES),  # 2
    ("intent", "i-yes", place("complete_set", YES, 450_000, 10_000_000, group="g-1", cause="f-1", tif="FAK"), YES),
    ("intent", "i-no", place("complete_set", NO, 510_000, 10_000_000, group="g-1", cause="f-1", tif="FAK"), NO),
    ("risk_verdict", "i-yes", {"accepted": True, "reason": "ok", "strategy": "complete_set"}, ""),  # 5
    ("risk_verdict", "i-no", {"accepted": True, "reason": "ok", "strategy": "complete_set"}, ""),
    ("submit", "i-yes", submit("o-1", YES, 450_000, 10_000_000, "FAK"), YES),  # 7
    ("submit", "i-no", submit("o-2", NO, 510_000, 10_000_000, "FAK"), NO),
    ("ack", "i-yes", {"order_id": "o-1"}, ""),  # 9
    ("ack", "i-no", {"order_id": "o-2"}, ""),
    ("fill", "r-1", fill("t-1", "o-1", YES, 450_000, 4_000_000, 10_000, 98_190_000, 4_000_000), YES),  # 11
    ("fill", "r-2", fill("t-2", "o-1", YES, 450_000, 6_000_000, 20_000, 95_470_000, 10_000_000), YES),
    ("fill", "r-3", fill("t-3", "o-2", NO, 510_000, 10_000_000, 30_000, 90_340_000, 10_000_000), NO),  # 13
    ("intent", "i-other", place("maker", YES, 400_000, 5_000_000, group="g-2", cause="f-2"), YES),
    ("risk_verdict", "i-other", {"accepted": False, "reason": "max_position", "strategy": "maker"}, ""),  # 15
    ("intent", "i-open", place("maker", YES, 400_000, 5_000_000, cause="f-3"), YES),
    ("risk_verdict", "i-open", {"accepted": True, "reason": "ok", "strategy": "maker"}, ""),  # 17
    ("submit", "i-open", submit("o-3", YES, 400_000, 5_000_000), YES),
    ("ack", "i-open", {"order_id": "o-3"}, ""),  # 19
    ("fill", "r-4", fill("t-4", "o-3", YES, 400_000, 1_000_000, 0, 89_940_000, 11_000_000), YES),
    # a FAILED trade takes back 2 of o-2's shares and its fee share: +1.02 + 0.006 pUSD
    ("correction", "rc-1", {"order_id": "o-2", "fill_id": "t-3", "size_delta": -2_000_000, "fee_delta": -6_000,
                            "reason": "FAILED"}, NO),  # 21  # fmt: skip
    ("merge", "mg-1", {"size": 8_000_000, "cash": 98_966_000}, ""),
    ("kill_switch", "k-1", {"reason": "operator"}, ""),  # 23
    ("intent", "i-kill", {"strategy": "risk", "action": "cancel", "reason": "kill switch", "cause": "k-1"}, ""),
    ("cancel", "i-kill", {"order_id": "o-3", "reason": "kill switch"}, ""),  # 25
    ("intent", "i-bad", place("maker", NO, 333_333, 5_000_000, cause="f-4"), NO),
    ("risk_verdict", "i-bad", {"accepted": True, "reason": "ok", "strategy": "maker"}, ""),  # 27
    ("submit", "i-bad", submit("o-4", NO, 333_333, 5_000_000), NO),
    ("reject", "i-bad", {"order_id": "o-4", "reason": "INVALID_ORDER_MIN_TICK_SIZE"}, ""),  # 29
    ("frame_malformed", "f-9", {"channel": "market", "error": "bad json", "excerpt": "{"}, ""),
    ("pnl", "pnl-1", pnl(95_000_000, 0, -50_000, {YES: 10_000_000, NO: 10_000_000}), ""),  # 31
    ("pnl", "pnl-2", pnl(98_966_000, 1_000_000, -20_000, {YES: 3_000_000}), ""),
    ("bus_stats", "bus", {"slots": {"updates": 120, "delivered": 100, "dropped": 20, "pending": 0, "peak_pending": 3},
                          "streams": {"inbox": {"sent": 40, "received": 40, "backlog": 0, "peak_backlog": 4}},
                          "frames": 130, "malformed": 1}, ""),  # 33  # fmt: skip
    ("run_end", "run", {"cash": 98_966_000, "realised": 1_000_000, "unrealised": -20_000, "fees": 54_000,
                        "positions": {YES: 3_000_000}, "marks": {YES: 440_000, NO: 560_000}, "frames": 130,
                        "book_updates": 120, "drops": 20, "intents": 6, "orders": 4, "fills": 4}, ""),  # fmt: skip
]
MARKET_KINDS = {"submit", "fill", "merge", "correction"}


def write_log(path, rows) -> None:
    clock = StepClock()
    log = EventLog(path, clock=clock, wall=lambda: 0, batch_rows=8)
    for kind, cid, payload, token in rows:
        clock.now += MS
        log.record(kind, cid, payload, market=MARKET if kind in MARKET_KINDS else "", token=token)
    log.flush_sync()


@pytest.fixture
def run_db(tmp_path):
    path = tmp_path / "run.db"
    write_log(path, RUN)
    return path


def seqs(rows) -> list[int]:
    return [row.seq for row in rows]


YES_LEG_CHAIN = [2, 3, 4, 5, 7, 9, 11, 12]  # frame's book_state, both intents, verdict, submit, ack, fills


@pytest.mark.parametrize("ident", ["i-yes", "o-1", "t-2", "t-1", "r-2"])
def test_explain_finds_the_whole_chain_from_any_id(run_db, ident):
    assert seqs(explain(run_db, ident)) == YES_LEG_CHAIN


def test_explain_of_the_other_leg_includes_its_correction(run_db):
    assert seqs(explain(run_db, "o-2")) == [2, 3, 4, 6, 8, 10, 13, 21]


def test_explain_follows_cancels_and_their_causes(run_db):
    # o-3: its intent and verdict, submit, ack, fill, then the kill switch's cancel intent and its cause
    assert seqs(explain(run_db, "o-3")) == [16, 17, 18, 19, 20, 23, 24, 25]


def test_explain_of_a_risk_rejection_and_of_nothing(run_db):
    assert seqs(explain(run_db, "i-other")) == [14, 15]
    assert explain(run_db, "nope") == []
    assert format_explain([]) == "no event matches"


def test_explain_follows_causes_several_steps_back(tmp_path):
    path = tmp_path / "run.db"
    write_log(
        path,
        [
            ("book_state", "f-1", {"state": "stale", "reason": "reconnect"}, YES),
            ("error", "e-1", {"where": "feed", "error": "boom", "cause": "f-1"}, ""),
            ("kill_switch", "k-1", {"reason": "feed errors", "cause": "e-1"}, ""),
            ("intent", "i-1", {"strategy": "risk", "action": "cancel", "cause": "k-1"}, ""),
            ("book_state", "f-2", {"state": "synced", "reason": "snapshot"}, YES),
        ],
    )
    assert seqs(explain(path, "i-1")) == [1, 2, 3, 4]


def test_format_explain_shows_times_decimals_cause_and_book(run_db):
    text = format_explain(explain(run_db, "t-1"))
    lines = text.splitlines()
    assert lines[0].startswith("2023-11-14T22:13:20.002Z  #2      book_state      cid=f-1")
    assert "cid=i-yes" in lines[1] and "price=0.45" in lines[1] and "size=10 " in lines[1] and "group=g-1" in lines[1]
    assert "caused by f-1 (received 2023-11-14T22:13:20.000Z, decided 3000 us later)" in text
    assert f"book {YES}: bid 0.44 / ask 0.45" in text
    assert "fee=0.01" in text and "cash=98.19" in text and "fill_id=t-1" in text
    assert "i-other" not in text


def test_iso_time_keeps_milliseconds():
    assert iso_time(T0 + 1_234_567_890) == "2023-11-14T22:13:21.234Z"


def test_summary_figures(run_db):
    report = summary(run_db)
    assert report["rows"] == len(RUN)
    assert report["counts_by_kind"]["fill"] == 4 and report["counts_by_kind"]["intent"] == 6
    assert (report["frames"], report["malformed"], report["book_updates"], report["drops"]) == (130, 1, 120, 20)
    assert report["peak_backlog"] == {"inbox": 4}
    assert report["intents_by_strategy"] == {"complete_set": 2, "maker": 3, "risk": 1}
    assert report["risk_rejections"] == {"max_position": 1}
    assert report["venue_rejections"] == {"INVALID_ORDER_MIN_TICK_SIZE": 1}
    assert report["orders_submitted"] == 4
    assert report["fills"] == {
        "count": 4,
        "shares": 21_000_000,
        "notional": 10_000_000,
        "fees": 60_000,
        "by_side": {"BUY": {"count": 4, "shares": 21_000_000, "notional": 10_000_000, "fees": 60_000}},
    }
    assert report["pnl"] == {"cash": 98_966_000, "realised": 1_000_000, "unrealised": -20_000, "fees": 54_000,
                             "total": 980_000}  # fmt: skip
    assert report["positions"] == {YES: 3_000_000}
    assert report["latency"]["ack"] == {"count": 3, "p50_us": 2000, "p99_us": 2000, "max_us": 2000}
    assert report["latency"]["decision"]["count"] == 5 and report["latency"]["decision"]["max_us"] == 26_000
    assert report["digest"] == digest(run_db)

    text = format_summary(report)
    assert "fills         4: 21 shares, notional 10, fees 0.06" in text
    assert "realised 1, unrealised -0.02, total 0.98" in text
    assert "max_position" in text and report["digest"] in text


def test_projection_rebuilds_open_orders_positions_and_cash(run_db):
    open_orders, positions, cash = projection(run_db)
    assert open_orders == {
        "o-3": {"cid": "i-open", "market": MARKET, "token": YES, "side": "BUY", "price": 400_000, "size": 5_000_000,
                "tif": "GTC", "filled": 1_000_000, "status": "live"},
    }  # fmt: skip
    assert positions == {YES: 3_000_000}  # NO: 10 bought, 2 taken back, 8 merged
    assert cash == 98_966_000


def test_projection_moves_cash_for_a_correction_that_carries_none(tmp_path):
    path = tmp_path / "run.db"
    rows = [row for row in RUN if row[0] in ("submit", "ack", "fill", "correction")]
    write_log(path, rows)
    _, positions, cash = projection(path)
    assert positions == {YES: 11_000_000, NO: 8_000_000}
    assert cash == 89_940_000 + 1_020_000 + 6_000  # the refund of 2 shares at 0.51 and of the fee


def test_plot_writes_a_png(run_db, tmp_path):
    out = tmp_path / "run.png"
    plot(run_db, out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_read_side_refuses_a_missing_database(tmp_path):
    with pytest.raises(FileNotFoundError):
        explain(tmp_path / "missing.db", "x")
    assert not (tmp_path / "missing.db").exists()


# --------------------------------------------------------------------------- rows the projection cannot place

# A second run's log: the correction names an order placed by the first run (not in this log).
# Before correction rows carried side, price and cash, such a row could not be placed at all.
RESTARTED = [
    ("run_start", "run", {"mode": "sim", "seed": 1, "recording": "", "config_hash": "h"}, ""),
    ("position_adopted", "startup", {"shares": 10_000_000, "cost": 4_000_000, "basis": "mid"}, YES),
    ("submit", "i-1", submit("o-1", NO, 500_000, 4_000_000), NO),
    ("fill", "r-1", fill("t-1", "o-1", NO, 500_000, 4_000_000, 0, 98_000_000, 4_000_000), NO),
    ("correction", "rc-old", {"order_id": "o-600", "fill_id": "t-9", "size_delta": -3_000_000, "fee_delta": 0,
                              "reason": "trade t-9 failed"}, YES),  # fmt: skip
    ("correction", "rc-new", {"order_id": "o-601", "fill_id": "t-8", "side": "BUY", "price": 400_000,
                              "size_delta": -2_000_000, "fee_delta": -1_000, "reason": "trade t-8 failed",
                              "cash": 98_801_000, "position": 5_000_000}, YES),  # fmt: skip
]


def test_status_of_a_log_whose_correction_names_an_order_of_an_earlier_run(tmp_path):
    path = tmp_path / "run.db"
    write_log(path, RESTARTED)
    now = status(path)  # it raised "correction #5 names no order the log knows ..."
    assert now["problems"] == ["1 row the projection could not place: correction #5"]
    # adopted 10 YES at start-up; the old correction's -3 left out; the self-contained one's -2 placed
    assert now["positions"] == {NO: 4_000_000, YES: 8_000_000}
    assert now["cash"] == 98_801_000


def test_the_projection_counts_the_rows_it_cannot_place_and_goes_on(tmp_path):
    path = tmp_path / "run.db"
    broken = [
        ("fill", "r-x", {"fill_id": "t-x", "order_id": "o-1", "token": NO, "side": "BUY", "size": "lots"}, NO),
        ("merge", "mg-x", {"cash": 5}, ""),
    ]
    write_log(path, RESTARTED + broken)
    placed = project(path)
    assert placed.unplaced == (("correction", 5), ("fill", 7), ("merge", 8))
    assert (placed.positions, placed.cash) == ({NO: 4_000_000, YES: 8_000_000}, 98_801_000)
    assert status(path)["problems"] == ["3 rows the projection could not place: correction #5, fill #7, merge #8"]
    assert projection(path) == (placed.open_orders, placed.positions, placed.cash)

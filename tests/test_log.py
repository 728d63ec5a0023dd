"""The event log writer: rows round-trip, batching, shielded flush on cancellation, digest, and how
a run ended (completed, failed, or killed)."""

from __future__ import annotations

import json

import pytest
import sqlite_utils
import trio
import trio.testing

from mmbot.clock import TrioClock
from mmbot.memory.log import EventLog, close_abandoned, run_outcome
from mmbot.memory.query import digest
from mmbot.model import Side, TimeInForce

T0 = 1_700_000_000_000_000_000


class StepClock:
    """A hand-driven clock: every reading is ``now``."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def now_ns(self) -> int:
        return self.now


def counting_wall(start: int):
    state = {"now": start}

    def wall() -> int:
        state["now"] += 1_000
        return state["now"]

    return wall


def stored(path) -> list[dict]:
    return list(sqlite_utils.Database(path).query("SELECT * FROM events ORDER BY seq"))


def sample_rows(log: EventLog, clock: StepClock, count: int, *, odd_payload: int = -1) -> None:
    for i in range(count):
        clock.now = T0 + i * 1_000_000
        payload = {"order_id": f"o-{i}", "price": 500_000 + i, "size": 10_000_000}
        if i == odd_payload:
            payload["size"] += 1
        log.record("submit", f"c-{i % 7}", payload, market="m-1", token=f"t-{i % 2}")


async def wait_written(log: EventLog, rows: int) -> None:
    """Yield until the writer thread has committed ``rows`` rows (no clock advance needed)."""
    for _ in range(1_000_000):
        if log.statistics().rows_written >= rows:
            return
        await trio.sleep(0)
    raise AssertionError(f"writer never reached {rows} rows: {log.statistics()}")


def test_rows_round_trip(tmp_path):
    clock = StepClock()
    log = EventLog(tmp_path / "run.db", clock=clock, wall=lambda: 42)
    log.record(
        "intent",
        "i-1",
        {"side": Side.BUY, "tif": TimeInForce.GTC, "book": {"t": (440_000, None)}, "post_only": True, "z": 1,
         "a": "é"},  # fmt: skip
        market="m-1",
        token="t-1",
    )
    clock.now += 5
    log.record("ack", "i-1")
    log.flush_sync()

    first, second = stored(tmp_path / "run.db")
    assert first == {
        "seq": 1,
        "ts_ns": T0,
        "wall_ns": 42,
        "kind": "intent",
        "cid": "i-1",
        "market": "m-1",
        "token": "t-1",
        "payload": '{"a":"é","book":{"t":[440000,null]},"post_only":true,"side":"BUY","tif":"GTC","z":1}',
    }
    expected = {"a": "é", "book": {"t": [440_000, None]}, "post_only": True, "side": "BUY", "tif": "GTC", "z": 1}
    assert first["payload"] == json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert (second["seq"], second["ts_ns"], second["kind"], second["payload"], second["market"]) == (
        2,
        T0 + 5,
        "ack",
        "{}",
        "",
    )


def test_payload_that_is_not_json_native_raises(tmp_path):
    log = EventLog(tmp_path / "run.db", clock=StepClock(), wall=lambda: 0)
    with pytest.raises(TypeError, match="object"):
        log.record("error", "c", {"what": object()})
    log.record("error", "c", {"what": "kept"})
    assert log.statistics().rows_recorded == 1  # the bad call used no sequence number


def test_record_never_touches_sqlite_until_flushed(tmp_path):
    path = tmp_path / "run.db"
    log = EventLog(path, clock=StepClock(), wall=lambda: 0)
    log._conn.close()  # any SQLite access from record() would now raise
    sample_rows(log, StepClock(), 25)
    stats = log.statistics()
    assert (stats.rows_recorded, stats.pending, stats.rows_written, stats.batches) == (25, 25, 0, 0)
    assert stored(path) == []


def test_batches_are_one_transaction_each_and_keep_seq_order(tmp_path):
    path = tmp_path / "run.db"
    log = EventLog(path, clock=StepClock(), wall=lambda: 0, batch_rows=100)
    commits = []
    log._conn.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    sample_rows(log, StepClock(), 1_050)
    log.flush_sync()

    stats = log.statistics()
    assert (stats.rows_written, stats.batches, stats.pending, stats.peak_pending) == (1_050, 11, 0, 1_050)
    assert len(commits) == 11
    rows = stored(path)
    assert [row["seq"] for row in rows] == list(range(1, 1_051))
    assert [json.loads(row["payload"])["order_id"] for row in rows] == [f"o-{i}" for i in range(1_050)]


def test_second_run_into_the_same_database_is_refused(tmp_path):
    log = EventLog(tmp_path / "run.db", clock=StepClock(), wall=lambda: 0)
    log.record("ack", "c")
    log.flush_sync()
    with pytest.raises(FileExistsError):
        EventLog(tmp_path / "run.db", clock=StepClock(), wall=lambda: 0)


async def test_writer_batches_by_count_at_once_and_by_time_after_batch_ms(tmp_path, mock_clock):
    log = EventLog(tmp_path / "run.db", clock=StepClock(), wall=lambda: 0, batch_rows=10, batch_ms=50)
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)

        log.record("ack", "c-1")
        await trio.testing.wait_all_tasks_blocked()
        assert log.statistics().rows_written == 0  # waiting up to 50 ms for company

        for i in range(9):
            log.record("ack", f"c-{i + 2}")
        await wait_written(log, 10)  # a full batch goes at once: no time has passed
        assert trio.current_time() == 0
        assert log.statistics().batches == 1

        log.record("ack", "c-11")
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(0.049)
        await trio.testing.wait_all_tasks_blocked()
        assert log.statistics().rows_written == 10
        mock_clock.jump(0.002)
        await wait_written(log, 11)
        assert log.statistics().batches == 2
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("checkpoints_before_cancel", [0, 1, 2, 5, 50])
async def test_cancelled_writer_flushes_every_row(tmp_path, autojump_clock, checkpoints_before_cancel):
    path = tmp_path / "run.db"
    clock = TrioClock(anchor_ns=T0)
    log = EventLog(path, clock=clock, wall=counting_wall(0), batch_rows=64, batch_ms=50)
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        for burst in range(3):
            for i in range(300):
                log.record("fill", f"c-{burst}-{i}", {"size": i})
            await trio.sleep(0.01)
        for i in range(500):
            log.record("fill", f"late-{i}", {"size": i})
        for _ in range(checkpoints_before_cancel):
            await trio.sleep(0)
        nursery.cancel_scope.cancel()
        for i in range(7):  # still recorded before the writer saw the cancellation
            log.record("fill", f"last-{i}", {"size": i})

    rows = stored(path)
    assert len(rows) == 1_407 == log.statistics().rows_written
    assert [row["seq"] for row in rows] == list(range(1, 1_408))
    assert rows[0]["ts_ns"] == T0 and rows[300]["ts_ns"] == T0 + 10_000_000
    assert rows[-1]["cid"] == "last-6"


async def test_close_returns_the_digest_and_finishes_the_run(tmp_path, autojump_clock):
    path = tmp_path / "run.db"
    log = EventLog(path, clock=TrioClock(anchor_ns=T0), wall=counting_wall(0))
    log.start_run(mode="replay", seed=7, recording="r.jsonl.gz", config_hash="cfg", code_version="abc123")
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        log.record("ack", "c-1", {"order_id": "o-1"})
        await trio.sleep(1)
        log.record("ack", "c-2", {"order_id": "o-2"})
        run_digest = await log.close()  # while the writer still runs
        nursery.cancel_scope.cancel()

    assert run_digest == digest(path)
    assert [row["cid"] for row in stored(path)] == ["c-1", "c-2"]
    (run,) = sqlite_utils.Database(path)["runs"].rows
    assert run["digest"] == run_digest
    assert (run["mode"], run["seed"], run["recording"], run["config_hash"], run["code_version"]) == (
        "replay",
        7,
        "r.jsonl.gz",
        "cfg",
        "abc123",
    )
    assert run["ended_wall_ns"] > run["started_wall_ns"] > 0
    assert run["outcome"] == "completed" == run_outcome(path)
    with pytest.raises(RuntimeError, match="after EventLog.close"):
        log.record("ack", "c-3")


async def test_a_failed_run_ends_with_a_run_failed_row_and_says_so_in_the_runs_row(tmp_path, autojump_clock):
    path = tmp_path / "run.db"
    log = EventLog(path, clock=TrioClock(anchor_ns=T0), wall=counting_wall(0))
    log.start_run(mode="sim", seed=7, recording="ws://x", config_hash="cfg", code_version="abc123")
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        log.record("ack", "c-1", {"order_id": "o-1"})
        assert run_outcome(path) is None  # still running
        await trio.sleep(2)
        run_digest = await log.close(failed="start-up: DELETE /cancel-all: 401 Unauthorized")
        nursery.cancel_scope.cancel()

    rows = stored(path)
    assert [row["kind"] for row in rows] == ["ack", "run_failed"]
    assert json.loads(rows[-1]["payload"]) == {"reason": "start-up: DELETE /cancel-all: 401 Unauthorized"}
    assert rows[-1]["ts_ns"] == T0 + 2_000_000_000
    (run,) = sqlite_utils.Database(path)["runs"].rows
    assert run["outcome"] == "failed: start-up: DELETE /cancel-all: 401 Unauthorized" == run_outcome(path)
    assert run["digest"] == run_digest == digest(path) and run["ended_wall_ns"]


OLD_RUN_COLUMNS = {"run_id": int, "started_wall_ns": int, "mode": str, "seed": int, "recording": str,
                   "config_hash": str, "code_version": str, "ended_wall_ns": int, "digest": str}


@pytest.mark.parametrize("ended, outcome", [(123, "completed"), (None, None)])
def test_a_log_from_before_the_outcome_column_is_still_read(tmp_path, ended, outcome):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    db["runs"].insert({"run_id": 1, "started_wall_ns": 1, "mode": "paper", "seed": 0, "recording": "",
                       "config_hash": "", "code_version": "", "ended_wall_ns": ended, "digest": None},
                      pk="run_id", columns=OLD_RUN_COLUMNS)
    db.conn.close()
    assert run_outcome(path) == outcome  # only a clean stop ever finished the row back then
    assert not close_abandoned(path, reason="x", wall=lambda: 0)  # an old log is left as it is


def test_an_empty_log_from_before_the_outcome_column_gains_it(tmp_path):
    path = tmp_path / "old.db"
    sqlite_utils.Database(path)["runs"].create(OLD_RUN_COLUMNS, pk="run_id")
    log = EventLog(path, clock=StepClock(), wall=lambda: 5)
    log.start_run(mode="replay", seed=0, recording="r", config_hash="c", code_version="v")
    trio.run(log.close)
    assert run_outcome(path) == "completed"


def test_a_log_its_process_left_open_is_closed_as_failed_once(tmp_path):
    path = tmp_path / "run.db"
    clock = StepClock()
    log = EventLog(path, clock=clock, wall=lambda: 10)
    log.start_run(mode="sim", seed=0, recording="ws://x", config_hash="c", code_version="v")
    sample_rows(log, clock, 3)
    log.flush_sync()
    log.record("ack", "never-written")  # recorded, not written: lost with the run

    assert close_abandoned(path, reason="RuntimeError: boom", wall=lambda: 99)
    rows = stored(path)
    assert [(row["seq"], row["kind"]) for row in rows][-2:] == [(3, "submit"), (4, "run_failed")]
    assert rows[-1]["ts_ns"] == rows[-2]["ts_ns"] and rows[-1]["wall_ns"] == 99
    assert json.loads(rows[-1]["payload"]) == {"reason": "RuntimeError: boom"}
    (run,) = sqlite_utils.Database(path)["runs"].rows
    assert (run["outcome"], run["ended_wall_ns"], run["digest"]) == ("failed: RuntimeError: boom", 99, digest(path))
    assert not close_abandoned(path, reason="again", wall=lambda: 100)  # closed: left alone
    assert not close_abandoned(tmp_path / "missing.db", reason="x", wall=lambda: 0)
    assert not (tmp_path / "missing.db").exists()


def _log_digest(path, *, batch_rows: int, wall_start: int, odd_payload: int = -1) -> str:
    clock = StepClock()
    log = EventLog(path, clock=clock, wall=counting_wall(wall_start), batch_rows=batch_rows)
    sample_rows(log, clock, 200, odd_payload=odd_payload)
    log.flush_sync()
    return digest(path)


def test_digest_ignores_batching_and_wall_time_but_not_content(tmp_path):
    reference = _log_digest(tmp_path / "a.db", batch_rows=1, wall_start=0)
    assert _log_digest(tmp_path / "b.db", batch_rows=7, wall_start=10**18) == reference
    assert _log_digest(tmp_path / "c.db", batch_rows=500, wall_start=5) == reference
    assert _log_digest(tmp_path / "d.db", batch_rows=7, wall_start=0, odd_payload=150) != reference
    # wall time really differs between the databases that hash alike
    walls = {stored(tmp_path / name)[0]["wall_ns"] for name in ("a.db", "b.db")}
    assert len(walls) == 2


def test_digest_of_an_empty_log_is_the_hash_of_nothing(tmp_path):
    log = EventLog(tmp_path / "run.db", clock=StepClock(), wall=lambda: 0)
    log.flush_sync()
    assert digest(tmp_path / "run.db") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


async def test_the_writer_checkpoints_the_wal_so_it_stops_growing(tmp_path, autojump_clock, monkeypatch) -> None:
    """A week-long run's WAL grew until the log closed (automatic checkpoints are off): the
    writer now checkpoints it on its thread every CHECKPOINT_ROWS rows, so the file is reused."""
    from mmbot.clock import TrioClock
    from mmbot.memory import log as log_module

    monkeypatch.setattr(log_module, "CHECKPOINT_ROWS", 2_000)
    db = tmp_path / "wal.db"
    log = log_module.EventLog(db, clock=TrioClock(), wall=lambda: 0, batch_rows=500, batch_ms=None)
    log.start_run(mode="test", seed=0, recording="", config_hash="", code_version="")
    sizes = []
    for round_ in range(20):
        for i in range(1_000):
            log.record("tick", f"c{round_}-{i}", {"padding": "x" * 200})
        await log._write_pending()  # what the writer task does when it wakes (its threads run on real time)
        sizes.append((tmp_path / "wal.db-wal").stat().st_size)
    await log.close()
    assert log.checkpoints == 10
    assert max(sizes[10:]) <= max(sizes[:10]) * 1.5, sizes  # reused, not grown with every row

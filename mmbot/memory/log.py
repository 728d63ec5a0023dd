"""The event log writer: every decision, fill, rejection and error as one SQLite row (DESIGN §9).

Recording must never slow the hot path, so ``EventLog.record`` only stamps the row (sequence
number, virtual and wall time), serialises its payload once and appends it to an in-memory
buffer. A separate writer task (``EventLog.run``) drains that buffer in batches, one transaction
per batch of at most ``batch_rows`` (a couple of milliseconds), yielding to the loop between
batches so no other task waits long behind SQLite. The writer is cancelled
at the end of the run and flushes whatever is still pending under a shield: a row recorded is a
row kept.

One database per run. Besides ``events`` there is a one-row ``runs`` table describing the run
(mode, seed, recording, config hash, code version) and, once closed, its digest and outcome:
``completed``, or ``failed: <reason>`` after a ``run_failed`` row; NULL while the run goes on, or
after it was killed before it could close its log (``run_outcome`` reads it).
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any, Callable

import attrs
import sqlite_utils
import trio

from mmbot.clock import monotonic_ns
from mmbot.memory.query import digest
from mmbot.ports import Clock

from mmbot.memory.schema import (  # noqa: F401 (COMPLETED, FAILED, RUN_ID, Row: read through this module too)
    _EMPTY_PAYLOAD, CHECKPOINT_ROWS, COMPLETED, EVENT_COLUMNS, FAILED, RUN_COLUMNS, RUN_ID, Row, RowObserver,
    _PendingRow, _ROWS_PER_STATEMENT, _insert_rows, canonical_json,
)


class _ClosedBuffer(list):  # type: ignore[type-arg]
    """Stands in for the pending buffer after close: recording then is a bug, so it raises."""

    def append(self, row: Any) -> None:
        raise RuntimeError("record() after EventLog.close(): the run's log is already finished")


@attrs.frozen
class LogStatistics:
    rows_recorded: int
    rows_written: int
    pending: int
    batches: int  # transactions committed
    longest_write_ms: float  # float-ok: a duration, for the operator
    peak_pending: int  # most rows waiting at once


class EventLog:
    """Append-only event log of one run; implements ``mmbot.ports.EventSink``.

    ``record`` may be called from any code on the Trio thread, with or without the writer task
    running: rows wait in memory until ``run``, ``flush_sync`` or ``close`` writes them.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        clock: Clock,
        wall: Callable[[], int],
        batch_rows: int = 500,
        batch_ms: int | None = 50,  # None: batch by count only (replay, whose clock is virtual)
    ) -> None:
        if batch_rows < 1 or (batch_ms is not None and batch_ms < 0):
            raise ValueError(f"batch_rows must be >= 1 and batch_ms >= 0, got {batch_rows}, {batch_ms}")
        self._now_ns = clock.now_ns
        self._wall = wall
        self._batch_rows = batch_rows
        self._batch_s = math.inf if batch_ms is None else batch_ms / 1000  # float-ok: a timeout in seconds
        self._path = str(db_path)
        # Used from the writer thread as well as this one, never by both at once (the write lock).
        self._conn = sqlite3.connect(self._path, check_same_thread=False)
        self._db = sqlite_utils.Database(self._conn)
        self._create_schema()

        self._seq = 0
        self._pending: list[_PendingRow] = []
        self._lot = trio.lowlevel.ParkingLot()
        self._wake_at = 1  # pending length at which record() wakes the parked writer
        self._write_lock = trio.Lock()

        self._rows_written = 0
        self._batches = 0
        self._checkpointed_at = 0  # rows written when the writer last checkpointed the WAL
        self.checkpoints = 0
        self._longest_write_ns = 0
        self._peak_pending = 0
        self._observers: list[RowObserver] = []
        self.observer_failures = 0

    def _create_schema(self) -> None:
        events = self._db["events"]
        if events.exists() and events.count:
            raise FileExistsError(f"{self._path} already holds a run's events: use one database per run")
        self._db.enable_wal()
        # WAL + NORMAL survives an application crash; only a power loss may drop the last commits.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # No automatic WAL checkpoints: one copies a thousand pages inside a commit and held the
        # loop 10+ ms. The writer checkpoints on its worker thread every CHECKPOINT_ROWS rows
        # instead (a week-long run's WAL would otherwise grow until the log closes).
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        events.create(EVENT_COLUMNS, pk="seq", if_not_exists=True)
        events.create_index(["cid"], if_not_exists=True)
        events.create_index(["kind"], if_not_exists=True)
        runs = self._db["runs"]
        runs.create(RUN_COLUMNS, pk="run_id", if_not_exists=True)
        if "outcome" not in runs.columns_dict:  # an empty log created before the column existed
            runs.add_column("outcome", str)

    # ------------------------------------------------------------------ hot path

    def record(
        self,
        kind: str,
        cid: str,
        payload: dict[str, Any] | None = None,
        *,
        market: str = "",
        token: str = "",
    ) -> None:
        """Stamp and buffer one row. Synchronous, never awaits, never touches SQLite.

        The payload is serialised here, not later, so a caller may go on mutating its dict.
        """
        text = _EMPTY_PAYLOAD if payload is None else canonical_json(payload)  # first: a bad payload leaves no seq gap
        self._seq += 1
        pending = self._pending
        row = (self._seq, self._now_ns(), self._wall(), kind, cid, market, token, text)
        pending.append(row)
        if len(pending) >= self._wake_at and self._lot:  # the cheap test first: on every row
            self._lot.unpark_all()
        if self._observers:
            self._tell(row, payload)

    def observe(self, observer: RowObserver) -> None:
        """Have ``observer(row, payload)`` called with every row recorded from now on, at once, on
        the recording task: the operator's cockpit follows a run this way. ``row`` is the stamped
        tuple (seq, virtual ns, wall ns, kind, cid, market, token, payload JSON) and ``payload``
        the caller's dict (read it, do not keep it). An observer that raises is a bug of its own:
        it is dropped, an ``error`` row says so, and the run goes on."""
        self._observers.append(observer)

    def _tell(self, row: Row, payload: dict[str, Any] | None) -> None:
        for observer in list(self._observers):
            try:
                observer(row, payload)
            except Exception as exc:
                self._observers.remove(observer)
                self.observer_failures += 1
                self.record("error", "observer", {"where": "event log observer", "error": repr(exc)[:300]})

    # ------------------------------------------------------------------ run metadata

    def start_run(self, *, mode: str, seed: int, recording: str, config_hash: str, code_version: str) -> None:
        """Write the ``runs`` row. Called once at start-up, before the hot path, so it writes directly.

        It records no event: the composition root records ``run_start`` (without
        ``code_version``, so the digest does not change when only the version string does).
        """
        self._db["runs"].insert(
            {
                "run_id": RUN_ID,
                "started_wall_ns": self._wall(),
                "mode": mode,
                "seed": seed,
                "recording": recording,
                "config_hash": config_hash,
                "code_version": code_version,
            }
        )
        self._conn.commit()

    # ------------------------------------------------------------------ writer task

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer: wait for rows, give stragglers up to batch_ms to join, write, repeat.

        On cancellation (end of run) every pending row is written under a shield.
        """
        task_status.started()
        try:
            while True:
                await self._wait_for_pending(1)
                with trio.move_on_after(self._batch_s):
                    await self._wait_for_pending(self._batch_rows)
                await self._write_pending()
        finally:
            with trio.CancelScope(shield=True):
                await self._write_pending()

    async def _wait_for_pending(self, rows: int) -> None:
        if len(self._pending) >= rows:
            await trio.lowlevel.checkpoint()  # keeps the loop cancellable under a flood of rows
            return
        self._wake_at = rows
        await self._lot.park()

    async def _write_pending(self) -> None:
        async with self._write_lock:
            await self._drain()

    async def _drain(self) -> None:
        """Write everything pending, batch_rows per transaction, each on a worker thread.

        SQLite runs off the Trio thread (and on the other core), so the loop is never held by a
        write, however slow the disk. ``_insert`` sends many rows per statement: sqlite3 gives
        up the GIL around every statement it steps, and with one statement per row the worker
        waited up to the 5 ms switch interval for the busy Trio thread to hand the GIL back,
        row after row — a few hundred rows a second. The caller holds the write lock, so the
        connection has one user at a time.
        """
        due = len(self._pending)  # rows recorded meanwhile wait for the next round
        while due > 0:
            batch = self._next_batch()[:due]
            self._written(len(batch), await trio.to_thread.run_sync(self._insert, batch))
            due -= len(batch)
        if self._rows_written - self._checkpointed_at >= CHECKPOINT_ROWS:
            self._checkpointed_at = self._rows_written
            await trio.to_thread.run_sync(self._checkpoint)

    def _checkpoint(self) -> None:
        """Copy the WAL into the database (PASSIVE: never waits for a reader), so the next
        writes start the WAL file over instead of growing it."""
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.checkpoints += 1

    def flush_sync(self) -> None:
        """Write everything pending from the calling thread (tests, interpreter exit).

        Never call it while the writer task is running.
        """
        while self._pending:
            batch = self._next_batch()
            self._written(len(batch), self._insert(batch))

    def _next_batch(self) -> list[_PendingRow]:
        # The buffer only grows between writes, so its length here is a local maximum.
        self._peak_pending = max(self._peak_pending, len(self._pending))
        return self._pending[: self._batch_rows]

    def _insert(self, batch: list[_PendingRow]) -> int:
        started = monotonic_ns()
        with self._conn:  # one transaction, committed on exit
            for at in range(0, len(batch), _ROWS_PER_STATEMENT):
                rows = batch[at : at + _ROWS_PER_STATEMENT]
                self._conn.execute(_insert_rows(len(rows)), [value for row in rows for value in row])
        return monotonic_ns() - started

    def _written(self, rows: int, elapsed_ns: int) -> None:
        # Rows leave the buffer only once committed: a failed write loses nothing.
        del self._pending[:rows]
        self._rows_written += rows
        self._batches += 1
        self._longest_write_ns = max(self._longest_write_ns, elapsed_ns)

    # ------------------------------------------------------------------ end of run

    async def close(self, *, failed: str | None = None) -> str:
        """Flush everything, seal the log, finish the ``runs`` row and return the digest.

        ``failed``: why the run ended before its time, in one line. A ``run_failed`` {reason} row
        is then the log's last row and the run's outcome is ``failed: <reason>``; otherwise the
        outcome is ``completed``. Recording after close raises. Safe to call while the writer
        task still runs.
        """
        async with self._write_lock:
            if failed is not None:
                self.record("run_failed", "run", {"reason": failed})
            await self._drain()
            # Synchronous from here: nothing can slip in between the last write and the seal.
            self.flush_sync()
            self._pending = _ClosedBuffer()
            # On this thread: the run is over, and under replay's autojump MockClock a worker
            # thread loses the GIL to the idle loop's zero-timeout polling (5x slower, measured).
            run_digest = _seal(self._db, ended_wall_ns=self._wall(), outcome=_outcome(failed))
            self._conn.close()
            return run_digest

    def statistics(self) -> LogStatistics:
        return LogStatistics(
            rows_recorded=self._seq,
            rows_written=self._rows_written,
            pending=len(self._pending),
            batches=self._batches,
            longest_write_ms=self._longest_write_ns / 1e6,  # float-ok: a duration
            peak_pending=max(self._peak_pending, len(self._pending)),
        )


def _outcome(failed: str | None) -> str:
    return COMPLETED if failed is None else FAILED + failed


def _seal(db: sqlite_utils.Database, *, ended_wall_ns: int, outcome: str) -> str:
    """Checkpoint the WAL, and finish the ``runs`` row (if there is one) with the digest."""
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    run_digest = digest(db)
    if db["runs"].count:
        db["runs"].update(RUN_ID, {"ended_wall_ns": ended_wall_ns, "digest": run_digest, "outcome": outcome})
        db.conn.commit()
    return run_digest


def close_abandoned(db_path: str | Path, *, reason: str, wall: Callable[[], int]) -> bool:
    """Close, as failed, a run whose log its process left open: the error that ended the run
    escaped before the code that opened the log could close it (the CLI's last resort).

    A ``run_failed`` {reason} row follows the last row written (at its virtual time: the run's
    clock is gone), and the ``runs`` row is finished as ``close`` would. Rows the run recorded
    but never wrote are lost with it. Returns False, touching nothing, when there is no log, no
    run in it, or its run is already closed.
    """
    if not Path(db_path).is_file():
        return False
    conn = sqlite3.connect(str(db_path))
    try:
        db = sqlite_utils.Database(conn)
        if not db["runs"].exists() or "outcome" not in db["runs"].columns_dict:
            return False
        run = conn.execute("SELECT ended_wall_ns FROM runs WHERE run_id = ?", [RUN_ID]).fetchone()
        if run is None or run[0] is not None:
            return False
        seq, ts_ns = conn.execute("SELECT COALESCE(MAX(seq), 0), COALESCE(MAX(ts_ns), 0) FROM events").fetchone()
        now = wall()
        with conn:
            conn.execute(_insert_rows(1), (seq + 1, ts_ns, now, "run_failed", "run", "", "",
                                           canonical_json({"reason": reason})))
        _seal(db, ended_wall_ns=now, outcome=_outcome(reason))
        return True
    finally:
        conn.close()


def run_outcome(db_path: str | Path) -> str | None:
    """How the log's run ended: ``completed``, ``failed: <reason>``, or None while it goes on or
    after a kill that left no time to close the log. A log written before the ``outcome`` column
    existed was closed only by a clean stop: ended is completed there."""
    if not Path(db_path).is_file():
        raise FileNotFoundError(f"no event log at {db_path}")
    conn = sqlite3.connect(str(db_path))
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        if not columns:
            return None
        if "outcome" in columns:
            row = conn.execute("SELECT outcome FROM runs WHERE run_id = ?", [RUN_ID]).fetchone()
            return None if row is None else row[0]
        row = conn.execute("SELECT ended_wall_ns FROM runs WHERE run_id = ?", [RUN_ID]).fetchone()
        return COMPLETED if row is not None and row[0] is not None else None
    finally:
        conn.close()

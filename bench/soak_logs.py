"""What the bot's event logs say, across every run of a soak: fills booked (and booked twice),
cancels and their answers, restarts, breaker trips, errors, and the last run's ledger.

Each run writes its own SQLite event log (``events``: kind, cid, market, token, JSON payload). A
run killed with ``kill -9`` keeps what its writer had committed. Fill ids are the venue's (trade
id, or trade id:order id for a maker leg), so they can be compared across runs.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Collection, Iterator

import attrs

from mmbot.config import VenueConfig

COUNTED = ("restart", "breaker_trip", "error", "frame_malformed", "late_fill", "correction", "outcome_unknown",
           "reject", "user_gap", "user_catch_up", "feed_down", "resolution", "market_listed", "submit")
# a cancel is answered when its order ends, the venue refuses it, or the venue refused the order
ANSWERS = ("order_done", "cancel_rejected", "reject")
# a cancel unconfirmed this long is one the gateway should have escalated (cancel-by-market, then all)
LATE_CANCEL_NS = VenueConfig().cancel_deadline_s * 1_000_000_000


@attrs.define
class RunLog:
    """One run's event log and how it ended."""

    number: int
    db: Path
    killed: bool  # kill -9 (False: stopped with SIGINT, or still running)


def rows(db: Path, kinds: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, payload) of the rows of ``kinds``, in log order."""
    for kind, _, payload in timed_rows(db, kinds):
        yield kind, payload


def timed_rows(db: Path, kinds: tuple[str, ...]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(kind, the run's clock in ns, payload) of the rows of ``kinds``, in log order."""
    if not db.exists():
        return
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(kinds))
        for kind, ts_ns, payload in connection.execute(
                f"SELECT kind, ts_ns, payload FROM events WHERE kind IN ({marks}) ORDER BY seq", kinds):
            yield kind, ts_ns, json.loads(payload) if payload else {}
    except sqlite3.DatabaseError:  # a log that never got its schema (killed at once)
        return
    finally:
        connection.close()


def known_tokens(db: Path) -> set[str]:
    """Every token a run's log names: in a row's token column, a listing, or its final ledger."""
    if not db.exists():
        return set()
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        found = {t for (t,) in connection.execute("SELECT DISTINCT token FROM events") if t}
    except sqlite3.DatabaseError:
        return set()
    finally:
        connection.close()
    for _, payload in rows(db, ("market_listed", "run_end")):
        found.update(payload.get("tokens", ()))
        found.update(payload.get("positions", {}))
    return found


def run_end(db: Path) -> dict[str, Any] | None:
    """The last ``run_end`` row's payload: the ledger when the run stopped, or None."""
    found = None
    for _, payload in rows(db, ("run_end",)):
        found = payload
    return found


def booked_per_run(db: Path) -> tuple[dict[str, int], int, int]:
    """({fill id: shares booked in this run}, fill rows, fill rows whose id this run had booked
    already).
    A fill row books its size; a correction naming a fill id adds its size delta (an adopted leg
    books it, a failed trade's reversal takes it back)."""
    booked: dict[str, int] = defaultdict(int)
    repeated = 0
    filled: set[str] = set()
    for kind, payload in rows(db, ("fill", "correction")):
        fill_id = payload.get("fill_id") or ""
        if kind == "fill":
            repeated += fill_id in filled
            filled.add(fill_id)
            booked[fill_id] += payload["size"]
        elif fill_id:
            booked[fill_id] += payload["size_delta"]
    return booked, len(filled) + repeated, repeated


def unanswered_cancels(db: Path) -> tuple[int, list[str]]:
    """(cancel rows, orders cancelled with no answer in the run): no order_done, cancel_rejected
    or reject for the order, and no fill (or adopted leg) completing it."""
    sent, waits = cancel_waits(db)
    return sent, [order_id for order_id, wait in waits.items() if wait is None]


def cancel_waits(db: Path) -> tuple[int, dict[str, int | None]]:
    """(cancel rows, {order cancelled: ns from its first cancel to its answer, None if none came})."""
    sizes: dict[str, int] = {}
    filled: dict[str, int] = defaultdict(int)
    cancels = 0
    asked: dict[str, int] = {}
    waits: dict[str, int | None] = {}
    for kind, ts_ns, payload in timed_rows(db, ("submit", "fill", "correction", "cancel") + ANSWERS):
        order_id = payload.get("order_id", "")
        if kind == "submit":
            sizes[order_id] = payload["size"]
            continue
        if kind == "cancel":
            cancels += 1
            if order_id not in waits:
                asked[order_id], waits[order_id] = ts_ns, None
            continue
        if kind in ("fill", "correction"):
            filled[order_id] += payload["size" if kind == "fill" else "size_delta"]
            if not (order_id in sizes and filled[order_id] >= sizes[order_id]):
                continue
        if order_id in waits and waits[order_id] is None:
            waits[order_id] = ts_ns - asked[order_id]
    return cancels, waits


def unended_orders(db: Path) -> list[str]:
    """Orders submitted in the run that never ended in it: no order_done, reject or completing
    fill (a cancel refused as "already canceled or matched" ends nothing)."""
    sizes: dict[str, int] = {}
    filled: dict[str, int] = defaultdict(int)
    ended: set[str] = set()
    for kind, payload in rows(db, ("submit", "fill", "correction", "order_done", "reject")):
        order_id = payload.get("order_id", "")
        if kind == "submit":
            sizes[order_id] = payload["size"]
        elif kind in ("fill", "correction"):
            filled[order_id] += payload["size" if kind == "fill" else "size_delta"]
            if order_id in sizes and (filled[order_id] >= sizes[order_id] or payload.get("short_of_size")):
                ended.add(order_id)  # filled, or a market BUY's budget spent short of its size
        else:
            ended.add(order_id)
    return [o for o in sizes if o not in ended]


def summarise(runs: list[RunLog]) -> dict[str, Any]:
    """The log figures of a soak: every run's counts added up; double counting across runs;
    unanswered cancels of the runs that were stopped cleanly."""
    counts: Counter[str] = Counter()
    fills = repeated = cancels = 0
    runs_booking: dict[str, int] = defaultdict(int)  # fill id -> runs that booked it
    unanswered: list[str] = []
    waits: list[int] = []
    unended: list[str] = []
    for run in runs:
        for kind, _ in rows(run.db, COUNTED):
            counts[kind] += 1
        booked, fill_rows, twice = booked_per_run(run.db)
        fills += fill_rows
        repeated += twice
        for fill_id, shares in booked.items():
            if fill_id and shares > 0:
                runs_booking[fill_id] += 1
        sent, run_waits = cancel_waits(run.db)
        cancels += sent
        waits += [w for w in run_waits.values() if w is not None]
        if not run.killed:
            unanswered += [f"run{run.number}:{o}" for o, w in run_waits.items() if w is None]
            unended += [f"run{run.number}:{o}" for o in unended_orders(run.db)]
    return {
        "fills_booked": fills,
        "fills_adopted": sum(1 for r in runs for k, p in rows(r.db, ("correction",)) if p.get("size_delta", 0) > 0),
        "double_counted": sum(1 for n in runs_booking.values() if n > 1) + repeated,
        "double_counted_across_runs": sum(1 for n in runs_booking.values() if n > 1),
        "cancels_sent": cancels,
        "cancels_unanswered": len(unanswered),
        "cancels_unanswered_examples": unanswered[:5],
        "orders_never_ended": len(unended),
        "orders_never_ended_examples": unended[:5],
        "cancel_answer_ms": _percentiles(waits),
        "cancels_answered_late": sum(1 for w in waits if w > LATE_CANCEL_NS),
        "restarts": counts["restart"],
        "breaker_trips": counts["breaker_trip"],
        "errors": counts["error"],
        "log_counts": {k: counts[k] for k in COUNTED if k not in ("restart", "breaker_trip", "error")},
    }


def _percentiles(waits_ns: list[int]) -> dict[str, int] | None:
    if not waits_ns:
        return None
    ordered = sorted(waits_ns)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] // 1_000_000  # noqa: E731
    return {"p50": at(0.5), "p99": at(0.99), "max": ordered[-1] // 1_000_000}


def compare_ledger(end: dict[str, Any] | None, cash: int, positions: dict[str, int],
                   known: Collection[str] = ()) -> dict[str, Any]:
    """The last run's ledger (its ``run_end`` row) against the venue's account: cash and every
    token, exactly. ``known``: the tokens the last run's log names; a token held at the venue that
    the run never heard of is counted apart (shares of markets resolved before it started)."""
    if end is None:
        return {"ledger_equals_venue": False, "ledger_note": "the last run wrote no run_end row"}
    ledger = {t: n for t, n in end.get("positions", {}).items() if n}
    differ = sorted(t for t in set(ledger) | set(positions) if ledger.get(t, 0) != positions.get(t, 0))
    return {
        "ledger_equals_venue": end["cash"] == cash and not differ,
        "cash_ledger": end["cash"],
        "cash_venue": cash,
        "cash_diff": end["cash"] - cash,
        "tokens_ledger": len(ledger),
        "tokens_venue": len(positions),
        "tokens_differing": len(differ),
        "tokens_only_at_venue": sum(1 for t in differ if t not in ledger),
        "tokens_unknown_to_last_run": sum(1 for t in differ if t not in known and t not in ledger),
        "tokens_differing_examples": [  # those the last run knew first
            {"token": t[:12] + "…", "ledger": ledger.get(t, 0), "venue": positions.get(t, 0)}
            for t in sorted(differ, key=lambda t: t not in known and t not in ledger)[:5]
        ],
    }

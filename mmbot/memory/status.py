"""A running (or finished, or killed) run's state, read from its event log while it is written.

The log is in WAL mode, so a reader sees every committed batch without disturbing the writer.
``status(db, now_wall_ns)`` is what ``mmbot status DB`` shows: how the run is doing now, not its
history (``mmbot report`` is the history). Money, prices and sizes are integer micro-units here;
``status_view`` turns them into decimals and tables.

The verdict: ``stopped cleanly`` or ``failed: <reason>`` once the run closed its log
(``runs.outcome``); before that ``running`` while its last row is younger than three PnL
intervals (a run on a live feed writes a ``pnl`` row every ``[log] pnl_interval_s``; the interval
is read from the spacing of those rows, 5 s when there are too few) and ``stale`` after that:
killed or hung. Ages compare the rows' wall times with ``now_wall_ns``: the same machine's clock.
"""

from __future__ import annotations

import json
from typing import Any

from mmbot.memory.log import COMPLETED, run_outcome
from mmbot.memory.names import Names, read_names
from mmbot.memory.performance import market_books
from mmbot.memory.query import Database, Projection, open_database, project
from mmbot.model import notional_down

NS_PER_S = 1_000_000_000
DEFAULT_PNL_INTERVAL_NS = 5 * NS_PER_S
STALE_INTERVALS = 3
_NOT_USED_USER = ("paper", "replay")  # modes without a user channel


def status(db: Database, now_wall_ns: int | None = None, *, stale_after_ns: int | None = None) -> dict[str, Any]:
    """The run now. ``now_wall_ns`` None: judged as of its last row (for tests and finished logs)."""
    database = open_database(db)
    run = database.execute("SELECT mode, started_wall_ns, ended_wall_ns FROM runs LIMIT 1").fetchone()
    last = database.execute("SELECT seq, ts_ns, wall_ns FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    last_wall = last[2] if last else (run[1] if run else 0)
    now = last_wall if now_wall_ns is None else now_wall_ns
    outcome = run_outcome(db) if isinstance(db, str) or hasattr(db, "__fspath__") else _outcome(database)
    interval = pnl_interval_ns(database)
    stale_after = stale_after_ns if stale_after_ns is not None else STALE_INTERVALS * interval
    age = max(now - last_wall, 0)
    if outcome == COMPLETED:
        verdict = "stopped cleanly"
    elif outcome:
        verdict = outcome
    else:
        verdict = "running" if age <= stale_after else "stale"
    reference = now if verdict in ("running",) else last_wall  # orders' ages: now, or at the log's end
    pnl = _last(database, "kind IN ('pnl', 'run_end')")
    bus = _last(database, "kind = 'bus_stats'") or {}
    names = read_names(database)
    placed = project(database)
    marks = {t: m for t, m in ((pnl or {}).get("marks") or {}).items() if isinstance(m, int)}
    books = market_books(database, names.token_market)
    counts = dict(database.execute(
        "SELECT kind, COUNT(*) FROM events WHERE kind IN ('fill', 'error', 'feed_gap', 'frame_malformed',"
        " 'breaker_trip', 'restart', 'reject', 'dry_run_order') GROUP BY kind"
    ).fetchall())
    mode = run[0] if run else None
    return {
        "mode": mode,
        "finished": bool(run and run[2]),
        "outcome": outcome,
        "verdict": verdict,
        "events": last[0] if last else 0,
        "last_event_ns": last[1] if last else None,
        "last_event_wall_ns": last_wall,
        "now_wall_ns": now,
        "age_ns": age,
        "stale_after_ns": stale_after,
        "frames": bus.get("frames"),
        "feeds": feeds(database),
        "user_channel": user_channel(database, mode),
        "open_orders": len(placed.open_orders),
        "orders": open_order_rows(database, placed, names, reference),
        "positions": placed.positions,
        "holdings": holdings(placed, books, names, marks),
        "markets": market_rows(books, names, marks),
        "cash": placed.cash if _cash_moved_since_pnl(database) else (pnl or {}).get("cash", placed.cash),
        "reserved": (pnl or {}).get("reserved"),
        "fees": (pnl or {}).get("fees"),
        "realised": (pnl or {}).get("realised"),
        "unrealised": (pnl or {}).get("unrealised"),
        "pnl_at_ns": _last_ts(database, "kind IN ('pnl', 'run_end')"),
        "counts": counts,
        "problems": problems(placed),
        "names_from": names.source,
    }


def _cash_moved_since_pnl(database: Any) -> bool:
    """Whether a fill, merge, resolution or correction came after the last PnL row (its cash is newer)."""
    moved, pnl = database.execute(
        "SELECT (SELECT MAX(seq) FROM events WHERE kind IN ('fill', 'merge', 'resolution', 'correction')),"
        " (SELECT MAX(seq) FROM events WHERE kind IN ('pnl', 'run_end'))"
    ).fetchone()
    return moved is not None and (pnl is None or moved > pnl)


def _outcome(database: Any) -> str | None:
    row = database.execute("SELECT outcome, ended_wall_ns FROM runs LIMIT 1").fetchone()
    return None if row is None else row[0] or (COMPLETED if row[1] else None)


def pnl_interval_ns(database: Any) -> int:
    """The spacing of the run's last ``pnl`` rows in wall time (their median), or 5 s."""
    walls = [w for (w,) in database.execute("SELECT wall_ns FROM events WHERE kind = 'pnl' ORDER BY seq DESC LIMIT 11")]
    gaps = sorted(a - b for a, b in zip(walls, walls[1:]) if a > b)
    return gaps[len(gaps) // 2] if len(gaps) >= 2 else DEFAULT_PNL_INTERVAL_NS


def feeds(database: Any) -> dict[str, dict[str, Any]]:
    """Per market-channel connection: up or down, since when (wall ns), why, sessions, assets."""
    found: dict[str, dict[str, Any]] = {}
    for kind, wall_ns, payload in database.execute(
        "SELECT kind, wall_ns, payload FROM events WHERE kind IN ('feed_up', 'feed_down') ORDER BY seq"
    ):
        p = json.loads(payload)
        feed = found.setdefault(str(p.get("connection", "?")), {
            "up": False, "since_wall_ns": wall_ns, "sessions": 0, "assets": None, "last_down": None, "downs": 0})
        if kind == "feed_up":
            feed.update(up=True, since_wall_ns=wall_ns, sessions=p.get("session", feed["sessions"]),
                        assets=p.get("assets"))
        else:
            if feed["up"] or feed["downs"] == 0:
                feed["since_wall_ns"] = wall_ns  # down since the first loss after being up
            feed.update(up=False, last_down=str(p.get("reason", "?")), downs=feed["downs"] + 1)
    return dict(sorted(found.items()))


def user_channel(database: Any, mode: str | None) -> dict[str, Any]:
    """The user channel (signed trading): up, down since when and why, or not used."""
    if mode is None or mode.split("-")[0] in _NOT_USED_USER:
        return {"state": "not used", "since_wall_ns": None, "reason": None, "gaps": 0}
    state: dict[str, Any] = {"state": "up", "since_wall_ns": None, "reason": None, "gaps": 0}
    for kind, wall_ns, payload in database.execute(
        "SELECT kind, wall_ns, payload FROM events WHERE kind IN ('user_gap', 'user_catch_up') ORDER BY seq"
    ):
        if kind == "user_gap":
            state.update(state="down", since_wall_ns=wall_ns, reason=str(json.loads(payload).get("reason", "?")),
                         gaps=state["gaps"] + 1)
        else:
            state.update(state="up", since_wall_ns=wall_ns)
    return state


def open_order_rows(database: Any, placed: Projection, names: Names, reference_ns: int) -> list[dict[str, Any]]:
    """The open orders, oldest first, with what a person reads: market slug, outcome, age."""
    ids = sorted(placed.open_orders)
    submitted = dict(database.execute(
        "SELECT json_extract(payload, '$.order_id'), wall_ns FROM events WHERE kind = 'submit'"
        " AND json_extract(payload, '$.order_id') IN (SELECT value FROM json_each(?))", [json.dumps(ids)]
    ).fetchall()) if ids else {}
    rows = []
    for order_id, order in placed.open_orders.items():
        token = order["token"]
        market = order.get("market") or names.market_of(token)
        wall = submitted.get(order_id)
        rows.append({
            "order_id": order_id, "market": market, "slug": names.market_label(market), "token": token,
            "outcome": names.outcome(token), "side": order["side"], "price": order["price"], "size": order["size"],
            "filled": order["filled"], "status": order["status"], "tif": order.get("tif"),
            "age_ns": None if wall is None else max(reference_ns - wall, 0),
        })  # fmt: skip
    return sorted(rows, key=lambda r: -(r["age_ns"] or 0))


def holdings(placed: Projection, books: dict[str, Any], names: Names, marks: dict[str, int]) -> list[dict[str, Any]]:
    """Positions by market slug and outcome: shares, cost basis (average cost), mark, marked PnL."""
    rows = []
    for token, shares in placed.positions.items():
        market = names.market_of(token)
        held = books[market].holdings.get(token) if market in books else None
        cost = held.cost if held is not None and held.shares == shares else None
        mark = marks.get(token)
        value = None if mark is None else notional_down(mark, shares)
        rows.append({
            "market": market, "slug": names.market_label(market), "token": token, "outcome": names.outcome(token),
            "shares": shares, "cost": cost, "mark": mark, "value": value,
            "marked_pnl": None if value is None or cost is None else value - cost,
        })  # fmt: skip
    return sorted(rows, key=lambda r: (r["slug"], r["outcome"]))


def market_rows(books: dict[str, Any], names: Names, marks: dict[str, int]) -> list[dict[str, Any]]:
    """Per market: fills, volume, fees, realised, marked (held shares at their marks, less cost), PnL."""
    rows = []
    for market, book in books.items():
        marked = book.marked(marks)
        rows.append({
            "market": market, "slug": names.market_label(market),
            "outcomes": [names.outcome(t) for t in names.markets[market].tokens] if market in names.markets else [],
            "fills": book.fills, "volume": book.volume, "fees": book.fees, "realised": book.realised,
            "marked": marked, "pnl": None if marked is None else book.realised + marked,
        })  # fmt: skip
    return sorted(rows, key=lambda r: r["slug"])


_SHOWN = 5  # unplaced rows named in the problem line; the rest are counted


def problems(placed: Projection) -> list[str]:
    """What makes the figures above doubtful, one line each (none: an empty list)."""
    if not placed.unplaced:
        return []
    count = len(placed.unplaced)
    named = ", ".join(f"{kind} #{seq}" for kind, seq in placed.unplaced[:_SHOWN])
    more = f" and {count - _SHOWN} more" if count > _SHOWN else ""
    return [f"{count} row{'s' if count > 1 else ''} the projection could not place: {named}{more}"]


def _last(database: Any, where: str) -> dict[str, Any] | None:
    row = database.execute(f"SELECT payload FROM events WHERE {where} ORDER BY seq DESC LIMIT 1").fetchone()
    return json.loads(row[0]) if row else None


def _last_ts(database: Any, where: str) -> int | None:
    row = database.execute(f"SELECT wall_ns FROM events WHERE {where} ORDER BY seq DESC LIMIT 1").fetchone()
    return row[0] if row else None

"""A running (or finished) run's state, read from its event log while it is being written.

The log is in WAL mode, so a reader sees every committed batch without disturbing the writer.
``status(db)`` is what ``mmbot status DB`` prints: how the run is doing now, not its history
(``mmbot report`` is the history).
"""

from __future__ import annotations

import json
from typing import Any

from mmbot.memory.query import Database, Projection, open_database, project


def status(db: Database) -> dict[str, Any]:
    database = open_database(db)
    run = database.execute("SELECT mode, started_wall_ns, ended_wall_ns FROM runs LIMIT 1").fetchone()
    last = database.execute("SELECT seq, ts_ns, wall_ns FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    pnl = _last(database, "kind IN ('pnl', 'run_end')")
    bus = _last(database, "kind = 'bus_stats'") or {}
    feeds: dict[str, dict[str, Any]] = {}
    for kind, payload in database.execute(
        "SELECT kind, payload FROM events WHERE kind IN ('feed_up', 'feed_down') ORDER BY seq"
    ):
        p = json.loads(payload)
        feed = feeds.setdefault(p["connection"], {"up": False, "sessions": 0, "last_down": None})
        if kind == "feed_up":
            feed.update(up=True, sessions=p["session"], assets=p["assets"])
        else:
            feed.update(up=False, last_down=p["reason"])
    placed = project(database)
    counts = dict(database.execute(
        "SELECT kind, COUNT(*) FROM events WHERE kind IN ('fill', 'error', 'feed_gap', 'frame_malformed',"
        " 'breaker_trip', 'restart') GROUP BY kind"
    ).fetchall())
    return {
        "mode": run[0] if run else None,
        "finished": bool(run and run[2]),
        "events": last[0] if last else 0,
        "last_event_ns": last[1] if last else None,
        "frames": bus.get("frames"),
        "feeds": feeds,
        "open_orders": len(placed.open_orders),
        "positions": placed.positions,
        "cash": (pnl or {}).get("cash", placed.cash),
        "realised": (pnl or {}).get("realised"),
        "unrealised": (pnl or {}).get("unrealised"),
        "counts": counts,
        "problems": problems(placed),
    }


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

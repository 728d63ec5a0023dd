"""The run report: what happened, in figures, read back from the event log (DESIGN §9).

``summary`` returns plain data (ints in micro-units, dicts) so tests and tools can use it;
``format_summary`` turns it into the text ``mmbot report`` prints.
"""

from __future__ import annotations

import json
from typing import Any

from mmbot.memory.log import COMPLETED
from mmbot.memory.names import read_names
from mmbot.memory.performance import drawdown, liquidity_split, market_books, pnl_series, starting_cash
from mmbot.memory.query import Database, digest, open_database
from mmbot.memory.status import market_rows
from mmbot.model import ONE, format_micro, notional

_LATENCY_PERCENTILES = (50, 99)


def _json(expression: str) -> str:
    return f"json_extract(payload, '$.{expression}')"


def _last_payload(database: Any, kind: str) -> dict[str, Any] | None:
    row = database.execute("SELECT payload FROM events WHERE kind = ? ORDER BY seq DESC LIMIT 1", [kind]).fetchone()
    return json.loads(row[0]) if row else None


def _count_by(database: Any, key: str, where: str) -> dict[str, int]:
    cursor = database.execute(f"SELECT {_json(key)}, COUNT(*) FROM events WHERE {where} GROUP BY 1 ORDER BY 1")
    return {str(value): count for value, count in cursor}


def _latency_us(samples_ns: list[int]) -> dict[str, int]:
    """Count, nearest-rank percentiles and maximum, in whole microseconds."""
    if not samples_ns:
        return {"count": 0}
    ordered = sorted(samples_ns)
    figures = {"count": len(ordered)}
    for pct in _LATENCY_PERCENTILES:
        rank = -(-pct * len(ordered) // 100)  # ceil without floats
        figures[f"p{pct}_us"] = ordered[rank - 1] // 1000
    figures["max_us"] = ordered[-1] // 1000
    return figures


def _fills(database: Any) -> dict[str, Any]:
    by_side: dict[str, dict[str, int]] = {}
    cursor = database.execute(
        f"SELECT {_json('side')}, {_json('price')}, {_json('size')}, {_json('fee')} FROM events WHERE kind = 'fill'"
    )
    for side, price, size, fee in cursor:
        figures = by_side.setdefault(side, {"count": 0, "shares": 0, "notional": 0, "fees": 0})
        figures["count"] += 1
        figures["shares"] += size
        figures["notional"] += notional(price, size)
        figures["fees"] += fee or 0
    totals = {key: sum(side[key] for side in by_side.values()) for key in ("count", "shares", "notional", "fees")}
    return {**totals, "by_side": dict(sorted(by_side.items()))}


def _latencies(database: Any, mode: str | None) -> dict[str, dict[str, int]]:
    """Decision latency (frame received -> intent) and acknowledgement latency (submit -> ack).

    A replay's log has the recording's times, in which a decision takes no time at all: its
    decision latency is left out rather than shown as 0 (``mmbot replay`` prints the real
    processing time beside the summary instead), and its acknowledgements are the paper venue's
    simulated latency."""
    received = _json("cause_recv_ns")
    decisions = [
        ts_ns - received_ns
        for ts_ns, received_ns in database.execute(
            f"SELECT ts_ns, {received} FROM events WHERE kind = 'intent' AND {received} IS NOT NULL"
        )
    ]
    submitted: dict[str, int] = {}
    acks = []
    for kind, ts_ns, order_id in database.execute(
        f"SELECT kind, ts_ns, {_json('order_id')} FROM events WHERE kind IN ('submit', 'ack') ORDER BY seq"
    ):
        if kind == "submit":
            submitted[order_id] = ts_ns
        elif order_id in submitted:
            acks.append(ts_ns - submitted.pop(order_id))
    if mode == "replay":
        return {"simulated ack": _latency_us(acks)}
    return {"decision": _latency_us(decisions), "ack": _latency_us(acks)}


def summary(db: Database) -> dict[str, Any]:
    """The run in figures. Money, prices and sizes are integer micro-units."""
    database = open_database(db)
    counts = dict(database.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind ORDER BY kind").fetchall())
    bus = _last_payload(database, "bus_stats") or {}
    slots = bus.get("slots", {})
    end = _last_payload(database, "run_end") or _last_payload(database, "pnl")
    pnl = None
    if end is not None:
        pnl = {key: end.get(key) for key in ("cash", "realised", "unrealised", "fees")}
        if isinstance(pnl["realised"], int) and isinstance(pnl["unrealised"], int):
            pnl["total"] = pnl["realised"] + pnl["unrealised"]
    run = database.execute("SELECT mode, outcome FROM runs LIMIT 1").fetchone() if database["runs"].exists() else None
    mode = run[0] if run else None
    outcome = run[1] if run else None
    series = pnl_series(database)
    worst, _ = drawdown([point.total for point in series])
    start = starting_cash(database, series)
    total = (pnl or {}).get("total")
    names = read_names(database)
    marks = (end or {}).get("marks") or {}
    return {
        "mode": mode,
        "outcome": outcome,
        "ended": ("cleanly" if outcome == COMPLETED else outcome if outcome
                  else "not cleanly: killed, or still running (no outcome in the log)"),
        "dry_run": bool(mode and mode.endswith("-dry-run")) or counts.get("dry_run_order", 0) > 0,
        "dry_run_orders": counts.get("dry_run_order", 0),
        "pnl_rows": len(series),
        "max_drawdown": worst,
        "starting_cash": start,
        "return_on_capital_ppm": (total * ONE // start) if isinstance(total, int) and start else None,
        "liquidity": liquidity_split(database),
        "markets": market_rows(market_books(database, names.token_market), names, marks),
        "rows": sum(counts.values()),
        "counts_by_kind": counts,
        "frames": bus.get("frames"),
        "malformed": bus.get("malformed", counts.get("frame_malformed", 0)),
        "book_updates": slots.get("updates", (end or {}).get("book_updates")),
        "drops": slots.get("dropped", (end or {}).get("drops")),
        "peak_backlog": {name: stream.get("peak_backlog") for name, stream in sorted(bus.get("streams", {}).items())},
        "intents_by_strategy": _count_by(database, "strategy", "kind = 'intent'"),
        "risk_rejections": _count_by(database, "reason", f"kind = 'risk_verdict' AND {_json('accepted')} = 0"),
        "orders_submitted": counts.get("submit", 0),
        "orders_by_strategy": _count_by(database, "strategy", "kind = 'submit'"),
        "fills_by_strategy": _count_by(database, "strategy", "kind = 'fill'"),
        "merges": counts.get("merge", 0),
        "resolutions": counts.get("resolution", 0),
        "errors": counts.get("error", 0),
        "restarts": counts.get("restart", 0),
        "breaker_trips": counts.get("breaker_trip", 0),
        "venue_rejections": _count_by(database, "reason", "kind = 'reject'"),
        "fills": _fills(database),
        "corrections": counts.get("correction", 0),
        "pnl": pnl,
        "positions": (end or {}).get("positions", {}),
        "marks": (end or {}).get("marks", {}),
        "latency": _latencies(database, mode),
        "digest": digest(database),
    }


def _money(value: Any) -> str:
    return format_micro(value) if isinstance(value, int) else "n/a"


def _count(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _table(title: str, figures: dict[str, Any], *, money: bool = False) -> list[str]:
    if not figures:
        return [f"{title}: none"]
    width = max(len(str(key)) for key in figures)
    show = _money if money else _count
    return [f"{title}:"] + [f"  {key!s:<{width}}  {show(value)}" for key, value in figures.items()]


def format_summary(report: dict[str, Any]) -> str:
    """Plain text for the terminal; money and shares as decimals."""
    fills = report["fills"]
    pnl = report["pnl"] or {}
    lines = [
        f"run           {report['mode'] or 'mode unknown'}, ended {report['ended']}",
        f"events        {report['rows']}",
        f"frames        {_count(report['frames'])} (malformed {report['malformed']})",
        f"book updates  {_count(report['book_updates'])} (dropped {_count(report['drops'])})",
        f"orders        {report['orders_submitted']} submitted, corrections {report['corrections']}"
        + (f" ({report['dry_run_orders']} signed, not sent: dry run)" if report["dry_run"] else ""),
        f"fills         {fills['count']}: {format_micro(fills['shares'])} shares,"
        f" notional {format_micro(fills['notional'])}, fees {format_micro(fills['fees'])}",
    ]
    for side, figures in fills["by_side"].items():
        lines.append(
            f"  {side:<4} {figures['count']}: {format_micro(figures['shares'])} shares,"
            f" notional {format_micro(figures['notional'])}"
        )
    lines.append(
        f"pnl           realised {_money(pnl.get('realised'))}, unrealised {_money(pnl.get('unrealised'))},"
        f" total {_money(pnl.get('total'))}, fees {_money(pnl.get('fees'))}, cash {_money(pnl.get('cash'))}"
    )
    lines.append(f"drawdown      {_money(report['max_drawdown'])} (max, total PnL), starting cash"
                 f" {_money(report['starting_cash'])}")
    lines += _table("positions (shares)", report["positions"], money=True)
    lines += _table("intents by strategy", report["intents_by_strategy"])
    lines += _table("risk rejections", report["risk_rejections"])
    lines += _table("venue rejections", report["venue_rejections"])
    lines += _table("peak stream backlog", report["peak_backlog"])
    for name, figures in report["latency"].items():
        lines.append(f"{name} latency  " + ", ".join(f"{key} {value}" for key, value in figures.items()))
    lines += _table("events by kind", report["counts_by_kind"])
    lines.append(f"digest        {report['digest']}")
    return "\n".join(lines)

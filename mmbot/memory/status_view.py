"""``mmbot status`` for eyes (rich tables) and for machines (``--json``).

Nothing here shows Python's ``None`` or a raw dict or list: a figure that is not known is "-",
money, prices and sizes are decimals (``format_micro``), times are UTC and ages are "1m 05s".

JSON (``status_json``): the same figures under the same names; money, prices and sizes as
decimal strings ("98.19", exact: parse them with ``decimal.Decimal``), counts as integers, wall
times as integer epoch nanoseconds (``*_wall_ns``) and ages as integer milliseconds (``*_ms``);
a figure that is not known is ``null``.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mmbot.memory.query import iso_time
from mmbot.model import format_micro

NS_PER_MS = 1_000_000
_MONEY = ("cash", "reserved", "fees", "realised", "unrealised")
_ORDER_MONEY = ("price", "size", "filled")
_HOLDING_MONEY = ("shares", "cost", "mark", "value", "marked_pnl")
_MARKET_MONEY = ("volume", "fees", "realised", "marked", "pnl")


def console() -> Console:
    """The terminal's width on a terminal; wide enough for every table when piped or captured."""
    return Console(width=None if sys.stdout.isatty() else 200)


def money(value: Any) -> str:
    return format_micro(value) if isinstance(value, int) and not isinstance(value, bool) else "-"


def duration(ns: int | None) -> str:
    """1h 02m, 3m 05s, 12.3s, 0.04s."""
    if ns is None:
        return "-"
    seconds, rest = divmod(max(ns, 0), 1_000_000_000)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds >= 10:
        return f"{seconds}s"
    return f"{seconds}.{rest // 10_000_000:02d}s"


def clock_time(wall_ns: int | None) -> str:
    """UTC time of day, to the second: 22:13:20Z."""
    return "-" if wall_ns is None else iso_time(wall_ns)[11:19] + "Z"


def _decimal(value: Any) -> str | None:
    return format_micro(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _ms(ns: Any) -> int | None:
    return ns // NS_PER_MS if isinstance(ns, int) else None


def status_json(now: dict[str, Any]) -> dict[str, Any]:
    """The figures as a stable JSON object (see the module's docstring for the units)."""
    return {
        "mode": now["mode"], "verdict": now["verdict"], "outcome": now["outcome"], "finished": now["finished"],
        "events": now["events"], "last_event_wall_ns": now["last_event_wall_ns"], "now_wall_ns": now["now_wall_ns"],
        "age_ms": _ms(now["age_ns"]), "stale_after_ms": _ms(now["stale_after_ns"]), "frames": now["frames"],
        **{key: _decimal(now[key]) for key in _MONEY},
        "feeds": {name: {"up": f["up"], "since_wall_ns": f["since_wall_ns"], "sessions": f["sessions"],
                         "assets": f["assets"], "last_down": f["last_down"], "downs": f["downs"]}
                  for name, f in now["feeds"].items()},
        "user_channel": dict(now["user_channel"]),
        "open_orders": [{**{k: v for k, v in o.items() if k != "age_ns"}, "age_ms": _ms(o["age_ns"]),
                         **{k: _decimal(o[k]) for k in _ORDER_MONEY}} for o in now["orders"]],
        "positions": [{**h, **{k: _decimal(h[k]) for k in _HOLDING_MONEY}} for h in now["holdings"]],
        "markets": [{**m, **{k: _decimal(m[k]) for k in _MARKET_MONEY}} for m in now["markets"]],
        "counts": dict(now["counts"]),
        "problems": list(now["problems"]),
    }  # fmt: skip


def _verdict_style(verdict: str) -> str:
    return {"running": "bold green", "stopped cleanly": "bold"}.get(verdict, "bold red")


def render_status(now: dict[str, Any], *, title: str) -> Group:
    """The summary table, then open orders, positions, per-market PnL, feeds."""
    summary = Table(title=title, show_header=False, title_justify="left")
    summary.add_column("what", style="bold")
    summary.add_column("figures")
    summary.add_row("run", Text.assemble((now["verdict"], _verdict_style(now["verdict"])),
                                         f"  ({now['mode'] or 'mode unknown'})"))
    summary.add_row("last event", f"{duration(now['age_ns'])} ago, at {clock_time(now['last_event_wall_ns'])}"
                    f" (stale after {duration(now['stale_after_ns'])} without a row)")
    summary.add_row("events / frames", f"{now['events']} / {now['frames'] if now['frames'] is not None else '-'}")
    summary.add_row("cash / reserved / fees", " / ".join(money(now[k]) for k in ("cash", "reserved", "fees")))
    total = (now["realised"] + now["unrealised"]
             if isinstance(now["realised"], int) and isinstance(now["unrealised"], int) else None)
    summary.add_row("PnL realised / marked / total",
                    " / ".join(money(v) for v in (now["realised"], now["unrealised"], total))
                    + (f"  (as of {clock_time(now['pnl_at_ns'])})" if now["pnl_at_ns"] else "  (no PnL row yet)"))
    for name, feed in now["feeds"].items():
        state = (f"up since {clock_time(feed['since_wall_ns'])}, {feed['assets'] if feed['assets'] is not None else '-'}"
                 f" assets, session {feed['sessions']}" if feed["up"] else
                 f"down since {clock_time(feed['since_wall_ns'])}: {feed['last_down']}")
        if feed["downs"] and feed["up"]:
            state += f" ({feed['downs']} loss{'es' if feed['downs'] > 1 else ''} before)"
        summary.add_row(f"feed {escape(name)}", escape(state), style=None if feed["up"] else "red")
    if not now["feeds"]:
        summary.add_row("feeds", "none in the log (replay, or not connected yet)")
    user = now["user_channel"]
    user_text = {"not used": "not used in this mode",
                 "up": "up" + (f" since {clock_time(user['since_wall_ns'])}" if user["since_wall_ns"] else ""),
                 "down": f"down since {clock_time(user['since_wall_ns'])}: {user['reason']}"}[user["state"]]
    summary.add_row("user channel", escape(user_text), style="red" if user["state"] == "down" else None)
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(now["counts"].items()))
    summary.add_row("counts", counts or "none")
    for problem in now["problems"]:  # what makes the figures above doubtful
        summary.add_row("problem", escape(problem), style="red")

    orders = Table(title=f"open orders: {len(now['orders'])}", title_justify="left")
    for column in ("order", "market", "outcome", "side", "price", "size", "filled", "status", "age"):
        orders.add_column(column, justify="right" if column in ("price", "size", "filled", "age") else "left")
    for o in now["orders"]:
        orders.add_row(escape(o["order_id"]), escape(o["slug"]), escape(o["outcome"]), o["side"], money(o["price"]),
                       money(o["size"]), money(o["filled"]), o["status"], duration(o["age_ns"]))

    positions = Table(title=f"positions: {len(now['holdings'])}", title_justify="left")
    for column in ("market", "outcome", "shares", "cost", "mark", "value", "marked PnL"):
        positions.add_column(column, justify="left" if column in ("market", "outcome") else "right")
    for h in now["holdings"]:
        positions.add_row(escape(h["slug"]), escape(h["outcome"]), *(money(h[k]) for k in _HOLDING_MONEY))

    markets = Table(title="PnL by market", title_justify="left")
    for column in ("market", "fills", "volume", "fees", "realised", "marked", "PnL"):
        markets.add_column(column, justify="left" if column == "market" else "right")
    for m in now["markets"]:
        markets.add_row(escape(m["slug"]), str(m["fills"]), *(money(m[k]) for k in _MARKET_MONEY))
    parts: list[Any] = [summary, orders if now["orders"] else Text("open orders: none")]
    parts.append(positions if now["holdings"] else Text("positions: none"))
    parts.append(markets if now["markets"] else Text("PnL by market: no fills yet"))
    return Group(*parts)

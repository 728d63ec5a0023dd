"""The words and numbers of the terminal view and the plain log lines, as pure functions of
snapshot values: amounts in human units (``format_micro``), ``-`` for what is missing (never
``None``), times of day as ``hh:mm:ss`` in a given time zone (local when none is given) and
durations as ``4m05s``. Shared by ``terminal`` (rich) and ``terminal_plain`` (plain text)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from mmbot.cockpit.snapshot import MarketRow, Quote, Snapshot
from mmbot.cockpit.watch import NOTICE_LEVELS, notice_text
from mmbot.model import format_micro

MISSING = "-"
_NS_PER_S = 1_000_000_000


def money(value: int | None) -> str:
    """Micro-units as an exact decimal, or ``-``."""
    return MISSING if value is None else format_micro(value)


def clock_text(wall_ns: int | None, tz: tzinfo | None = None) -> str:
    """A wall time (Unix ns) as ``hh:mm:ss`` in ``tz`` (the machine's local zone when None);
    ``-`` for an unknown (None or 0) time."""
    if not wall_ns:
        return MISSING
    return datetime.fromtimestamp(wall_ns // _NS_PER_S, tz).strftime("%H:%M:%S")


def duration_text(ns: int | None) -> str:
    """A non-negative duration, coarsely: ``42s``, ``4m05s``, ``2h03m``, ``3d04h``; ``-`` when
    unknown or negative (two clocks that disagree)."""
    if ns is None or ns < 0:
        return MISSING
    s = ns // _NS_PER_S
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


def counts_text(counts: dict[str, int], *, empty: str = "none") -> str:
    """``live 3, matched 1`` — a tally in its given order, or ``empty``."""
    return ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else empty


def quote_text(q: Quote) -> str:
    """One of our orders: side, price × what is left of its size."""
    return f"{q.side} {format_micro(q.price)}×{format_micro(q.size - q.filled)}"


def flags(snap: Snapshot) -> list[str]:
    """What keeps the run from quoting, loudest first; empty while it quotes."""
    found = []
    if snap.halted:
        found.append("HALTED")
    if snap.paused:
        found.append("PAUSED")
    if not snap.gate_open:
        found.append("gate closed")
    if snap.tripped:
        found.append(f"breakers tripped: {', '.join(snap.tripped)}")
    return found


def active(row: MarketRow) -> bool:
    return row.fills > 0 or any(t.position or t.quotes for t in row.tokens)


def by_activity(markets: tuple[MarketRow, ...]) -> list[MarketRow]:
    """Markets with inventory, quotes or fills first, each group in the snapshot's order."""
    return [m for m in markets if active(m)] + [m for m in markets if not active(m)]


def open_orders(snap: Snapshot) -> int:
    return sum(snap.orders_by_state.values())


def summary_line(snap: Snapshot, tz: tzinfo | None = None) -> str:
    """The periodic one-liner of the plain log."""
    parts = [
        clock_text(snap.wall_ns, tz), "SUMMARY",
        (f"pnl {format_micro(snap.pnl)} (realised {format_micro(snap.realised)},"
         f" marked {format_micro(snap.unrealised)}, fees {format_micro(snap.fees)})"),
        f"cash {format_micro(snap.cash)} reserved {format_micro(snap.reserved)}",
        f"fills {snap.fills} (maker {snap.maker_fills}, taker {snap.taker_fills})",
        f"open orders {open_orders(snap)}",
        f"markets {max(snap.markets_total, len(snap.markets))}",
    ]
    down = [f.name for f in snap.feeds if not f.up]
    if down:
        parts.append(f"down: {', '.join(down)}")
    parts.extend(flags(snap))
    return " ".join(parts)


def notice_of(kind: str, payload: dict[str, Any] | None) -> tuple[str, str] | None:
    """(level, text) of a row the operator is told about as it happens, or None. The same kinds
    and words as the cockpit's notices (``watch``), the first connection of a feed included."""
    level = NOTICE_LEVELS.get(kind)
    if level is None:
        return None
    return level, notice_text(kind, payload or {})

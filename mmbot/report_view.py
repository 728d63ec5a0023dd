"""The closing summary of `mmbot replay`, `mmbot run` and `mmbot report`, as rich tables on the
terminal, and as JSON (``report --json``: money, prices and sizes as decimal strings)."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mmbot.model import format_micro

_MARKET_MONEY = ("volume", "fees", "realised", "marked", "pnl")


def _money(value: Any) -> str:
    return format_micro(value) if isinstance(value, int) and not isinstance(value, bool) else "-"


def _pairs(figures: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in figures.items()) or "none"


def percent(ppm: Any) -> str:
    """A fraction in millionths as a percentage: 12_345 -> '1.2345%'."""
    return f"{format_micro(ppm * 100)}%" if isinstance(ppm, int) else "-"


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 200)


def print_summary(report: dict[str, Any], *, title: str, console: Console | None = None) -> None:
    console = console or _console()
    fills = report["fills"]
    pnl = report["pnl"] or {}
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("figures")
    ended = report["ended"]
    table.add_row("run", escape(f"{report['mode'] or 'mode unknown'}, ended {ended}"),
                  style=None if ended == "cleanly" else "bold red")
    table.add_row("events", str(report["rows"]))
    table.add_row("frames", f"{_count(report['frames'])} (malformed {report['malformed']})")
    table.add_row("book updates", f"{_count(report['book_updates'])} (dropped unread: {_count(report['drops'])})")
    table.add_row("intents", _pairs(report["intents_by_strategy"]))
    table.add_row("risk rejections", _pairs(report["risk_rejections"]))
    if report["dry_run"]:
        table.add_row("orders", f"{report['dry_run_orders']} signed, not sent (dry run):"
                                f" {_pairs(report['orders_by_strategy'])}")
    else:
        table.add_row("orders", f"{report['orders_submitted']}: {_pairs(report['orders_by_strategy'])}")
    table.add_row("venue rejections", _pairs(report["venue_rejections"]))
    table.add_row(
        "fills",
        f"{fills['count']} ({_pairs(report['fills_by_strategy'])}): {format_micro(fills['shares'])} shares,"
        f" notional {format_micro(fills['notional'])}",
    )
    table.add_row("maker / taker", " / ".join(
        f"{liquidity.lower()} {f['count']} fills, {format_micro(f['shares'])} shares, fees {format_micro(f['fees'])}"
        for liquidity, f in report["liquidity"].items()) or "no fills")
    table.add_row("fees", _money(fills["fees"]))
    table.add_row("merges / resolutions", f"{report['merges']} / {report['resolutions']}")
    table.add_row(
        "errors / restarts / breaker trips", f"{report['errors']} / {report['restarts']} / {report['breaker_trips']}"
    )
    table.add_row("realised PnL", _money(pnl.get("realised")))
    table.add_row("mark-to-market PnL", _money(pnl.get("unrealised")))
    table.add_row("total PnL", _money(pnl.get("total")))
    table.add_row("starting cash / cash", f"{_money(report['starting_cash'])} / {_money(pnl.get('cash'))}")
    table.add_row("return on capital", percent(report["return_on_capital_ppm"]))
    table.add_row("max drawdown", f"{_money(report['max_drawdown'])} (total PnL, peak to trough over"
                                  f" {report['pnl_rows']} PnL rows)")
    for name, figures in report["latency"].items():
        table.add_row(f"{name} latency (µs)", _pairs(figures))
    if "processing" in report:  # measured by the command that ran it, not in the log
        table.add_row("processing per frame (real time, µs)", _pairs(report["processing"]))
    table.add_row("digest", report["digest"])
    console.print(table)
    if report["markets"]:
        console.print(market_table(report["markets"]))


def market_table(markets: list[dict[str, Any]]) -> Table:
    table = Table(title="by market", title_justify="left")
    for column in ("market", "outcomes", "fills", "volume", "fees", "realised", "marked", "PnL"):
        table.add_column(column, justify="left" if column in ("market", "outcomes") else "right")
    for m in markets:
        table.add_row(escape(m["slug"]), escape(" / ".join(m["outcomes"]) or "-"), str(m["fills"]),
                      *(_money(m[key]) for key in _MARKET_MONEY))
    return table


def _count(value: Any) -> str:
    return "-" if value is None else str(value)


def _decimal(value: Any) -> str | None:
    return format_micro(value) if isinstance(value, int) and not isinstance(value, bool) else None


def summary_json(report: dict[str, Any]) -> dict[str, Any]:
    """``summary``'s figures for machines: money, prices and sizes as decimal strings, counts as
    integers, a figure that is not known as null; the return on capital as a percentage string."""
    fills = report["fills"]
    return {
        **{key: report[key] for key in (
            "mode", "outcome", "ended", "dry_run", "dry_run_orders", "pnl_rows", "rows", "counts_by_kind", "frames",
            "malformed", "book_updates", "drops", "peak_backlog", "intents_by_strategy", "risk_rejections",
            "orders_submitted", "orders_by_strategy", "fills_by_strategy", "merges", "resolutions", "errors",
            "restarts", "breaker_trips", "venue_rejections", "corrections", "latency", "digest")},
        "fills": {"count": fills["count"], "shares": _decimal(fills["shares"]), "notional": _decimal(fills["notional"]),
                  "fees": _decimal(fills["fees"]),
                  "by_side": {side: {"count": f["count"], **{k: _decimal(f[k]) for k in ("shares", "notional", "fees")}}
                              for side, f in fills["by_side"].items()}},
        "liquidity": {name: {"count": f["count"], "shares": _decimal(f["shares"]), "fees": _decimal(f["fees"])}
                      for name, f in report["liquidity"].items()},
        "pnl": {key: _decimal(value) for key, value in (report["pnl"] or {}).items()},
        "starting_cash": _decimal(report["starting_cash"]),
        "return_on_capital": percent(report["return_on_capital_ppm"]) if report["return_on_capital_ppm"] is not None
        else None,
        "max_drawdown": _decimal(report["max_drawdown"]),
        "positions": {token: _decimal(shares) for token, shares in report["positions"].items()},
        "marks": {token: _decimal(mark) for token, mark in report["marks"].items()},
        "markets": [{**m, **{key: _decimal(m[key]) for key in _MARKET_MONEY}} for m in report["markets"]],
    }  # fmt: skip

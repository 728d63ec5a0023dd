"""The closing summary of `mmbot replay` and `mmbot report`, as rich tables on the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from mmbot.model import format_micro


def _money(value: Any) -> str:
    return format_micro(value) if isinstance(value, int) else "n/a"


def _pairs(figures: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in figures.items()) or "none"


def print_summary(report: dict[str, Any], *, title: str, console: Console | None = None) -> None:
    console = console or Console()
    fills = report["fills"]
    pnl = report["pnl"] or {}
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("figures")
    table.add_row("events", str(report["rows"]))
    table.add_row("frames", f"{report['frames']} (malformed {report['malformed']})")
    table.add_row("book updates", f"{report['book_updates']} (dropped unread: {report['drops']})")
    table.add_row("intents", _pairs(report["intents_by_strategy"]))
    table.add_row("risk rejections", _pairs(report["risk_rejections"]))
    table.add_row("orders", f"{report['orders_submitted']}: {_pairs(report['orders_by_strategy'])}")
    table.add_row("venue rejections", _pairs(report["venue_rejections"]))
    table.add_row(
        "fills",
        f"{fills['count']} ({_pairs(report['fills_by_strategy'])}): {format_micro(fills['shares'])} shares,"
        f" notional {format_micro(fills['notional'])}",
    )
    table.add_row("fees", _money(fills["fees"]))
    table.add_row("merges / resolutions", f"{report['merges']} / {report['resolutions']}")
    table.add_row(
        "errors / restarts / breaker trips", f"{report['errors']} / {report['restarts']} / {report['breaker_trips']}"
    )
    table.add_row("realised PnL", _money(pnl.get("realised")))
    table.add_row("mark-to-market PnL", _money(pnl.get("unrealised")))
    table.add_row("total PnL", _money(pnl.get("total")))
    table.add_row("cash", _money(pnl.get("cash")))
    positions = {token[:10] + "…": format_micro(shares) for token, shares in report["positions"].items() if shares}
    table.add_row("final positions", _pairs(positions))
    for name, figures in report["latency"].items():
        table.add_row(f"{name} latency (µs)", _pairs(figures))
    table.add_row("digest", report["digest"])
    console.print(table)

"""The commands that read a run's event log: ``report``, ``explain``, ``status``, ``fills`` and
``orders``. They never write to it, and they work on the log of a run still going (SQLite WAL)
or one that was killed. A path that is not an event log is one line and exit code 2."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from mmbot.cli_errors import UsageError


def _event_log(args: argparse.Namespace) -> Path:
    from mmbot.memory.logfile import LogFileError, check_event_log

    try:
        return check_event_log(args.db)
    except LogFileError as exc:
        missing = str(exc).endswith("no such file")
        if args.command == "status" and missing:
            raise UsageError(f"mmbot status: {args.db}: no such event log") from None
        if missing:
            raise UsageError(f"mmbot {args.command}: event log {args.db}: no such file") from None
        raise UsageError(f"mmbot {args.command}: {exc}") from None


def cmd_report(args: argparse.Namespace) -> int:
    from mmbot.memory.logfile import LogFileError, check_output_file
    from mmbot.memory.report import summary
    from mmbot.report_view import print_summary, summary_json

    db = _event_log(args)
    if args.plot:
        try:
            check_output_file(args.plot, "--plot")
        except LogFileError as exc:
            raise UsageError(f"mmbot report: {exc}") from None
    report = summary(db)
    if args.json:
        print(json.dumps(summary_json(report), indent=2, sort_keys=True))
    else:
        print_summary(report, title=f"report of {db.name}")
    if args.plot:
        from mmbot.memory.plot import plot

        try:
            plot(db, args.plot)
        except OSError as exc:
            raise UsageError(f"mmbot report: --plot {args.plot}: {exc.strerror or exc}") from None
        print(f"plot: {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from mmbot.memory.query import explain, format_explain

    db = _event_log(args)
    rows = explain(db, args.id)
    if not rows:
        print(f"mmbot: nothing in {db} has the id {args.id!r}", file=sys.stderr)
        return 1
    print(format_explain(rows))
    return 0


def _status_once(db: Path, args: argparse.Namespace) -> Any:
    from mmbot.clock import wall_ns
    from mmbot.memory.status import status
    from mmbot.memory.status_view import render_status, status_json

    now = status(db, wall_ns())
    if args.json:
        return json.dumps(status_json(now), sort_keys=True, indent=None if args.watch else 2)
    return render_status(now, title=f"status of {db}")


def cmd_status(args: argparse.Namespace) -> int:
    import time

    from mmbot.memory.status_view import console

    db = _event_log(args)
    if args.watch is None:
        shown = _status_once(db, args)
        print(shown) if args.json else console().print(shown)
        return 0
    try:
        if args.json:  # one JSON object a line, each refresh
            while True:
                print(_status_once(db, args), flush=True)
                time.sleep(args.watch)
        from rich.live import Live

        with Live(_status_once(db, args), auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(args.watch)
                live.update(_status_once(db, args), refresh=True)
    except KeyboardInterrupt:
        return 0


_FILL_COLUMNS = ("time", "market", "outcome", "side", "price", "size", "fee", "liquidity", "order", "fill", "strategy")
_ORDER_COLUMNS = ("time", "market", "outcome", "side", "price", "size", "filled", "fees", "tif", "status", "order",
                  "strategy")  # fmt: skip


def _cells(row: dict[str, Any], columns: tuple[str, ...]) -> list[str]:
    from mmbot.memory.query import iso_time
    from mmbot.memory.status_view import money

    keys = {"time": "ts_ns", "market": "slug", "order": "order_id", "fill": "fill_id"}
    cells = []
    for column in columns:
        value = row.get(keys.get(column, column))
        if column == "time":
            cells.append(iso_time(value))
        elif column in ("price", "size", "fee", "filled", "fees"):
            cells.append(money(value))
        else:
            cells.append("-" if value is None or value == "" else str(value))
    return cells


def _print_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], *, as_csv: bool, title: str) -> None:
    if as_csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(columns)
        out.writerows(_cells(row, columns) for row in rows)
        return
    from rich.markup import escape
    from rich.table import Table

    from mmbot.memory.status_view import console

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in ("price", "size", "fee", "filled", "fees") else "left")
    for row in rows:
        table.add_row(*(escape(cell) for cell in _cells(row, columns)))
    console().print(table)


def cmd_fills(args: argparse.Namespace) -> int:
    from mmbot.memory.names import read_names
    from mmbot.memory.trades import fill_rows

    db = _event_log(args)
    rows = fill_rows(db, read_names(db))
    _print_rows(rows, _FILL_COLUMNS, as_csv=args.csv, title=f"fills of {db.name}: {len(rows)}")
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    from mmbot.memory.names import read_names
    from mmbot.memory.trades import order_rows

    db = _event_log(args)
    rows = order_rows(db, read_names(db), open_only=args.open)
    which = "open orders" if args.open else "orders"
    _print_rows(rows, _ORDER_COLUMNS, as_csv=args.csv, title=f"{which} of {db.name}: {len(rows)}")
    return 0


def _seconds(text: str) -> float:  # float-ok: a refresh period for the terminal
    try:
        value = float(text)  # float-ok: a refresh period for the terminal
    except ValueError:
        raise argparse.ArgumentTypeError(f"--watch expects seconds, got {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"--watch expects between 0.1 and 3600 seconds, got {text}")
    return value


def add_parsers(sub: Any) -> None:
    report = sub.add_parser("report", help="summarise a run's event log")
    report.add_argument("db")
    report.add_argument("--plot", metavar="PNG", help="also write a PNG of PnL, inventory, fills, fees and drawdown")
    report.add_argument("--json", action="store_true", help="the figures as JSON (money as decimal strings)")

    explain = sub.add_parser("explain", help="the chain behind a correlation id, order id or fill id")
    explain.add_argument("db")
    explain.add_argument("id")

    status_ = sub.add_parser("status", help="a run's current state, from its event log (live or finished)")
    status_.add_argument("db")
    status_.add_argument("--watch", nargs="?", const=2.0, type=_seconds, metavar="SECONDS",
                         help="refresh in place every SECONDS (default 2) until Ctrl-C")
    status_.add_argument("--json", action="store_true", help="the figures as JSON (money as decimal strings)")

    fills = sub.add_parser("fills", help="every fill of a run: time, market, outcome, side, price, size, fee")
    fills.add_argument("db")
    fills.add_argument("--csv", action="store_true", help="CSV with a header row on stdout")

    orders = sub.add_parser("orders", help="every order of a run and how it ended")
    orders.add_argument("db")
    orders.add_argument("--csv", action="store_true", help="CSV with a header row on stdout")
    orders.add_argument("--open", action="store_true", help="only the orders still open at the log's end")


COMMANDS = {"report": cmd_report, "explain": cmd_explain, "status": cmd_status, "fills": cmd_fills,
            "orders": cmd_orders}  # fmt: skip

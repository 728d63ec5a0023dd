"""The read side of the event log: digest, explain, and the audit projection (DESIGN §9).

Everything here works on a finished (or still growing) run database and never writes to it.
``db`` is a path or an open ``sqlite_utils.Database``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable

import attrs
import sqlite_utils

from mmbot.model import format_micro, notional, notional_down

Database = str | Path | sqlite_utils.Database

_COLUMNS = "seq, ts_ns, wall_ns, kind, cid, market, token, payload"
_ORDER_ID = "json_extract(payload, '$.order_id')"
_GROUP = "json_extract(payload, '$.group')"
_MAX_CAUSE_STEPS = 16  # causes form short chains; the cap only guards against a cycle in bad data


@attrs.frozen
class Row:
    """One event as read back, payload decoded."""

    seq: int
    ts_ns: int
    wall_ns: int
    kind: str
    cid: str
    market: str
    token: str
    payload: dict[str, Any]


def open_database(db: Database) -> sqlite_utils.Database:
    """The run database; a missing file is an error, not a new empty log."""
    if isinstance(db, sqlite_utils.Database):
        return db
    if not Path(db).is_file():
        raise FileNotFoundError(f"no event log at {db}")
    return sqlite_utils.Database(db)


def select_rows(db: Database, where: str = "1", params: Iterable[Any] = ()) -> list[Row]:
    """Rows matching an SQL condition on ``events``, in seq order."""
    cursor = open_database(db).execute(f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY seq", list(params))
    return [Row(*columns[:7], payload=json.loads(columns[7])) for columns in cursor]


def _in_json_list(expression: str) -> str:
    # One parameter holding a JSON array: no limit on the number of values, no SQL assembly.
    return f"{expression} IN (SELECT value FROM json_each(?))"


# --------------------------------------------------------------------------- digest

_encode_line = json.JSONEncoder(separators=(",", ":")).encode


def digest(db: Database) -> str:
    """sha256 over every event in seq order: seq, ts_ns, kind, cid, market, token, payload.

    Wall time is left out (it differs on every run); batch boundaries leave no trace in the
    rows, so the digest depends only on what was recorded and when in virtual time.
    """
    hasher = hashlib.sha256()
    cursor = open_database(db).execute("SELECT seq, ts_ns, kind, cid, market, token, payload FROM events ORDER BY seq")
    for columns in cursor:
        hasher.update(_encode_line(columns).encode())
        hasher.update(b"\n")
    return hasher.hexdigest()


# --------------------------------------------------------------------------- explain


def _order_id(row: Row) -> str | None:
    order_id = row.payload.get("order_id")
    return order_id if isinstance(order_id, str) and order_id else None


def explain(db: Database, ident: str) -> list[Row]:
    """Every row in the story of a correlation id, an order id or a fill id, in seq order.

    The story is: the rows matching ``ident``; every row of the orders they mention; every
    row sharing a correlation id with those (the intent that placed an order, its risk
    verdict, the intent that cancelled it); the rows of the on-chain batch a merge or
    redemption went out in (under its leading request's cid); the other legs of the intents'
    groups; and the ``cause`` chain of all of them, back to the fact that started it.
    """
    database = open_database(db)
    found = {
        row.seq: row
        for row in select_rows(
            database, f"cid = ? OR {_ORDER_ID} = ? OR json_extract(payload, '$.fill_id') = ?", [ident] * 3
        )
    }
    if not found:
        return []

    def add(where: str, values: set[str]) -> list[Row]:
        """Add the rows where ``where`` matches one of ``values``; return the new ones."""
        if not values:
            return []
        matches = select_rows(database, where, [json.dumps(sorted(values))])
        new = [row for row in matches if row.seq not in found]
        found.update((row.seq, row) for row in new)
        return new

    order_ids = {order_id for row in found.values() if (order_id := _order_id(row))}
    add(_in_json_list(_ORDER_ID), order_ids)
    add(_in_json_list("cid"), {row.cid for row in found.values()})

    # an on-chain batch runs under its leading request's cid: a member's rows name it as ``batch``
    batches = {row.payload.get("batch") for row in found.values() if row.kind.startswith("chain_")}
    add(_in_json_list("cid"), {b for b in batches if isinstance(b, str) and b})

    groups = {row.payload.get("group") for row in found.values() if row.kind == "intent"}
    add(f"kind = 'intent' AND {_in_json_list(_GROUP)}", {group for group in groups if group})

    seen_cids = {row.cid for row in found.values()}
    causes = {row.payload.get("cause") for row in found.values()}
    for _ in range(_MAX_CAUSE_STEPS):
        causes = {cause for cause in causes if isinstance(cause, str) and cause and cause not in seen_cids}
        if not causes:
            break
        seen_cids |= causes
        causes = {row.payload.get("cause") for row in add(_in_json_list("cid"), causes)}
    return sorted(found.values(), key=lambda row: row.seq)


def iso_time(ts_ns: int) -> str:
    """Epoch nanoseconds as ISO 8601 UTC with milliseconds: 2023-11-14T22:13:20.123Z."""
    seconds, rest_ns = divmod(ts_ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{rest_ns // 1_000_000:03d}Z"


# Payload keys holding micro-units: shown as decimals.
MICRO_KEYS = frozenset(
    {
        "price", "size", "fee", "fees", "cash", "reserved", "realised", "unrealised", "pair_cost",
        "payout", "size_delta", "fee_delta", "filled", "position", "local_bid", "local_ask",
        "venue_bid", "venue_ask", "shares", "cost", "expected", "tick", "min_size", "shares_before",
        "shares_after", "pusd_before", "makerAmount", "takerAmount", "asked", "notional", "budget",
    }
)  # fmt: skip
# Payload keys holding {token: micro-units}: each value shown as a decimal.
MICRO_MAP_KEYS = frozenset({"positions", "marks", "shares", "cost_basis", "shares_before", "shares_after"})
_CONTEXT_KEYS = frozenset({"cause", "cause_recv_ns", "book"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def format_value(key: str, value: Any) -> str:
    """One payload field as a person reads it: micro-units as decimals (also inside a
    ``{token: amount}`` map, and a signed order's amount strings), nested objects as
    ``(key=value ...)``, lists comma-separated, null as "-"."""
    if key in MICRO_MAP_KEYS and isinstance(value, dict):
        return "(" + " ".join(f"{k}={format_micro(v) if _is_int(v) else format_value('', v)}"
                              for k, v in sorted(value.items())) + ")"
    if key in MICRO_KEYS and _is_int(value):
        return format_micro(value)
    if key in MICRO_KEYS and isinstance(value, str) and value.isdigit():  # a signed order's amounts
        return format_micro(int(value))
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    if isinstance(value, dict):
        return "(" + " ".join(f"{k}={format_value(k, v)}" for k, v in sorted(value.items())) + ")"
    if isinstance(value, list):
        return ",".join(format_value(key, v) for v in value) or "-"
    return json.dumps(value)  # true, false, numbers


def _quote(best: Any) -> str:
    return format_micro(best) if isinstance(best, int) else "-"


def format_explain(rows: list[Row]) -> str:
    """A readable chain, one row per line, with the intent's triggering context under it."""
    if not rows:
        return "no event matches"
    lines = []
    for row in rows:
        shown = {key: value for key, value in row.payload.items() if key not in _CONTEXT_KEYS}
        if shown.get("token") == row.token:
            del shown["token"]  # already in the row's token column
        fields = " ".join(f"{key}={format_value(key, value)}" for key, value in shown.items())
        columns = [f"cid={row.cid}"]
        columns += [f"market={row.market}"] if row.market else []
        columns += [f"token={row.token}"] if row.token else []
        lines.append(f"{iso_time(row.ts_ns)}  #{row.seq:<6} {row.kind:<15} {' '.join(columns)}  {fields}".rstrip())
        cause = row.payload.get("cause")
        if cause:
            received = row.payload.get("cause_recv_ns")
            context = f"    caused by {cause}"
            if isinstance(received, int):
                context += f" (received {iso_time(received)}, decided {(row.ts_ns - received) // 1000} us later)"
            lines.append(context)
        book = row.payload.get("book")
        if isinstance(book, dict):
            for token, quote in sorted(book.items()):
                bid, ask = quote if isinstance(quote, list) and len(quote) == 2 else (None, None)
                lines.append(f"    book {token}: bid {_quote(bid)} / ask {_quote(ask)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- projection

_PROJECTION_KINDS = (
    "submit", "ack", "fill", "order_done", "reject", "outcome_unknown", "merge", "resolution", "correction",
    "position_adopted",
)  # fmt: skip
_SIDES = ("BUY", "SELL")


@attrs.frozen
class Projection:
    """The executor's state as the log tells it, and the rows it could not place."""

    open_orders: dict[str, dict[str, Any]]
    positions: dict[str, int]  # tokens held or owed, no zeros
    cash: int
    unplaced: tuple[tuple[str, int], ...]  # (kind, seq) of rows lacking what their kind needs; left out


class _Unplaceable(Exception):
    """A row without the fields its kind needs (a hand-edited log, or one from an older version)."""


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Unplaceable


def _side(value: Any) -> str:
    if value in _SIDES:
        return value
    raise _Unplaceable


def _text(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise _Unplaceable


def _signed(side: str, size: int) -> int:
    return size if side == "BUY" else -size


def project(db: Database) -> Projection:
    """Open orders, positions and cash as the log tells them, to audit the executor's state.

    Positions are rebuilt from the sizes alone (adoptions at start-up, fills, corrections,
    merges, resolutions). Cash is the ledger's own figure carried by the latest fill, merge,
    resolution or correction row; a correction without one (written before corrections carried
    it) moves it by the corrected shares at its price (buys rounded up, sells down) and by the
    fee delta, taking side and price from the order if the row lacks them. A row that cannot be
    placed — such an old correction naming an order of an earlier run, or a malformed row — is
    left out and listed in ``unplaced``, never raised: the figures are then known to be off.
    """
    open_orders: dict[str, dict[str, Any]] = {}
    orders: dict[str, dict[str, Any]] = {}  # every order seen, for old corrections after it closed
    market_tokens: dict[str, set[str]] = {}
    positions: dict[str, int] = {}
    cash = 0
    unplaced: list[tuple[str, int]] = []

    def move(token: str, shares: int) -> None:
        positions[token] = positions.get(token, 0) + shares

    placeholders = ", ".join("?" * len(_PROJECTION_KINDS))
    for row in select_rows(db, f"kind IN ({placeholders})", _PROJECTION_KINDS):
        p = row.payload
        order_id = _order_id(row)
        try:
            if row.kind == "submit":
                submitted = _text(order_id)
                order = {
                    "cid": row.cid, "market": row.market, "token": _text(p.get("token")), "side": _side(p.get("side")),
                    "price": _int(p.get("price")), "size": _int(p.get("size")), "tif": p.get("tif"), "filled": 0,
                    "status": "submitted",
                }  # fmt: skip
                orders[submitted] = open_orders[submitted] = order
            elif row.kind == "ack" and order_id in open_orders:
                open_orders[order_id]["status"] = "live"
            elif row.kind == "outcome_unknown" and order_id in open_orders:
                open_orders[order_id]["status"] = "unknown"
            elif row.kind in ("order_done", "reject"):
                open_orders.pop(order_id or "", None)
            elif row.kind == "fill":
                token, side = _text(p.get("token") or row.token), _side(p.get("side"))
                size, cash_after = _int(p.get("size")), _int(p.get("cash"))
                move(token, _signed(side, size))
                cash = cash_after
                if (order := open_orders.get(order_id or "")) is not None:
                    order["filled"] += size
                    if order["filled"] >= order["size"] or p.get("short_of_size"):  # filled, or its budget spent
                        del open_orders[order_id]
            elif row.kind == "correction":
                cash = _correct(row, orders.get(order_id or "", {}), cash, move)
                if order_id in open_orders:
                    open_orders[order_id]["filled"] += p["size_delta"]
            elif row.kind == "merge":
                size, cash_after = _int(p.get("size")), _int(p.get("cash"))
                for token in market_tokens.get(row.market, ()):
                    move(token, -size)
                cash = cash_after
            elif row.kind == "resolution":
                cash = _int(p.get("cash"))
                for token in market_tokens.get(row.market, ()):
                    positions[token] = 0
            elif row.kind == "position_adopted":
                move(_text(row.token), _int(p.get("shares")))
        except _Unplaceable:
            unplaced.append((row.kind, row.seq))
            continue
        if row.market and isinstance(token := p.get("token") or row.token, str) and token:
            market_tokens.setdefault(row.market, set()).add(token)
    return Projection(
        open_orders=open_orders,
        positions={token: shares for token, shares in positions.items() if shares},
        cash=cash,
        unplaced=tuple(unplaced),
    )


def _correct(row: Row, order: dict[str, Any], cash: int, move: Callable[[str, int], None]) -> int:
    """Place a correction row; returns the cash after it."""
    p = row.payload
    token = _text(p.get("token") or row.token or order.get("token"))
    side = _side(p.get("side", order.get("side")))
    delta, fee_delta = _int(p.get("size_delta")), _int(p.get("fee_delta"))
    if "cash" in p:
        cash_after = _int(p["cash"])
    else:
        price = _int(p.get("price", order.get("price")))
        cash_after = cash + (-notional(price, delta) if side == "BUY" else notional_down(price, delta)) - fee_delta
    move(token, _signed(side, delta))
    return cash_after


def projection(db: Database) -> tuple[dict[str, dict[str, Any]], dict[str, int], int]:
    """``project``'s open orders, positions and cash, without the rows it could not place."""
    placed = project(db)
    return placed.open_orders, placed.positions, placed.cash

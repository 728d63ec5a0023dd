"""The run's fills and orders as rows a person reads (``mmbot fills``, ``mmbot orders``): time,
market slug, outcome, side, price, size, fee, liquidity, status. Money, prices and sizes stay
integer micro-units here; the command prints them as decimals."""

from __future__ import annotations

import json
from typing import Any

from mmbot.memory.names import Names
from mmbot.memory.query import Database, open_database

_ORDER_KINDS = ("submit", "ack", "fill", "order_done", "reject", "outcome_unknown", "cancel", "dry_run_order",
                "correction")  # fmt: skip


def fill_rows(db: Database, names: Names) -> list[dict[str, Any]]:
    rows = []
    for seq, ts_ns, market, token, payload in open_database(db).execute(
        "SELECT seq, ts_ns, market, token, payload FROM events WHERE kind = 'fill' ORDER BY seq"
    ):
        p = json.loads(payload)
        token = p.get("token") or token
        market = market or names.market_of(token)
        rows.append({
            "seq": seq, "ts_ns": ts_ns, "market": market, "slug": names.market_label(market), "token": token,
            "outcome": names.outcome(token), "side": p.get("side"), "price": p.get("price"), "size": p.get("size"),
            "fee": p.get("fee"), "liquidity": p.get("liquidity"), "order_id": p.get("order_id"),
            "fill_id": p.get("fill_id"), "strategy": p.get("strategy"),
        })  # fmt: skip
    return rows


def order_rows(db: Database, names: Names, *, open_only: bool = False) -> list[dict[str, Any]]:
    """Every order the run placed (or signed and did not send: a dry run), with how it ended."""
    orders: dict[str, dict[str, Any]] = {}
    placeholders = ", ".join("?" * len(_ORDER_KINDS))
    for kind, ts_ns, market, token, payload in open_database(db).execute(
        f"SELECT kind, ts_ns, market, token, payload FROM events WHERE kind IN ({placeholders}) ORDER BY seq",
        _ORDER_KINDS,
    ):
        p = json.loads(payload)
        order_id = p.get("order_id")
        if kind == "submit":
            token = p.get("token") or token
            market = market or names.market_of(token)
            orders[order_id] = {
                "order_id": order_id, "ts_ns": ts_ns, "market": market, "slug": names.market_label(market),
                "token": token, "outcome": names.outcome(token), "side": p.get("side"), "price": p.get("price"),
                "size": p.get("size"), "tif": p.get("tif"), "filled": 0, "fees": 0, "status": "submitted",
                "open": True, "strategy": p.get("strategy"), "venue_order_id": None,
            }  # fmt: skip
            continue
        order = orders.get(order_id)
        if order is None:
            continue
        if kind == "ack":
            order["venue_order_id"] = p.get("venue_order_id")
            if order["status"] in ("submitted", "unknown"):
                order["status"] = "live"
        elif kind == "dry_run_order":
            order.update(status="signed, not sent", venue_order_id=p.get("venue_order_id"))
        elif kind == "fill":
            order["filled"] += p.get("size") or 0
            order["fees"] += p.get("fee") or 0
            if order["filled"] >= (order["size"] or 0) or p.get("short_of_size"):
                order.update(status="filled", open=False)
            elif order["open"]:
                order["status"] = "partly filled"
        elif kind == "correction":
            order["filled"] += p.get("size_delta") or 0
            order["fees"] += p.get("fee_delta") or 0
        elif kind == "outcome_unknown" and order["open"]:
            order["status"] = "unknown"
        elif kind == "cancel" and order["open"]:
            order["status"] = "cancelling"
        elif kind == "order_done":
            reason = str(p.get("reason") or "done")
            order.update(status="filled" if order["filled"] >= (order["size"] or 0) else reason, open=False)
        elif kind == "reject":
            order.update(status=f"rejected: {p.get('reason', '?')}", open=False)
    rows = list(orders.values())
    return [o for o in rows if o["open"]] if open_only else rows

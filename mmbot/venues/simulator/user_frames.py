"""The simulator's user channel, sans-IO: engine events of the accounts it serves, as Polymarket
``order`` and ``trade`` messages (protocol doc §3), with settlement statuses that advance in time.

A trade is sent MATCHED when it happens, MINED ``mined_after_ns`` later and CONFIRMED
``confirmed_after_ns`` later; ``fail_next`` makes the next trade of an account go MATCHED →
RETRYING → FAILED instead, and ``shuffle_next`` sends an account's next messages twice, the
first time in reverse order (faults the reconciliation tests need). Each account gets the messages
of its own orders only: as taker, the top level is its order; as maker, the top level is the
taker's order and its fill is in ``maker_orders[]``. Every trade is also kept in its latest
status for ``/data/trades``.
"""

from __future__ import annotations

import heapq
import json
from typing import Any

from mmbot.model import Side, format_micro, notional, notional_down
from mmbot.venues.simulator import events as ev

SECOND = 1_000_000_000
_ENDED = {ev.EndReason.CANCELED: ("CANCELLATION", "CANCELED"), ev.EndReason.MATCHED: ("UPDATE", "MATCHED")}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class UserFeed:
    def __init__(self, *, mined_after_ns: int = 2 * SECOND, confirmed_after_ns: int = 5 * SECOND) -> None:
        self._accounts: dict[str, str] = {}  # api key -> maker address
        self._mined_after = mined_after_ns
        self._confirmed_after = confirmed_after_ns
        self._later: list[tuple[int, int, str, str, str]] = []  # (due, seq, api key, trade id, text)
        self._seq = 0
        self._outbox: list[tuple[str, str]] = []
        self.fail_next: set[str] = set()  # api keys whose next trade fails
        self.shuffle_next: set[str] = set()  # api keys whose next batch of messages comes twice, reversed
        # each account's truth, from its trades: shares per token, and the pUSD its trades moved
        self.positions: dict[str, dict[str, int]] = {}
        self.cash_moved: dict[str, int] = {}
        self._records: dict[str, dict[str, dict[str, Any]]] = {}  # api key -> trade id -> latest record

    def add_account(self, api_key: str, address: str) -> None:
        self._accounts[api_key] = address

    def on_events(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.Trade):
                for owner, role in ((event.taker_owner, "TAKER"), (event.maker_owner, "MAKER")):
                    if owner in self._accounts:
                        if owner not in self.fail_next:  # a trade that will fail never changes the account
                            self._account(owner, role, event)
                        self._trade(owner, role, event)
            elif isinstance(event, ev.OrderRested) and event.order.owner in self._accounts:
                self._outbox.append((event.order.owner, self._order(event.order, "PLACEMENT", "LIVE", event.ts_ns)))
            elif isinstance(event, ev.OrderEnded) and event.order.owner in self._accounts:
                kind, status = _ENDED.get(event.reason, ("CANCELLATION", "CANCELED"))
                self._outbox.append((event.order.owner, self._order(event.order, kind, status, event.ts_ns)))

    def take(self, now_ns: int) -> list[tuple[str, str]]:
        """(api key, frame) of everything due by ``now_ns``, in order."""
        while self._later and self._later[0][0] <= now_ns:
            _, _, owner, trade_id, text = heapq.heappop(self._later)
            self._records[owner][trade_id] = _record(text)
            self._outbox.append((owner, text))
        taken, self._outbox = self._outbox, []
        for owner in [o for o in self.shuffle_next if any(key == o for key, _ in taken)]:
            self.shuffle_next.discard(owner)
            mine = [m for m in taken if m[0] == owner]
            taken = [m for m in taken if m[0] != owner] + list(reversed(mine)) + mine
        return taken

    def trades_of(self, owner: str, after_s: int | None = None) -> list[dict[str, Any]]:
        """The account's trades (``/data/trades`` items) matched at or after ``after_s``, oldest first."""
        return [r for r in self._records.get(owner, {}).values()
                if after_s is None or int(r["match_time"]) >= after_s]

    def _account(self, owner: str, role: str, trade: ev.Trade) -> None:
        if role == "TAKER":
            token, side, price, fee = trade.taker_token, trade.taker_side, trade.taker_price, trade.taker_fee
        else:
            token, side, price, fee = trade.maker_token, trade.maker_side, trade.maker_price, 0
        held = self.positions.setdefault(owner, {})
        if side is Side.BUY:
            held[token] = held.get(token, 0) + trade.size
            moved = -notional(price, trade.size) - fee  # a buyer's cost rounds up, as the ledger's
        else:
            held[token] = held.get(token, 0) - trade.size
            moved = notional_down(price, trade.size) - fee
        self.cash_moved[owner] = self.cash_moved.get(owner, 0) + moved

    # ------------------------------------------------------------------ messages

    def _trade(self, owner: str, role: str, trade: ev.Trade) -> None:
        def message(status: str, ts_ns: int) -> str:
            return _dumps({
                "event_type": "trade", "type": "TRADE", "id": trade.trade_id, "taker_order_id": trade.taker_order_id,
                "market": trade.market, "asset_id": trade.taker_token, "side": trade.taker_side.value,
                "size": format_micro(trade.size), "price": format_micro(trade.taker_price), "status": status,
                "trader_side": role, "owner": owner, "maker_address": self._accounts.get(trade.maker_owner, ""),
                "fee_rate_bps": "0", "match_time": str(trade.ts_ns // SECOND), "timestamp": str(ts_ns // 1_000_000),
                "maker_orders": [{
                    "order_id": trade.maker_order_id, "owner": trade.maker_owner,
                    "maker_address": self._accounts.get(trade.maker_owner, ""),
                    "matched_amount": format_micro(trade.size), "price": format_micro(trade.maker_price),
                    "asset_id": trade.maker_token, "side": trade.maker_side.value, "fee_rate_bps": "0",
                }],
            })

        matched = message("MATCHED", trade.ts_ns)
        self._records.setdefault(owner, {})[trade.trade_id] = _record(matched)
        self._outbox.append((owner, matched))
        if owner in self.fail_next:
            self.fail_next.discard(owner)
            later = (("RETRYING", self._mined_after), ("FAILED", self._confirmed_after))
        else:
            later = (("MINED", self._mined_after), ("CONFIRMED", self._confirmed_after))
        for status, after in later:
            self._seq += 1
            due = trade.ts_ns + after
            heapq.heappush(self._later, (due, self._seq, owner, trade.trade_id, message(status, due)))

    def _order(self, order: ev.OrderView, kind: str, status: str, ts_ns: int) -> str:
        return _dumps({
            "event_type": "order", "type": kind, "id": order.order_id, "owner": order.owner,
            "order_owner": order.owner, "maker_address": self._accounts.get(order.owner, ""), "market": order.market,
            "asset_id": order.token, "side": order.side.value, "outcome": "", "price": format_micro(order.price),
            "original_size": format_micro(order.original_size), "size_matched": format_micro(order.size_matched),
            "associate_trades": None, "order_type": order.tif.value, "status": status, "expiration": "0",
            "created_at": str(order.created_ns // SECOND), "timestamp": str(ts_ns // 1_000_000),
        })


def _record(text: str) -> dict[str, Any]:
    """A user-channel trade message as a ``/data/trades`` item: the same fields, no envelope."""
    record = json.loads(text)
    del record["event_type"], record["type"]
    return record

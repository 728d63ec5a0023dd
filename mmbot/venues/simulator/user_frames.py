"""The simulator's user channel, sans-IO: engine events of the accounts it serves, as Polymarket
``order`` and ``trade`` messages (protocol doc §3), with settlement statuses that advance in time.

A trade is sent MATCHED when it happens, MINED ``mined_after_ns`` later and CONFIRMED
``confirmed_after_ns`` later; ``fail_next`` makes the next trade of an account go MATCHED →
RETRYING → FAILED instead, and ``shuffle_next`` sends an account's next messages twice, the
first time in reverse order (faults the reconciliation tests need). Each account gets the messages
of its own orders only: as taker, the top level is its order; as maker, the top level is the
taker's order and its fill is in ``maker_orders[]``. Every trade is also kept in its latest
status for ``/data/trades`` (as the message text: a few hundred bytes a trade) until its market is
forgotten (``forget_market``); each account's positions, cash and counts are kept for good.
"""

from __future__ import annotations

import heapq
import json
from typing import Any

import attrs

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
        self.positions: dict[str, dict[str, int]] = {}  # a token held 0 has no entry
        self.cash_moved: dict[str, int] = {}
        self.trades_taken: dict[str, int] = {}  # api key -> trades it took part in (a self-trade once)
        self.trades_failed: dict[str, int] = {}
        self._records: dict[str, dict[str, _Record]] = {}  # api key -> trade id -> latest record

    def add_account(self, api_key: str, address: str) -> None:
        self._accounts[api_key] = address

    def on_events(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.Trade):
                ours = [(owner, role) for owner, role in ((event.taker_owner, "TAKER"), (event.maker_owner, "MAKER"))
                        if owner in self._accounts]
                failing = {owner for owner, _ in ours if owner in self.fail_next}
                for owner, role in ours:
                    if owner not in failing:  # a trade that will fail never changes the account
                        self._account(owner, role, event)
                    self._trade(owner, role, event, fails=owner in failing)
                self.fail_next -= failing
            elif isinstance(event, ev.OrderRested) and event.order.owner in self._accounts:
                self._outbox.append((event.order.owner, self._order(event.order, "PLACEMENT", "LIVE", event.ts_ns)))
            elif isinstance(event, ev.OrderEnded) and event.order.owner in self._accounts:
                kind, status = _ENDED.get(event.reason, ("CANCELLATION", "CANCELED"))
                self._outbox.append((event.order.owner, self._order(event.order, kind, status, event.ts_ns)))

    def take(self, now_ns: int) -> list[tuple[str, str]]:
        """(api key, frame) of everything due by ``now_ns``, in order."""
        while self._later and self._later[0][0] <= now_ns:
            _, _, owner, trade_id, text = heapq.heappop(self._later)
            records = self._records[owner]
            if trade_id in records:  # not forgotten with its market
                records[trade_id] = records[trade_id].evolve(text)
            self._outbox.append((owner, text))
        taken, self._outbox = self._outbox, []
        for owner in [o for o in self.shuffle_next if any(key == o for key, _ in taken)]:
            self.shuffle_next.discard(owner)
            mine = [m for m in taken if m[0] == owner]
            taken = [m for m in taken if m[0] != owner] + list(reversed(mine)) + mine
        return taken

    def trades_of(self, owner: str, after_s: int | None = None, *, before_s: int | None = None,
                  market: str = "", asset_id: str = "") -> list[dict[str, Any]]:
        """The account's trades (``/data/trades`` items) matched at or after ``after_s`` (and
        before ``before_s``), of one market or token if given, oldest first."""
        return [r.item() for r in self._records.get(owner, {}).values()
                if (after_s is None or r.match_s >= after_s) and (before_s is None or r.match_s < before_s)
                and market in ("", r.market) and asset_id in ("", *r.tokens)]

    def forget_market(self, market: str) -> int:
        """Forget every account's trade records of ``market``; returns how many."""
        forgotten = 0
        for records in self._records.values():
            doomed = [trade_id for trade_id, r in records.items() if r.market == market]
            for trade_id in doomed:
                del records[trade_id]
            forgotten += len(doomed)
        return forgotten

    def sizes(self) -> dict[str, int]:
        return {"trade_records": sum(len(r) for r in self._records.values()), "settling": len(self._later)}

    def _account(self, owner: str, role: str, trade: ev.Trade) -> None:
        if role == "TAKER":
            token, side, price, fee = trade.taker_token, trade.taker_side, trade.taker_price, trade.taker_fee
        else:
            token, side, price, fee = trade.maker_token, trade.maker_side, trade.maker_price, 0
        if side is Side.BUY:
            self.move_shares(owner, token, trade.size)
            moved = -notional(price, trade.size) - fee  # a buyer's cost rounds up, as the ledger's
        else:
            self.move_shares(owner, token, -trade.size)
            moved = notional_down(price, trade.size) - fee
        self.cash_moved[owner] = self.cash_moved.get(owner, 0) + moved

    def move_shares(self, owner: str, token: str, shares: int) -> None:
        held = self.positions.setdefault(owner, {})
        now = held.get(token, 0) + shares
        if now:
            held[token] = now
        else:
            held.pop(token, None)

    # ------------------------------------------------------------------ messages

    def _trade(self, owner: str, role: str, trade: ev.Trade, *, fails: bool) -> None:
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
        records = self._records.setdefault(owner, {})
        if trade.trade_id not in records:  # a self-trade comes here twice
            self.trades_taken[owner] = self.trades_taken.get(owner, 0) + 1
            if fails:
                self.trades_failed[owner] = self.trades_failed.get(owner, 0) + 1
        records[trade.trade_id] = _Record(market=trade.market, tokens=(trade.taker_token, trade.maker_token),
                                          match_s=trade.ts_ns // SECOND, text=matched)
        self._outbox.append((owner, matched))
        if fails:
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


@attrs.frozen(kw_only=True, slots=True)
class _Record:
    """One account's trade in its latest status: the user-channel message, and what filters need."""

    market: str
    tokens: tuple[str, str]
    match_s: int
    text: str

    def evolve(self, text: str) -> _Record:
        return attrs.evolve(self, text=text)

    def item(self) -> dict[str, Any]:
        """As a ``/data/trades`` item: the message's fields without the envelope."""
        record = json.loads(self.text)
        del record["event_type"], record["type"]
        return record

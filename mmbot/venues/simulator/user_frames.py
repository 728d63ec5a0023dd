"""The simulator's user channel, sans-IO: engine events of the accounts it serves, as Polymarket
``order`` and ``trade`` messages (protocol doc §3; rendered by ``user_messages``), with settlement
statuses that advance in time.

An order's messages: PLACEMENT when the venue takes it (for an order that matches on arrival,
before its trades), an UPDATE after each fill of it while it rests — ``size_matched`` grown,
``associate_trades`` the ids of its trades so far, status MATCHED once it is filled — and one
UPDATE after the trades an arriving order made (LIVE if the rest of it now rests, MATCHED if none
is left); a CANCELLATION when it is cancelled, expires, is killed (the unfilled rest of a FAK) or
its market closes. A trade is sent MATCHED when it happens, MINED ``mined_after_ns`` later and
CONFIRMED ``confirmed_after_ns`` later; ``fail_next`` makes the next trade of an account go
MATCHED → RETRYING → FAILED instead, and ``shuffle_next`` sends an account's next messages twice,
the first time in reverse order (faults the reconciliation tests need). Each account gets the
messages of its own orders only: as taker, the top level is its order; as maker, the top level is
the taker's order and its fill is in ``maker_orders[]``. Every trade is also kept in its latest
status for ``/data/trades`` (as the message text: about a kilobyte a trade) until its market is
forgotten (``forget_market``); each account's positions, cash and counts are kept for good. What
is kept per order (its trade ids) goes when the order ends.
"""

from __future__ import annotations

import heapq
from typing import Any

import attrs

from mmbot.model import MarketInfo, Side, notional, notional_down
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.user_messages import order_message, stand_in, trade_item, trade_message

SECOND = 1_000_000_000
# how an order that ends without being filled is reported: CANCELLATION with this status
_CANCELED_STATUS = {ev.EndReason.MARKET_RESOLVED: "CANCELED_MARKET_RESOLVED"}


@attrs.define
class _Followed:
    """One of an account's orders the feed follows: as last seen, and its trades so far."""

    order: ev.OrderView | None  # None while it is still arriving (matching before it rests or ends)
    trades: list[str] = attrs.Factory(list)
    placement_at: int = -1  # arriving: where in the outbox its PLACEMENT goes, before its trades


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
        self._followed: dict[str, _Followed] = {}  # order id -> an account's order until it ends
        self._arriving: list[str] = []  # ids of the orders of this batch that matched on arrival
        self._outcomes: dict[str, str] = {}  # token -> its outcome's name, while its market is remembered
        self._market_tokens: dict[str, tuple[str, str]] = {}

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
                self._rested(event.order, event.ts_ns)
            elif isinstance(event, ev.OrderEnded) and event.order.owner in self._accounts:
                self._ended(event)
            elif isinstance(event, ev.MarketListed):
                self._listed(event.info)
        # an order's trades and its resting or end come from one engine call, so from one batch of events
        for order_id in self._arriving:
            followed = self._followed.get(order_id)
            if followed is not None and followed.order is None:
                del self._followed[order_id]
        self._arriving.clear()

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
        """Forget every account's trade records of ``market`` (and its outcome names); returns how many."""
        for token in self._market_tokens.pop(market, ()):
            self._outcomes.pop(token, None)
        forgotten = 0
        for records in self._records.values():
            doomed = [trade_id for trade_id, r in records.items() if r.market == market]
            for trade_id in doomed:
                del records[trade_id]
            forgotten += len(doomed)
        return forgotten

    def sizes(self) -> dict[str, int]:
        return {"trade_records": sum(len(r) for r in self._records.values()), "settling": len(self._later),
                "orders_followed": len(self._followed), "outcome_names": len(self._outcomes)}

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
            return trade_message(trade, recipient=owner, role=role, status=status, ts_ns=ts_ns, who=self._who,
                                 outcome=self._outcome)

        if role == "TAKER" and trade.taker_order_id not in self._followed:  # arriving: PLACEMENT first
            self._followed[trade.taker_order_id] = _Followed(order=None, placement_at=len(self._outbox))
            self._arriving.append(trade.taker_order_id)
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
        order_id = trade.taker_order_id if role == "TAKER" else trade.maker_order_id
        followed = self._followed.get(order_id)
        if followed is None:
            return
        followed.trades.append(trade.trade_id)
        if role == "MAKER" and followed.order is not None:  # a resting order filled (partly)
            done = trade.maker_size_matched >= followed.order.original_size
            self._order(followed.order, "UPDATE", "MATCHED" if done else "LIVE", trade.ts_ns,
                        size_matched=trade.maker_size_matched, trades=followed.trades)

    def _rested(self, order: ev.OrderView, ts_ns: int) -> None:
        followed = self._followed.get(order.order_id)
        if followed is None:
            self._followed[order.order_id] = _Followed(order=order)
            self._order(order, "PLACEMENT", "LIVE", ts_ns, size_matched=0)
            return
        followed.order = order  # it matched on arrival, and the rest of it now rests
        self._placed_before_its_trades(order, followed)
        self._order(order, "UPDATE", "LIVE", ts_ns, size_matched=order.size_matched, trades=followed.trades)

    def _ended(self, event: ev.OrderEnded) -> None:
        order = event.order
        followed = self._followed.pop(order.order_id, None)
        arrived = followed is not None and followed.order is None
        if arrived:
            self._placed_before_its_trades(order, followed)
        if event.reason is ev.EndReason.MATCHED:
            if followed is None or arrived:  # a resting order's last fill already said MATCHED
                self._order(order, "UPDATE", "MATCHED", event.ts_ns, size_matched=order.size_matched,
                            trades=followed.trades if followed else [])
            return
        status = _CANCELED_STATUS.get(event.reason, "CANCELED")
        self._order(order, "CANCELLATION", status, event.ts_ns, size_matched=order.size_matched)

    def _placed_before_its_trades(self, order: ev.OrderView, followed: _Followed) -> None:
        placement = self._render(order, "PLACEMENT", "LIVE", order.created_ns, size_matched=0)
        self._outbox.insert(followed.placement_at, (order.owner, placement))

    def _order(self, order: ev.OrderView, kind: str, status: str, ts_ns: int, *, size_matched: int,
               trades: list[str] | None = None) -> None:
        self._outbox.append((order.owner, self._render(order, kind, status, ts_ns, size_matched=size_matched,
                                                       trades=trades)))

    def _render(self, order: ev.OrderView, kind: str, status: str, ts_ns: int, *, size_matched: int,
                trades: list[str] | None = None) -> str:
        """``associate_trades`` is a list on UPDATE only: null on PLACEMENT and CANCELLATION, as captured."""
        return order_message(order, kind, status, ts_ns, address=order.maker or self._who(order.owner)[1],
                             outcome=self._outcome(order.token), size_matched=size_matched,
                             associate_trades=list(trades or ()) if kind == "UPDATE" else None)

    def _listed(self, info: MarketInfo) -> None:
        self._market_tokens[info.market] = info.tokens
        self._outcomes.update(zip(info.tokens, info.outcomes))

    def _outcome(self, token: str) -> str:
        return self._outcomes.get(token, "")

    def _who(self, owner: str) -> tuple[str, str]:
        """An owner's (API key, wallet): an account's own, or a stand-in for the world's traders."""
        address = self._accounts.get(owner)
        return (owner, address) if address is not None else stand_in(owner)


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
        """As a ``/data/trades`` item."""
        return trade_item(self.text)

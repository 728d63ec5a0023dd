"""The engine's register of orders, sans-IO: which orders rest (by id and by owner), which ids were
ever taken, and when GTD orders expire.

An id can be refused as a duplicate, and a cancel of an ended order answered "already canceled or
matched" rather than "order not found", only while the register remembers it. Ids the engine made
itself (a counter, ``0x`` and 64 hex digits) are known by their number and never stored; ids the
caller chose (the signed order's digest) are remembered from their end until ``forget_ended``
is called with a later time, so a long run does not keep every id it ever saw.
"""

from __future__ import annotations

import heapq

from mmbot.model import Side, notional
from mmbot.venues.simulator.book import RestingOrder


class OrderIndex:
    def __init__(self) -> None:
        self.resting: dict[str, RestingOrder] = {}  # in arrival order
        self._by_owner: dict[str, dict[str, RestingOrder]] = {}  # the same, per owner (none: no entry)
        self._ended: dict[str, int] = {}  # caller-chosen id -> when it ended, oldest first
        self._expiries: list[tuple[int, int, str]] = []  # (expires_ns, seq, order id) of GTD orders
        self._seq = 0
        self._expiry_seq = 0

    def new_id(self) -> str:
        self._seq += 1
        return f"0x{self._seq:064x}"

    def _generated(self, order_id: str) -> bool:
        if len(order_id) != 66 or not order_id.startswith("0x"):
            return False
        try:
            return 0 < int(order_id[2:], 16) <= self._seq
        except ValueError:
            return False

    def known(self, order_id: str) -> bool:
        """Whether ``order_id`` rests or has ended (as far as the register still remembers)."""
        return order_id in self.resting or order_id in self._ended or self._generated(order_id)

    def get(self, order_id: str) -> RestingOrder | None:
        return self.resting.get(order_id)

    def of_owner(self, owner: str) -> dict[str, RestingOrder]:
        return self._by_owner.get(owner, {})

    def add(self, order: RestingOrder) -> None:
        self.resting[order.order_id] = order
        self._by_owner.setdefault(order.owner, {})[order.order_id] = order
        if order.expires_ns is not None:
            self._expiry_seq += 1
            heapq.heappush(self._expiries, (order.expires_ns, self._expiry_seq, order.order_id))

    def remove(self, order: RestingOrder, now_ns: int) -> None:
        del self.resting[order.order_id]
        mine = self._by_owner[order.owner]
        del mine[order.order_id]
        if not mine:
            del self._by_owner[order.owner]
        self.ended(order.order_id, now_ns)

    def ended(self, order_id: str, now_ns: int) -> None:
        """``order_id`` ended at ``now_ns`` (after resting, or on arrival)."""
        if not self._generated(order_id):
            self._ended[order_id] = now_ns

    def due(self, now_ns: int) -> list[str]:
        """Ids of GTD orders whose expiry is at or before ``now_ns`` (some may have ended already)."""
        ids = []
        while self._expiries and self._expiries[0][0] <= now_ns:
            ids.append(heapq.heappop(self._expiries)[2])
        return ids

    def committed(self, owner: str, token: str) -> tuple[int, int]:
        """What ``owner``'s resting orders hold: pUSD on all its BUYs, shares on its SELLs of ``token``."""
        buying = selling = 0
        for o in self.of_owner(owner).values():
            if o.side is Side.BUY:
                buying += notional(o.price, o.remaining)
            elif o.token == token:
                selling += o.remaining
        return buying, selling

    def forget_ended(self, before_ns: int) -> int:
        """Forget caller-chosen ids that ended before ``before_ns``; returns how many."""
        doomed = []
        for order_id, ended_ns in self._ended.items():  # oldest first: the world's clock only goes on
            if ended_ns >= before_ns:
                break
            doomed.append(order_id)
        for order_id in doomed:
            del self._ended[order_id]
        return len(doomed)

    def sizes(self) -> dict[str, int]:
        return {"resting": len(self.resting), "owners": len(self._by_owner), "ended_ids": len(self._ended),
                "expiries": len(self._expiries)}

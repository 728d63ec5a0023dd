"""The simulator's order book pieces: a resting order and one side of one token's book.

A side is a dict of FIFO queues keyed by price plus a running total per price (a dict of levels,
as DESIGN §13 recommends); the best price is a max/min over the keys, which stays cheap for the
few dozen levels a simulated book holds.
"""

from __future__ import annotations

from collections import deque

import attrs

from mmbot.model import Side, TimeInForce
from mmbot.venues.simulator.events import OrderView

Level = tuple[int, int]  # (price, total size)


@attrs.define(eq=False, slots=True)
class RestingOrder:
    order_id: str
    owner: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    tif: TimeInForce
    post_only: bool
    created_ns: int
    expires_ns: int | None
    matched: int = 0
    maker: str = ""  # the wallet it trades for ("": the owner's own address)
    trades: list[str] = attrs.Factory(list)  # ids of its fills so far

    @property
    def remaining(self) -> int:
        return self.size - self.matched

    def view(self) -> OrderView:
        return OrderView(
            order_id=self.order_id, owner=self.owner, market=self.market, token=self.token,
            side=self.side, price=self.price, original_size=self.size, size_matched=self.matched,
            tif=self.tif, post_only=self.post_only, created_ns=self.created_ns,
            expires_ns=self.expires_ns, maker=self.maker, trade_ids=tuple(self.trades),
        )


class Ladder:
    """One side of one token's book: a FIFO queue and a running total per price."""

    __slots__ = ("side", "queues", "totals")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.queues: dict[int, deque[RestingOrder]] = {}
        self.totals: dict[int, int] = {}

    def best(self) -> int | None:
        if not self.totals:
            return None
        return max(self.totals) if self.side is Side.BUY else min(self.totals)

    def levels(self) -> tuple[Level, ...]:
        """Best first."""
        return tuple(sorted(self.totals.items(), reverse=self.side is Side.BUY))

    def add(self, order: RestingOrder) -> int:
        self.queues.setdefault(order.price, deque()).append(order)
        total = self.totals.get(order.price, 0) + order.remaining
        self.totals[order.price] = total
        return total

    def reduce(self, order: RestingOrder, qty: int) -> int:
        """Take ``qty`` off ``order`` (already counted in the order); drop it when empty."""
        total = self.totals[order.price] - qty
        if order.remaining == 0:
            queue = self.queues[order.price]
            queue.remove(order)
            if not queue:
                del self.queues[order.price]
        if total:
            self.totals[order.price] = total
        else:
            del self.totals[order.price]
        return total

    def remove(self, order: RestingOrder) -> int:
        queue = self.queues[order.price]
        queue.remove(order)
        if not queue:
            del self.queues[order.price]
        total = self.totals[order.price] - order.remaining
        if total:
            self.totals[order.price] = total
        else:
            del self.totals[order.price]
        return total

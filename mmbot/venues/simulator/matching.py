"""How an incoming order meets resting ones: the engine's matching rules, as plain functions over
the two sources a taker may take from.

An incoming order is *marketable* when it is FOK/FAK, or when it crosses its own token's opposite
side. A marketable order walks two sources level by level, taking whichever gives it the better
price, and each resting level at its own price (price improvement goes to the taker): the token's
opposite side (DIRECT), and the complement's same side - a BUY YES at ``p`` takes a resting BUY NO
at ``q`` when ``p + q >= 1`` and pays ``1 - q`` (MINT), a SELL YES at ``p`` takes a resting SELL NO
at ``q`` when ``p + q <= 1`` and receives ``1 - q`` (MERGE). On a price tie the direct level goes
first.
"""

from __future__ import annotations

from mmbot.model import ONE, Side
from mmbot.venues.simulator.book import Ladder, RestingOrder


def better_or_equal(side: Side, price: int, limit: int) -> bool:
    """Whether a taker on ``side`` with ``limit`` accepts ``price``."""
    return price <= limit if side is Side.BUY else price >= limit


def crosses(order: RestingOrder, direct: Ladder) -> bool:
    """Whether ``order`` would take from its own token's opposite side."""
    best = direct.best()
    return best is not None and better_or_equal(order.side, best, order.price)


def available(order: RestingOrder, direct: Ladder, comp: Ladder, enough: int) -> int:
    """Shares ``order`` could take right now at acceptable prices (stops counting at ``enough``)."""
    total = 0
    for price, size in direct.levels():
        if total >= enough or not better_or_equal(order.side, price, order.price):
            break
        total += size
    for price, size in comp.levels():
        if total >= enough or not better_or_equal(order.side, ONE - price, order.price):
            break
        total += size
    return total


def next_maker(taker: RestingOrder, direct: Ladder, comp: Ladder) -> tuple[Ladder, RestingOrder, bool] | None:
    """The resting order ``taker`` meets next — (its ladder, it, whether it is DIRECT) — or None."""
    d = direct.best()
    c = comp.best()
    d_ok = d is not None and better_or_equal(taker.side, d, taker.price)
    c_ok = c is not None and better_or_equal(taker.side, ONE - c, taker.price)
    if d is not None and d_ok and (c is None or not c_ok or better_or_equal(taker.side, d, ONE - c)):
        return direct, direct.queues[d][0], True
    if c is not None and c_ok:
        return comp, comp.queues[c][0], False
    return None

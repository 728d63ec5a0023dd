"""How an incoming order meets resting ones: the engine's matching rules, as plain functions over
the two sources a taker may take from.

An incoming order is *marketable* when it is FOK/FAK, or when it crosses its own token's opposite
side (on a mirrored engine also when it would mint or merge with the complement's same side).
A marketable order walks two sources level by level, taking whichever gives it the better
price, and each resting level at its own price (price improvement goes to the taker): the token's
opposite side (DIRECT), and the complement's same side - a BUY YES at ``p`` takes a resting BUY NO
at ``q`` when ``p + q >= 1`` and pays ``1 - q`` (MINT), a SELL YES at ``p`` takes a resting SELL NO
at ``q`` when ``p + q <= 1`` and receives ``1 - q`` (MERGE). On a price tie the direct level goes
first; within a level, the order that came first.

``plan`` lists the fills an order would make, without changing anything: the engine checks an
order against it (FOK, FAK, the account's balance) and then carries out exactly those fills. A
market BUY (``budget``) spends pUSD instead of asking for a number of shares: at each maker it
buys what its money left buys in whole hundredths of a share (so every fill costs an exact number
of micro-units), until that is nothing.
"""

from __future__ import annotations

from typing import Iterator

import attrs

from mmbot.model import ONE, Side, notional
from mmbot.model.money import SHARE_STEP
from mmbot.venues.simulator.book import Ladder, RestingOrder


@attrs.frozen
class Take:
    """One fill an incoming order would make: ``size`` shares from ``maker`` at ``price`` (the
    price the taker pays or receives)."""

    ladder: Ladder
    maker: RestingOrder
    direct: bool
    size: int
    price: int


def better_or_equal(side: Side, price: int, limit: int) -> bool:
    """Whether a taker on ``side`` with ``limit`` accepts ``price``."""
    return price <= limit if side is Side.BUY else price >= limit


def crosses(order: RestingOrder, direct: Ladder) -> bool:
    """Whether ``order`` would take from its own token's opposite side."""
    best = direct.best()
    return best is not None and better_or_equal(order.side, best, order.price)


def crosses_complement(order: RestingOrder, comp: Ladder) -> bool:
    """Whether ``order`` would mint (BUY) or merge (SELL) with the complement's same side."""
    best = comp.best()
    return best is not None and better_or_equal(order.side, ONE - best, order.price)


def affordable(budget: int, price: int) -> int:
    """The shares ``budget`` pUSD buys at ``price``, in whole hundredths of a share."""
    return budget * ONE // price // SHARE_STEP * SHARE_STEP


def plan(taker: RestingOrder, direct: Ladder, comp: Ladder, budget: int | None = None) -> list[Take]:
    """The fills ``taker`` would make now, in order: up to its remaining size, or, with a
    ``budget``, for as long as the pUSD left buys a hundredth of a share."""
    takes: list[Take] = []
    left = taker.remaining
    for ladder, maker, is_direct, price in _makers(taker, direct, comp):
        size = min(left, maker.remaining)
        if budget is not None:
            size = min(size, affordable(budget, price))
            if size <= 0:
                break
            budget -= notional(price, size)
        takes.append(Take(ladder=ladder, maker=maker, direct=is_direct, size=size, price=price))
        left -= size
        if left <= 0:
            break
    return takes


def _makers(taker: RestingOrder, direct: Ladder, comp: Ladder) -> Iterator[tuple[Ladder, RestingOrder, bool, int]]:
    """The resting orders ``taker`` may meet, in the order it meets them: (ladder, order, whether
    DIRECT, the taker's price)."""
    side = taker.side
    own = [(p, p) for p in sorted(direct.totals, reverse=direct.side is Side.BUY)]
    other = [(ONE - p, p) for p in sorted(comp.totals, reverse=comp.side is Side.BUY)]
    i = j = 0
    while True:
        d_ok = i < len(own) and better_or_equal(side, own[i][0], taker.price)
        c_ok = j < len(other) and better_or_equal(side, other[j][0], taker.price)
        if d_ok and (not c_ok or better_or_equal(side, own[i][0], other[j][0])):
            price, level = own[i]
            ladder, is_direct = direct, True
            i += 1
        elif c_ok:
            price, level = other[j]
            ladder, is_direct = comp, False
            j += 1
        else:
            return
        for maker in ladder.queues[level]:
            yield ladder, maker, is_direct, price

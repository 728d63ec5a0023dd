"""Our fills in a user-channel ``trade`` message, as legs for reconciliation (protocol doc §3).

``trader_side: "TAKER"``: the top-level order, token, side, price and size are ours.
``trader_side: "MAKER"``: the top level is the *taker's* order; ours are the ``maker_orders[]``
entries whose ``owner`` is our API key or whose ``maker_address`` is one of our addresses —
possibly several, at several prices. An entry without a side gets it by the side-inversion rule:
on the taker's token our side is the opposite of the taker's, on the other outcome (a mint or
merge match) it is the same.

Each leg's trade id is the venue's trade id, suffixed with our order id for maker legs (one trade
may fill several of our resting orders). Venue order ids are mapped to ours where we know them; a
leg of an order we never sent keeps the venue's id and reconciliation adopts it.
"""

from __future__ import annotations

from typing import Callable, Mapping

from mmbot.decisions.reconcile import VenueLeg
from mmbot.model import Liquidity, UserTrade


def our_legs(
    trade: UserTrade, *, api_key: str, addresses: frozenset[str], our_ids: Mapping[str, str],
    taker_fee: Callable[[str, int, int], int],
) -> list[VenueLeg]:
    """``our_ids``: venue order id -> our order id; ``taker_fee(token, price, size)``; addresses lower-case."""
    if trade.trader_side is Liquidity.TAKER:
        return [VenueLeg(
            trade_id=trade.trade_id, order_id=our_ids.get(trade.taker_order_id, trade.taker_order_id),
            market=trade.market, token=trade.token, side=trade.side, price=trade.price, size=trade.size,
            fee=taker_fee(trade.token, trade.price, trade.size), status=trade.status,
        )]
    legs = []
    for entry in trade.maker_orders:
        if entry.owner != api_key and entry.maker_address.lower() not in addresses:
            continue
        side = entry.side or (trade.side.opposite if entry.token == trade.token else trade.side)
        legs.append(VenueLeg(
            trade_id=f"{trade.trade_id}:{entry.order_id}", order_id=our_ids.get(entry.order_id, entry.order_id),
            market=trade.market, token=entry.token, side=side, price=entry.price, size=entry.matched_amount,
            fee=0, status=trade.status, liquidity=Liquidity.MAKER,
        ))
    return legs

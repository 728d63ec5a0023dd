"""The price arithmetic the strategies decide with: pure functions of book tops, ladders and prices.

``decisions/strategy.py`` holds the strategies themselves; what is here reads nothing but its
arguments (books through ``strategy_view.BookLike``) and changes nothing.
"""

from __future__ import annotations

from typing import Callable, Sequence

from mmbot.decisions.strategy_view import BookLike, OrderLike
from mmbot.model import ONE


def round_down(value: int, step: int) -> int:
    return value - value % step


def tops_may_pay(book_yes: BookLike, book_no: BookLike, min_edge: int) -> bool:
    """Whether the best asks sum to at most 1 - min_edge or the best bids to at least 1 + min_edge:
    fees only widen the gap, so when neither holds no set can be bought or sold at an edge."""
    ask_yes, ask_no, bid_yes, bid_no = book_yes.best_ask, book_no.best_ask, book_yes.best_bid, book_no.best_bid
    if ask_yes is not None and ask_no is not None and ask_yes + ask_no <= ONE - min_edge:
        return True
    return bid_yes is not None and bid_no is not None and bid_yes + bid_no >= ONE + min_edge


def walk_pair(first: list[tuple[int, int]], second: list[tuple[int, int]], accept: Callable[[int, int, int], bool],
              max_size: int) -> tuple[int, int, int]:
    """Walk two ladders best-first, taking equal sizes from both while ``accept(p1, p2, q)`` holds.

    Returns (size, worst price taken on the first ladder, worst on the second).
    """
    i = j = 0
    left1 = first[0][1] if first else 0
    left2 = second[0][1] if second else 0
    size = worst1 = worst2 = 0
    while i < len(first) and j < len(second) and size < max_size:
        p1, p2 = first[i][0], second[j][0]
        take = min(left1, left2, max_size - size)
        if take <= 0 or not accept(p1, p2, take):
            break
        size += take
        worst1, worst2 = p1, p2
        left1 -= take
        left2 -= take
        if left1 == 0:
            i += 1
            left1 = first[i][1] if i < len(first) else 0
        if left2 == 0:
            j += 1
            left2 = second[j][1] if j < len(second) else 0
    return size, worst1, worst2


def near(quotes: Sequence[OrderLike], token: str, price: int, threshold: int) -> bool:
    """Whether one of ``quotes`` on ``token`` is priced less than ``threshold`` away from ``price``."""
    for quote in quotes:
        if quote.token == token and abs(quote.price - price) < threshold:
            return True
    return False


def resting_bid(price: int, tick: int, book: BookLike, other: BookLike) -> int | None:
    """``price`` on the tick grid, below the lowest price a buyer of ``book``'s token can be
    matched at (its best ask, or 1 minus the other token's best bid: minting); None outside
    [tick, 1 - tick]."""
    price -= price % tick
    ask, other_bid = book.best_ask, other.best_bid
    if other_bid is not None and (ask is None or ONE - other_bid < ask):
        ask = ONE - other_bid
    if ask is not None:
        below = ask - tick
        below -= below % tick
        if below < price:
            price = below
    return price if tick <= price <= ONE - tick else None


def fair_yes(book_yes: BookLike, book_no: BookLike) -> int | None:
    """The YES price both books agree on: the mean of YES's mid and one minus NO's mid."""
    bid, ask, no_bid, no_ask = book_yes.best_bid, book_yes.best_ask, book_no.best_bid, book_no.best_ask
    if no_bid is None or no_ask is None:
        return None if bid is None or ask is None else (bid + ask) // 2
    no_mid = ONE - (no_bid + no_ask) // 2
    return no_mid if bid is None or ask is None else ((bid + ask) // 2 + no_mid) // 2

"""The venue's trade prints, kept for the public price endpoints, sans-IO.

Fed with the engine's events as the venue drains them (``on_events``), it keeps each token's
last trade, price and side (``GET /last-trade-price``), and a bounded history of its trade prices,
one point a minute: the last price traded in that minute (``GET /prices-history``). A trade
prints on the taker's token at the taker's price and side and, when it minted or merged a
complete set, on the maker's token at the maker's price and side. Times are the world's.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

from mmbot.model import Side
from mmbot.venues.simulator import events as ev

SECOND = 1_000_000_000
MINUTE_S = 60
MAX_POINTS = 10_080  # per token: a week of one-minute points


class TradePrints:
    def __init__(self, *, max_points: int = MAX_POINTS) -> None:
        self._max_points = max_points
        self._last: dict[str, tuple[int, Side]] = {}
        self._minutes: dict[str, deque[tuple[int, int]]] = {}  # token -> (minute start in seconds, price)

    def on_events(self, events: Iterable[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.Trade):
                self._print(event.taker_token, event.taker_price, event.taker_side, event.ts_ns)
                if event.maker_token != event.taker_token:
                    self._print(event.maker_token, event.maker_price, event.maker_side, event.ts_ns)

    def _print(self, token: str, price: int, side: Side, ts_ns: int) -> None:
        self._last[token] = (price, side)
        minute = ts_ns // SECOND // MINUTE_S * MINUTE_S
        points = self._minutes.get(token)
        if points is None:
            points = self._minutes[token] = deque(maxlen=self._max_points)
        if points and points[-1][0] == minute:
            points[-1] = (minute, price)
        else:
            points.append((minute, price))

    def last(self, token: str) -> tuple[int, Side] | None:
        """The token's last trade (price, side), or None if it never traded."""
        return self._last.get(token)

    def history(self, token: str, *, start_s: int, end_s: int, fidelity_min: int) -> list[tuple[int, int]]:
        """(t, price) for each ``fidelity_min``-minute bucket (aligned on the epoch) between
        ``start_s`` and ``end_s`` that saw a trade: the bucket's start and its last price."""
        bucket_s = fidelity_min * MINUTE_S
        found: dict[int, int] = {}
        for minute, price in self._minutes.get(token, ()):
            if start_s <= minute <= end_s:
                found[minute // bucket_s * bucket_s] = price
        return list(found.items())

    def forget(self, tokens: Iterable[str]) -> None:
        """Drop what the venue no longer knows (the tokens of a forgotten market)."""
        for token in tokens:
            self._last.pop(token, None)
            self._minutes.pop(token, None)

"""Market boundaries: tell the executor when a market enters its no-new-orders window.

Strategies pull quotes near a market's end when a book update arrives, but a quiet book may send
nothing then; this service makes the boundary a fact of its own, on the injected scheduler, so
open orders are cancelled on time whatever the feed does.
"""

from __future__ import annotations

from typing import Any

from mmbot.model import MarketClosing, MarketInfo
from mmbot.ports import Scheduler


class Boundaries:
    def __init__(self, *, scheduler: Scheduler, inbox: Any, buffer_s: int) -> None:
        self._scheduler = scheduler
        self._inbox = inbox  # facts.bus.Stream of the executor
        self._buffer_ns = buffer_s * 1_000_000_000
        self._watched: set[str] = set()

    def watch(self, info: MarketInfo) -> None:
        if info.end_ns is None or info.market in self._watched:
            return
        self._watched.add(info.market)
        closing = MarketClosing(cid=f"end-{len(self._watched)}", market=info.market)
        self._scheduler.call_at(info.end_ns - self._buffer_ns, lambda: self._inbox.send(closing))

"""Market boundaries: tell the executor when a market enters its no-new-orders window.

Strategies pull quotes near a market's end when a book update arrives, but a quiet book may send
nothing then; this service makes the boundary a fact of its own, on the injected scheduler, so
open orders are cancelled on time whatever the feed does.

A forgotten market (``forget``) has its timer cancelled if it has not fired yet; watching it again
afterwards (listed anew) sets a fresh one.
"""

from __future__ import annotations

from typing import Any

from mmbot.model import MarketClosing, MarketInfo
from mmbot.ports import Scheduler, TimerHandle


class Boundaries:
    def __init__(self, *, scheduler: Scheduler, inbox: Any, buffer_s: int) -> None:
        self._scheduler = scheduler
        self._inbox = inbox  # facts.bus.Stream of the executor
        self._buffer_ns = buffer_s * 1_000_000_000
        self._timers: dict[str, TimerHandle] = {}  # market -> its boundary timer, fired or not
        self._count = 0  # closings numbered in the order markets were watched

    def watch(self, info: MarketInfo) -> None:
        if info.end_ns is None or info.market in self._timers:
            return
        self._count += 1
        closing = MarketClosing(cid=f"end-{self._count}", market=info.market)
        self._timers[info.market] = self._scheduler.call_at(info.end_ns - self._buffer_ns,
                                                            lambda: self._inbox.send(closing))

    def forget(self, market: str) -> None:
        """Stop watching ``market`` (it was forgotten): its timer, if still to fire, never will."""
        timer = self._timers.pop(market, None)
        if timer is not None:
            timer.cancel()

    def watched(self) -> int:
        return len(self._timers)

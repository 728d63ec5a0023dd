"""What one channel connection asked for, and what it may cost, sans-IO: the market channel's
assets, the user channel's market filter, and the budget of work a connection's requests may
make the server do.

Every bound here is per connection, so one client can neither grow the server's memory without
limit nor hold the event loop while other clients wait:

- a market-channel connection holds at most ``MAX_ASSETS`` assets; ids the venue does not know
  are ignored, not stored, and ids past the limit are refused (the venue itself stops sending
  snapshots past ~500 assets, protocol doc §2);
- a user-channel connection filters on at most ``MAX_MARKETS`` condition ids, known ones only;
- each subscription request is charged one unit plus one per id it names (at most the whole
  budget) against a ``Budget`` that refills ``BUDGET_PER_S`` units a second up to ``BUDGET``; a
  request the budget does not cover waits until it does, so a client that churns subscriptions
  slows itself down, and nobody else.

Times are passed in (nanoseconds on the server's clock).
"""

from __future__ import annotations

from typing import Callable, Iterable

import attrs

MAX_ASSETS = 500
MAX_MARKETS = 500
BUDGET = 1_000  # work units: a fresh 500-asset subscription twice over
BUDGET_PER_S = 1_000  # about 50 ms of snapshot rendering a second (~48 µs a book)
HELLO_TIMEOUT_S = 10  # a user-channel connection that has not authenticated by then is closed

_NS = 1_000_000_000


class Budget:
    """A token bucket of request work in integer units, refilled continuously on the clock given."""

    def __init__(self, now_ns: int, *, capacity: int = BUDGET, per_s: int = BUDGET_PER_S) -> None:
        if capacity <= 0 or per_s <= 0:
            raise ValueError("a budget needs a positive capacity and refill rate")
        self._capacity = capacity * _NS  # in nano-units, so the refill stays integer
        self._per_s = per_s
        self._level = self._capacity
        self._at_ns = now_ns

    def charge(self, cost: int, now_ns: int) -> int:
        """Charge ``cost`` units (at most the capacity) now; returns how many ns the request must
        wait before the budget covers it (0: at once)."""
        self._level = min(self._capacity, self._level + max(0, now_ns - self._at_ns) * self._per_s)
        self._at_ns = max(self._at_ns, now_ns)
        self._level -= min(cost * _NS, self._capacity)
        return 0 if self._level >= 0 else -(self._level // self._per_s)


def request_cost(names: int) -> int:
    """The units a request naming ``names`` ids costs: one for the request, one per id (the
    budget charges at most its capacity)."""
    return 1 + names


@attrs.frozen
class Granted:
    """The outcome of a subscribe request: assets newly subscribed, in the order asked, and what
    was left out."""

    fresh: list[str]
    unknown: int = 0  # not listed by the venue: ignored
    over_limit: int = 0  # known, but past the connection's limit


def subscribe_assets(held: set[str], asked: list[str], *, known: Callable[[str], bool],
                     limit: int = MAX_ASSETS) -> Granted:
    """Add the known ones among ``asked`` to ``held`` while it has room (``held`` changes)."""
    fresh: list[str] = []
    unknown = over = 0
    for asset in dict.fromkeys(asked):
        if asset in held:
            continue
        if not known(asset):
            unknown += 1
        elif len(held) >= limit:
            over += 1
        else:
            held.add(asset)
            fresh.append(asset)
    return Granted(fresh, unknown, over)


@attrs.define
class MarketFilter:
    """The user channel's ``markets`` filter of one connection (condition ids; protocol doc §3).

    The first frame's ``[]`` (or no ``markets``) means every market; then ``unsubscribe`` leaves
    the named ones out and ``subscribe`` takes them back. A first frame that names markets means
    those only; ``subscribe`` and ``unsubscribe`` add and remove.
    """

    everything: bool = True
    markets: set[str] = attrs.Factory(set)  # when not everything: the markets wanted
    excluded: set[str] = attrs.Factory(set)  # when everything: the markets left out

    @classmethod
    def first(cls, markets: list[str], *, known: Callable[[str], bool]) -> tuple[MarketFilter, Granted]:
        if not markets:
            return cls(), Granted([])
        chosen = cls(everything=False)
        return chosen, chosen.subscribe(markets, known=known)

    def wants(self, market: str) -> bool:
        return market not in self.excluded if self.everything else market in self.markets

    def subscribe(self, markets: list[str], *, known: Callable[[str], bool]) -> Granted:
        if self.everything:
            fresh = [m for m in dict.fromkeys(markets) if m in self.excluded]
            self.excluded.difference_update(fresh)
            return Granted(fresh)
        return subscribe_assets(self.markets, markets, known=known, limit=MAX_MARKETS)

    def unsubscribe(self, markets: Iterable[str], *, known: Callable[[str], bool]) -> Granted:
        if not self.everything:
            self.markets.difference_update(markets)
            return Granted([])
        return subscribe_assets(self.excluded, list(markets), known=known, limit=MAX_MARKETS)

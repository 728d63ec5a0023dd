"""What the ledger holds and how it refuses: a position (shares with their average-cost basis) and
the two errors — a request beyond what is available (bad luck, recorded as a risk verdict) and a
broken invariant (a bug)."""

from __future__ import annotations

import attrs

INSUFFICIENT_CASH = "insufficient_cash"
INSUFFICIENT_SHARES = "insufficient_shares"


class InsufficientFunds(Exception):
    """A reservation or merge asked for more than is available; nothing was changed."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class LedgerInvariantError(AssertionError):
    """The books no longer add up, or the caller broke the protocol: a bug, never bad input."""


@attrs.frozen
class Position:
    shares: int
    cost: int  # cost basis in pUSD micro of the shares held (average-cost method)

    def cost_of(self, shares: int) -> int:
        """Average cost of ``shares`` of this position, rounded down (see module docstring)."""
        if shares == self.shares:
            return self.cost
        return self.cost * shares // self.shares

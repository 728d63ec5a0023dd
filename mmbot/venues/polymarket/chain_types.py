"""What the chain port's two adapters share: the outcome of running calls on chain, the errors
that say what is known about it, and the ``ChainAdapter`` protocol the chain lane drives.

An adapter runs a list of ``contracts.Call`` as the account's wallet: the relayer adapter as one
``WALLET`` batch of the deposit wallet (all-or-nothing, gas paid by Polymarket), the direct adapter
as EIP-1559 transactions from the owner's EOA (one per call, gas paid in POL). Either returns only
once the chain has settled the question — confirmed (``ChainReceipt``) or failed
(``ChainFailed``: nothing happened, safe to try again) — and records each step as an event-log
row with the caller's correlation id. An answer lost on the way is not a failure: the adapter finds
out from the chain itself (the wallet's nonce, the transaction's hash) before it returns.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import attrs

from mmbot.ports import VenueError
from mmbot.venues.polymarket.contracts import Call


@attrs.frozen
class ChainReceipt:
    """Calls that the chain ran, confirmed."""

    tx_hash: str  # 0x-hex; the last one's when an EOA sent several transactions
    block: int
    reference: str = ""  # the relayer's transactionID, or "" for direct transactions
    gas_used: int = 0


class ChainFailed(VenueError):
    """The calls did not take effect: reverted, refused, failed or invalid at the relayer, or
    proven not to have landed. ``retryable``: the same calls may succeed later (a busy wallet,
    a nonce race, a stuck transaction replaced) rather than never (a revert, a blocked target)."""

    def __init__(self, reason: str, *, retryable: bool, tx_hash: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.tx_hash = tx_hash


class ChainUnreachable(VenueError):
    """The RPC node or the relayer could not be asked (connect error, 5xx, timeout): nothing is
    known to have been sent. An adapter that has sent something never raises this; it keeps
    asking until it knows."""


class ChainAdapter(Protocol):
    """Runs calls as one account on chain."""

    @property
    def address(self) -> str:
        """The address whose pUSD and shares the calls move: the deposit wallet or the EOA."""

    @property
    def atomic(self) -> bool:
        """True when several calls run as one all-or-nothing unit (a relayer batch)."""

    async def execute(self, calls: Sequence[Call], *, cid: str) -> ChainReceipt:
        """Run ``calls`` and wait until the chain confirms them; ``ChainFailed`` if they did not
        take effect, ``ChainUnreachable`` if nothing could be sent."""
        ...

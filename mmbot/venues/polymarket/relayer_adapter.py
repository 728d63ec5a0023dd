"""The chain adapter of a deposit wallet: calls run as one relayer ``WALLET`` batch, all or nothing
(onchain reference §3, §4).

``execute`` checks the wallet on chain (deployed, owned by our key), reads its ``nonce()``, signs
the batch with a deadline in *chain* time (the latest block's timestamp plus ``deadline_s``: the
contract compares the deadline with the block's timestamp, never with our clock), submits it and
polls the relayer until ``STATE_CONFIRMED`` (``STATE_MINED`` is not final), ``STATE_FAILED`` (the
batch reverted: nothing moved, retryable) or ``STATE_INVALID`` (never). A busy relayer is asked
again after its advice, each time with the nonce read afresh and the batch signed again.

A batch is never sent twice blindly. When the relayer's answer to ``/submit`` is lost, or it gives
no final state within ``timeout_s``, the chain decides: once the wallet's nonce has passed the
signed one, the batch ran; once the chain's time has passed the deadline with the nonce unmoved,
it never can. The nonce says *that* a batch with our nonce ran, not *which*: this holds because
mmbot is the only user of its wallet (a batch someone else signed for the same nonce would be
taken for ours).

Every step is an event-log row under the caller's correlation id: ``chain_submitted``,
``chain_state`` (each new state), ``chain_busy``, ``chain_unknown`` (the outcome is being settled
from the chain), then one of ``chain_confirmed`` or ``chain_failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn, Protocol

import trio

from mmbot.ports import EventSink
from mmbot.venues.polymarket.auth import CHAIN_ID, SigningKey, parse_address
from mmbot.venues.polymarket.chain_types import ChainFailed, ChainReceipt, ChainUnreachable
from mmbot.venues.polymarket.contracts import Call, CalldataError, refuse_retired
from mmbot.venues.polymarket.relayer import (
    STATE_CONFIRMED, STATE_FAILED, STATE_INVALID, RelayerBusy, RelayerClient, RelayerTransaction, SubmitUnknown,
)
from mmbot.venues.polymarket.wallet_batch import batch_body, create_body, sign_batch

NOT_DEPLOYED = "the deposit wallet is not deployed: run mmbot wallet deploy"
EXPIRED = "expired unsent"


class WalletChain(Protocol):
    """What the adapter reads from the chain (the RPC reader provides it)."""

    async def wallet_nonce(self, wallet: str) -> int:
        """The deposit wallet's batch ``nonce()``."""

    async def code(self, address: str) -> bytes:
        """The contract code at ``address`` (empty: nothing deployed there)."""

    async def wallet_owner(self, wallet: str) -> str | None:
        """The deposit wallet's ``owner()``, or None if it has none (not a deposit wallet)."""

    async def now_s(self) -> int:
        """The latest block's timestamp."""


class RelayerAdapter:
    """Runs calls as one deposit wallet's batches through the relayer (``ChainAdapter``)."""

    def __init__(self, *, relayer: RelayerClient, chain: WalletChain, key: SigningKey, wallet: str, sink: EventSink,
                 chain_id: int = CHAIN_ID, deadline_s: int = 240, poll_s: float = 2.0,  # float-ok: delays
                 timeout_s: float = 300.0, busy_retries: int = 10) -> None:  # float-ok: delays
        self._relayer = relayer
        self._chain = chain
        self._key = key
        self._wallet = parse_address(wallet)
        self._sink = sink
        self._chain_id = chain_id
        self._deadline_s = deadline_s
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._busy_retries = busy_retries
        self._verified = False  # the wallet's code and owner were checked once: neither changes

    def __repr__(self) -> str:
        return f"RelayerAdapter(wallet={self._wallet!r}, owner={self._key.address!r})"

    @property
    def address(self) -> str:
        return self._wallet

    @property
    def atomic(self) -> bool:
        return True

    # ------------------------------------------------------------------ batches

    async def execute(self, calls: Sequence[Call], *, cid: str) -> ChainReceipt:
        """Run ``calls`` as one batch and wait until the chain settles it: a ``ChainReceipt``, or
        ``ChainFailed`` when it did not run. ``ChainUnreachable`` only while nothing was sent."""
        if not calls:
            raise ValueError("a batch holds at least one call")
        described = [c.describe() for c in calls]
        for call in calls:
            try:
                refuse_retired(call)
            except CalldataError as exc:
                self._failed(cid, str(exc), retryable=False, calls=described)
        await self._verify(cid, described)
        for attempt in range(self._busy_retries + 1):
            deadline = await self._chain.now_s() + self._deadline_s
            nonce = await self._chain.wallet_nonce(self._wallet)
            signature = sign_batch(self._key, wallet=self._wallet, nonce=nonce, deadline=deadline, calls=calls,
                                   chain_id=self._chain_id)
            body = batch_body(owner=self._key.address, wallet=self._wallet, nonce=nonce, deadline=deadline,
                              calls=calls, signature=signature)
            signed = {"calls": described, "nonce": nonce, "deadline": deadline}
            try:
                submitted = await self._relayer.submit(body)
            except RelayerBusy as busy:
                await self._busy(cid, busy, attempt, signed)
                continue
            except SubmitUnknown as exc:
                self._row("chain_unknown", cid, {**signed, "why": exc.reason})
                return await self._settle(cid, nonce, deadline)
            except ChainFailed as exc:
                self._failed(cid, exc.reason, retryable=exc.retryable, **signed)
            self._row("chain_submitted", cid, {**signed, "transaction_id": submitted.transaction_id})
            receipt = await self._follow(cid, submitted, {})
            if receipt is not None:
                self._row("chain_confirmed", cid, receipt[1])
                return receipt[0]
            self._row("chain_unknown", cid, {**signed, "transaction_id": submitted.transaction_id,
                                             "why": f"no final state from the relayer in {self._timeout_s:g} s"})
            return await self._settle(cid, nonce, deadline)
        raise AssertionError("unreachable: the last busy attempt raises")

    async def _verify(self, cid: str, described: list[str]) -> None:
        """Refuse before signing unless the wallet is deployed and owned by our key."""
        if self._verified:
            return
        if not await self._chain.code(self._wallet):
            self._failed(cid, NOT_DEPLOYED, retryable=False, calls=described)
        owner = await self._chain.wallet_owner(self._wallet)
        if owner is None or owner.lower() != self._key.address.lower():
            self._failed(cid, f"the deposit wallet {self._wallet} is owned by {owner or 'nobody'}, not by the"
                              f" key's address {self._key.address}", retryable=False, calls=described)
        self._verified = True

    async def _busy(self, cid: str, busy: RelayerBusy, attempt: int, extra: dict[str, Any]) -> None:
        """Record a refusal-for-now; wait as advised, or give up after ``busy_retries``."""
        wait_s = busy.retry_after_s if busy.retry_after_s is not None else self._poll_s
        self._row("chain_busy", cid, {**extra, "reason": busy.reason, "attempt": attempt + 1,
                                      "wait_ms": round(wait_s * 1000)})
        if attempt >= self._busy_retries:
            self._failed(cid, f"the relayer stayed busy after {attempt + 1} tries: {busy.reason}", retryable=True,
                         **extra)
        await trio.sleep(wait_s)

    async def _follow(self, cid: str, transaction: RelayerTransaction,
                      extra: dict[str, Any]) -> tuple[ChainReceipt, dict[str, Any]] | None:
        """Poll until a final state: the receipt and its ``chain_confirmed`` payload when
        confirmed, ``ChainFailed`` when failed or invalid, None after ``timeout_s`` without one. A
        poll that fails or reads nothing is no news: the transaction is in the relayer's hands
        whatever the reads say."""
        states: list[str] = []
        with trio.move_on_after(self._timeout_s):
            while True:
                if not states or transaction.state != states[-1]:
                    states.append(transaction.state)
                    self._row("chain_state", cid, {**extra, "transaction_id": transaction.transaction_id,
                                                   "state": transaction.state})
                if transaction.state == STATE_CONFIRMED:  # the relayer gives no block number: 0
                    return (ChainReceipt(tx_hash=transaction.tx_hash, block=0, reference=transaction.transaction_id),
                            {**extra, "transaction_id": transaction.transaction_id, "tx_hash": transaction.tx_hash,
                             "states": states})
                if transaction.state in (STATE_FAILED, STATE_INVALID):
                    reason = f"the relayer's transaction ended {transaction.state}"
                    self._failed(cid, reason + (f": {transaction.error}" if transaction.error else ""),
                                 retryable=transaction.state == STATE_FAILED, tx_hash=transaction.tx_hash,
                                 **extra, transaction_id=transaction.transaction_id, states=states)
                await trio.sleep(self._poll_s)
                try:
                    polled = await self._relayer.transaction(transaction.transaction_id)
                except (ChainUnreachable, ChainFailed):
                    continue
                if polled is not None:
                    transaction = polled
        return None

    async def _settle(self, cid: str, nonce: int, deadline: int) -> ChainReceipt:
        """Wait until the chain says whether the batch signed with ``nonce`` ran. The chain's time
        is read before the nonce: a block that could hold the batch is no later than one past the
        deadline, so a nonce read after seeing such a block already includes it."""
        while True:
            try:
                now = await self._chain.now_s()
                current = await self._chain.wallet_nonce(self._wallet)
            except ChainUnreachable:
                await trio.sleep(self._poll_s)
                continue
            if current > nonce:
                self._row("chain_confirmed", cid, {"by": "nonce", "nonce": nonce, "wallet_nonce": current})
                return ChainReceipt(tx_hash="", block=0, reference="")
            if now > deadline:
                self._failed(cid, EXPIRED, retryable=True, nonce=nonce, deadline=deadline, chain_time=now)
            await trio.sleep(self._poll_s)

    # ------------------------------------------------------------------ deployment

    async def deploy(self, *, cid: str) -> ChainReceipt:
        """Deploy the wallet through the relayer's ``WALLET-CREATE`` unless code is already there;
        return once the relayer confirms it *and* the chain shows its code. Safe to repeat: a
        deployed wallet is found by its code, and the factory cannot deploy one twice."""
        extra = {"action": "deploy"}
        if await self._chain.code(self._wallet):
            self._row("chain_confirmed", cid, {**extra, "already": True})
            return ChainReceipt(tx_hash="", block=0, reference="")
        body = create_body(owner=self._key.address)
        for attempt in range(self._busy_retries + 1):
            try:
                submitted = await self._relayer.submit(body)
            except RelayerBusy as busy:
                await self._busy(cid, busy, attempt, extra)
                continue
            except SubmitUnknown as exc:
                self._row("chain_unknown", cid, {**extra, "why": exc.reason})
                return await self._code_appears(cid, None)
            except ChainFailed as exc:
                self._failed(cid, exc.reason, retryable=exc.retryable, **extra)
            self._row("chain_submitted", cid, {**extra, "transaction_id": submitted.transaction_id})
            confirmed = await self._follow(cid, submitted, extra)
            if confirmed is None:
                self._row("chain_unknown", cid, {**extra, "transaction_id": submitted.transaction_id,
                                                 "why": f"no final state from the relayer in {self._timeout_s:g} s"})
            return await self._code_appears(cid, confirmed)
        raise AssertionError("unreachable: the last busy attempt raises")

    async def _code_appears(self, cid: str, confirmed: tuple[ChainReceipt, dict[str, Any]] | None) -> ChainReceipt:
        """Wait (to ``timeout_s``) until the wallet's code is on chain, which confirms the deploy
        whatever the relayer said or failed to say (its word can also run ahead of the node we
        read). No code by then: ``ChainFailed``, retryable since a second deploy is harmless."""
        receipt, payload = confirmed or (ChainReceipt(tx_hash="", block=0, reference=""), {"action": "deploy",
                                                                                          "by": "code"})
        with trio.move_on_after(self._timeout_s):
            while True:
                try:
                    if await self._chain.code(self._wallet):
                        self._row("chain_confirmed", cid, payload)
                        return receipt
                except ChainUnreachable:
                    pass
                await trio.sleep(self._poll_s)
        self._failed(cid, f"no code at {self._wallet} after {self._timeout_s:g} s", retryable=True, action="deploy")

    # ------------------------------------------------------------------ rows

    def _row(self, kind: str, cid: str, payload: dict[str, Any]) -> None:
        self._sink.record(kind, cid, {"via": "relayer", **payload})

    def _failed(self, cid: str, reason: str, *, retryable: bool, tx_hash: str = "", **extra: Any) -> NoReturn:
        """Record ``chain_failed`` and raise it (never returns)."""
        self._row("chain_failed", cid, {**extra, "reason": reason, "retryable": retryable})
        raise ChainFailed(reason, retryable=retryable, tx_hash=tx_hash)

"""The chain adapter of an EOA account: each call is one EIP-1559 transaction the owner's key signs
and a Polygon JSON-RPC node broadcasts, gas paid in POL (polymarket-onchain.md §5.3).

Direct calls are **not atomic**: the calls of one ``execute`` go one transaction after another,
each waited for until it has ``confirmations`` blocks; when one reverts, the ones before it stay
done (their ``chain_confirmed`` rows say which).

One call's life, each step an event-log row with the caller's correlation id:

1. nonce (``pending``), gas (the node's estimate plus a margin; an estimate that reverts is
   ``ChainFailed``, nothing sent), fees (priority = the node's suggestion, never below the floor;
   max fee = twice the base fee plus the priority), signed; its hash is ``keccak(raw)``, known
   before anything is sent → ``chain_submitted``;
2. broadcast. A lost reply is not a failure: the hash is known, so the receipt is watched and the
   same bytes are broadcast again until the node answers (``already known`` / ``nonce too low``
   then mean: look for the receipt) → ``chain_send_lost``. ``nonce too low`` with no receipt of
   ours means another transaction took the nonce: signed again with a fresh nonce →
   ``chain_nonce_clash``;
3. no receipt after half of ``timeout_s``: replaced — same nonce, fees raised by at least 12.5 %
   → ``chain_replaced``; from then on either hash may land, and the first receipt found is the
   one (two transactions with one nonce cannot both be mined);
4. nothing mined after ``timeout_s``: ``ChainFailed(retryable=True, "not mined")`` only if the
   nonce is still unused on chain; otherwise the nonce's transaction is looked for;
5. the receipt with its confirmations: status 1 → ``chain_confirmed``, the next call; status 0 →
   ``chain_failed`` and ``ChainFailed("reverted", retryable=False)``.

Rows carry hashes, nonces and fees; never the key or the raw transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import attrs
import trio
from eth_hash.auto import keccak

from mmbot.ports import EventSink
from mmbot.venues.polymarket.auth import SigningKey
from mmbot.venues.polymarket.chain_types import ChainFailed, ChainReceipt, ChainUnreachable
from mmbot.venues.polymarket.contracts import Call, refuse_retired
from mmbot.venues.polymarket.rpc import RpcClient, RpcError

MAX_CLASHES = 3  # nonces taken by someone else in a row before the call is given up (retryable)
_KNOWN = ("already known", "known transaction", "already imported", "already exists")
_USED = ("nonce too low", "nonce is too low", "oldnonce")
T = TypeVar("T")
_NO_ANSWER = (ChainUnreachable, RpcError)  # once something is sent, a read the node fails is asked again


def bump(fee: int) -> int:
    """A fee raised by at least 12.5 %, what nodes ask of a replacement (geth: 10 %)."""
    return fee + -(-fee // 8)


@attrs.frozen
class _Tx:
    nonce: int
    gas: int
    priority_fee: int
    max_fee: int
    raw: bytes = attrs.field(repr=False)
    hash: str


@attrs.frozen
class _Mined:
    tx: _Tx
    status: int
    block: int
    gas_used: int


class _NonceClash(Exception):
    """Our nonce was used by a transaction that is not ours."""


class DirectAdapter:
    """``ChainAdapter`` for an EOA: calls are EIP-1559 transactions from ``key.address``."""

    def __init__(self, *, rpc: RpcClient, key: SigningKey, sink: EventSink, chain_id: int = 137,
                 confirmations: int = 2, poll_s: float = 2.0, timeout_s: float = 300.0,  # float-ok: delays
                 priority_floor_wei: int = 30 * 10**9, gas_margin_pct: int = 20) -> None:
        self._rpc = rpc
        self._key = key
        self._sink = sink
        self._chain_id = chain_id
        self._confirmations = max(1, confirmations)
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._floor = priority_floor_wei
        self._margin = gas_margin_pct

    @property
    def address(self) -> str:
        return self._key.address

    @property
    def atomic(self) -> bool:
        return False

    async def execute(self, calls: Sequence[Call], *, cid: str) -> ChainReceipt:
        """Send ``calls`` one transaction each, in order, each confirmed before the next.
        ``ChainUnreachable`` only when nothing at all was sent; after a confirmed call, an
        unreachable node is ``ChainFailed(retryable=True)`` naming how many calls are done. The
        ``chain_confirmed`` rows say which calls of a failed list took effect."""
        if not calls:
            raise ValueError("no calls to execute")
        for call in calls:
            refuse_retired(call)
        done: list[_Mined] = []
        for call in calls:
            try:
                done.append(await self._run(call, cid))
            except ChainUnreachable as exc:
                if not done:
                    raise
                reason = f"{exc} (after {len(done)} of {len(calls)} calls confirmed)"
                self._record("chain_failed", cid, call, reason=reason, done=len(done))
                raise ChainFailed(reason, retryable=True) from None
        return ChainReceipt(tx_hash=done[-1].tx.hash, block=done[-1].block, gas_used=sum(m.gas_used for m in done))

    # ----------------------------------------------------------------------- one call

    async def _run(self, call: Call, cid: str) -> _Mined:
        clashes = 0
        while True:
            tx = await self._prepare(call, cid)
            try:
                mined = await self._land(call, tx, cid)
            except _NonceClash:
                clashes += 1
                self._record("chain_nonce_clash", cid, call, nonce=tx.nonce, tx_hash=tx.hash)
                if clashes >= MAX_CLASHES:
                    self._record("chain_failed", cid, call, reason="nonce clash", nonce=tx.nonce)
                    raise ChainFailed(f"nonce taken by another transaction {clashes} times", retryable=True) from None
                continue
            if mined.status != 1:
                self._record("chain_failed", cid, call, reason="reverted", tx_hash=mined.tx.hash, block=mined.block)
                raise ChainFailed("reverted", retryable=False, tx_hash=mined.tx.hash)
            self._record("chain_confirmed", cid, call, tx_hash=mined.tx.hash, nonce=mined.tx.nonce,
                         block=mined.block, gas_used=mined.gas_used)
            return mined

    async def _prepare(self, call: Call, cid: str) -> _Tx:
        """Nonce, gas and fees from the node, signed; ``chain_submitted`` once the hash is known."""
        try:
            nonce = await self._rpc.nonce(self.address, "pending")
            base_fee = await self._rpc.base_fee()
        except RpcError as exc:  # nothing is sent yet: as good as no answer
            raise ChainUnreachable(str(exc)) from None
        try:
            estimate = await self._rpc.estimate_gas(
                {"from": self.address, "to": call.target, "data": call.data, "value": call.value})
        except RpcError as exc:
            self._record("chain_failed", cid, call, reason=f"gas estimate: {exc.message}")
            raise ChainFailed(f"gas estimate: {exc.message}", retryable=not exc.reverted) from None
        gas = -(-estimate * (100 + self._margin) // 100)
        try:
            priority = max(await self._rpc.max_priority_fee(), self._floor)
        except RpcError:  # a node without eth_maxPriorityFeePerGas: the floor
            priority = self._floor
        max_fee = 2 * base_fee + priority
        tx = self._sign(call, nonce=nonce, gas=gas, priority=priority, max_fee=max_fee)
        self._record("chain_submitted", cid, call, nonce=nonce, tx_hash=tx.hash, max_fee=max_fee,
                     priority_fee=priority, gas=gas)
        return tx

    def _sign(self, call: Call, *, nonce: int, gas: int, priority: int, max_fee: int) -> _Tx:
        raw = self._key.sign_transaction({
            "type": 2, "chainId": self._chain_id, "nonce": nonce, "to": call.target, "value": call.value,
            "data": call.data, "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority,
        })
        return _Tx(nonce=nonce, gas=gas, priority_fee=priority, max_fee=max_fee, raw=raw, hash="0x" + keccak(raw).hex())

    async def _land(self, call: Call, tx: _Tx, cid: str) -> _Mined:
        """Broadcast ``tx`` and watch until one of its versions is mined with its confirmations."""
        sent = [tx]
        unanswered: set[str] = set()
        answer = await self._send(tx)
        if answer == "lost":
            self._record("chain_send_lost", cid, call, tx_hash=tx.hash, nonce=tx.nonce)
            unanswered.add(tx.hash)
        elif answer == "used":
            found = await self._find(sent, sure=True)
            if found is None:
                raise _NonceClash
            return await self._confirmed(found, sent)
        elif answer.startswith("refused"):
            self._record("chain_failed", cid, call, reason=answer, tx_hash=tx.hash, nonce=tx.nonce)
            raise ChainFailed(answer, retryable=True, tx_hash=tx.hash)
        half = self._timeout_s / 2
        found = None
        with trio.move_on_after(half):
            found = await self._first_receipt(sent, unanswered)
        if found is None:
            await self._replace(call, tx, sent, unanswered, cid)
            with trio.move_on_after(self._timeout_s - half):
                found = await self._first_receipt(sent, unanswered)
        if found is None:
            if await self._asking(functools.partial(self._rpc.nonce, self.address, "latest")) <= tx.nonce:
                self._record("chain_failed", cid, call, reason="not mined", tx_hash=tx.hash, nonce=tx.nonce)
                raise ChainFailed("not mined", retryable=True, tx_hash=tx.hash)
            found = await self._find(sent, sure=True)  # the nonce is used: ours, or someone else's
            if found is None:
                raise _NonceClash
        return await self._confirmed(found, sent)

    async def _replace(self, call: Call, stuck: _Tx, sent: list[_Tx], unanswered: set[str], cid: str) -> None:
        """Same nonce, fees raised ≥ 12.5 % (and to the node's current level if that is higher)."""
        priority, max_fee = bump(stuck.priority_fee), bump(stuck.max_fee)
        try:
            priority = max(priority, await self._rpc.max_priority_fee())
            max_fee = max(max_fee, 2 * await self._rpc.base_fee() + priority)
        except _NO_ANSWER:
            pass  # the bumped fees alone are enough to replace
        tx = self._sign(call, nonce=stuck.nonce, gas=stuck.gas, priority=priority, max_fee=max_fee)
        self._record("chain_replaced", cid, call, nonce=tx.nonce, tx_hash=tx.hash, replaces=stuck.hash,
                     max_fee=max_fee, priority_fee=priority, gas=tx.gas)
        answer = await self._send(tx)
        if answer.startswith("refused"):
            self._record("chain_replace_refused", cid, call, tx_hash=tx.hash, reason=answer)
            return
        sent.append(tx)  # "used" too: the receipt watch then finds which transaction took the nonce
        if answer == "lost":
            unanswered.add(tx.hash)

    # ----------------------------------------------------------------------- the node

    async def _send(self, tx: _Tx) -> str:
        """``accepted``, ``lost`` (no answer: it may or may not have arrived), ``used`` (the nonce
        is mined already) or ``refused: <the node's reason>``."""
        try:
            await self._rpc.send_raw(tx.raw)
        except ChainUnreachable:
            return "lost"
        except RpcError as exc:
            text = exc.message.lower()
            if any(k in text for k in _KNOWN):
                return "accepted"
            if any(k in text for k in _USED):
                return "used"
            return f"refused: {exc.message}"
        return "accepted"

    async def _first_receipt(self, sent: list[_Tx], unanswered: set[str]) -> _Mined | None:
        """Poll until a receipt of any version appears, broadcasting again those whose send had no
        answer; ``_NonceClash`` when the node says the nonce is used and none of ours is mined."""
        while True:
            found = await self._find(sent)
            if found is not None:
                return found
            for tx in [t for t in sent if t.hash in unanswered]:
                answer = await self._send(tx)
                if answer == "lost":
                    continue
                unanswered.discard(tx.hash)
                if answer == "used":
                    found = await self._find(sent, sure=True)
                    if found is None:
                        raise _NonceClash
                    return found
            await trio.sleep(self._poll_s)

    async def _find(self, sent: list[_Tx], *, sure: bool = False) -> _Mined | None:
        """The receipt of whichever version is mined, or None. ``sure``: None must mean the node
        has none (each read is asked again until answered), as deciding a nonce clash needs —
        an unanswered read taken for "not mined" would sign the call a second time."""
        for tx in sent:
            if sure:
                receipt = await self._asking(functools.partial(self._rpc.receipt, tx.hash))
            else:
                try:
                    receipt = await self._rpc.receipt(tx.hash)
                except _NO_ANSWER:
                    continue
            if receipt is not None:
                return _Mined(tx=tx, status=_int(receipt["status"]), block=_int(receipt["blockNumber"]),
                              gas_used=_int(receipt["gasUsed"]))
        return None

    async def _confirmed(self, found: _Mined, sent: list[_Tx]) -> _Mined:
        """Wait until the mined version has ``confirmations`` blocks (itself included); a receipt
        that disappears (a reorganisation) is looked for again among every version."""
        while True:
            try:
                head = await self._rpc.block_number()
            except _NO_ANSWER:
                head = -1
            if head - found.block + 1 >= self._confirmations:
                return found
            await trio.sleep(self._poll_s)
            again = await self._find(sent, sure=True)
            found = again if again is not None else await self._first_receipt(sent, {t.hash for t in sent})

    async def _asking(self, read: Callable[[], Awaitable[T]]) -> T:
        """A read that must be answered (something was sent): asked again every poll until the
        node answers it."""
        while True:
            try:
                return await read()
            except _NO_ANSWER:
                await trio.sleep(self._poll_s)

    def _record(self, kind: str, cid: str, call: Call, **payload: object) -> None:
        self._sink.record(kind, cid, {"via": "eoa", "call": call.describe(), **payload})


def _int(quantity: object) -> int:
    return int(str(quantity), 16)  # RpcClient.receipt checked these are 0x-hex quantities

"""Raw transactions as the simulated node takes them, sans-IO: decoding and checking what
``eth_sendRawTransaction`` receives (``decode_raw``), and the pool of pending transactions with a
node's rules for nonces and replacements (``TxPool``).

Decoding is eth-account's: EIP-1559 (type 2) and EIP-2930 (type 1) transactions by
``TypedTransaction.from_bytes``, legacy ones by its RLP model, the sender by
``Account.recover_transaction``. A legacy transaction must carry its chain ID (EIP-155), as public
RPCs require. What a node refuses is an ``RpcError`` with geth's wording (``nonce too low``,
``replacement transaction underpriced``, ``already known``, ...).
"""

from __future__ import annotations

from typing import Any

import attrs
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.typed_transactions import TypedTransaction
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from hexbytes import HexBytes

MAX_RAW_BYTES = 128 * 1024  # geth's txMaxSize
MAX_PENDING_PER_SENDER = 64
REPLACE_BUMP_PERCENT = 10  # a replacement pays at least this much more, tip and fee cap both


class RpcError(Exception):
    """A JSON-RPC error answer: ``code`` and a one-line ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _server(message: str) -> RpcError:
    return RpcError(-32000, message)


@attrs.define(kw_only=True)
class SentTx:
    """A transaction the node accepted: decoded fields, and where it was mined once it is."""

    hash: str  # 0x-hex of keccak(raw)
    sender: str  # checksummed
    nonce: int
    to: str  # checksummed
    value: int
    data: bytes
    gas: int
    max_fee: int
    max_priority: int
    type: int
    chain_id: int
    seq: int = 0  # arrival order
    hold_until_ns: int = 0  # a stuck transaction (fault) is not mined before this
    block: int | None = None
    index: int = 0

    def effective_price(self, base_fee: int) -> int:
        return min(self.max_fee, base_fee + self.max_priority)

    def view(self, block_hash: str | None) -> dict[str, Any]:
        """``eth_getTransactionByHash``'s object."""
        mined = self.block is not None
        return {
            "hash": self.hash, "from": self.sender, "to": self.to, "nonce": hex(self.nonce), "value": hex(self.value),
            "input": "0x" + self.data.hex(), "gas": hex(self.gas), "type": hex(self.type), "chainId": hex(self.chain_id),
            "maxFeePerGas": hex(self.max_fee), "maxPriorityFeePerGas": hex(self.max_priority),
            "gasPrice": hex(self.max_fee), "blockNumber": hex(self.block) if mined else None,
            "blockHash": block_hash if mined else None, "transactionIndex": hex(self.index) if mined else None,
        }


def decode_raw(raw: bytes, *, chain_id: int) -> SentTx:
    """The transaction in ``raw`` (signature checked, sender recovered); ``RpcError`` if it is not
    one this node takes."""
    if not raw or len(raw) > MAX_RAW_BYTES:
        raise _server("oversized data" if raw else "empty transaction")
    try:
        if raw[0] <= 0x7F:
            if raw[0] not in (1, 2):
                raise _server(f"transaction type {raw[0]} not supported")
            fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            tx_chain = int(fields["chainId"])
            max_fee = int(fields.get("maxFeePerGas", fields.get("gasPrice", 0)))
            max_priority = int(fields.get("maxPriorityFeePerGas", max_fee))
            kind = raw[0]
        else:
            fields = LegacyTransaction.from_bytes(raw).as_dict()
            v = int(fields["v"])
            if v < 35:
                raise _server("only replay-protected (EIP-155) transactions allowed over RPC")
            tx_chain = (v - 35) // 2
            max_fee = max_priority = int(fields["gasPrice"])
            kind = 0
        sender = Account.recover_transaction(raw)
    except RpcError:
        raise
    except Exception:  # noqa: BLE001 - RLP, signature and field errors come as many unrelated types
        raise _server("rlp: could not decode the transaction") from None
    if tx_chain != chain_id:
        raise _server(f"invalid chain id {tx_chain}: this node is chain {chain_id}")
    to = bytes(fields.get("to") or b"")
    if len(to) != 20:
        raise _server("contract creation is not supported by this node")
    return SentTx(hash="0x" + keccak(raw).hex(), sender=to_checksum_address(sender), nonce=int(fields["nonce"]),
                  to=to_checksum_address(to), value=int(fields["value"]), data=bytes(fields["data"]),
                  gas=int(fields["gas"]), max_fee=max_fee, max_priority=min(max_priority, max_fee), type=kind,
                  chain_id=tx_chain)


class TxPool:
    """Pending transactions by sender and nonce."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], SentTx] = {}  # (sender lower, nonce) -> tx
        self._seq = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, tx: SentTx, *, account_nonce: int) -> SentTx | None:
        """Queue ``tx``; returns the pending transaction it replaced, if any. ``RpcError`` when the
        node refuses it (its nonce is used, an equal one pays too little more, too many queued)."""
        key = (tx.sender.lower(), tx.nonce)
        if tx.nonce < account_nonce:
            raise _server("nonce too low")
        old = self._pending.get(key)
        if old is not None and old.hash == tx.hash:
            raise _server("already known")
        if old is not None:
            bump = 100 + REPLACE_BUMP_PERCENT
            if tx.max_fee * 100 < old.max_fee * bump or tx.max_priority * 100 < old.max_priority * bump:
                raise _server("replacement transaction underpriced")
        elif sum(1 for s, _ in self._pending if s == key[0]) >= MAX_PENDING_PER_SENDER:
            raise _server("txpool is full for this sender")
        self._seq += 1
        tx.seq = self._seq
        self._pending[key] = tx
        return old

    def pending_nonce(self, sender: str, account_nonce: int) -> int:
        """The next nonce after the sender's consecutive pending transactions."""
        nonce = account_nonce
        while (sender.lower(), nonce) in self._pending:
            nonce += 1
        return nonce

    def ready(self, nonces: dict[str, int], base_fee: int, now_ns: int) -> SentTx | None:
        """The earliest-sent transaction that can go into a block now: its nonce is its sender's
        next, its fee cap covers the base fee, and it is not held (stuck)."""
        best: SentTx | None = None
        for (sender, nonce), tx in self._pending.items():
            if (nonce == nonces.get(sender, 0) and tx.max_fee >= base_fee and tx.hold_until_ns <= now_ns
                    and (best is None or tx.seq < best.seq)):
                best = tx
        return best

    def take(self, tx: SentTx) -> None:
        self._pending.pop((tx.sender.lower(), tx.nonce), None)

    def drop_stale(self, nonces: dict[str, int]) -> list[SentTx]:
        """Remove transactions whose nonce was used by another one (a foreign transaction)."""
        stale = [tx for (s, n), tx in self._pending.items() if n < nonces.get(s, 0)]
        for tx in stale:
            self.take(tx)
        return stale

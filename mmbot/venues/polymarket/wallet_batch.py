"""A deposit wallet's ``Batch``: the calls it runs in one relayer ``WALLET`` transaction, signed by
its owner under the wallet's own EIP-712 domain (onchain reference §4).

Domain: ``DepositWallet`` / ``1`` / chain ID / the wallet. Types: ``Batch(address wallet,uint256
nonce,uint256 deadline,Call[] calls)`` and ``Call(address target,uint256 value,bytes data)``. The
nonce is the wallet's on-chain ``nonce()``, which ``execute`` requires and bumps; the deadline is
checked against the block's timestamp. The typed data is hashed by eth-account (off the hot path:
one batch per merge or sweep). The relayer's ``WALLET`` body is ``batch_body``.
"""

from __future__ import annotations

from typing import Any, Sequence

from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak

from mmbot.venues.polymarket.auth import CHAIN_ID, SigningKey, parse_address
from mmbot.venues.polymarket.contracts import Call
from mmbot.venues.polymarket.deposit_wallet import FACTORY

_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
    ],
    "Batch": [
        {"name": "wallet", "type": "address"}, {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"}, {"name": "calls", "type": "Call[]"},
    ],
    "Call": [{"name": "target", "type": "address"}, {"name": "value", "type": "uint256"}, {"name": "data", "type": "bytes"}],
}


def batch_digest(*, wallet: str, nonce: int, deadline: int, calls: Sequence[Call], chain_id: int = CHAIN_ID) -> bytes:
    """The 32-byte EIP-712 digest the owner signs for this batch."""
    wallet = parse_address(wallet)
    message = encode_typed_data(full_message={
        "types": _TYPES, "primaryType": "Batch",
        "domain": {"name": "DepositWallet", "version": "1", "chainId": chain_id, "verifyingContract": wallet},
        "message": {"wallet": wallet, "nonce": nonce, "deadline": deadline,
                    "calls": [{"target": c.target, "value": c.value, "data": c.data} for c in calls]},
    })
    return keccak(b"\x19\x01" + message.header + message.body)


def sign_batch(key: SigningKey, *, wallet: str, nonce: int, deadline: int, calls: Sequence[Call],
               chain_id: int = CHAIN_ID) -> str:
    """The owner's 65-byte signature of the batch, 0x-hex."""
    return key.sign(batch_digest(wallet=wallet, nonce=nonce, deadline=deadline, calls=calls, chain_id=chain_id))


def batch_body(*, owner: str, wallet: str, nonce: int, deadline: int, calls: Sequence[Call], signature: str,
               metadata: str = "") -> dict[str, Any]:
    """The relayer's ``POST /submit`` body for a ``WALLET`` transaction."""
    return {
        "type": "WALLET", "from": parse_address(owner), "to": FACTORY, "nonce": str(nonce), "signature": signature,
        "metadata": metadata,
        "depositWalletParams": {
            "depositWallet": parse_address(wallet), "deadline": str(deadline),
            "calls": [{"target": c.target, "value": str(c.value), "data": "0x" + c.data.hex()} for c in calls],
        },
    }


def create_body(*, owner: str, metadata: str = "") -> dict[str, Any]:
    """The relayer's ``POST /submit`` body for ``WALLET-CREATE`` (no signature: the factory
    deploys the owner's wallet at its predicted address)."""
    return {"type": "WALLET-CREATE", "from": parse_address(owner), "to": FACTORY, "metadata": metadata}

"""A deposit wallet's address, derived offline from its owner (polymarket-onchain.md §3.2).

Polymarket's DepositWalletFactory deploys each owner's wallet with CREATE2: ``walletId`` is the
owner left-padded to 32 bytes, ``args = abi.encode(factory, walletId)``, ``salt = keccak(args)``,
and the init code is a Solady clone with ``args`` appended as immutable arguments. There are two
kinds of clone, so two candidate addresses for every owner:

- ``beacon``: an ERC-1967 beacon proxy (the factory's beacon), every wallet made since the
  factory's upgrade, so every new one;
- ``legacy``: a UUPS clone of the first implementation, made before that upgrade.

Which one an owner has is a fact on chain, never guessed here: :func:`kind_on_chain` applies the
documented rule to what a chain reader (``ChainReader``, a JSON-RPC client to come) finds.
Keccak from eth-hash, the ABI encoding from eth-abi, EIP-55 checksums from eth-utils; only the
CREATE2 formula and Solady's clone bytes are spelt out, as the factory's code spells them.
"""

from __future__ import annotations

import enum
from typing import Protocol

import attrs
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_utils import to_canonical_address, to_checksum_address

FACTORY = "0x00000000000Fb5C9ADea0298D729A0CB3823Cc07"  # DepositWalletFactory, Polygon 137
BEACON = "0x7A18EDfe055488A3128f01F563e5B479D92ffc3a"  # the beacon every new wallet points at
LEGACY_IMPLEMENTATION = "0x58CA52ebe0DadfdF531Cde7062e76746de4Db1eB"  # what legacy UUPS clones run

# Solady LibClone's init code around the implementation (or beacon) and the immutable args.
_BEACON_PREFIX = 0x6100523D8160233D3973
_BEACON_CODE = bytes.fromhex(
    "60195155f3363d3d373d3d363d602036600436635c60da"
    "1b60e01b36527fa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6c"
    "b3582b35133d50545afa5036515af43d6000803e604d573d6000fd5b3d6000f3"
)
_LEGACY_PREFIX = 0x61003D3D8160233D3973
_LEGACY_CODE = bytes.fromhex(
    "6009"
    "5155f3363d3d373d3d363d7f360894a13ba1a3210667c828492db98dca3e2076"
    "cc3735a920a3ca505d382bbc545af43d6000803e6038573d6000fd5b3d6000f3"
)


class WalletKind(enum.Enum):
    BEACON = "beacon"
    LEGACY = "legacy"


@attrs.frozen
class DepositWalletAddresses:
    """An owner and both addresses its deposit wallet could have, checksummed."""

    owner: str
    beacon: str
    legacy: str

    def of_kind(self, kind: WalletKind) -> str:
        return self.beacon if kind is WalletKind.BEACON else self.legacy


def _raw(address: str) -> bytes:
    """20 bytes of a 0x-hex address; ``ValueError`` naming it when it is not one."""
    try:
        raw = to_canonical_address(address)
    except (TypeError, ValueError):
        raise ValueError(f"not a 20-byte hex address: {address!r}") from None
    if len(raw) != 20:
        raise ValueError(f"not a 20-byte hex address: {address!r}")
    return raw


def _args(owner: bytes, factory: bytes) -> bytes:
    """``abi.encode(factory, walletId)``, walletId = the owner left-padded to 32 bytes."""
    return abi_encode(["address", "bytes32"], [factory, bytes(12) + owner])


def _create2(factory: bytes, salt: bytes, init_code: bytes) -> str:
    return to_checksum_address(keccak(b"\xff" + factory + salt + keccak(init_code))[12:])


def _clone(owner: str, factory: str, target: str, prefix: int, code: bytes) -> str:
    factory_raw = _raw(factory)
    args = _args(_raw(owner), factory_raw)
    head = (prefix + (len(args) << 56)).to_bytes(10, "big")
    return _create2(factory_raw, keccak(args), head + _raw(target) + code + args)


def beacon_address(owner: str, *, factory: str = FACTORY, beacon: str = BEACON) -> str:
    """Where the factory puts ``owner``'s wallet as a beacon clone (every wallet made now)."""
    return _clone(owner, factory, beacon, _BEACON_PREFIX, _BEACON_CODE)


def legacy_address(owner: str, *, factory: str = FACTORY, implementation: str = LEGACY_IMPLEMENTATION) -> str:
    """Where the factory put ``owner``'s wallet as a UUPS clone (before the factory's upgrade)."""
    return _clone(owner, factory, implementation, _LEGACY_PREFIX, _LEGACY_CODE)


def addresses(owner: str) -> DepositWalletAddresses:
    """Both candidate addresses of ``owner``'s deposit wallet on Polygon; which is real is decided
    on chain (:func:`kind_on_chain`)."""
    return DepositWalletAddresses(owner=to_checksum_address(_raw(owner)), beacon=beacon_address(owner),
                                  legacy=legacy_address(owner))


# --------------------------------------------------------------------------- which one, on chain


class ChainReader(Protocol):
    """What deciding the kind needs from the chain (a Polygon JSON-RPC client implements it)."""

    async def code(self, address: str) -> bytes:
        """``eth_getCode(address, "latest")``: empty when nothing is deployed there."""
        ...

    async def factory_beacon(self, factory: str) -> str | None:
        """The factory's ``BEACON()``; ``None`` when the call reverts or returns the zero address."""
        ...


def kind_from(*, legacy_code: bytes, factory_beacon: str | None) -> WalletKind:
    """The documented rule (docs §"Deterministic Address Derivation"): the legacy UUPS address when
    the factory has no beacon or code already sits there; otherwise the beacon address (deployed,
    or the one the relayer's WALLET-CREATE will deploy)."""
    if factory_beacon is None or legacy_code:
        return WalletKind.LEGACY
    return WalletKind.BEACON


async def kind_on_chain(chain: ChainReader, owner: str, *, factory: str = FACTORY) -> WalletKind:
    """Which kind ``owner``'s deposit wallet is, as the chain says."""
    legacy = legacy_address(owner, factory=factory)
    return kind_from(legacy_code=await chain.code(legacy), factory_beacon=await chain.factory_beacon(factory))

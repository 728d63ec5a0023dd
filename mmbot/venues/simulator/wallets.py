"""The wallets the simulated venue knows for each owner (an EOA that holds API keys), sans-IO, and
whose order may name which maker.

Every owner has one of each: a Polymarket proxy (signature type 1), a Gnosis Safe (type 2) and a
deposit wallet (type 3). The deposit wallet's address is the real one (CREATE2 under the deposit
wallet factory, beacon clones: ``venues/polymarket/deposit_wallet.py``, polymarket-onchain.md
§3.2). The proxy's and the Safe's real derivations need factory constants we do not hold, so the
simulator makes its own, fixed by the server's seed and the owner. An order's maker must be the
signer itself (type 0) or the signer's own wallet of the order's type; anything else is ``invalid
signature``, as the exchange's check of the maker against the signer would fail.

A type-3 (``POLY_1271``) order is checked against the simulated chain instead
(``SimTrading._deposit_wallet_order``): maker and signer the deposit wallet, the owner's ERC-7739
envelope (``sign_1271``; a plain signature is refused), the wallet deployed through the relayer and
owned by the API key's address, and its approvals to the exchange on chain.
"""

from __future__ import annotations

import attrs
from eth_hash.auto import keccak

from mmbot.venues.polymarket.auth import checksum_address
from mmbot.venues.polymarket.deposit_wallet import beacon_address

EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271 = 0, 1, 2, 3


@attrs.frozen
class WalletSet:
    """One owner's wallets, checksummed."""

    owner: str
    proxy: str
    safe: str
    deposit: str

    def for_type(self, signature_type: int) -> str | None:
        return {EOA: self.owner, POLY_PROXY: self.proxy, POLY_GNOSIS_SAFE: self.safe,
                POLY_1271: self.deposit}.get(signature_type)

    def shown(self) -> dict[str, str]:
        return {"proxy": self.proxy, "safe": self.safe, "deposit_wallet": self.deposit}


def deposit_wallet(owner: str) -> str:
    """The deposit wallet the factory deploys for ``owner`` now (a beacon clone): every simulated
    owner is a new account, so never a legacy UUPS clone."""
    return beacon_address(owner)


class Wallets:
    """Each owner's wallets, made the first time the owner is seen (the same for a seed)."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._sets: dict[str, WalletSet] = {}  # owner, lower case -> its wallets

    def of(self, owner: str) -> WalletSet:
        key = owner.lower()
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = WalletSet(
                owner=checksum_address(bytes.fromhex(key.removeprefix("0x"))),
                proxy=self._made("proxy", key), safe=self._made("safe", key), deposit=deposit_wallet(key),
            )
        return found

    def allowed(self, owner: str, signature_type: int, maker: str, signer: str) -> bool:
        """Whether an order of ``signature_type`` from ``owner`` may name ``maker`` and ``signer``:
        the signer is the owner (the deposit wallet itself for type 3), the maker its wallet."""
        wallets = self.of(owner)
        wallet = wallets.for_type(signature_type)
        expected_signer = wallets.deposit if signature_type == POLY_1271 else wallets.owner
        return (wallet is not None and maker.lower() == wallet.lower()
                and signer.lower() == expected_signer.lower())

    def _made(self, kind: str, owner: str) -> str:
        return checksum_address(keccak(f"mmbot-sim/{kind}/{self._seed}/{owner}".encode())[-20:])

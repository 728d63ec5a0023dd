"""Deposit-wallet addresses derived offline (polymarket-onchain.md §3.2): both kinds reproduce the
reference's vectors, the kind is the chain's word by the documented rule, the simulator derives the
same address, and ``mmbot wallet address`` prints them, labelled or as one JSON line, never the key."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_utils import is_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.cli import main
from mmbot.venues.polymarket.deposit_wallet import (
    BEACON,
    FACTORY,
    LEGACY_IMPLEMENTATION,
    DepositWalletAddresses,
    WalletKind,
    addresses,
    beacon_address,
    kind_from,
    kind_on_chain,
    legacy_address,
)
from mmbot.venues.simulator.wallets import POLY_1271, Wallets, deposit_wallet

HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat's account 0
HARDHAT_OWNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ONE_OWNER = "0x" + "00" * 19 + "01"

# owner -> (legacy UUPS clone, beacon clone): py-sdk tests/unit/test_wallet_derivations.py
# (re-derived in the reference), and the reference's self-derived Hardhat-key owner.
VECTORS = {
    ONE_OWNER: ("0x57ffBc34De23124fAeb8387fcd689d314E57aCcD", "0x94bF330955A0b957662fEaF878dE77bf25f76cD9"),
    HARDHAT_OWNER: ("0xdf8b9E8f9AB23f261F6e1B171B7454ae6E46Ba76", "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"),
}
owners = st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())


# --------------------------------------------------------------------------- the vectors


@pytest.mark.parametrize("owner, legacy, beacon", [(o, *pair) for o, pair in VECTORS.items()])
def test_both_kinds_reproduce_the_reference_vectors(owner: str, legacy: str, beacon: str) -> None:
    assert legacy_address(owner) == legacy  # exact strings: the EIP-55 checksum too
    assert beacon_address(owner) == beacon
    assert addresses(owner) == DepositWalletAddresses(owner=owner, beacon=beacon, legacy=legacy)


def test_the_hardhat_owner_is_the_address_of_the_hardhat_key() -> None:
    assert Account.from_key(HARDHAT_KEY).address == HARDHAT_OWNER


def test_the_constants_are_the_reference_contracts() -> None:
    assert FACTORY == "0x00000000000Fb5C9ADea0298D729A0CB3823Cc07"
    assert BEACON == "0x7A18EDfe055488A3128f01F563e5B479D92ffc3a"
    assert LEGACY_IMPLEMENTATION == "0x58CA52ebe0DadfdF531Cde7062e76746de4Db1eB"


def test_the_owner_may_be_written_in_any_case_and_a_non_address_is_refused() -> None:
    assert addresses(HARDHAT_OWNER.lower()) == addresses(HARDHAT_OWNER.upper().replace("0X", "0x"))
    for bad in ("", "0x1234", "0x" + "zz" * 20, HARDHAT_OWNER + "00"):
        with pytest.raises(ValueError, match="not a 20-byte hex address"):
            beacon_address(bad)


def test_the_factory_and_its_targets_enter_the_derivation() -> None:
    """Another factory, beacon or implementation moves the address: none is baked in silently."""
    other = "0x" + "11" * 20
    assert beacon_address(ONE_OWNER, factory=other) != beacon_address(ONE_OWNER)
    assert beacon_address(ONE_OWNER, beacon=other) != beacon_address(ONE_OWNER)
    assert legacy_address(ONE_OWNER, implementation=other) != legacy_address(ONE_OWNER)


@settings(max_examples=50, deadline=None)
@given(owner=owners)
def test_every_owner_has_two_distinct_checksummed_candidates(owner: str) -> None:
    found = addresses(owner)
    assert is_checksum_address(found.beacon) and is_checksum_address(found.legacy)
    assert found.beacon != found.legacy
    assert found.of_kind(WalletKind.BEACON) == found.beacon and found.of_kind(WalletKind.LEGACY) == found.legacy


# --------------------------------------------------------------------------- which kind: the chain's word


class FakeChain:
    """What a JSON-RPC reader would answer: code at some addresses, the factory's BEACON()."""

    def __init__(self, code: dict[str, bytes], beacon: str | None) -> None:
        self._code = {address.lower(): body for address, body in code.items()}
        self._beacon = beacon
        self.asked: list[str] = []

    async def code(self, address: str) -> bytes:
        self.asked.append(address)
        return self._code.get(address.lower(), b"")

    async def factory_beacon(self, factory: str) -> str | None:
        assert factory == FACTORY
        return self._beacon


def test_the_documented_rule_picks_the_kind() -> None:
    assert kind_from(legacy_code=b"", factory_beacon=BEACON) is WalletKind.BEACON  # a new account
    assert kind_from(legacy_code=b"\x36\x3d", factory_beacon=BEACON) is WalletKind.LEGACY  # an old wallet
    assert kind_from(legacy_code=b"", factory_beacon=None) is WalletKind.LEGACY  # a factory before the upgrade


async def test_the_kind_is_read_from_the_chain_at_the_legacy_address() -> None:
    legacy, beacon = VECTORS[HARDHAT_OWNER]
    old = FakeChain({legacy: b"\x36\x3d"}, beacon=BEACON)
    assert await kind_on_chain(old, HARDHAT_OWNER) is WalletKind.LEGACY
    assert old.asked == [legacy]
    new = FakeChain({beacon: b"\x36\x3d"}, beacon=BEACON)
    assert await kind_on_chain(new, HARDHAT_OWNER) is WalletKind.BEACON
    assert await kind_on_chain(FakeChain({}, beacon=None), HARDHAT_OWNER) is WalletKind.LEGACY


# --------------------------------------------------------------------------- the simulator


@settings(max_examples=30, deadline=None)
@given(owner=owners, seed=st.integers(0, 3))
def test_the_simulator_gives_each_owner_the_beacon_wallet(owner: str, seed: int) -> None:
    assert deposit_wallet(owner) == beacon_address(owner)
    assert Wallets(seed).of(owner).for_type(POLY_1271) == beacon_address(owner)


def test_the_simulator_reproduces_the_vectors() -> None:
    for owner, (_, beacon) in VECTORS.items():
        assert Wallets().of(owner).deposit == deposit_wallet(owner) == beacon


# --------------------------------------------------------------------------- mmbot wallet address


def test_wallet_address_prints_the_owner_and_both_wallets_labelled(monkeypatch, capsys) -> None:
    monkeypatch.setenv("MMBOT_PRIVATE_KEY", HARDHAT_KEY)
    assert main(["wallet", "address"]) == 0
    out, err = capsys.readouterr()
    legacy, beacon = VECTORS[HARDHAT_OWNER]
    lines = out.splitlines()
    assert lines[0].startswith("owner (EOA, MMBOT_PRIVATE_KEY)") and lines[0].split()[-1] == HARDHAT_OWNER
    assert lines[1].startswith("deposit wallet, beacon clone") and beacon in lines[1]
    assert lines[2].startswith("deposit wallet, legacy UUPS clone") and legacy in lines[2]
    assert "eth_getCode" in lines[3]
    assert err == "" and HARDHAT_KEY[2:] not in out


def test_wallet_address_json_is_one_machine_readable_line(monkeypatch, capsys) -> None:
    monkeypatch.setenv("MMBOT_PRIVATE_KEY", HARDHAT_KEY[2:])  # without 0x as well
    assert main(["wallet", "address", "--json"]) == 0
    out, _ = capsys.readouterr()
    assert out.count("\n") == 1
    legacy, beacon = VECTORS[HARDHAT_OWNER]
    assert json.loads(out) == {"owner": HARDHAT_OWNER, "deposit_wallet_beacon": beacon,
                               "deposit_wallet_legacy": legacy, "factory": FACTORY}


@pytest.mark.parametrize(
    "value, needle",
    [
        (None, "mmbot wallet address: MMBOT_PRIVATE_KEY is not set"),
        ("", "mmbot wallet address: MMBOT_PRIVATE_KEY is not set"),
        ("0x1234", "mmbot wallet address: MMBOT_PRIVATE_KEY: the private key is not 32 bytes of hex"),
        ("0x" + "00" * 31 + "01" + "00", "mmbot wallet address: MMBOT_PRIVATE_KEY: the private key is not 32 bytes of hex"),
        ("0x" + "00" * 32, "mmbot wallet address: MMBOT_PRIVATE_KEY: the private key is not 32 bytes of hex"),
        ("0x" + "zz" * 32, "mmbot wallet address: MMBOT_PRIVATE_KEY: the private key is not 32 bytes of hex"),
    ],
)
def test_a_missing_or_bad_key_is_one_line_naming_the_variable_exit_2(monkeypatch, capsys, value, needle) -> None:
    if value is None:
        monkeypatch.delenv("MMBOT_PRIVATE_KEY", raising=False)
    else:
        monkeypatch.setenv("MMBOT_PRIVATE_KEY", value)
    assert main(["wallet", "address"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and needle in err
    assert not value or value not in err  # the key is never echoed


def test_wallet_needs_an_action(capsys) -> None:
    assert main(["wallet"]) == 2
    assert "mmbot wallet" in capsys.readouterr().err

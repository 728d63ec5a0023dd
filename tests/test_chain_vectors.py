"""The onchain reference's vectors for what mmbot sends on chain: the collateral adapters'
calldata (Nautilus ``positions/calldata.rs``) and a deposit wallet's signed ``WALLET`` batch
(polymarket-onchain.md §4, §5.2)."""

from __future__ import annotations

import pytest

from mmbot.config import Secret
from mmbot.venues.polymarket import contracts
from mmbot.venues.polymarket.auth import EXCHANGE_V2, SigningKey
from mmbot.venues.polymarket.wallet_batch import batch_body, batch_digest, sign_batch

HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
CONDITION = "0x" + "11" * 32


def words(*hexes: str) -> str:
    return "".join(h.removeprefix("0x").rjust(64, "0") for h in hexes)


PUSD_WORD = contracts.PUSD.lower()
SPLIT_ARGS = words(PUSD_WORD, "0", CONDITION, "a0", "0f4240", "2", "1", "2")
REDEEM_ARGS = words(PUSD_WORD, "0", CONDITION, "80", "2", "1", "2")


@pytest.mark.parametrize("neg_risk", [False, True])
def test_adapter_calldata_matches_the_reference(neg_risk: bool) -> None:
    split = contracts.split_call(CONDITION, 1_000_000, neg_risk=neg_risk)
    merge = contracts.merge_call(CONDITION, 1_000_000, neg_risk=neg_risk)
    redeem = contracts.redeem_call(CONDITION, neg_risk=neg_risk)
    assert split.data.hex() == "72ce4275" + SPLIT_ARGS
    assert merge.data.hex() == "9e7212ad" + SPLIT_ARGS
    assert redeem.data.hex() == "01b7037c" + REDEEM_ARGS
    expected = contracts.NEG_RISK_CTF_ADAPTER if neg_risk else contracts.CTF_ADAPTER
    assert {split.target, merge.target, redeem.target} == {expected}


def test_selectors_are_the_published_ones() -> None:
    published = {"splitPosition": "72ce4275", "mergePositions": "9e7212ad", "redeemPositions": "01b7037c",
                 "approve": "095ea7b3", "setApprovalForAll": "a22cb465", "balanceOfBatch": "4e1273f4",
                 "nonce": "affed0e0", "owner": "8da5cb5b", "BEACON": "49493a4d"}
    found = {f.name: f.selector.hex() for f in contracts.FUNCTIONS if f.name in published}
    assert found == published


def test_decode_reads_back_what_was_encoded_and_refuses_the_rest() -> None:
    function, args = contracts.decode(contracts.merge_call(CONDITION, 7, neg_risk=False).data)
    assert function is contracts.MERGE and args[2] == bytes.fromhex("11" * 32) and args[4] == 7
    assert args[0] == contracts.PUSD
    with pytest.raises(contracts.CalldataError):
        contracts.decode(bytes.fromhex("deadbeef"))
    with pytest.raises(contracts.CalldataError):
        contracts.decode(contracts.MERGE.selector + b"\x01")
    with pytest.raises(contracts.CalldataError):
        contracts.merge_call("0x11", 1, neg_risk=False)


def test_retired_adapters_are_refused_before_anything_is_sent() -> None:
    for retired in contracts.RETIRED_ADAPTERS:
        with pytest.raises(contracts.CalldataError, match="retired"):
            contracts.refuse_retired(contracts.Call(retired, b""))
    contracts.refuse_retired(contracts.merge_call(CONDITION, 1, neg_risk=True))


def test_trading_approvals_leave_out_the_auto_redeemer() -> None:
    approvals = contracts.trading_approvals()
    assert len(approvals) == 10
    assert all(contracts.AUTO_REDEEMER.lower()[2:] not in c.data.hex() for c in approvals)


def test_wallet_batch_matches_the_reference() -> None:
    wallet = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"
    calls = [contracts.approve_call(EXCHANGE_V2), contracts.operator_call(contracts.CTF_ADAPTER)]
    digest = batch_digest(wallet=wallet, nonce=0, deadline=1_800_000_000, calls=calls, chain_id=137)
    assert digest.hex() == "c56bc4b687cc2cff979b9f4fc2389fd08f157db636a02cd8d76f1730a2903d7b"
    key = SigningKey(Secret(HARDHAT_KEY))
    signature = sign_batch(key, wallet=wallet, nonce=0, deadline=1_800_000_000, calls=calls, chain_id=137)
    assert signature == ("0x7340a890f2c23a1f555194e6f10e5b37da834930557aa988c81b343b6fd1cfc42603af2c728b083a4fb276"
                         "cd0393444c2d8e883c7f5ddc572bf1e981e5b5c5021b")
    body = batch_body(owner=key.address, wallet=wallet, nonce=0, deadline=1_800_000_000, calls=calls,
                      signature=signature)
    assert body["type"] == "WALLET" and body["nonce"] == "0" and body["depositWalletParams"]["deadline"] == "1800000000"
    assert body["depositWalletParams"]["calls"][0] == {"target": contracts.PUSD, "value": "0",
                                                        "data": "0x" + calls[0].data.hex()}

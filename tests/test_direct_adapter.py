"""The EOA's direct-transaction adapter against a fake Polygon node (httpx.MockTransport) that
verifies every raw transaction (signer recovered, EIP-1559 fields decoded) and mines by script on
the autojump clock: confirmations, reverts, estimates that revert, lost replies, nonce clashes,
stuck transactions replaced — one mined transaction per confirmed call, never two."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_hash.auto import keccak
from hexbytes import HexBytes
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mmbot.config import Secret
from mmbot.model import ONE
from mmbot.venues.polymarket import contracts
from mmbot.venues.polymarket.auth import SigningKey
from mmbot.venues.polymarket.chain_types import ChainFailed, ChainUnreachable
from mmbot.venues.polymarket.direct_adapter import DirectAdapter, bump
from mmbot.venues.polymarket.rpc import RpcClient

SECRET = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY = SigningKey(Secret(value="0x" + SECRET))
CONDITION = "0x" + "11" * 32
GWEI = 10**9
BLOCK_S = 2  # the fake chain makes a block every 2 s of (mock) time
ESTIMATE = 100_000
BASE_FEE = 50 * GWEI


def merge(amount: int) -> contracts.Call:
    return contracts.merge_call(CONDITION, amount * ONE, neg_risk=False)


@attrs.define
class Plan:
    """What the chain does to one call's transactions (each fault happens once)."""

    estimate_revert: bool = False
    unsent: bool = False  # the first send fails to connect: nothing arrives
    drop: bool = False  # the first send arrives, its reply is lost
    clash: bool = False  # an outside transaction takes our nonce just before our first send
    delay: int = 1  # blocks after arrival until mined
    stuck: bool = False  # the first version is never mined (its replacement is)
    replacement_stuck: bool = False  # nor is the replacement
    late_original: bool = False  # the original lands after all, once its replacement was sent
    revert: bool = False


@attrs.define
class Pending:
    hash: str
    data: bytes
    priority: int
    max_fee: int
    mine_at: float


class Chain:
    """A Polygon node in miniature for one account."""

    def __init__(self, plans: dict[bytes, Plan], *, suggested_priority: int = 35 * GWEI, flaky: int = 0,
                 seed: int = 0) -> None:
        self.plans = plans
        # one in ``flaky`` receipt and block-number reads fails (no answer, garbage or a JSON-RPC
        # error), and one in ``flaky`` send replies is lost (0: none)
        self.flaky = flaky
        self.random = random.Random(seed)
        self.suggested_priority = suggested_priority
        self.latest = 0  # the account's next mined nonce
        self.pool: dict[int, list[Pending]] = {}
        self.receipts: dict[str, dict[str, str]] = {}
        self.mined: Counter[bytes] = Counter()  # our mined transactions per calldata
        self.mined_hashes: list[str] = []
        self.accepted: list[dict[str, Any]] = []  # every version that entered the pool, decoded
        self.raws: list[str] = []
        self.used: Counter[tuple[bytes, str]] = Counter()  # faults already played
        self.down = False

    def head(self) -> int:
        return 1_000 + int(trio.current_time() // BLOCK_S)

    def _once(self, data: bytes, fault: str) -> bool:
        plan = self.plans.get(data, Plan())
        if getattr(plan, fault) and not self.used[(data, fault)]:
            self.used[(data, fault)] += 1
            return True
        return False

    def _mine(self) -> None:
        head = self.head()
        while self.latest in self.pool:
            ready = [p for p in self.pool[self.latest] if p.mine_at <= head]
            if not ready:
                return
            won = min(ready, key=lambda p: p.mine_at)
            status = 0 if self.plans.get(won.data, Plan()).revert else 1
            self.receipts[won.hash] = {"status": hex(status), "blockNumber": hex(int(won.mine_at)),
                                       "gasUsed": hex(ESTIMATE - 1_000), "transactionHash": won.hash}
            self.mined[won.data] += 1
            self.mined_hashes.append(won.hash)
            del self.pool[self.latest]
            self.latest += 1

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("down")
        self._mine()
        body = json.loads(request.content)
        method, params = body["method"], body["params"]
        watching = method in ("eth_getTransactionReceipt", "eth_blockNumber")
        if watching and self.flaky and self.random.randrange(self.flaky) == 0:
            return self.random.choice([
                httpx.Response(502, text="bad gateway"), httpx.Response(200, text="<html>"),
                httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"],
                                          "error": {"code": -32005, "message": "limit exceeded"}}),
            ])
        lose_reply = method == "eth_sendRawTransaction" and self.flaky and self.random.randrange(self.flaky) == 0
        try:
            result = getattr(self, method)(*params)
            if lose_reply:
                raise httpx.ReadTimeout("reply lost")
        except NodeError as exc:
            if lose_reply:
                raise httpx.ReadTimeout("reply lost") from None
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"],
                                             "error": {"code": exc.code, "message": exc.message}})
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": result})

    # ----------------------------------------------------------------------- methods

    def eth_getTransactionCount(self, address: str, block: str) -> str:
        assert address == KEY.address
        if block == "latest":
            return hex(self.latest)
        nonce = self.latest
        while nonce in self.pool:
            nonce += 1
        return hex(nonce)

    def eth_estimateGas(self, tx: dict[str, str]) -> str:
        assert tx["from"] == KEY.address and tx["value"] == "0x0"
        if self._once(bytes.fromhex(tx["data"][2:]), "estimate_revert"):
            raise NodeError(3, "execution reverted: SafeMath: subtraction overflow")
        return hex(ESTIMATE)

    def eth_maxPriorityFeePerGas(self) -> str:
        return hex(self.suggested_priority)

    def eth_getBlockByNumber(self, block: str, full: bool) -> dict[str, str]:
        return {"number": hex(self.head()), "baseFeePerGas": hex(BASE_FEE), "timestamp": hex(1_800_000_000)}

    def eth_blockNumber(self) -> str:
        return hex(self.head())

    def eth_getTransactionReceipt(self, tx_hash: str) -> dict[str, str] | None:
        return self.receipts.get(tx_hash)

    def eth_sendRawTransaction(self, raw_hex: str) -> str:
        raw = HexBytes(raw_hex)
        self.raws.append(raw_hex[2:])
        assert Account.recover_transaction(raw) == KEY.address  # signed by the owner's key
        tx = TypedTransaction.from_bytes(raw).as_dict()
        assert tx["type"] == 2 and tx["chainId"] == 137 and tx["value"] == 0
        data, nonce, tx_hash = bytes(tx["data"]), tx["nonce"], "0x" + keccak(bytes(raw)).hex()
        assert "0x" + bytes(tx["to"]).hex() == contracts.CTF_ADAPTER.lower()
        assert tx["gas"] == math.ceil(ESTIMATE * 1.2) and tx["maxPriorityFeePerGas"] >= 30 * GWEI
        assert tx["maxFeePerGas"] >= 2 * BASE_FEE + tx["maxPriorityFeePerGas"] or any(
            p.hash != tx_hash for p in self.pool.get(nonce, []))  # a replacement is bumped instead
        if self._once(data, "unsent"):
            raise httpx.ConnectError("connection refused")
        if nonce < self.latest:
            raise NodeError(-32000, "nonce too low")
        if self._once(data, "clash"):
            self.latest += 1  # someone else's transaction took this nonce
            raise NodeError(-32000, "nonce too low")
        versions = self.pool.setdefault(nonce, [])
        if any(p.hash == tx_hash for p in versions):
            raise NodeError(-32000, "already known")
        plan = self.plans.get(data, Plan())
        mine_at = self.head() + plan.delay
        if versions:  # a replacement: geth asks for 10 % more on both fees
            old = versions[-1]
            if tx["maxPriorityFeePerGas"] * 10 < old.priority * 11 or tx["maxFeePerGas"] * 10 < old.max_fee * 11:
                raise NodeError(-32000, "replacement transaction underpriced")
            if plan.replacement_stuck:
                mine_at = math.inf
            if plan.late_original:
                for p in versions:
                    p.mine_at = self.head() + 1
                mine_at = math.inf
        elif plan.stuck or plan.late_original:
            mine_at = math.inf
        versions.append(Pending(tx_hash, data, tx["maxPriorityFeePerGas"], tx["maxFeePerGas"], mine_at))
        self.accepted.append(dict(tx, hash=tx_hash))
        if self._once(data, "drop"):
            raise httpx.ReadTimeout("reply lost")
        return tx_hash


class NodeError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, **_: str) -> None:
        self.rows.append((kind, cid, payload or {}))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.rows]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [p for k, _, p in self.rows if k == kind]


def rig(chain: Chain, rows: Rows | None = None, **options: Any) -> tuple[DirectAdapter, Rows]:
    rows = rows or Rows()
    rpc = RpcClient(httpx.AsyncClient(transport=httpx.MockTransport(chain), base_url="http://node"))
    return DirectAdapter(rpc=rpc, key=KEY, sink=rows, **options), rows


async def test_the_happy_path_sends_one_transaction_per_call_each_confirmed_before_the_next(autojump_clock: Any) -> None:
    chain = Chain({merge(2).data: Plan(delay=3)}, suggested_priority=GWEI)
    adapter, rows = rig(chain, confirmations=2)
    assert adapter.address == KEY.address and not adapter.atomic
    receipt = await adapter.execute([merge(1), merge(2)], cid="c1")
    assert chain.mined == Counter({merge(1).data: 1, merge(2).data: 1})
    assert [t["nonce"] for t in chain.accepted] == [0, 1]
    assert all(t["maxPriorityFeePerGas"] == 30 * GWEI for t in chain.accepted)  # the floor over the node's 1 gwei
    assert all(t["maxFeePerGas"] == 2 * BASE_FEE + 30 * GWEI for t in chain.accepted)
    assert receipt.tx_hash == chain.mined_hashes[-1] and receipt.reference == ""
    assert receipt.block == int(chain.receipts[receipt.tx_hash]["blockNumber"], 16)
    assert chain.head() - receipt.block + 1 >= 2  # the confirmations were waited for...
    assert chain.head() - receipt.block + 1 <= 3  # ...and not much longer
    assert receipt.gas_used == 2 * (ESTIMATE - 1_000)
    assert rows.kinds() == ["chain_submitted", "chain_confirmed"] * 2
    submitted = rows.of("chain_submitted")[0]
    assert submitted == {"via": "eoa", "call": merge(1).describe(), "nonce": 0, "tx_hash": chain.mined_hashes[0],
                         "max_fee": 2 * BASE_FEE + 30 * GWEI, "priority_fee": 30 * GWEI, "gas": 120_000}
    assert {cid for _, cid, _ in rows.rows} == {"c1"}


async def test_the_second_call_waits_for_the_first_ones_confirmations(autojump_clock: Any) -> None:
    chain = Chain({merge(1).data: Plan(delay=4)})
    adapter, _ = rig(chain, confirmations=3)
    await adapter.execute([merge(1), merge(2)], cid="c")
    first, second = chain.accepted
    first_block = int(chain.receipts[first["hash"]]["blockNumber"], 16)
    second_block = int(chain.receipts[second["hash"]]["blockNumber"], 16)
    assert second_block - 1 - first_block + 1 >= 3  # sent once the first had 3 blocks (it mines a block later)


async def test_a_reverted_transaction_fails_for_good_and_the_calls_before_it_stay_done(autojump_clock: Any) -> None:
    chain = Chain({merge(2).data: Plan(revert=True)})
    adapter, rows = rig(chain)
    with pytest.raises(ChainFailed) as caught:
        await adapter.execute([merge(1), merge(2), merge(3)], cid="c")
    assert not caught.value.retryable and caught.value.tx_hash == chain.mined_hashes[1]
    assert caught.value.reason == "reverted"
    assert chain.mined == Counter({merge(1).data: 1, merge(2).data: 1})  # the third never sent
    assert rows.kinds() == ["chain_submitted", "chain_confirmed", "chain_submitted", "chain_failed"]
    assert rows.of("chain_failed")[0]["reason"] == "reverted"


async def test_an_estimate_that_reverts_sends_nothing(autojump_clock: Any) -> None:
    chain = Chain({merge(1).data: Plan(estimate_revert=True)})
    adapter, rows = rig(chain)
    with pytest.raises(ChainFailed, match="subtraction overflow") as caught:
        await adapter.execute([merge(1)], cid="c")
    assert not caught.value.retryable and chain.raws == [] and rows.kinds() == ["chain_failed"]


async def test_a_node_down_before_anything_is_sent_is_unreachable(autojump_clock: Any) -> None:
    chain = Chain({})
    chain.down = True
    adapter, rows = rig(chain)
    with pytest.raises(ChainUnreachable):
        await adapter.execute([merge(1)], cid="c")
    assert chain.raws == [] and rows.rows == []


async def test_a_retired_adapter_is_refused_before_anything_is_sent(autojump_clock: Any) -> None:
    chain = Chain({})
    adapter, _ = rig(chain)
    retired = contracts.Call(contracts.RETIRED_ADAPTERS[0], merge(1).data)
    with pytest.raises(contracts.CalldataError):
        await adapter.execute([merge(1), retired], cid="c")
    assert chain.raws == []


@pytest.mark.parametrize("fault", ["drop", "unsent"])
async def test_a_lost_send_reply_is_watched_by_hash_and_mined_once(autojump_clock: Any, fault: str) -> None:
    chain = Chain({merge(1).data: Plan(**{fault: True, "delay": 2})})
    adapter, rows = rig(chain)
    receipt = await adapter.execute([merge(1)], cid="c")
    assert chain.mined == Counter({merge(1).data: 1}) and len(chain.accepted) == 1
    assert receipt.tx_hash == chain.accepted[0]["hash"] == rows.of("chain_submitted")[0]["tx_hash"]
    assert len(chain.raws) >= 2 and len(set(chain.raws)) == 1  # broadcast again, the same bytes
    assert rows.kinds() == ["chain_submitted", "chain_send_lost", "chain_confirmed"]


async def test_a_nonce_clash_is_signed_again_with_the_next_nonce(autojump_clock: Any) -> None:
    chain = Chain({merge(1).data: Plan(clash=True)})
    adapter, rows = rig(chain)
    receipt = await adapter.execute([merge(1)], cid="c")
    first, second = rows.of("chain_submitted")
    assert (first["nonce"], second["nonce"]) == (0, 1) and first["tx_hash"] != second["tx_hash"]
    assert receipt.tx_hash == second["tx_hash"] and chain.mined == Counter({merge(1).data: 1})
    assert rows.kinds() == ["chain_submitted", "chain_nonce_clash", "chain_submitted", "chain_confirmed"]


async def test_a_stuck_transaction_is_replaced_with_bumped_fees_and_one_version_mines(autojump_clock: Any) -> None:
    chain = Chain({merge(1).data: Plan(stuck=True)})
    adapter, rows = rig(chain, timeout_s=300)
    receipt = await adapter.execute([merge(1)], cid="c")
    original, replacement = chain.accepted
    assert original["nonce"] == replacement["nonce"]
    assert replacement["maxPriorityFeePerGas"] * 8 >= original["maxPriorityFeePerGas"] * 9  # ≥ 12.5 %
    assert replacement["maxFeePerGas"] * 8 >= original["maxFeePerGas"] * 9
    assert receipt.tx_hash == replacement["hash"] and chain.mined_hashes == [replacement["hash"]]
    assert trio.current_time() >= 150  # replaced only after half the timeout
    assert rows.kinds() == ["chain_submitted", "chain_replaced", "chain_confirmed"]
    assert rows.of("chain_replaced")[0]["replaces"] == original["hash"]


async def test_after_a_replacement_the_original_may_land_and_is_accepted(autojump_clock: Any) -> None:
    chain = Chain({merge(1).data: Plan(late_original=True)})
    adapter, _ = rig(chain)
    receipt = await adapter.execute([merge(1)], cid="c")
    original, _replacement = chain.accepted
    assert receipt.tx_hash == original["hash"] and chain.mined_hashes == [original["hash"]]


async def test_nothing_mined_by_the_timeout_with_the_nonce_unused_fails_retryably(autojump_clock: Any) -> None:
    chain = Chain({merge(1).data: Plan(stuck=True, replacement_stuck=True)})
    adapter, rows = rig(chain, timeout_s=120)
    with pytest.raises(ChainFailed, match="not mined") as caught:
        await adapter.execute([merge(1)], cid="c")
    assert caught.value.retryable and chain.mined == Counter() and 120 <= trio.current_time() <= 130
    assert rows.kinds() == ["chain_submitted", "chain_replaced", "chain_failed"]


async def test_rows_never_hold_the_key_or_the_raw_transaction(autojump_clock: Any) -> None:
    chain = Chain({merge(1).data: Plan(drop=True, stuck=True), merge(2).data: Plan(clash=True, revert=True)})
    adapter, rows = rig(chain)
    with pytest.raises(ChainFailed):
        await adapter.execute([merge(1), merge(2)], cid="c")
    text = json.dumps(rows.rows).lower()
    assert SECRET not in text and chain.raws and not any(raw in text for raw in chain.raws)
    assert "***" in repr(KEY) and SECRET not in repr(adapter.__dict__)


async def test_a_node_lost_after_a_confirmed_call_fails_retryably_naming_what_is_done(autojump_clock: Any) -> None:
    chain = Chain({})

    class GoDown(Rows):
        def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, **_: str) -> None:
            super().record(kind, cid, payload)
            chain.down = chain.down or kind == "chain_confirmed"

    adapter, rows = rig(chain, GoDown())
    with pytest.raises(ChainFailed, match=r"unreachable.*after 1 of 2 calls confirmed") as caught:
        await adapter.execute([merge(1), merge(2)], cid="c")
    assert caught.value.retryable and chain.mined == Counter({merge(1).data: 1})
    assert rows.kinds() == ["chain_submitted", "chain_confirmed", "chain_failed"]


async def test_a_transaction_the_node_refuses_fails_retryably(autojump_clock: Any) -> None:
    class Poor(Chain):
        def eth_sendRawTransaction(self, raw_hex: str) -> str:
            raise NodeError(-32000, "insufficient funds for gas * price + value")

    adapter, rows = rig(Poor({}))
    with pytest.raises(ChainFailed, match="insufficient funds") as caught:
        await adapter.execute([merge(1)], cid="c")
    assert caught.value.retryable and caught.value.tx_hash == rows.of("chain_submitted")[0]["tx_hash"]
    assert rows.kinds() == ["chain_submitted", "chain_failed"]


async def test_a_malformed_receipt_is_counted_and_the_watch_goes_on(autojump_clock: Any) -> None:
    class Garbled(Chain):
        garbled = 0

        def eth_getTransactionReceipt(self, tx_hash: str) -> Any:
            found = super().eth_getTransactionReceipt(tx_hash)
            if found is not None and not self.garbled:
                self.garbled += 1
                return {"status": "yes"}
            return found

    chain = Garbled({})
    adapter, _ = rig(chain)
    receipt = await adapter.execute([merge(1)], cid="c")
    assert receipt.tx_hash == chain.mined_hashes[0] and adapter._rpc.malformed == 1


def test_bump_raises_a_fee_by_at_least_an_eighth() -> None:
    assert [bump(f) for f in (0, 1, 8, 9, 30 * GWEI)] == [0, 2, 9, 11, 33_750_000_000]


# --------------------------------------------------------------------------- any script

def sometimes(one_in: int) -> st.SearchStrategy[bool]:
    return st.integers(1, one_in).map(lambda n: n == 1)


PLANS = st.builds(
    Plan, estimate_revert=sometimes(8), unsent=sometimes(3), drop=sometimes(3), clash=sometimes(3),
    delay=st.integers(1, 40), stuck=sometimes(4), replacement_stuck=sometimes(3), late_original=sometimes(5),
    revert=sometimes(6),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=st.lists(PLANS, min_size=1, max_size=3), confirmations=st.integers(1, 3),
       flaky=st.sampled_from([0, 0, 2, 3, 7]), seed=st.integers(0, 2**32))
def test_any_script_ends_in_a_receipt_or_chain_failed_with_never_two_mined_per_call(
        plans: list[Plan], confirmations: int, flaky: int, seed: int) -> None:
    calls = [merge(i + 1) for i in range(len(plans))]
    chain = Chain({c.data: p for c, p in zip(calls, plans)}, flaky=flaky, seed=seed)

    async def scenario() -> Any:
        adapter, rows = rig(chain, confirmations=confirmations, timeout_s=200)
        try:
            return await adapter.execute(calls, cid="c"), rows
        except ChainFailed as exc:
            return exc, rows

    outcome, rows = trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    event(f"ends in {outcome.reason.split(' (')[0] if isinstance(outcome, ChainFailed) else 'a receipt'}")
    assert all(n == 1 for n in chain.mined.values())  # never two for one call
    confirmed = [p["call"] for p in rows.of("chain_confirmed")]
    assert confirmed == [c.describe() for c in calls[: len(confirmed)]]
    for call in calls[: len(confirmed)]:
        assert chain.mined[call.data] == 1
    for call in calls[len(confirmed) + 1:]:
        assert call.data not in chain.mined and call.data not in {bytes(t["data"]) for t in chain.accepted}
    if isinstance(outcome, ChainFailed):
        assert len(confirmed) < len(calls) and rows.kinds()[-1] == "chain_failed"
        failing = plans[len(confirmed)]
        if outcome.reason.startswith("reverted"):
            assert failing.revert and not outcome.retryable and chain.mined[calls[len(confirmed)].data] == 1
        elif outcome.reason.startswith("not mined"):
            assert outcome.retryable and calls[len(confirmed)].data not in chain.mined
        else:
            assert failing.estimate_revert and not outcome.retryable
    else:
        assert len(confirmed) == len(calls) and outcome.tx_hash == chain.mined_hashes[-1]
        assert not any(p.revert or p.estimate_revert for p in plans)
